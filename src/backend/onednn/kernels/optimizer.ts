import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { allocFloat32 } from '../memory.js';
import {
  ADAM_TF1_UPDATE, ADAM_UPDATE, MOMENTUM_UPDATE, RMSPROP_TF1_UPDATE, RMSPROP_UPDATE,
  type AdamTf1UpdateAttrs, type AdamUpdateAttrs, type MomentumUpdateAttrs, type RmsPropTf1UpdateAttrs, type RmsPropUpdateAttrs,
} from '../../../ops/kernel-names.js';
import { addon, f32, kernel } from './native-args.js';

declare module '../addon.js' {
  interface OneDnnAddon {
    adamUpdate(
      value: Float32Array, m: Float32Array, v: Float32Array, gradient: Float32Array,
      newValue: Float32Array, newM: Float32Array, newV: Float32Array,
      lr: number, beta1: number, beta2: number, epsilon: number, oneMinusAccBeta1: number, oneMinusAccBeta2: number,
    ): void;
    rmsPropUpdate(
      value: Float32Array, ms: Float32Array, mom: Float32Array, gradient: Float32Array,
      newValue: Float32Array, newMs: Float32Array, newMom: Float32Array,
      lr: number, decay: number, momentum: number, epsilon: number,
    ): void;
    momentumUpdate(value: Float32Array, acc: Float32Array, gradient: Float32Array, newValue: Float32Array, newAcc: Float32Array, lr: number, momentum: number): void;
    adamTf1Update(
      value: Float32Array, m: Float32Array, v: Float32Array, gradient: Float32Array,
      newValue: Float32Array, newM: Float32Array, newV: Float32Array,
      alpha: number, oneMinusBeta1: number, oneMinusBeta2: number, epsilon: number,
    ): void;
    rmsPropTf1Update(
      value: Float32Array, ms: Float32Array, mom: Float32Array, gradient: Float32Array,
      newValue: Float32Array, newMs: Float32Array, newMom: Float32Array,
      lr: number, oneMinusDecay: number, momentum: number, epsilon: number,
    ): void;
  }
}

/**
 * The same-shape float32 inputs of an update kernel (value, state tensors, gradient), and fresh
 * outputs for the new value and state (one fewer than the inputs).
 */
function updateArrays(kernelName: string, backend: MathBackendCPU, inputs: TensorInfo[]): { ins: Float32Array[]; outs: Float32Array[] } {
  const ins = inputs.map((t) => f32(backend, t));
  if (ins.some((x) => !x || x.length !== ins[0]!.length)) throw new Error(`${kernelName} takes float32 tensors of one shape`);
  return { ins: ins as Float32Array[], outs: ins.slice(1).map(() => allocFloat32(ins[0]!.length)) };
}

export const optimizerKernels: KernelConfig[] = [
  kernel(ADAM_UPDATE, (args) => {
    const backend = args.backend as MathBackendCPU;
    const { value, m, v, gradient } = args.inputs as Record<'value' | 'm' | 'v' | 'gradient', TensorInfo>;
    const a = args.attrs as unknown as AdamUpdateAttrs;
    const { ins, outs } = updateArrays(ADAM_UPDATE, backend, [value, m, v, gradient]);
    addon().adamUpdate(ins[0]!, ins[1]!, ins[2]!, ins[3]!, outs[0]!, outs[1]!, outs[2]!, a.lr, a.beta1, a.beta2, a.epsilon, a.oneMinusAccBeta1, a.oneMinusAccBeta2);
    return outs.map((o) => backend.makeTensorInfo(value.shape, 'float32', o));
  }),
  kernel(RMSPROP_UPDATE, (args) => {
    const backend = args.backend as MathBackendCPU;
    const { value, ms, mom, gradient } = args.inputs as Record<'value' | 'ms' | 'mom' | 'gradient', TensorInfo>;
    const a = args.attrs as unknown as RmsPropUpdateAttrs;
    const { ins, outs } = updateArrays(RMSPROP_UPDATE, backend, [value, ms, mom, gradient]);
    addon().rmsPropUpdate(ins[0]!, ins[1]!, ins[2]!, ins[3]!, outs[0]!, outs[1]!, outs[2]!, a.lr, a.decay, a.momentum, a.epsilon);
    return outs.map((o) => backend.makeTensorInfo(value.shape, 'float32', o));
  }),
  kernel(MOMENTUM_UPDATE, (args) => {
    const backend = args.backend as MathBackendCPU;
    const { value, acc, gradient } = args.inputs as Record<'value' | 'acc' | 'gradient', TensorInfo>;
    const a = args.attrs as unknown as MomentumUpdateAttrs;
    const { ins, outs } = updateArrays(MOMENTUM_UPDATE, backend, [value, acc, gradient]);
    addon().momentumUpdate(ins[0]!, ins[1]!, ins[2]!, outs[0]!, outs[1]!, a.lr, a.momentum);
    return outs.map((o) => backend.makeTensorInfo(value.shape, 'float32', o));
  }),
  kernel(ADAM_TF1_UPDATE, (args) => {
    const backend = args.backend as MathBackendCPU;
    const { value, m, v, gradient } = args.inputs as Record<'value' | 'm' | 'v' | 'gradient', TensorInfo>;
    const a = args.attrs as unknown as AdamTf1UpdateAttrs;
    const { ins, outs } = updateArrays(ADAM_TF1_UPDATE, backend, [value, m, v, gradient]);
    addon().adamTf1Update(ins[0]!, ins[1]!, ins[2]!, ins[3]!, outs[0]!, outs[1]!, outs[2]!, a.alpha, a.oneMinusBeta1, a.oneMinusBeta2, a.epsilon);
    return outs.map((o) => backend.makeTensorInfo(value.shape, 'float32', o));
  }),
  kernel(RMSPROP_TF1_UPDATE, (args) => {
    const backend = args.backend as MathBackendCPU;
    const { value, ms, mom, gradient } = args.inputs as Record<'value' | 'ms' | 'mom' | 'gradient', TensorInfo>;
    const a = args.attrs as unknown as RmsPropTf1UpdateAttrs;
    const { ins, outs } = updateArrays(RMSPROP_TF1_UPDATE, backend, [value, ms, mom, gradient]);
    addon().rmsPropTf1Update(ins[0]!, ins[1]!, ins[2]!, ins[3]!, outs[0]!, outs[1]!, outs[2]!, a.lr, a.oneMinusDecay, a.momentum, a.epsilon);
    return outs.map((o) => backend.makeTensorInfo(value.shape, 'float32', o));
  }),
];

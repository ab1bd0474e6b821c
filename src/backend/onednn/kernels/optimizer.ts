import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { allocFloat32 } from '../memory.js';
import { ADAM_UPDATE, type AdamUpdateAttrs } from '../../../train/adam-update.js';
import { addon, f32, kernel } from './native-args.js';

declare module '../addon.js' {
  interface OneDnnAddon {
    adamUpdate(
      value: Float32Array, m: Float32Array, v: Float32Array, gradient: Float32Array,
      newValue: Float32Array, newM: Float32Array, newV: Float32Array,
      lr: number, beta1: number, beta2: number, epsilon: number, oneMinusAccBeta1: number, oneMinusAccBeta2: number,
    ): void;
  }
}

export const optimizerKernels: KernelConfig[] = [
  kernel(ADAM_UPDATE, (args) => {
    const backend = args.backend as MathBackendCPU;
    const { value, m, v, gradient } = args.inputs as Record<'value' | 'm' | 'v' | 'gradient', TensorInfo>;
    const a = args.attrs as unknown as AdamUpdateAttrs;
    const arrays = [value, m, v, gradient].map((t) => f32(backend, t));
    if (arrays.some((x) => !x || x.length !== arrays[0]!.length)) throw new Error(`${ADAM_UPDATE} takes float32 tensors of one shape`);
    const [vv, mv, sv, gv] = arrays as Float32Array[];
    const outs = [0, 1, 2].map(() => allocFloat32(vv!.length));
    addon().adamUpdate(vv!, mv!, sv!, gv!, outs[0]!, outs[1]!, outs[2]!, a.lr, a.beta1, a.beta2, a.epsilon, a.oneMinusAccBeta1, a.oneMinusAccBeta2);
    return outs.map((o) => backend.makeTensorInfo(value.shape, 'float32', o));
  }),
];

import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { allocFloat32 } from '../memory.js';
import { addon, cpuFallback, f32, kernel } from './native-args.js';
import { BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD, MOVING_AVERAGES, type BatchNormTrainAttrs, type MovingAveragesAttrs } from '../../../ops/kernel-names.js';

declare module '../addon.js' {
  interface OneDnnAddon {
    batchNormForward(
      x: Float32Array, mean: Float32Array, variance: Float32Array, offset: Float32Array | null, scale: Float32Array | null,
      eps: number, channels: number, out: Float32Array,
    ): void;
    batchNormTrainForward(
      x: Float32Array, scale: Float32Array | null, offset: Float32Array | null, eps: number, channels: number,
      out: Float32Array, mean: Float32Array, variance: Float32Array, activation: number,
    ): void;
    batchNormTrainGrad(
      x: Float32Array, dy: Float32Array, mean: Float32Array, variance: Float32Array, scale: Float32Array | null,
      offset: Float32Array | null, eps: number, channels: number, dx: Float32Array, dScale: Float32Array, dOffset: Float32Array,
      activation: number,
    ): void;
    movingAverages(
      movingMean: Float32Array, movingVariance: Float32Array, mean: Float32Array, variance: Float32Array, decay: number,
      newMean: Float32Array, newVariance: Float32Array,
    ): void;
    batchNormGrad(
      x: Float32Array, dy: Float32Array, mean: Float32Array, variance: Float32Array, scale: Float32Array | null,
      eps: number, channels: number,
      dx: Float32Array | null, dMean: Float32Array | null, dVariance: Float32Array | null, dScale: Float32Array | null, dOffset: Float32Array | null,
    ): void;
  }
}

/** Kernel behind the onednn FusedBatchNorm gradient: outputs [dx, dMean, dVariance, dScale, dOffset]. */
export const BATCH_NORM_GRAD = 'SelabBatchNormGrad';

/** Channel-vector statistics (the layout tfjs-layers uses in training): the native path applies. */
export function isChannelVector(x: TensorInfo, v: TensorInfo | undefined): boolean {
  return v === undefined || (v.shape.length === 1 && v.shape[0] === x.shape[x.shape.length - 1]);
}

const forwardFallback = cpuFallback(tf.FusedBatchNorm);

const ACTIVATION_CODE = { linear: 0, relu: 1, relu6: 2 } as const;

function activationCode(attrs: BatchNormTrainAttrs, kernelName: string): number {
  const code = ACTIVATION_CODE[attrs.activation ?? 'linear'];
  if (code === undefined) throw new Error(`${kernelName}: unknown activation "${attrs.activation}"`);
  return code;
}

/** The storage of training-mode BatchNorm outputs with their activation applied, for the layer merges. */
export const activatedOutputs = new WeakSet<object>();

export const batchNormKernels: KernelConfig[] = [
  kernel(tf.FusedBatchNorm, (args) => {
    const backend = args.backend as MathBackendCPU;
    const { x, mean, variance, offset, scale } = args.inputs as Record<string, TensorInfo | undefined>;
    const eps = (args.attrs as { varianceEpsilon: number }).varianceEpsilon;
    if (!x || !mean || !variance || ![mean, variance, offset, scale].every((v) => isChannelVector(x, v))) return forwardFallback(args);
    const xv = f32(backend, x);
    const mv = f32(backend, mean);
    const vv = f32(backend, variance);
    const ov = offset ? f32(backend, offset) : null;
    const sv = scale ? f32(backend, scale) : null;
    if (!xv || !mv || !vv || ov === undefined || sv === undefined || xv.length === 0) return forwardFallback(args);
    const out = allocFloat32(xv.length);
    addon().batchNormForward(xv, mv, vv, ov, sv, eps, mv.length, out);
    return backend.makeTensorInfo(x.shape, 'float32', out);
  }),
  kernel(BATCH_NORM_TRAIN, (args) => {
    const backend = args.backend as MathBackendCPU;
    const { x, scale, offset } = args.inputs as Record<string, TensorInfo | undefined>;
    const attrs = args.attrs as unknown as BatchNormTrainAttrs;
    const activation = activationCode(attrs, BATCH_NORM_TRAIN);
    const xv = x && f32(backend, x);
    const sv = scale ? f32(backend, scale) : null;
    const ov = offset ? f32(backend, offset) : null;
    if (!x || !xv || sv === undefined || ov === undefined) throw new Error(`${BATCH_NORM_TRAIN} takes float32 tensors`);
    const channels = x.shape[x.shape.length - 1]!;
    const out = allocFloat32(xv.length);
    const mean = allocFloat32(channels);
    const variance = allocFloat32(channels);
    addon().batchNormTrainForward(xv, sv, ov, attrs.varianceEpsilon, channels, out, mean, variance, activation);
    const y = backend.makeTensorInfo(x.shape, 'float32', out);
    if (activation !== 0) activatedOutputs.add(y.dataId);
    return [y, backend.makeTensorInfo([channels], 'float32', mean), backend.makeTensorInfo([channels], 'float32', variance)];
  }),
  kernel(BATCH_NORM_TRAIN_GRAD, (args) => {
    const backend = args.backend as MathBackendCPU;
    const { x, dy, mean, variance, scale, offset } = args.inputs as Record<string, TensorInfo | undefined>;
    const attrs = args.attrs as unknown as BatchNormTrainAttrs;
    const activation = activationCode(attrs, BATCH_NORM_TRAIN_GRAD);
    const arrays = [x, dy, mean, variance].map((t) => t && f32(backend, t));
    const sv = scale ? f32(backend, scale) : null;
    const ov = offset ? f32(backend, offset) : null;
    if (arrays.some((a) => !a) || sv === undefined || ov === undefined) throw new Error(`${BATCH_NORM_TRAIN_GRAD} takes float32 tensors`);
    const [xv, dyv, mv, vv] = arrays as Float32Array[];
    const channels = mv!.length;
    const dx = allocFloat32(xv!.length);
    const dScale = allocFloat32(channels);
    const dOffset = allocFloat32(channels);
    addon().batchNormTrainGrad(xv!, dyv!, mv!, vv!, sv, ov, attrs.varianceEpsilon, channels, dx, dScale, dOffset, activation);
    return [backend.makeTensorInfo(x!.shape, 'float32', dx), backend.makeTensorInfo([channels], 'float32', dScale), backend.makeTensorInfo([channels], 'float32', dOffset)];
  }),
  kernel(MOVING_AVERAGES, (args) => {
    const backend = args.backend as MathBackendCPU;
    const { movingMean, movingVariance, mean, variance } = args.inputs as Record<string, TensorInfo | undefined>;
    const arrays = [movingMean, movingVariance, mean, variance].map((t) => t && f32(backend, t));
    const channels = arrays[0]?.length;
    if (arrays.some((a) => !a || a.length !== channels)) throw new Error(`${MOVING_AVERAGES} takes float32 vectors of one length`);
    const [mm, mv, m, v] = arrays as Float32Array[];
    const outs = [allocFloat32(channels!), allocFloat32(channels!)] as const;
    addon().movingAverages(mm!, mv!, m!, v!, (args.attrs as unknown as MovingAveragesAttrs).decay, outs[0], outs[1]);
    return outs.map((o) => backend.makeTensorInfo([channels!], 'float32', o));
  }),
  kernel(BATCH_NORM_GRAD, (args) => {
    const backend = args.backend as MathBackendCPU;
    const { x, dy, mean, variance, scale } = args.inputs as Record<string, TensorInfo>;
    const eps = (args.attrs as { varianceEpsilon: number }).varianceEpsilon;
    const read = (t: TensorInfo | undefined) => {
      const v = t ? f32(backend, t) : null;
      if (v === undefined) throw new Error(`${BATCH_NORM_GRAD} takes float32 tensors`);
      return v;
    };
    const xv = read(x)!;
    const channels = mean!.shape[0]!;
    const dx = allocFloat32(xv.length);
    const vectors = [0, 1, 2, 3].map(() => allocFloat32(channels));
    addon().batchNormGrad(xv, read(dy)!, read(mean)!, read(variance)!, read(scale), eps, channels, dx, vectors[0]!, vectors[1]!, vectors[2]!, vectors[3]!);
    return [
      backend.makeTensorInfo(x!.shape, 'float32', dx),
      ...vectors.map((v) => backend.makeTensorInfo([channels], 'float32', v)),
    ];
  }),
];

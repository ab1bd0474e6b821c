import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { allocFloat32 } from '../memory.js';
import { addon, cpuFallback, f32, kernel } from './native-args.js';

declare module '../addon.js' {
  interface OneDnnAddon {
    reduce(op: number, x: Float32Array, out: Float32Array, outer: number, reduced: number, inner: number): void;
    mulReduce(a: Float32Array, b: Float32Array, out: Float32Array, outer: number, reduced: number, inner: number): void;
    transpose(x: Float32Array, out: Float32Array, shape: number[], perm: number[]): void;
    tile(x: Float32Array, out: Float32Array, shape: number[], reps: number[]): void;
    slice(x: Float32Array, out: Float32Array, shape: number[], begin: number[], size: number[]): void;
    pad(x: Float32Array, out: Float32Array, shape: number[], before: number[], outShape: number[], value: number): void;
  }
}

const ReduceOp = { sum: 0, mean: 1, max: 2, min: 3 } as const;

/**
 * x viewed as [outer, reduced, inner] when the reduced axes are one contiguous block
 * (all but the channel axis, the spatial axes of NHWC, the last axis…); undefined otherwise.
 */
export function reductionBlock(shape: number[], axes: number[]): { outer: number; reduced: number; inner: number } | undefined {
  const sorted = [...new Set(axes)].sort((p, q) => p - q);
  if (sorted.length === 0) return undefined;
  const first = sorted[0]!;
  const last = sorted[sorted.length - 1]!;
  if (last - first + 1 !== sorted.length) return undefined;
  const size = (from: number, to: number) => shape.slice(from, to).reduce((p, d) => p * d, 1);
  return { outer: size(0, first), reduced: size(first, last + 1), inner: size(last + 1, shape.length) };
}

function reduceKernel(kernelName: string, op: number, axisAttr: 'axis' | 'reductionIndices'): KernelConfig {
  const fallback = cpuFallback(kernelName);
  return kernel(kernelName, (args) => {
    const backend = args.backend as MathBackendCPU;
    const x = args.inputs['x'] as TensorInfo;
    const attrs = args.attrs as Record<string, unknown>;
    const xv = f32(backend, x);
    const axes = tf.util.parseAxisParam(attrs[axisAttr] as number | number[], x.shape);
    const block = reductionBlock(x.shape, axes);
    if (!xv || !block || xv.length === 0) return fallback(args);
    const [outShape] = tf.backend_util.computeOutAndReduceShapes(x.shape, axes);
    const shape = attrs['keepDims'] ? tf.backend_util.expandShapeToKeepDim(outShape, axes) : outShape;
    const out = allocFloat32(block.outer * block.inner);
    addon().reduce(op, xv, out, block.outer, block.reduced, block.inner);
    return backend.makeTensorInfo(shape, 'float32', out);
  });
}

const transposeFallback = cpuFallback(tf.Transpose);
const tileFallback = cpuFallback(tf.Tile);
const sliceFallback = cpuFallback(tf.Slice);
const padFallback = cpuFallback(tf.PadV2);

export const reduceKernels: KernelConfig[] = [
  reduceKernel(tf.Sum, ReduceOp.sum, 'axis'),
  reduceKernel(tf.Mean, ReduceOp.mean, 'axis'),
  reduceKernel(tf.Max, ReduceOp.max, 'reductionIndices'),
  reduceKernel(tf.Min, ReduceOp.min, 'axis'),
  kernel(tf.Transpose, (args) => {
    const backend = args.backend as MathBackendCPU;
    const x = args.inputs['x'] as TensorInfo;
    const perm = (args.attrs as { perm: number[] }).perm;
    const xv = f32(backend, x);
    if (!xv || x.shape.length === 0) return transposeFallback(args);
    const outShape = perm.map((p) => x.shape[p]!);
    const out = allocFloat32(xv.length);
    if (out.length > 0) addon().transpose(xv, out, x.shape, perm);
    return backend.makeTensorInfo(outShape, 'float32', out);
  }),
  kernel(tf.Tile, (args) => {
    const backend = args.backend as MathBackendCPU;
    const x = args.inputs['x'] as TensorInfo;
    const reps = (args.attrs as { reps: number[] }).reps;
    const xv = f32(backend, x);
    if (!xv || x.shape.length === 0 || reps.length !== x.shape.length) return tileFallback(args);
    const outShape = x.shape.map((d, k) => d * reps[k]!);
    const out = allocFloat32(tf.util.sizeFromShape(outShape));
    if (out.length > 0) addon().tile(xv, out, x.shape, reps);
    return backend.makeTensorInfo(outShape, 'float32', out);
  }),
  // The gradient of ZeroPadding2D (MobileNet's stride-2 blocks) is a strided Slice.
  kernel(tf.Slice, (args) => {
    const backend = args.backend as MathBackendCPU;
    const x = args.inputs['x'] as TensorInfo;
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
    const xv = f32(backend, x);
    if (!xv || x.shape.length === 0) return sliceFallback(args);
    const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size) as [number[], number[]];
    const n = tf.util.sizeFromShape(s);
    if (n === 0) return sliceFallback(args);
    // model.predict slices every batch out of its input, the whole of it when one batch is the
    // input; the slice then shares x's storage, as the cpu backend's Reshape does.
    if (b.every((v) => v === 0) && tf.util.arraysEqual(s, x.shape)) {
      backend.incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    }
    const out = allocFloat32(n);
    addon().slice(xv, out, x.shape, b, s);
    return backend.makeTensorInfo(s, 'float32', out);
  }),
  kernel(tf.PadV2, (args) => {
    const backend = args.backend as MathBackendCPU;
    const x = args.inputs['x'] as TensorInfo;
    const { paddings, constantValue } = args.attrs as unknown as { paddings: [number, number][]; constantValue: number };
    const xv = f32(backend, x);
    if (!xv || x.shape.length === 0 || xv.length === 0) return padFallback(args);
    const outShape = x.shape.map((d, k) => paddings[k]![0] + d + paddings[k]![1]);
    const out = allocFloat32(tf.util.sizeFromShape(outShape));
    addon().pad(xv, out, x.shape, paddings.map((p) => p[0]), outShape, constantValue);
    return backend.makeTensorInfo(outShape, 'float32', out);
  }),
];

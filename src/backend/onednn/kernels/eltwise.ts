import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { allocFloat32 } from '../memory.js';
import { addon, cpuFallback, f32, i32, kernel } from './native-args.js';

declare module '../addon.js' {
  interface OneDnnAddon {
    binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, dims: number[], aStrides: number[], bStrides: number[], lo?: number, hi?: number): void;
    unary(op: number, x: Float32Array, out: Float32Array, alpha: number, beta?: number): void;
    fill(out: Float32Array, value: number): void;
    castF32ToI32(x: Float32Array, out: Int32Array): void;
    castI32ToF32(x: Int32Array, out: Float32Array): void;
    addN(xs: Float32Array[], out: Float32Array): void;
    scaleShift(x: Float32Array, scale: Float32Array, shift: Float32Array, out: Float32Array, channels: number, activation: number, gate: Float32Array | null): void;
  }
}

/** Inputs x [..., C], scale [C], shift [C], gate [N, 1, 1, C] (optional); attr activation (0 linear, 1 relu, 2 relu6); y = act(x·scale·gate + shift). */
export const SCALE_SHIFT = 'SelabScaleShift';

/** y = act(x·scale·gate + shift) natively (see SCALE_SHIFT); undefined when an input is not float32. */
export function nativeScaleShift(
  backend: MathBackendCPU, x: TensorInfo, scale: Float32Array, shift: Float32Array, activation: number, gate: TensorInfo | null,
): TensorInfo | undefined {
  const xv = f32(backend, x);
  const gv = gate ? f32(backend, gate) : null;
  const channels = x.shape[x.shape.length - 1]!;
  if (!xv || gv === undefined || scale.length !== channels || shift.length !== channels) return undefined;
  if (gv && (x.shape.length !== 4 || gv.length !== x.shape[0]! * channels)) return undefined;
  const out = allocFloat32(xv.length);
  addon().scaleShift(xv, scale, shift, out, channels, activation, gv);
  return backend.makeTensorInfo(x.shape, 'float32', out);
}

/**
 * A replacement for Multiply kernels while it is set (src/backend/onednn/layers.ts sets one
 * around an SE block whose product it merges with the BatchNorm after it); it returns undefined
 * for the products it leaves alone.
 */
export type MultiplyHook = (backend: MathBackendCPU, a: TensorInfo, b: TensorInfo) => TensorInfo | undefined;
let multiplyHook: MultiplyHook | null = null;

export function setMultiplyHook(hook: MultiplyHook | null): void {
  multiplyHook = hook;
}

/** Op codes of native/src/eltwise.cc. */
export const BinaryOp = {
  add: 0, sub: 1, mul: 2, div: 3, max: 4, min: 5, squaredDifference: 6,
  reluGrad: 7, relu6Grad: 8, squareGrad: 9, sigmoidGradFromY: 10, clipGrad: 11, relu6GradFromY: 12,
} as const;
const UnaryOp = {
  relu: 0, relu6: 1, step: 2, sigmoid: 3, sqrt: 4, rsqrt: 5, square: 6, neg: 7,
  exp: 8, log: 9, abs: 10, tanh: 11, reciprocal: 12, leakyRelu: 13, clip: 14,
} as const;

export interface BroadcastPlan {
  dims: number[];
  aStrides: number[];
  bStrides: number[];
}

/**
 * Describes `out = f(a, b)` with numpy broadcasting as few dimensions as possible, each
 * input's stride 0 where it is broadcast: [N,H,W,C] ⊙ [C] becomes [N·H·W, C] with b
 * strides [0, 1]; [N,H,W,C] ⊙ [N,1,1,C] becomes [N, H·W, C] with b strides [C, 0, 1].
 */
export function broadcastPlan(outShape: number[], aShape: number[], bShape: number[]): BroadcastPlan {
  const r = outShape.length;
  const strides = (shape: number[]): number[] => {
    const aligned = [...new Array<number>(r - shape.length).fill(1), ...shape];
    const s = new Array<number>(r).fill(0);
    let acc = 1;
    for (let k = r - 1; k >= 0; --k) {
      const d = aligned[k]!;
      s[k] = d === 1 && outShape[k] !== 1 ? 0 : acc;
      acc *= d;
    }
    return s;
  };
  const sa = strides(aShape);
  const sb = strides(bShape);
  const dims: number[] = [];
  const aStrides: number[] = [];
  const bStrides: number[] = [];
  for (let k = 0; k < r; ++k) {
    const d = outShape[k]!;
    if (d === 1) continue;
    const last = dims.length - 1;
    const contiguous = (s: number[], prev: number[]) => prev[last] === s[k]! * d;
    if (last >= 0 && contiguous(sa, aStrides) && contiguous(sb, bStrides)) {
      dims[last] = dims[last]! * d;
      aStrides[last] = sa[k]!;
      bStrides[last] = sb[k]!;
    } else {
      dims.push(d);
      aStrides.push(sa[k]!);
      bStrides.push(sb[k]!);
    }
  }
  if (dims.length === 0) return { dims: [1], aStrides: [0], bStrides: [0] };
  return { dims, aStrides, bStrides };
}

/** Runs a native binary op on two float32 tensors; undefined when either is not float32. `lo`/`hi` parametrise clipGrad. */
export function nativeBinary(backend: MathBackendCPU, op: number, a: TensorInfo, b: TensorInfo, lo = 0, hi = 0): TensorInfo | undefined {
  const av = f32(backend, a);
  const bv = f32(backend, b);
  if (!av || !bv) return undefined;
  const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
  const out = allocFloat32(tf.util.sizeFromShape(outShape));
  if (out.length > 0) {
    const plan = broadcastPlan(outShape, a.shape, b.shape);
    addon().binary(op, av, bv, out, plan.dims, plan.aStrides, plan.bStrides, lo, hi);
  }
  return backend.makeTensorInfo(outShape, 'float32', out);
}

function binaryKernel(kernelName: string, op: number): KernelConfig {
  const fallback = cpuFallback(kernelName);
  return kernel(kernelName, (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const hooked = op === BinaryOp.mul && multiplyHook ? multiplyHook(args.backend as MathBackendCPU, a, b) : undefined;
    return hooked ?? nativeBinary(args.backend as MathBackendCPU, op, a, b) ?? fallback(args);
  });
}

function unaryKernel(
  kernelName: string, op: number,
  alpha: (attrs: NamedAttrMap | undefined) => number = () => 0, beta: (attrs: NamedAttrMap | undefined) => number = () => 0,
): KernelConfig {
  const fallback = cpuFallback(kernelName);
  return kernel(kernelName, (args) => {
    const backend = args.backend as MathBackendCPU;
    const x = args.inputs['x'] as TensorInfo;
    const xv = f32(backend, x);
    if (!xv) return fallback(args);
    const out = allocFloat32(xv.length);
    addon().unary(op, xv, out, alpha(args.attrs), beta(args.attrs));
    return backend.makeTensorInfo(x.shape, 'float32', out);
  });
}

const castFallback = cpuFallback(tf.Cast);
const fillFallback = cpuFallback(tf.Fill);
const onesLikeFallback = cpuFallback(tf.OnesLike);
const zerosLikeFallback = cpuFallback(tf.ZerosLike);
const addNFallback = cpuFallback(tf.AddN);

export const elementwiseKernels: KernelConfig[] = [
  kernel(SCALE_SHIFT, (args) => {
    const backend = args.backend as MathBackendCPU;
    const { x, scale, shift, gate } = args.inputs as Record<string, TensorInfo | undefined>;
    const sv = scale && f32(backend, scale);
    const hv = shift && f32(backend, shift);
    const out = x && sv && hv ? nativeScaleShift(backend, x, sv, hv, (args.attrs as { activation: number }).activation, gate ?? null) : undefined;
    if (!out) throw new Error(`${SCALE_SHIFT} takes float32 tensors: x [..., C], scale and shift [C], gate [N, 1, 1, C]`);
    return out;
  }),
  binaryKernel(tf.Add, BinaryOp.add),
  binaryKernel(tf.Sub, BinaryOp.sub),
  binaryKernel(tf.Multiply, BinaryOp.mul),
  binaryKernel(tf.RealDiv, BinaryOp.div),
  binaryKernel(tf.Maximum, BinaryOp.max),
  binaryKernel(tf.Minimum, BinaryOp.min),
  binaryKernel(tf.SquaredDifference, BinaryOp.squaredDifference),
  unaryKernel(tf.Relu, UnaryOp.relu),
  unaryKernel(tf.Relu6, UnaryOp.relu6),
  unaryKernel(tf.Step, UnaryOp.step, (attrs) => (attrs?.['alpha'] as number | undefined) ?? 0),
  unaryKernel(tf.Sigmoid, UnaryOp.sigmoid),
  unaryKernel(tf.Sqrt, UnaryOp.sqrt),
  unaryKernel(tf.Rsqrt, UnaryOp.rsqrt),
  unaryKernel(tf.Square, UnaryOp.square),
  unaryKernel(tf.Neg, UnaryOp.neg),
  unaryKernel(tf.Exp, UnaryOp.exp),
  unaryKernel(tf.Log, UnaryOp.log),
  unaryKernel(tf.Abs, UnaryOp.abs),
  unaryKernel(tf.Tanh, UnaryOp.tanh),
  unaryKernel(tf.Reciprocal, UnaryOp.reciprocal),
  unaryKernel(tf.LeakyRelu, UnaryOp.leakyRelu, (attrs) => (attrs?.['alpha'] as number | undefined) ?? 0.2),
  // tfjs-layers' ReLU layer with maxValue (MobileNet's ReLU6) is clipByValue(relu(x), 0, 6).
  unaryKernel(tf.ClipByValue, UnaryOp.clip, (attrs) => attrs!['clipValueMin'] as number, (attrs) => attrs!['clipValueMax'] as number),
  kernel(tf.Cast, (args) => {
    const backend = args.backend as MathBackendCPU;
    const x = args.inputs['x'] as TensorInfo;
    const dtype = (args.attrs as { dtype: tf.DataType }).dtype;
    const fv = f32(backend, x);
    if (fv && dtype === 'int32') {
      const out = new Int32Array(fv.length);
      addon().castF32ToI32(fv, out);
      return backend.makeTensorInfo(x.shape, 'int32', out);
    }
    const iv = i32(backend, x);
    if (iv && dtype === 'float32') {
      const out = allocFloat32(iv.length);
      addon().castI32ToF32(iv, out);
      return backend.makeTensorInfo(x.shape, 'float32', out);
    }
    return castFallback(args);
  }),
  kernel(tf.Fill, (args) => {
    const { shape, value, dtype } = args.attrs as unknown as { shape: number[]; value: number; dtype?: tf.DataType };
    if ((dtype ?? 'float32') !== 'float32' || typeof value !== 'number') return fillFallback(args);
    const out = allocFloat32(tf.util.sizeFromShape(shape));
    addon().fill(out, value);
    return (args.backend as MathBackendCPU).makeTensorInfo(shape, 'float32', out);
  }),
  kernel(tf.OnesLike, (args) => {
    const x = args.inputs['x'] as TensorInfo;
    if (x.dtype !== 'float32') return onesLikeFallback(args);
    const out = allocFloat32(tf.util.sizeFromShape(x.shape));
    addon().fill(out, 1);
    return (args.backend as MathBackendCPU).makeTensorInfo(x.shape, 'float32', out);
  }),
  kernel(tf.ZerosLike, (args) => {
    const x = args.inputs['x'] as TensorInfo;
    if (x.dtype !== 'float32') return zerosLikeFallback(args);
    const out = allocFloat32(tf.util.sizeFromShape(x.shape));
    addon().fill(out, 0);
    return (args.backend as MathBackendCPU).makeTensorInfo(x.shape, 'float32', out);
  }),
  kernel(tf.AddN, (args) => {
    const backend = args.backend as MathBackendCPU;
    const tensors = args.inputs as unknown as TensorInfo[];
    const values = tensors.map((t) => f32(backend, t));
    if (tensors.length === 0 || values.some((v) => v === undefined)) return addNFallback(args);
    const out = allocFloat32(tf.util.sizeFromShape(tensors[0]!.shape));
    addon().addN(values as Float32Array[], out);
    return backend.makeTensorInfo(tensors[0]!.shape, 'float32', out);
  }),
];

// tfjs-core's gradients of batch norm, ReLU, clipByValue, Square, Mean and Sum spend several full-size
// kernels on what is one pass over memory (a Tile of 1/sqrt(var) to x's shape, a mask via
// Step then Multiply, a Fill of ones then Multiply then Divide). Gradients are registered per
// kernel name, not per backend, so each override here takes the fused native route only while
// `onednn` is the active backend and otherwise calls tfjs-core's own gradient unchanged.
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's gradients are registered by importing tfjs-layers (its Node bundle); the originals
// must exist before they are wrapped.
import '@tensorflow/tfjs-layers';
import type { GradConfig, KernelConfig, NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { BATCH_NORM_GRAD, isChannelVector } from './batchnorm.js';
import { BinaryOp, nativeBinary } from './eltwise.js';
import { reductionBlock } from './reduce.js';
import { allocFloat32 } from '../memory.js';
import { addon, BACKEND, f32, kernel } from './native-args.js';

/** f(dy, x) in one pass; attr `op` is a BinaryOp gradient code (`lo`, `hi` for clipGrad). */
export const ELTWISE_GRAD = 'SelabEltwiseGrad';

/** sum(a * b) over a contiguous block of axes; attrs outer, reduced, inner and the output shape. */
const MUL_REDUCE = 'SelabMulReduce';

export const gradientKernels: KernelConfig[] = [
  kernel(MUL_REDUCE, (args) => {
    const backend = args.backend as MathBackendCPU;
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { outer, reduced, inner, shape } = args.attrs as { outer: number; reduced: number; inner: number; shape: number[] };
    const av = f32(backend, a);
    const bv = f32(backend, b);
    if (!av || !bv) throw new Error(`${MUL_REDUCE} takes float32 tensors`);
    const out = allocFloat32(outer * inner);
    addon().mulReduce(av, bv, out, outer, reduced, inner);
    return backend.makeTensorInfo(shape, 'float32', out);
  }),
  kernel(ELTWISE_GRAD, (args) => {
    const { dy, x } = args.inputs as { dy: TensorInfo; x: TensorInfo };
    const { op, lo, hi } = args.attrs as { op: number; lo?: number; hi?: number };
    const out = nativeBinary(args.backend as MathBackendCPU, op, dy, x, lo, hi);
    if (!out) throw new Error(`${ELTWISE_GRAD} takes float32 tensors`);
    return out;
  }),
];

type GradFunc = GradConfig['gradFunc'];

function override(kernelName: string, native: (dy: Tensor, saved: Tensor[], attrs: NamedAttrMap) => ReturnType<GradFunc> | undefined): void {
  const original = tf.getGradient(kernelName);
  if (!original) throw new Error(`selab onednn: tfjs-core has no gradient for ${kernelName}`);
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const fused = tf.getBackend() === BACKEND && !Array.isArray(dy) && dy.dtype === 'float32' ? native(dy, saved, attrs) : undefined;
      return fused ?? original.gradFunc(dy, saved, attrs);
    },
  });
}

function eltwiseGrad(dy: Tensor, x: Tensor, op: number, lo = 0, hi = 0): Tensor {
  return tf.engine().runKernel(ELTWISE_GRAD, { dy, x }, { op, lo, hi }) as Tensor;
}

/** The reshaped dy repeated over the reduced axes, as Sum's and Mean's gradients need. */
function spreadOverAxes(dy: Tensor, x: Tensor, axisAttr: unknown, scale: number): Tensor {
  const axes = tf.util.parseAxisParam(axisAttr as number | number[], x.shape);
  const expanded = x.shape.map((d, k) => (axes.includes(k) ? 1 : d));
  const reps = x.shape.map((d, k) => (axes.includes(k) ? d : 1));
  const dyx = tf.reshape(dy, expanded);
  return tf.tile(scale === 1 ? dyx : tf.mul(dyx, tf.scalar(scale)), reps);
}

/**
 * Multiply's gradient for a broadcast operand (an SE gate [N,1,1,C] against [N,H,W,C]): the
 * product dy·other summed over the broadcast axes in one pass (MUL_REDUCE), where tfjs-core
 * writes the full-size product and then sums it. The other operand's gradient is tfjs-core's.
 */
function overrideMultiply(): void {
  const original = tf.getGradient(tf.Multiply);
  if (!original) throw new Error('selab onednn: tfjs-core has no gradient for Multiply');
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const grads = original.gradFunc(dy, saved, attrs) as Record<string, () => Tensor>;
      const [a, b] = saved as [Tensor, Tensor];
      if (tf.getBackend() !== BACKEND || Array.isArray(dy) || dy.dtype !== 'float32' || a.dtype !== 'float32' || b.dtype !== 'float32') return grads;
      const outShape = dy.shape;
      const fused = (self: Tensor, other: Tensor): (() => Tensor) | undefined => {
        if (!tf.util.arraysEqual(other.shape, outShape)) return undefined;
        const axes = tf.backend_util.getReductionAxes(self.shape, outShape);
        const block = axes.length > 0 ? reductionBlock(outShape, axes) : undefined;
        if (!block || block.outer * block.inner !== tf.util.sizeFromShape(self.shape)) return undefined;
        return () => tf.engine().runKernel(MUL_REDUCE, { a: dy, b: other }, { ...block, shape: self.shape }) as Tensor;
      };
      return { a: fused(a, b) ?? grads['a']!, b: fused(b, a) ?? grads['b']! };
    },
  });
}

let installed = false;

/** Installs the overrides once; tfjs-core's own gradients must already be registered. */
export function installNativeGradients(): void {
  if (installed) return;
  installed = true;
  overrideMultiply();
  override(tf.Relu, (dy, [x]) => (x!.dtype === 'float32' ? { x: () => eltwiseGrad(dy, x!, BinaryOp.reluGrad) } : undefined));
  override(tf.Relu6, (dy, [x]) => (x!.dtype === 'float32' ? { x: () => eltwiseGrad(dy, x!, BinaryOp.relu6Grad) } : undefined));
  override(tf.Square, (dy, [x]) => (x!.dtype === 'float32' ? { x: () => eltwiseGrad(dy, x!, BinaryOp.squareGrad) } : undefined));
  // tfjs-core: where(logicalAnd(greaterEqual(x, min), lessEqual(x, max)), dy, zerosLike(dy)), five kernels.
  override(tf.ClipByValue, (dy, [x], attrs) =>
    x!.dtype === 'float32' ? { x: () => eltwiseGrad(dy, x!, BinaryOp.clipGrad, attrs['clipValueMin'] as number, attrs['clipValueMax'] as number) } : undefined,
  );
  override(tf.Sigmoid, (dy, [y]) => ({ x: () => eltwiseGrad(dy, y!, BinaryOp.sigmoidGradFromY) }));
  override(tf.Sum, (dy, [x], attrs) => (x!.dtype === 'float32' ? { x: () => spreadOverAxes(dy, x!, attrs['axis'], 1) } : undefined));
  override(tf.Mean, (dy, [x], attrs) => {
    const axes = tf.util.parseAxisParam(attrs['axis'] as number | number[], x!.shape);
    const count = axes.reduce((p, k) => p * x!.shape[k]!, 1);
    return { x: () => spreadOverAxes(dy, x!, attrs['axis'], 1 / count) };
  });
  override(tf.FusedBatchNorm, (dy, saved, attrs) => {
    const [x, mean, variance, scale] = saved as [Tensor, Tensor, Tensor, Tensor | undefined];
    if (![x, mean, variance, scale].every((t) => !t || t.dtype === 'float32')) return undefined;
    if (!isChannelVector(x, mean) || !isChannelVector(x, variance) || (scale && !isChannelVector(x, scale))) return undefined;
    const inputs: Record<string, Tensor> = { x, dy, mean, variance };
    if (scale) inputs['scale'] = scale;
    const [dx, dMean, dVariance, dScale, dOffset] = tf.engine().runKernel(BATCH_NORM_GRAD, inputs, { varianceEpsilon: attrs['varianceEpsilon'] as number }) as Tensor[];
    return { x: () => dx!, mean: () => dMean!, variance: () => dVariance!, scale: () => dScale!, offset: () => dOffset! };
  });
}

// The filter gradients of convolutions on webgpu. tfjs-backend-webgpu 4.22 computes both
// (Conv2DBackpropFilter, DepthwiseConv2dNativeBackpropFilter) with one invocation per filter
// element, each summing serially over the whole batch and image: a 3×3×64×64 filter is 36,864
// invocations that each run batch·H·W multiply-adds, and a depthwise 3×3×32 filter only 288. On
// SwiftShader that was 62% of a plain10 training step; on a GPU with thousands of cores it leaves
// almost all of them idle. Here:
// - Conv2DBackpropFilter is a matrix product, dW[K, Co] = patchesᵀ[K, M] · dy[M, Co] with
//   K = kh·kw·Ci and M = batch·outH·outW, where `patches` is the im2col of x (one WGSL gather; a
//   1×1 convolution of stride 1 needs none) and the product is tfjs-backend-webgpu's own tiled
//   BatchMatMul. The patches are built a few images at a time when the whole batch's would be large.
// - DepthwiseConv2dNativeBackpropFilter splits the sum over batch·outH·outW into slices, one
//   invocation per slice and filter element, and a second pass adds the slices up.
// NCHW data and anything else these do not cover go to the package's own kernels.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { flat, flatProgram, type ProgramUniform, type WebGpuBackendLike } from '../program.js';

const WEBGPU = 'webgpu';

export const convTuning = {
  /** Elements of one im2col buffer: 128 MiB of float32, WebGPU's default largest storage binding. */
  maxPatchElements: 2 ** 25,
};
/** Invocations the depthwise filter gradient aims for (slices × filter elements). */
const DEPTHWISE_TARGET_INVOCATIONS = 2 ** 17;
/** Fewest rows of the sum one depthwise invocation takes. */
const DEPTHWISE_MIN_ROWS = 16;

const ints = (...values: number[]): ProgramUniform[] => values.map((v) => ({ type: 'int32', data: [v] }));

function runKernel(name: string, backend: WebGpuBackendLike, inputs: Record<string, TensorInfo>, attrs: object): TensorInfo {
  const config = tf.getKernel(name, WEBGPU);
  if (!config) throw new Error(`selab: the webgpu backend has no ${name} kernel`);
  return config.kernelFunc({ inputs, backend: backend as never, attrs: attrs as tf.NamedAttrMap }) as TensorInfo;
}

const IM2COL_UNIFORMS = 'inH : i32, inW : i32, inC : i32, outH : i32, outW : i32, filterW : i32, strideH : i32, strideW : i32, padT : i32, padL : i32, patchSize : i32, batch0 : i32,';

/** patches[m, k] of images batch0…: m = (b, oy, ox), k = (fy, fx, c); zero where the window leaves the image. */
const IM2COL = `
  fn main(index : i32) {
    if (index < uniforms.size) {
      let m = index / uniforms.patchSize;
      let k = index - m * uniforms.patchSize;
      let c = k % uniforms.inC;
      let fxy = k / uniforms.inC;
      let fx = fxy % uniforms.filterW;
      let fy = fxy / uniforms.filterW;
      let ox = m % uniforms.outW;
      let oyb = m / uniforms.outW;
      let oy = oyb % uniforms.outH;
      let b = oyb / uniforms.outH + uniforms.batch0;
      let y = oy * uniforms.strideH + fy - uniforms.padT;
      let x = ox * uniforms.strideW + fx - uniforms.padL;
      var value = 0.0;
      if (y >= 0 && y < uniforms.inH && x >= 0 && x < uniforms.inW) {
        value = X[((b * uniforms.inH + y) * uniforms.inW + x) * uniforms.inC + c];
      }
      setOutputAtIndex(index, value);
    }
  }`;

function conv2dBackpropFilter(fallback: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WebGpuBackendLike;
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    if (dataFormat !== 'NHWC' || x.dtype !== 'float32' || dy.dtype !== 'float32') return fallback(args);
    const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode);
    const [fh, fw, ci, co] = filterShape;
    const { batchSize, inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth } = info;
    const patch = fh * fw * ci;
    const rowsPerImage = outHeight * outWidth;
    const temps: TensorInfo[] = [];
    const matmul = (a: TensorInfo, b: TensorInfo) => runKernel(tf.BatchMatMul, backend, { a, b }, { transposeA: true, transposeB: false });
    try {
      if (fh === 1 && fw === 1 && strideHeight === 1 && strideWidth === 1 && info.padInfo.top === 0 && info.padInfo.left === 0) {
        // x itself is the patch matrix.
        const product = matmul({ ...flat(x), shape: [1, batchSize * rowsPerImage, ci] }, { ...flat(dy), shape: [1, batchSize * rowsPerImage, co] });
        return { dataId: product.dataId, shape: [...filterShape], dtype: 'float32' };
      }
      const imagesPerChunk = Math.max(1, Math.min(batchSize, Math.floor(convTuning.maxPatchElements / (rowsPerImage * patch))));
      let sum: TensorInfo | undefined;
      for (let b0 = 0; b0 < batchSize; b0 += imagesPerChunk) {
        const images = Math.min(imagesPerChunk, batchSize - b0);
        const rows = images * rowsPerImage;
        const program = flatProgram('selab_im2col', ['X'], rows * patch, IM2COL_UNIFORMS, IM2COL);
        const patches = backend.runWebGPUProgram(program, [flat(x)], 'float32',
          ints(inHeight, inWidth, ci, outHeight, outWidth, fw, strideHeight, strideWidth, info.padInfo.top, info.padInfo.left, patch, b0));
        temps.push(patches);
        let dyRows: TensorInfo = { ...flat(dy), shape: [1, batchSize * rowsPerImage, co] };
        if (images < batchSize) {
          dyRows = runKernel(tf.Slice, backend, { x: dyRows }, { begin: [0, b0 * rowsPerImage, 0], size: [1, rows, co] });
          temps.push(dyRows);
        }
        const product = matmul({ dataId: patches.dataId, shape: [1, rows, patch], dtype: 'float32' }, dyRows);
        if (sum) {
          temps.push(sum, product);
          sum = runKernel(tf.Add, backend, { a: sum, b: product }, {});
        } else {
          sum = product;
        }
      }
      return { dataId: sum!.dataId, shape: [...filterShape], dtype: 'float32' };
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
}

const DEPTHWISE_UNIFORMS = 'inH : i32, inW : i32, inC : i32, outH : i32, outW : i32, filterW : i32, mult : i32, strideH : i32, strideW : i32, padT : i32, padL : i32, filterSize : i32, rows : i32, rowsPerSlice : i32,';

/** partial[s, f]: the sum for filter element f = (fy, fx, c, q) over rows m = (b, oy, ox) of slice s (no dilation). */
const DEPTHWISE_PARTIAL = `
  fn main(index : i32) {
    if (index < uniforms.size) {
      let s = index / uniforms.filterSize;
      let f = index - s * uniforms.filterSize;
      let q = f % uniforms.mult;
      let fc = f / uniforms.mult;
      let c = fc % uniforms.inC;
      let fxy = fc / uniforms.inC;
      let fx = fxy % uniforms.filterW;
      let fy = fxy / uniforms.filterW;
      let outC = uniforms.inC * uniforms.mult;
      let first = s * uniforms.rowsPerSlice;
      let last = min(first + uniforms.rowsPerSlice, uniforms.rows);
      var sum = 0.0;
      for (var m = first; m < last; m++) {
        let ox = m % uniforms.outW;
        let oyb = m / uniforms.outW;
        let oy = oyb % uniforms.outH;
        let b = oyb / uniforms.outH;
        let y = oy * uniforms.strideH + fy - uniforms.padT;
        let x = ox * uniforms.strideW + fx - uniforms.padL;
        if (y >= 0 && y < uniforms.inH && x >= 0 && x < uniforms.inW) {
          sum = sum + X[((b * uniforms.inH + y) * uniforms.inW + x) * uniforms.inC + c] * DY[m * outC + c * uniforms.mult + q];
        }
      }
      setOutputAtIndex(index, sum);
    }
  }`;

const SUM_SLICES = `
  fn main(index : i32) {
    if (index < uniforms.size) {
      var sum = 0.0;
      for (var s = 0; s < uniforms.slices; s++) {
        sum = sum + P[s * uniforms.size + index];
      }
      setOutputAtIndex(index, sum);
    }
  }`;

function depthwiseBackpropFilter(fallback: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WebGpuBackendLike;
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    const { strides, dilations, pad, dimRoundingMode, filterShape } = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
    // tfjs-core's gradient of a dilated depthwise convolution is an error before it gets here.
    const dilated = dilations !== undefined && [dilations].flat().some((d) => d !== 1);
    if (x.dtype !== 'float32' || dy.dtype !== 'float32' || dilated) return fallback(args);
    const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, true);
    const [, fw, c, mult] = filterShape;
    const filterSize = filterShape.reduce((a, b) => a * b, 1);
    const rows = info.batchSize * info.outHeight * info.outWidth;
    const slices = Math.max(1, Math.min(Math.ceil(DEPTHWISE_TARGET_INVOCATIONS / filterSize), Math.ceil(rows / DEPTHWISE_MIN_ROWS)));
    const rowsPerSlice = Math.ceil(rows / slices);
    const used = Math.ceil(rows / rowsPerSlice);
    const partial = backend.runWebGPUProgram(flatProgram('selab_depthwise_dw', ['X', 'DY'], used * filterSize, DEPTHWISE_UNIFORMS, DEPTHWISE_PARTIAL), [flat(x), flat(dy)], 'float32',
      ints(info.inHeight, info.inWidth, c, info.outHeight, info.outWidth, fw, mult, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left, filterSize, rows, rowsPerSlice));
    if (used === 1) return { dataId: partial.dataId, shape: [...filterShape], dtype: 'float32' };
    try {
      const sum = backend.runWebGPUProgram(flatProgram('selab_sum_slices', ['P'], filterSize, 'slices : i32,', SUM_SLICES), [partial], 'float32', ints(used));
      return { dataId: sum.dataId, shape: [...filterShape], dtype: 'float32' };
    } finally {
      backend.disposeData(partial.dataId);
    }
  };
}

/**
 * Replacements for two of tfjs-backend-webgpu's kernels; each falls back to the kernel it replaces
 * (passed in, as registered by the package) for what it does not cover.
 */
export function convKernels(original: (name: string) => KernelFunc): KernelConfig[] {
  return [
    { kernelName: tf.Conv2DBackpropFilter, backendName: WEBGPU, kernelFunc: conv2dBackpropFilter(original(tf.Conv2DBackpropFilter)) },
    { kernelName: tf.DepthwiseConv2dNativeBackpropFilter, backendName: WEBGPU, kernelFunc: depthwiseBackpropFilter(original(tf.DepthwiseConv2dNativeBackpropFilter)) },
  ];
}

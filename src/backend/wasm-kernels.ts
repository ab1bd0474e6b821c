import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';

// tfjs-backend-wasm 4.22 can run inference but not training: it has no gradient kernels
// for the filter of a convolution or for either side of a depthwise convolution, and its
// gradient for the input of a convolution is a scalar loop.

const WASM = 'wasm';

function wasmKernel(name: string): KernelFunc {
  const config = tf.getKernel(name, WASM);
  if (!config) throw new Error(`selab: the wasm backend has no ${name} kernel to build on`);
  return config.kernelFunc;
}

function run(backend: BackendWasm, name: string, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): TensorInfo {
  return wasmKernel(name)({ inputs, backend, attrs }) as TensorInfo;
}

/**
 * dW[a,b,c,o] = Σ x[n, i·s + a − pt, j·s + b − pl, c] · dy[n,i,j,o] is a forward convolution
 * of x as [C,H,W,N] with dy as a [Ho,Wo,N,O] filter whose dilation is the forward stride,
 * so XNNPACK does the work instead of a scalar loop.
 */
const conv2DBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as BackendWasm;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (dataFormat !== 'NHWC') throw new Error(`selab: wasm Conv2DBackpropFilter supports NHWC only, got ${dataFormat}`);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const [fh, fw] = [info.filterHeight, info.filterWidth];
  // Rows/columns of x past the last window never contribute; XNNPACK cannot take a
  // negative padding, so those are cropped instead.
  const usedH = (info.outHeight - 1) * info.strideHeight + fh - info.padInfo.top;
  const usedW = (info.outWidth - 1) * info.strideWidth + fw - info.padInfo.left;
  const temps: TensorInfo[] = [];
  let xs = x;
  if (usedH < info.inHeight || usedW < info.inWidth) {
    const h = Math.min(usedH, info.inHeight);
    const w = Math.min(usedW, info.inWidth);
    xs = run(wasm, 'Slice', { x }, { begin: [0, 0, 0, 0], size: [info.batchSize, h, w, info.inChannels] });
    temps.push(xs);
  }
  const xt = run(wasm, 'Transpose', { x: xs }, { perm: [3, 1, 2, 0] });
  const dyt = run(wasm, 'Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
  temps.push(xt, dyt);
  const bottom = fh + (info.outHeight - 1) * info.strideHeight - xt.shape[1]! - info.padInfo.top;
  const right = fw + (info.outWidth - 1) * info.strideWidth - xt.shape[2]! - info.padInfo.left;
  const conv = run(
    wasm,
    'Conv2D',
    { x: xt, filter: dyt },
    {
      strides: 1,
      pad: [
        [0, 0],
        [info.padInfo.top, bottom],
        [info.padInfo.left, right],
        [0, 0],
      ],
      dataFormat: 'NHWC',
      dilations: [info.strideHeight, info.strideWidth],
    },
  );
  temps.push(conv);
  const dw = run(wasm, 'Transpose', { x: conv }, { perm: [1, 2, 0, 3] });
  for (const t of temps) wasm.disposeData(t.dataId);
  return dw;
};

/**
 * The stock wasm Conv2DBackpropInput is a scalar single-threaded loop (~75 % of a training
 * step). dx is a stride-1 forward convolution of dy — with stride−1 zeros inserted after
 * each element — by the filter rotated 180° with in/out swapped, padded by fh−1−padTop.
 * Cases that would need a negative top/left padding keep the stock kernel.
 */
function conv2DBackpropInput(stock: KernelFunc): KernelFunc {
  return (args) => {
    const wasm = args.backend as BackendWasm;
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    if (dataFormat !== 'NHWC') return stock(args);
    const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode);
    const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw, batchSize: n, outHeight: ho, outWidth: wo, outChannels: o } = info;
    const top = fh - 1 - info.padInfo.top;
    const left = fw - 1 - info.padInfo.left;
    if (top < 0 || left < 0) return stock(args);
    const temps: TensorInfo[] = [];
    let d = dy;
    if (sh > 1 || sw > 1) {
      const r = run(wasm, 'Reshape', { x: dy }, { shape: [n, ho, 1, wo, 1, o] });
      const p = run(wasm, 'PadV2', { x: r }, { paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]], constantValue: 0 });
      d = run(wasm, 'Reshape', { x: p }, { shape: [n, ho * sh, wo * sw, o] });
      temps.push(r, p, d);
    }
    let bottom = info.inHeight + fh - 1 - d.shape[1]! - top;
    let right = info.inWidth + fw - 1 - d.shape[2]! - left;
    // A negative bottom/right means trailing dy rows/columns only reach past the input.
    if (bottom < 0 || right < 0) {
      d = run(wasm, 'Slice', { x: d }, { begin: [0, 0, 0, 0], size: [n, d.shape[1]! + Math.min(bottom, 0), d.shape[2]! + Math.min(right, 0), o] });
      temps.push(d);
      bottom = Math.max(bottom, 0);
      right = Math.max(right, 0);
    }
    const rotated = run(wasm, 'Reverse', { x: filter }, { dims: [0, 1] });
    const swapped = run(wasm, 'Transpose', { x: rotated }, { perm: [0, 1, 3, 2] });
    temps.push(rotated, swapped);
    const dx = run(
      wasm,
      'Conv2D',
      { x: d, filter: swapped },
      { strides: 1, pad: [[0, 0], [top, bottom], [left, right], [0, 0]], dataFormat: 'NHWC', dilations: 1 },
    );
    for (const t of temps) wasm.disposeData(t.dataId);
    return dx;
  };
}

let scratch: MathBackendCPU | undefined;

/**
 * Runs a cpu kernel on copies of the wasm inputs. Depthwise gradients are a small share
 * of a step's FLOPs, so the cpu backend's loops are fast enough for the fallback path.
 */
function viaCpu(name: string): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const wasm = backend as BackendWasm;
    const cpuConfig = tf.getKernel(name, 'cpu');
    if (!cpuConfig) throw new Error(`selab: the cpu backend has no ${name} kernel (import @tensorflow/tfjs-backend-cpu)`);
    scratch ??= new MathBackendCPU();
    const cpu = scratch;
    const cpuInputs: Record<string, TensorInfo> = {};
    for (const [key, t] of Object.entries(inputs as Record<string, TensorInfo>)) {
      cpuInputs[key] = { dataId: cpu.write(wasm.readSync(t.dataId), t.shape, t.dtype), shape: t.shape, dtype: t.dtype };
    }
    const result = cpuConfig.kernelFunc({ inputs: cpuInputs, backend: cpu, attrs }) as TensorInfo;
    const out = wasm.makeOutput(result.shape, result.dtype);
    wasm.typedArrayFromHeap(out).set(cpu.readSync(result.dataId) as Float32Array);
    for (const t of [...Object.values(cpuInputs), result]) cpu.disposeData(t.dataId, true);
    return out;
  };
}

export const wasmTrainingKernels: KernelConfig[] = [
  { kernelName: tf.Conv2DBackpropFilter, backendName: WASM, kernelFunc: conv2DBackpropFilter },
  {
    kernelName: tf.DepthwiseConv2dNativeBackpropInput,
    backendName: WASM,
    kernelFunc: viaCpu(tf.DepthwiseConv2dNativeBackpropInput),
  },
  {
    kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
    backendName: WASM,
    kernelFunc: viaCpu(tf.DepthwiseConv2dNativeBackpropFilter),
  },
];

let replacedBackpropInput = false;

/**
 * Adds the gradient kernels wasm lacks and replaces its Conv2DBackpropInput; idempotent.
 * Call before the wasm backend initialises (the replacement keeps the stock setupFunc).
 */
export function registerWasmTrainingKernels(): void {
  for (const kernel of wasmTrainingKernels) {
    if (!tf.getKernel(kernel.kernelName, WASM)) tf.registerKernel(kernel);
  }
  const stock = tf.getKernel(tf.Conv2DBackpropInput, WASM);
  if (stock && !replacedBackpropInput) {
    tf.unregisterKernel(tf.Conv2DBackpropInput, WASM);
    tf.registerKernel({ ...stock, kernelFunc: conv2DBackpropInput(stock.kernelFunc) });
    replacedBackpropInput = true;
  }
}

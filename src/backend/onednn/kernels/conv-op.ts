// One convolution kernel for the layers (see ../layers.ts): dense or depthwise, bias and activation
// as oneDNN post-ops, explicit padding, and a gradient whose parts run only when asked for.
//
// tfjs-core's fused.conv2d differentiates through tf.customGrad, which computes dx, dW and the
// bias gradient up front: the first layer's dx (its input is the data) is computed and thrown
// away, and the bias gradient is a separate pass over dy. SelabConv2D's gradient is registered
// per input instead, so the tape asks only for what it needs, and
// - dW and the bias gradient come from one oneDNN backward-weights primitive;
// - dx and dW share one token, so a Winograd layer reorders dy into its blocked layout once
//   (native/src/conv.cc).
// Outside a gradient tape (inference, validation) the native side keeps each layer's weights in
// the primitive's layout from one call to the next, by an id of the weights tensor's storage.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { allocFloat32, onRelease } from '../memory.js';
import { activationCode } from './activation.js';
import { BinaryOp } from './eltwise.js';
import { floats, nativeAddon } from './fallback.js';
import { ELTWISE_GRAD } from './gradients.js';
import { BACKEND, recording } from './native-args.js';

/**
 * Inputs x [N,H,W,C], filter ([fh,fw,C,O], or [fh,fw,C,mult] when depthwise), bias [O] and scale
 * [O] (both optional); output y = activation(conv(x, filter · scale) + bias), the scale
 * multiplying each output channel's weights (BatchNorm folded in for inference; not
 * differentiable).
 */
export const CONV2D = 'SelabConv2D';
/** Inputs dy, filter; attrs as CONV2D plus inputShape and token; output dx. */
export const CONV2D_BACKPROP_INPUT = 'SelabConv2DBackpropInput';
/** Inputs x, dy; attrs as CONV2D plus filterShape, token and bias; outputs dW, and the bias gradient when `bias`. */
export const CONV2D_BACKPROP_FILTER = 'SelabConv2DBackpropFilter';

export type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];

export interface Conv2DAttrs {
  strides: [number, number];
  /** 'same', 'valid', or NHWC pairs [[0, 0], [top, bottom], [left, right], [0, 0]]. */
  pad: 'same' | 'valid' | ExplicitPad;
  dilations: [number, number];
  depthwise: boolean;
  activation: 'linear' | 'relu' | 'relu6';
}

type Shape4 = [number, number, number, number];

function convInfo(xShape: number[], filterShape: number[], a: Conv2DAttrs): tf.backend_util.Conv2DInfo {
  const pad = Array.isArray(a.pad) ? (a.pad as unknown as tf.backend_util.ExplicitPadding) : a.pad;
  return tf.backend_util.computeConv2DInfo(xShape as Shape4, filterShape as Shape4, a.strides, a.dilations, pad, undefined, a.depthwise);
}

/** native/src/conv.cc's geometry array (as in conv.ts). */
function geometry(info: tf.backend_util.Conv2DInfo, depthwise: boolean): number[] {
  const { padInfo } = info;
  const bottom = Math.max(padInfo.bottom, (info.outHeight - 1) * info.strideHeight + info.effectiveFilterHeight - info.inHeight - padInfo.top);
  const right = Math.max(padInfo.right, (info.outWidth - 1) * info.strideWidth + info.effectiveFilterWidth - info.inWidth - padInfo.left);
  return [
    info.batchSize, info.inHeight, info.inWidth, info.inChannels,
    info.filterHeight, info.filterWidth, info.outChannels, info.outHeight, info.outWidth,
    info.strideHeight, info.strideWidth, info.dilationHeight, info.dilationWidth,
    padInfo.top, padInfo.left, bottom, right, depthwise ? info.inChannels : 1,
  ];
}

/** The attrs of tfjs's own kernels for the same convolution (the cpu fallbacks). */
function tfjsAttrs(a: Conv2DAttrs): NamedAttrMap {
  return { strides: a.strides, pad: a.pad as unknown as NamedAttrMap[string], dilations: a.dilations, dataFormat: 'NHWC' };
}

function cpuKernel(name: string): KernelFunc {
  const kernel = tf.getKernel(name, 'cpu');
  if (!kernel) throw new Error(`selab onednn: no cpu kernel ${name} to fall back to`);
  return kernel.kernelFunc;
}

declare module '../addon.js' {
  interface OneDnnAddon {
    forgetWeights(weightsId: number): void;
    heldWeights(): number;
  }
}

/** Ids of weights storages (and of folded scales) convForward may keep reordered; never reused. */
const storageIds = new WeakMap<object, number>();
let nextStorageId = 1;

function storageId(key: object): number {
  let id = storageIds.get(key);
  if (id === undefined) {
    id = nextStorageId++;
    storageIds.set(key, id);
  }
  return id;
}

onRelease((dataId) => {
  const id = storageIds.get(dataId);
  if (id === undefined) return;
  storageIds.delete(dataId);
  nativeAddon().forgetWeights(id);
});

function forward(args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const backend = args.backend as MathBackendCPU;
  const { x, filter, bias, scale } = args.inputs as Record<string, TensorInfo | undefined>;
  const a = args.attrs as unknown as Conv2DAttrs;
  const xv = x && floats(backend, x);
  const fv = filter && floats(backend, filter);
  const bv = bias ? floats(backend, bias) : null;
  const sv = scale ? floats(backend, scale) : null;
  const act = activationCode(a.activation);
  if (x && filter && xv && fv && bv !== undefined && sv !== undefined && act !== undefined) {
    const info = convInfo(x.shape, filter.shape, a);
    if ((!bv || bv.length === info.outChannels) && (!sv || sv.length === info.outChannels)) {
      const y = allocFloat32(tf.util.sizeFromShape(info.outShape));
      // While training, the weights change every step: nothing to keep.
      const [weightsId, variant] = recording() ? [0, 0] : [storageId(filter.dataId), sv ? storageId(sv) : 0];
      if (nativeAddon().convForward(xv, fv, bv, geometry(info, a.depthwise), act, 0, y, sv, weightsId, variant)) {
        return backend.makeTensorInfo(info.outShape, 'float32', y);
      }
    }
  }
  // The cpu kernels, on a scaled copy of the filter when there is a scale.
  let scaled: TensorInfo | undefined;
  if (scale) {
    const f = backend.readSync(filter!.dataId) as Float32Array;
    const s = backend.readSync(scale.dataId) as Float32Array;
    const out = new Float32Array(f.length);
    for (let i = 0; i < f.length; i++) out[i] = f[i]! * s[i % s.length]!;
    scaled = backend.makeTensorInfo(filter!.shape, 'float32', out);
  }
  try {
    const inputs: Record<string, TensorInfo> = { x: x!, filter: scaled ?? filter! };
    if (bias) inputs['bias'] = bias;
    return cpuKernel(a.depthwise ? tf.FusedDepthwiseConv2D : tf.FusedConv2D)({ ...args, inputs, attrs: { ...tfjsAttrs(a), activation: a.activation } });
  } finally {
    if (scaled) backend.disposeData(scaled.dataId);
  }
}

function backpropInput(args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const backend = args.backend as MathBackendCPU;
  const { dy, filter } = args.inputs as Record<string, TensorInfo>;
  const a = args.attrs as unknown as Conv2DAttrs & { inputShape: number[]; token: number };
  const dyv = floats(backend, dy!);
  const fv = floats(backend, filter!);
  if (dyv && fv) {
    const info = convInfo(a.inputShape, filter!.shape, a);
    const dx = allocFloat32(tf.util.sizeFromShape(a.inputShape));
    if (nativeAddon().convBackwardData(dyv, fv, geometry(info, a.depthwise), dx, a.token)) return backend.makeTensorInfo(a.inputShape, 'float32', dx);
  }
  const name = a.depthwise ? tf.DepthwiseConv2dNativeBackpropInput : tf.Conv2DBackpropInput;
  return cpuKernel(name)({ ...args, inputs: { dy: dy!, filter: filter! }, attrs: { ...tfjsAttrs(a), inputShape: a.inputShape } });
}

/** Sums dy [N,H,W,O] over N, H and W. */
function biasGradient(dy: Float32Array, channels: number): Float32Array {
  const out = new Float32Array(channels);
  const acc = new Float64Array(channels);
  for (let i = 0; i < dy.length; i += channels) for (let c = 0; c < channels; c++) acc[c]! += dy[i + c]!;
  out.set(acc);
  return out;
}

function backpropFilter(args: Parameters<KernelFunc>[0]): TensorInfo[] {
  const backend = args.backend as MathBackendCPU;
  const { x, dy } = args.inputs as Record<string, TensorInfo>;
  const a = args.attrs as unknown as Conv2DAttrs & { filterShape: number[]; token: number; bias: boolean };
  const xv = floats(backend, x!);
  const dyv = floats(backend, dy!);
  const channels = dy!.shape[3]!;
  if (xv && dyv) {
    const info = convInfo(x!.shape, a.filterShape, a);
    const dw = allocFloat32(tf.util.sizeFromShape(a.filterShape));
    const db = a.bias ? allocFloat32(channels) : null;
    if (nativeAddon().convBackwardWeights(xv, dyv, geometry(info, a.depthwise), dw, a.token, db)) {
      const dwInfo = backend.makeTensorInfo(a.filterShape, 'float32', dw);
      return db ? [dwInfo, backend.makeTensorInfo([channels], 'float32', db)] : [dwInfo];
    }
  }
  const name = a.depthwise ? tf.DepthwiseConv2dNativeBackpropFilter : tf.Conv2DBackpropFilter;
  const dw = cpuKernel(name)({ ...args, inputs: { x: x!, dy: dy! }, attrs: { ...tfjsAttrs(a), filterShape: a.filterShape } }) as TensorInfo;
  if (!a.bias) return [dw];
  const dyValues = backend.readSync(dy!.dataId) as Float32Array;
  return [dw, backend.makeTensorInfo([channels], 'float32', biasGradient(dyValues, channels))];
}

export const convOpKernels: KernelConfig[] = [
  { kernelName: CONV2D, backendName: BACKEND, kernelFunc: forward },
  { kernelName: CONV2D_BACKPROP_INPUT, backendName: BACKEND, kernelFunc: backpropInput },
  { kernelName: CONV2D_BACKPROP_FILTER, backendName: BACKEND, kernelFunc: backpropFilter },
];

/** Tells the two backward passes of one gradient call apart from every other. */
let lastToken = 0;

function gradient(dy: Tensor, saved: Tensor[], attrs: NamedAttrMap): Record<string, () => Tensor> {
  const [x, filter, y] = saved as [Tensor, Tensor, Tensor];
  const a = attrs as unknown as Conv2DAttrs & { hasBias?: boolean; hasScale?: boolean };
  if (a.hasScale) throw new Error(`${CONV2D} with a scale (BatchNorm folded for inference) has no gradient`);
  const engine = tf.engine();
  let dyAct = dy;
  if (a.activation === 'relu') dyAct = engine.runKernel(ELTWISE_GRAD, { dy, x: y }, { op: BinaryOp.reluGrad }) as Tensor;
  else if (a.activation === 'relu6') dyAct = engine.runKernel(ELTWISE_GRAD, { dy, x: y }, { op: BinaryOp.relu6GradFromY }) as Tensor;
  lastToken = (lastToken % 0x7fffffff) + 1;
  const token = lastToken;
  const base = { strides: a.strides, pad: a.pad, dilations: a.dilations, depthwise: a.depthwise, activation: a.activation };
  // The bias gradient comes with dW (the tape asks for filter before bias); kept as a plain array
  // so that nothing leaks when the bias is not asked for.
  let biasGrad: Float32Array | undefined;
  const grads: Record<string, () => Tensor> = {
    x: () => engine.runKernel(CONV2D_BACKPROP_INPUT, { dy: dyAct, filter }, { ...base, inputShape: x.shape, token } as unknown as NamedAttrMap) as Tensor,
    filter: () => {
      const [dw, db] = engine.runKernel(CONV2D_BACKPROP_FILTER, { x, dy: dyAct }, { ...base, filterShape: filter.shape, token, bias: !!a.hasBias } as unknown as NamedAttrMap) as Tensor[];
      if (db) {
        biasGrad = db.dataSync() as Float32Array;
        db.dispose();
      }
      return dw!;
    },
  };
  if (a.hasBias) grads['bias'] = () => (biasGrad ? tf.tensor1d(biasGrad) : tf.sum(dyAct, [0, 1, 2]));
  return grads;
}

let registered = false;

/** Registers SelabConv2D's gradient (once). */
export function registerConvOpGradient(): void {
  if (registered) return;
  registered = true;
  tf.registerGradient({ kernelName: CONV2D, inputsToSave: ['x', 'filter'], outputsToSave: [true], gradFunc: gradient as unknown as tf.GradConfig['gradFunc'] });
}

/** Runs SelabConv2D (the onednn backend must be active); `scale` multiplies the filter's output channels. */
export function conv2dOp(x: Tensor, filter: Tensor, bias: Tensor | null, attrs: Conv2DAttrs, scale: Tensor | null = null): Tensor {
  const inputs: Record<string, Tensor> = { x, filter };
  if (bias) inputs['bias'] = bias;
  if (scale) inputs['scale'] = scale;
  return tf.engine().runKernel(CONV2D, inputs, { ...attrs, hasBias: bias !== null, hasScale: scale !== null } as unknown as NamedAttrMap) as Tensor;
}

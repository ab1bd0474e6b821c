import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { floats, nativeAddon, nativeOutput, withFallback } from './fallback.js';
import { activationCode } from './activation.js';

declare module '../addon.js' {
  interface OneDnnAddon {
    convForward(
      x: Float32Array, filter: Float32Array, bias: Float32Array | null, geometry: number[], activation: number, alpha: number, y: Float32Array,
      scale?: Float32Array | null, weightsId?: number, variant?: number,
    ): boolean;
    convBackwardData(dy: Float32Array, filter: Float32Array, geometry: number[], dx: Float32Array, token?: number): boolean;
    convBackwardWeights(x: Float32Array, dy: Float32Array, geometry: number[], dw: Float32Array, token?: number, dBias?: Float32Array | null): boolean;
    setConvWeightsLayout(layout: 'blocked' | 'direct'): void;
    setConvWinograd(mode: 'auto' | 'on' | 'off'): void;
    setConvPointwise(mode: 'gemm' | 'conv'): void;
  }
}

type Shape4 = [number, number, number, number];
type Strides = [number, number] | number;
type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

interface ConvAttrs {
  strides: Strides;
  pad: Pad;
  dataFormat?: 'NHWC' | 'NCHW' | 'channelsLast' | 'channelsFirst';
  dilations?: Strides;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * The geometry array of native/src/conv.cc, from tfjs's own shape arithmetic so padding,
 * strides and dilations mean exactly what they mean on the cpu backend. The bottom/right
 * padding is raised where 'ceil' rounding makes tfjs read past the explicit padding.
 */
function geometry(info: tf.backend_util.Conv2DInfo, groups: number): number[] {
  const { padInfo } = info;
  const bottom = Math.max(padInfo.bottom, (info.outHeight - 1) * info.strideHeight + info.effectiveFilterHeight - info.inHeight - padInfo.top);
  const right = Math.max(padInfo.right, (info.outWidth - 1) * info.strideWidth + info.effectiveFilterWidth - info.inWidth - padInfo.left);
  return [
    info.batchSize, info.inHeight, info.inWidth, info.inChannels,
    info.filterHeight, info.filterWidth, info.outChannels, info.outHeight, info.outWidth,
    info.strideHeight, info.strideWidth, info.dilationHeight, info.dilationWidth,
    padInfo.top, padInfo.left, bottom, right, groups,
  ];
}

function nhwc(attrs: ConvAttrs): boolean {
  return attrs.dataFormat === undefined || attrs.dataFormat === 'NHWC' || attrs.dataFormat === 'channelsLast';
}

function convInfo(xShape: number[], filterShape: number[], attrs: ConvAttrs, depthwise: boolean): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as Shape4, filterShape as Shape4, attrs.strides, attrs.dilations ?? 1, attrs.pad, attrs.dimRoundingMode, depthwise,
  );
}

function forward(depthwise: boolean, fused: boolean) {
  return (backend: MathBackendCPU, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): TensorInfo | undefined => {
    const a = attrs as unknown as ConvAttrs & { activation?: string; leakyreluAlpha?: number };
    const { x, filter, bias, preluActivationWeights } = inputs;
    if (!x || !filter || !nhwc(a) || preluActivationWeights) return undefined;
    const act = fused ? activationCode(a.activation) : 0;
    const xv = floats(backend, x);
    const fv = floats(backend, filter);
    const bv = bias ? floats(backend, bias) : null;
    if (act === undefined || !xv || !fv || bv === undefined) return undefined;
    const info = convInfo(x.shape, filter.shape, a, depthwise);
    if (bv && bv.length !== info.outChannels) return undefined;
    const g = geometry(info, depthwise ? info.inChannels : 1);
    return nativeOutput(backend, info.outShape, (y) => nativeAddon().convForward(xv, fv, bv, g, act, a.leakyreluAlpha ?? 0.2, y));
  };
}

function backpropInput(depthwise: boolean) {
  return (backend: MathBackendCPU, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): TensorInfo | undefined => {
    const a = attrs as unknown as ConvAttrs & { inputShape: Shape4 };
    const { dy, filter } = inputs;
    if (!dy || !filter || !nhwc(a)) return undefined;
    const dyv = floats(backend, dy);
    const fv = floats(backend, filter);
    if (!dyv || !fv) return undefined;
    const info = convInfo(a.inputShape, filter.shape, a, depthwise);
    const g = geometry(info, depthwise ? info.inChannels : 1);
    return nativeOutput(backend, info.inShape, (dx) => nativeAddon().convBackwardData(dyv, fv, g, dx));
  };
}

function backpropFilter(depthwise: boolean) {
  return (backend: MathBackendCPU, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): TensorInfo | undefined => {
    const a = attrs as unknown as ConvAttrs & { filterShape: Shape4 };
    const { x, dy } = inputs;
    if (!x || !dy || !nhwc(a)) return undefined;
    const xv = floats(backend, x);
    const dyv = floats(backend, dy);
    if (!xv || !dyv) return undefined;
    const info = convInfo(x.shape, a.filterShape, a, depthwise);
    const g = geometry(info, depthwise ? info.inChannels : 1);
    return nativeOutput(backend, a.filterShape, (dw) => nativeAddon().convBackwardWeights(xv, dyv, g, dw));
  };
}

export const convKernels: KernelConfig[] = [
  withFallback(tf.Conv2D, forward(false, false)),
  withFallback(tf.FusedConv2D, forward(false, true)),
  withFallback(tf.Conv2DBackpropInput, backpropInput(false)),
  withFallback(tf.Conv2DBackpropFilter, backpropFilter(false)),
  withFallback(tf.DepthwiseConv2dNative, forward(true, false)),
  withFallback(tf.FusedDepthwiseConv2D, forward(true, true)),
  withFallback(tf.DepthwiseConv2dNativeBackpropInput, backpropInput(true)),
  withFallback(tf.DepthwiseConv2dNativeBackpropFilter, backpropFilter(true)),
];

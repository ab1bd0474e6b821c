import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { floats, nativeAddon, output, withFallback } from './fallback.js';

declare module '../addon.js' {
  interface OneDnnAddon {
    poolForward(x: Float32Array, geometry: number[], kind: number): Float32Array | null;
    avgPoolBackward(dy: Float32Array, geometry: number[]): Float32Array | null;
    maxPoolBackward(dy: Float32Array, x: Float32Array, geometry: number[]): Float32Array | null;
  }
}

const MAX = 0;
const AVG = 1;

interface PoolAttrs {
  filterSize: [number, number] | number;
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function poolInfo(xShape: number[], attrs: NamedAttrMap): tf.backend_util.Conv2DInfo {
  const a = attrs as unknown as PoolAttrs;
  return tf.backend_util.computePool2DInfo(
    xShape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode,
  );
}

/** native/src/pool.cc's geometry; bottom/right padding grows where 'ceil' rounding reads past it. */
function geometry(info: tf.backend_util.Conv2DInfo): number[] {
  const { padInfo } = info;
  const bottom = Math.max(padInfo.bottom, (info.outHeight - 1) * info.strideHeight + info.filterHeight - info.inHeight - padInfo.top);
  const right = Math.max(padInfo.right, (info.outWidth - 1) * info.strideWidth + info.filterWidth - info.inWidth - padInfo.left);
  return [
    info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.filterHeight, info.filterWidth,
    info.outHeight, info.outWidth, info.strideHeight, info.strideWidth, padInfo.top, padInfo.left, bottom, right,
  ];
}

function forward(kind: number) {
  return (backend: MathBackendCPU, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): TensorInfo | undefined => {
    const x = inputs.x;
    const xv = x && x.shape.length === 4 ? floats(backend, x) : undefined;
    if (!x || !xv) return undefined;
    const info = poolInfo(x.shape, attrs);
    return output(backend, info.outShape, nativeAddon().poolForward(xv, geometry(info), kind));
  };
}

function avgPoolGrad(backend: MathBackendCPU, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): TensorInfo | undefined {
  const { dy, input } = inputs;
  const dyv = dy ? floats(backend, dy) : undefined;
  if (!dy || !input || !dyv || input.shape.length !== 4) return undefined;
  const info = poolInfo(input.shape, attrs);
  const g = geometry(info);
  // Where 'ceil' rounding reaches past the padding, tfjs's AvgPoolGrad spreads dy over window
  // cells oneDNN's include-padding divisor does not count; that rare case stays on cpu.
  if (g[12] !== info.padInfo.bottom || g[13] !== info.padInfo.right) return undefined;
  return output(backend, input.shape, nativeAddon().avgPoolBackward(dyv, g));
}

function maxPoolGrad(backend: MathBackendCPU, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): TensorInfo | undefined {
  const { dy, input } = inputs;
  const dyv = dy ? floats(backend, dy) : undefined;
  const xv = input ? floats(backend, input) : undefined;
  if (!dy || !input || !dyv || !xv || input.shape.length !== 4) return undefined;
  const info = poolInfo(input.shape, attrs);
  return output(backend, input.shape, nativeAddon().maxPoolBackward(dyv, xv, geometry(info)));
}

export const poolKernels: KernelConfig[] = [
  withFallback(tf.MaxPool, forward(MAX)),
  withFallback(tf.AvgPool, forward(AVG)),
  withFallback(tf.MaxPoolGrad, maxPoolGrad),
  withFallback(tf.AvgPoolGrad, avgPoolGrad),
];

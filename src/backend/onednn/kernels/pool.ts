import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { floats, nativeAddon, nativeOutput, withFallback } from './fallback.js';

declare module '../addon.js' {
  interface OneDnnAddon {
    poolForward(x: Float32Array, geometry: number[], kind: number, y: Float32Array): boolean;
    avgPoolBackward(dy: Float32Array, geometry: number[], dx: Float32Array): boolean;
    maxPoolBackward(dy: Float32Array, x: Float32Array, geometry: number[], dx: Float32Array): boolean;
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
    const g = geometry(info);
    return nativeOutput(backend, info.outShape, (y) => nativeAddon().poolForward(xv, g, kind, y));
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
  return nativeOutput(backend, input.shape, (dx) => nativeAddon().avgPoolBackward(dyv, g, dx));
}

function maxPoolGrad(backend: MathBackendCPU, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): TensorInfo | undefined {
  const { dy, input } = inputs;
  const dyv = dy ? floats(backend, dy) : undefined;
  const xv = input ? floats(backend, input) : undefined;
  if (!dy || !input || !dyv || !xv || input.shape.length !== 4) return undefined;
  const info = poolInfo(input.shape, attrs);
  const g = geometry(info);
  return nativeOutput(backend, input.shape, (dx) => nativeAddon().maxPoolBackward(dyv, xv, g, dx));
}

export const poolKernels: KernelConfig[] = [
  withFallback(tf.MaxPool, forward(MAX)),
  withFallback(tf.AvgPool, forward(AVG)),
  withFallback(tf.MaxPoolGrad, maxPoolGrad),
  withFallback(tf.AvgPoolGrad, avgPoolGrad),
];

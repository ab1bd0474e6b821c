// tfjs-layers' Conv2D and DepthwiseConv2D on the onednn backend: their `call` runs SelabConv2D
// (kernels/conv-op.ts) instead of tfjs-core's fused.conv2d / depthwiseConv2d + biasAdd +
// activation. Bias and activation are post-ops of the one oneDNN primitive in training too (tfjs
// unfuses them while recording gradients), and the gradient computes only what the tape needs:
// no dx for a layer fed by the data, the bias gradient inside the weights gradient.
//
// The classes are patched once, when the backend is registered; on any other backend, and for
// what the kernel does not cover (channels-first, other activations, other dtypes), the original
// `call` runs unchanged.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { conv2dOp, registerConvOpGradient, type Conv2DAttrs } from './kernels/conv-op.js';
import { BACKEND } from './kernels/native-args.js';

interface LayerVariable {
  read(): tf.Tensor;
}

/** The fields of tfjs-layers' convolution layers that their typings keep private. */
interface ConvLayer {
  getClassName(): string;
  rank?: number;
  kernel?: LayerVariable;
  depthwiseKernel?: LayerVariable;
  bias: LayerVariable | null;
  strides: number[];
  padding: string;
  dataFormat: string;
  dilationRate?: number | number[];
  activation: { getClassName(): string } | null;
}

type Call = (this: ConvLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor | tf.Tensor[];

const ACTIVATIONS: Record<string, Conv2DAttrs['activation']> = { linear: 'linear', relu: 'relu', relu6: 'relu6' };

function pair(v: number | number[] | undefined, fallback: number): [number, number] {
  if (v === undefined || v === null) return [fallback, fallback];
  if (typeof v === 'number') return [v, v];
  return [v[0] ?? fallback, v[1] ?? v[0] ?? fallback];
}

/** The layer's convolution as SelabConv2D attributes, or undefined when the kernel does not cover it. */
export function convAttrs(layer: ConvLayer, depthwise: boolean): Conv2DAttrs | undefined {
  if (layer.dataFormat !== 'channelsLast' || (layer.padding !== 'same' && layer.padding !== 'valid')) return undefined;
  if (!depthwise && layer.rank !== 2) return undefined;
  const activation = ACTIVATIONS[layer.activation ? layer.activation.getClassName() : 'linear'];
  if (!activation) return undefined;
  // tfjs-layers' DepthwiseConv2D ignores its dilation rate (it passes none to the op).
  const dilations = depthwise ? ([1, 1] as [number, number]) : pair(layer.dilationRate, 1);
  return { strides: pair(layer.strides, 1), pad: layer.padding, dilations, depthwise, activation };
}

function nativeCall(layer: ConvLayer, inputs: tf.Tensor | tf.Tensor[], depthwise: boolean): tf.Tensor | undefined {
  if (tf.getBackend() !== BACKEND) return undefined;
  const x = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0]! : undefined) : inputs;
  const kernel = depthwise ? layer.depthwiseKernel : layer.kernel;
  if (!x || x.rank !== 4 || x.dtype !== 'float32' || !kernel) return undefined;
  const attrs = convAttrs(layer, depthwise);
  if (!attrs) return undefined;
  return tf.tidy(() => conv2dOp(x, kernel.read(), layer.bias ? layer.bias.read() : null, attrs));
}

function patch(layer: tfl.layers.Layer, className: string, depthwise: boolean): void {
  const proto = Object.getPrototypeOf(layer) as { call: Call };
  const original = proto.call;
  proto.call = function (this: ConvLayer, inputs, kwargs) {
    if (this.getClassName() === className) {
      const y = nativeCall(this, inputs, depthwise);
      if (y) return y;
    }
    return original.call(this, inputs, kwargs);
  };
}

let installed = false;

/** Routes tfjs-layers' Conv2D and DepthwiseConv2D through SelabConv2D while onednn is active (once). */
export function installLayerPaths(): void {
  if (installed) return;
  installed = true;
  registerConvOpGradient();
  patch(tfl.layers.conv2d({ filters: 1, kernelSize: 1 }), 'Conv2D', false);
  patch(tfl.layers.depthwiseConv2d({ kernelSize: 1 }), 'DepthwiseConv2D', true);
}

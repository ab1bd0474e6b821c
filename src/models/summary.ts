// Model size and cost figures as `selab models` reports them.
//
// Parameters follow Keras' count_params(): every weight, BatchNorm moving mean/variance included.
// MACs are forward multiply-accumulates for ONE image, counted for the layers that dominate
// cost: Conv2D (Ho·Wo·Cout·kh·kw·Cin), DepthwiseConv2D (Ho·Wo·Cin·multiplier·kh·kw), Dense
// (inputs·units, per position if the input has more than two axes), the two dense layers in
// SqueezeExcitation (2·C·⌊C/r⌋) and the channel convolution in EfficientChannelAttention (C·k).
// Biases, BatchNorm, activations, pooling, padding, the SE/ECA scale multiplication and
// element-wise merges are not counted (the usual convention of papers and of tools such as
// ptflops/fvcore for "MACs").
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ecaKernelSize } from '../attention/efficient-channel-attention.js';

export function countParams(model: tfl.LayersModel): number {
  return model.countParams();
}

export function trainableParams(model: tfl.LayersModel): number {
  return model.trainableWeights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}

function product(dims: readonly (number | null)[]): number {
  return dims.reduce((a: number, b) => {
    if (b == null) throw new Error('macsPerImage: the model has an undefined (non-batch) dimension; build it with a fixed input shape');
    return a * b;
  }, 1);
}

function firstShape(shape: tfl.Shape | tfl.Shape[]): tfl.Shape {
  return (Array.isArray(shape[0]) ? shape[0] : shape) as tfl.Shape;
}

function layerMacs(layer: tfl.layers.Layer, inputShape: tfl.Shape, outputShape: tfl.Shape): number {
  const config = layer.getConfig();
  switch (layer.getClassName()) {
    case 'Conv2D': {
      const [kh, kw] = config.kernelSize as number[];
      const cin = inputShape[3];
      return product(outputShape.slice(1)) * kh! * kw! * product([cin ?? null]);
    }
    case 'DepthwiseConv2D': {
      const [kh, kw] = config.kernelSize as number[];
      return product(outputShape.slice(1)) * kh! * kw!;
    }
    case 'Dense':
      return product(inputShape.slice(1)) * (config.units as number);
    case 'SqueezeExcitation': {
      const c = product([inputShape[3] ?? null]);
      const ratio = config.ratio as number;
      return 2 * c * Math.max(1, Math.floor(c / ratio));
    }
    case 'EfficientChannelAttention': {
      const c = product([inputShape[3] ?? null]);
      const k = (config.kernelSize as number | null) ?? ecaKernelSize(c, config.gamma as number, config.beta as number);
      return c * k;
    }
    default:
      return 0;
  }
}

/** Forward MACs per image (see the file comment for what is counted). Nested models are included. */
export function macsPerImage(model: tfl.LayersModel): number {
  let total = 0;
  for (const nodes of Object.values(model.nodesByDepth)) {
    for (const node of nodes) {
      const layer = node.outboundLayer;
      if (layer instanceof tfl.LayersModel) {
        total += macsPerImage(layer);
        continue;
      }
      total += layerMacs(layer, firstShape(node.inputShapes), firstShape(node.outputShapes));
    }
  }
  return total;
}

export interface ModelSummary {
  params: number;
  trainableParams: number;
  macs: number;
  inputShape: number[];
}

export function summarize(model: tfl.LayersModel): ModelSummary {
  const input = model.inputs[0];
  if (!input) throw new Error(`summarize: model ${model.name} has no input`);
  return {
    params: countParams(model),
    trainableParams: trainableParams(model),
    macs: macsPerImage(model),
    inputShape: input.shape.slice(1).map((d) => d ?? -1),
  };
}

type Apply = (shape: number[], dtype?: string) => unknown;

/** The prototypes that define `apply` for every tfjs-layers initializer. */
function initializerPrototypes(): { apply: Apply }[] {
  const i = tfl.initializers;
  const samples: object[] = [
    i.zeros(), i.ones(), i.constant({ value: 0 }), i.randomUniform({}), i.randomNormal({}), i.truncatedNormal({}),
    i.identity({}), i.varianceScaling({}), i.glorotUniform({}), i.glorotNormal({}), i.heNormal({}), i.heUniform({}),
    i.leCunNormal({}), i.leCunUniform({}), i.orthogonal({}),
  ];
  const protos = new Set<{ apply: Apply }>();
  for (const sample of samples) {
    for (let p = Object.getPrototypeOf(sample); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
      if (Object.prototype.hasOwnProperty.call(p, 'apply')) protos.add(p as { apply: Apply });
    }
  }
  return [...protos];
}

/** Zeros that every weight built by withZeroInitializers views (grown to the largest weight, kept). */
let sharedZeros = new Float32Array(0);

function zerosView(shape: number[]): tf.Tensor {
  const n = tf.util.sizeFromShape(shape);
  // A fresh multi-megabyte array per model would make V8 collect garbage for each.
  if (sharedZeros.length < n) sharedZeros = new Float32Array(Math.max(n, 2 * sharedZeros.length, 1 << 20));
  return tf.tensor(sharedZeros.subarray(0, n), shape, 'float32');
}

/**
 * Builds with every tfjs-layers initializer returning zeros: for figures that depend only on
 * shapes (parameter counts, MACs), where drawing VGG16's 15M random weights takes seconds. The
 * float32 weights are views of one shared zero array and must not be written. The initializers
 * are restored when `build` settles; nothing else should build layers meanwhile.
 */
export async function withZeroInitializers<T>(build: () => T | Promise<T>): Promise<T> {
  const protos = initializerPrototypes();
  const originals = protos.map((p) => p.apply);
  const view = zerosView;
  for (const p of protos) p.apply = (shape, dtype) => ((dtype ?? 'float32') === 'float32' ? view(shape) : tf.zeros(shape, dtype as tf.DataType));
  try {
    return await build();
  } finally {
    protos.forEach((p, k) => (p.apply = originals[k]!));
  }
}

// MobileNet v1 without its top, layer for layer as keras.applications.mobilenet.MobileNet
// (include_top=False): bias-free convolutions, BatchNormalization with Keras defaults
// (momentum 0.99, epsilon 1e-3), ReLU6, and for stride-2 depthwise blocks an explicit
// ZeroPadding2D ((0,1),(0,1)) 'conv_pad_i' followed by a 'valid' depthwise convolution.
import * as tfl from '@tensorflow/tfjs-layers';
import { ReLU6 } from './relu6.js';
import { BatchNorm } from './batch-norm.js';

export interface MobileNetOptions {
  /** Width multiplier. Default 1. */
  alpha?: number;
  /** Depthwise channel multiplier. Default 1. */
  depthMultiplier?: number;
  inputShape?: [number, number, number];
  name?: string;
}

/** [pointwise filters, stride] for conv_dw_1 … conv_dw_13. */
export const MOBILENET_BLOCKS: readonly (readonly [filters: number, stride: 1 | 2])[] = [
  [64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2],
  [512, 1], [512, 1], [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1],
];

function bn(name: string): tfl.layers.Layer {
  return new BatchNorm({ axis: -1, momentum: 0.99, epsilon: 1e-3, name });
}

function relu6(name: string): tfl.layers.Layer {
  return new ReLU6({ name });
}

export function mobilenetV1(options: MobileNetOptions = {}): tfl.LayersModel {
  const { alpha = 1, depthMultiplier = 1, inputShape = [224, 224, 3] } = options;
  if (!(alpha > 0)) throw new Error(`mobilenetV1: alpha must be > 0, got ${alpha}`);
  if (!Number.isInteger(depthMultiplier) || depthMultiplier < 1) {
    throw new Error(`mobilenetV1: depthMultiplier must be a positive integer, got ${depthMultiplier}`);
  }
  if (inputShape[0] < 32 || inputShape[1] < 32) {
    throw new Error(`mobilenetV1: inputShape must be at least 32×32, got [${inputShape.join(', ')}]`);
  }
  const input = tfl.input({ shape: inputShape, name: 'input_1' });
  // Keras: filters = int(filters * alpha), i.e. truncation.
  let x = tfl.layers.conv2d({ filters: Math.trunc(32 * alpha), kernelSize: 3, padding: 'same', useBias: false, strides: 2, name: 'conv1' })
    .apply(input) as tfl.SymbolicTensor;
  x = bn('conv1_bn').apply(x) as tfl.SymbolicTensor;
  x = relu6('conv1_relu').apply(x) as tfl.SymbolicTensor;

  MOBILENET_BLOCKS.forEach(([filters, stride], i) => {
    const id = i + 1;
    if (stride === 2) {
      x = tfl.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]], name: `conv_pad_${id}` }).apply(x) as tfl.SymbolicTensor;
    }
    x = tfl.layers.depthwiseConv2d({
      kernelSize: 3, padding: stride === 1 ? 'same' : 'valid', depthMultiplier, strides: stride, useBias: false, name: `conv_dw_${id}`,
    }).apply(x) as tfl.SymbolicTensor;
    x = bn(`conv_dw_${id}_bn`).apply(x) as tfl.SymbolicTensor;
    x = relu6(`conv_dw_${id}_relu`).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.conv2d({ filters: Math.trunc(filters * alpha), kernelSize: 1, padding: 'same', useBias: false, strides: 1, name: `conv_pw_${id}` })
      .apply(x) as tfl.SymbolicTensor;
    x = bn(`conv_pw_${id}_bn`).apply(x) as tfl.SymbolicTensor;
    x = relu6(`conv_pw_${id}_relu`).apply(x) as tfl.SymbolicTensor;
  });
  const rows = inputShape[0];
  return tfl.model({ inputs: input, outputs: x, name: options.name ?? `mobilenet_${alpha.toFixed(2)}_${rows}` });
}

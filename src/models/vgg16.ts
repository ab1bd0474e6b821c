// VGG16 without its top, layer for layer as keras.applications.vgg16.VGG16(include_top=False):
// same layer names, 'same' 3×3 ReLU convolutions with bias, 2×2 max pooling after each block.
import * as tfl from '@tensorflow/tfjs-layers';

export interface Vgg16Options {
  inputShape?: [number, number, number];
  name?: string;
}

const BLOCKS: readonly (readonly [filters: number, convs: number])[] = [[64, 2], [128, 2], [256, 3], [512, 3], [512, 3]];

export function vgg16(options: Vgg16Options = {}): tfl.LayersModel {
  const { inputShape = [224, 224, 3] } = options;
  if (inputShape[0] < 32 || inputShape[1] < 32) {
    throw new Error(`vgg16: inputShape must be at least 32×32 (five 2× poolings), got [${inputShape.join(', ')}]`);
  }
  const input = tfl.input({ shape: inputShape, name: 'input_1' });
  let x: tfl.SymbolicTensor = input;
  BLOCKS.forEach(([filters, convs], b) => {
    for (let i = 1; i <= convs; i++) {
      x = tfl.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu', name: `block${b + 1}_conv${i}` })
        .apply(x) as tfl.SymbolicTensor;
    }
    x = tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }).apply(x) as tfl.SymbolicTensor;
  });
  return tfl.model({ inputs: input, outputs: x, name: options.name ?? 'vgg16' });
}

/** Names of VGG16's 13 convolutions, in order. */
export const VGG16_CONV_NAMES: readonly string[] = BLOCKS.flatMap(([, convs], b) =>
  Array.from({ length: convs }, (_, i) => `block${b + 1}_conv${i + 1}`));

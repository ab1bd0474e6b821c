// plain10: the reference experiment's from-scratch CIFAR-10 network. Nine 3×3 conv-BN-ReLU
// units in three stages of 64, 128 and 256 filters, average pooling between stages, then the
// selab head. With `attention`, a channel-attention block follows every conv-BN-ReLU unit.
import * as tfl from '@tensorflow/tfjs-layers';
import type { Attention } from '../attention/index.js';
import { classificationHead } from './head.js';
import { BatchNorm } from './batch-norm.js';
import type { ModelEntry } from './registry.js';

export interface Plain10Options {
  attention?: Attention;
  inputShape?: [number, number, number];
  classes?: number;
  name?: string;
}

const STAGES = [64, 128, 256] as const;
const CONVS_PER_STAGE = 3;

export function plain10(options: Plain10Options = {}): tfl.LayersModel {
  const { attention, inputShape = [32, 32, 3], classes = 10 } = options;
  const input = tfl.input({ shape: inputShape, name: 'input_1' });
  let x: tfl.SymbolicTensor = input;
  STAGES.forEach((filters, s) => {
    const block = `block${s + 1}`;
    for (let i = 1; i <= CONVS_PER_STAGE; i++) {
      x = tfl.layers.conv2d({ filters, kernelSize: 3, padding: 'same', name: `${block}_conv${i}` }).apply(x) as tfl.SymbolicTensor;
      x = new BatchNorm({ name: `${block}_conv${i}_bn` }).apply(x) as tfl.SymbolicTensor;
      x = tfl.layers.reLU({ name: `${block}_conv${i}_relu` }).apply(x) as tfl.SymbolicTensor;
      if (attention) x = attention(x, `${block}_conv${i}`);
    }
    if (s < STAGES.length - 1) {
      x = tfl.layers.averagePooling2d({ poolSize: 2, name: `${block}_pool` }).apply(x) as tfl.SymbolicTensor;
    }
  });
  const output = classificationHead(x, classes);
  return tfl.model({ inputs: input, outputs: output, name: options.name ?? (attention ? `plain10_${attention.kind}` : 'plain10') });
}

export const PLAIN10_MODELS: readonly ModelEntry[] = [
  {
    name: 'plain10',
    description: "The reference study's from-scratch network: nine 3×3 conv-BN-ReLU units (64, 128, 256 filters)",
    defaults: { inputShape: [32, 32, 3], classes: 10, integration: 'standard' },
    attention: 'units',
    build: (o) => plain10({ attention: o.attention, inputShape: o.inputShape, classes: o.classes, name: o.name }),
  },
];

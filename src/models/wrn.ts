// Wide residual networks (Zagoruyko & Komodakis, 2016): WRN-d-k for CIFAR, pre-activation basic
// units of two 3×3 convolutions, widths 16k, 32k, 64k, 1×1 projection shortcuts where the shape
// changes. WRN-16-8 is the SE paper's third CIFAR network. Names follow resnet.ts.
import * as tfl from '@tensorflow/tfjs-layers';
import { classificationHead } from './head.js';
import type { ModelEntry } from './registry.js';
import { bn, conv, relu, add, seAt, preactUnitStart, resnetName, type ResNetSEOptions } from './resnet.js';

export interface WideResNetOptions extends ResNetSEOptions {
  /** 6n + 4. Default 16. */
  depth?: number;
  /** Widening factor k. Default 8. */
  width?: number;
  /** Dropout between the two convolutions of a unit (the paper's WRN-d-k-dropout). Default 0. */
  dropout?: number;
  inputShape?: [number, number, number];
  classes?: number;
  name?: string;
}

type T = tfl.SymbolicTensor;

/**
 * BN-ReLU-conv3×3 (stride), BN-ReLU-(dropout)-conv3×3, added to the shortcut. A unit that changes
 * shape shares its first BN-ReLU with the projection (see preactUnitStart).
 */
function wideBlock(x: T, filters: number, strides: number, dropout: number, prefix: string, se: ResNetSEOptions): T {
  const { identity, branch } = preactUnitStart(x, filters, strides, prefix, se);
  let r = conv(branch, filters, 3, strides, `${prefix}_1_conv`);
  r = relu(bn(r, `${prefix}_1_bn`), `${prefix}_1_relu`);
  if (dropout > 0) r = tfl.layers.dropout({ rate: dropout, name: `${prefix}_1_dropout` }).apply(r) as T;
  r = conv(r, filters, 3, 1, `${prefix}_2_conv`);
  r = seAt('standard', se, r, prefix);
  return seAt('post', se, add([identity, r], `${prefix}_out`), prefix);
}

export function wideResNet(options: WideResNetOptions = {}): tfl.LayersModel {
  const { depth = 16, width = 8, dropout = 0, inputShape = [32, 32, 3], classes = 10 } = options;
  const n = (depth - 4) / 6;
  if (!Number.isInteger(n) || n < 1) throw new Error(`wrn: depth must be 6n + 4 (n ≥ 1), got ${depth}`);
  if (!(Number.isInteger(width) && width >= 1)) throw new Error(`wrn: width must be a positive integer, got ${width}`);
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`wrn: dropout must be in [0, 1), got ${dropout}`);
  const input = tfl.input({ shape: inputShape, name: 'input_1' });
  let x = conv(input, 16, 3, 1, 'conv1_conv');
  [16, 32, 64].forEach((base, s) => {
    for (let b = 0; b < n; b++) {
      x = wideBlock(x, base * width, s > 0 && b === 0 ? 2 : 1, dropout, `conv${s + 2}_block${b + 1}`, options);
    }
  });
  x = relu(bn(x, 'post_bn'), 'post_relu');
  return tfl.model({ inputs: input, outputs: classificationHead(x, classes), name: options.name ?? resnetName(`wrn${depth}_${width}`, options) });
}

export const wrn16_8 = (o: Omit<WideResNetOptions, 'depth' | 'width'> = {}): tfl.LayersModel => wideResNet({ ...o, depth: 16, width: 8 });

export const WRN_MODELS: readonly ModelEntry[] = [
  {
    name: 'wrn16-8',
    description: 'WRN-16-8 (Zagoruyko & Komodakis 2016, pre-activation, 1×1 projections); wrn<6n+4>-<k> for others',
    aliases: /^wrn(?<depth>\d+)-(?<width>\d+)$/,
    defaults: { inputShape: [32, 32, 3], classes: 10, integration: 'standard', depth: 16, width: 8 },
    attention: 'residual',
    build: (o) => wideResNet({ depth: o.depth, width: o.width, inputShape: o.inputShape, classes: o.classes, attention: o.attention, integration: o.integration, name: o.name }),
  },
];

// CIFAR ResNets of He et al.: the post-activation ResNet-20/32/44/56/110 with basic blocks
// ("Deep Residual Learning", 2016, §4.2) and the pre-activation ResNet-164 with bottlenecks
// ("Identity Mappings in Deep Residual Networks", 2016), each with an optional SE block in any
// of the four places the SE paper compares (Hu et al., TPAMI: the integration-strategy ablation),
// for any channel attention.
// Layer names follow Keras' ResNet/ResNetV2 applications (conv2_block1_1_conv, ..._add, ..._out).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Attention } from '../attention/index.js';
import { classificationHead } from './head.js';
import { BatchNorm } from './batch-norm.js';
import type { ModelEntry, ModelOptions } from './registry.js';

/**
 * Where the SE block goes in a residual unit (the SE paper's integration designs):
 * - standard: on the residual branch, after its last layer, before the addition (SE-ResNet);
 * - pre: on the input of the residual branch (the identity branch keeps the unscaled input);
 * - post: after the addition (after the unit's final ReLU in post-activation ResNets);
 * - identity: on the identity branch, in parallel with the residual branch.
 */
export type SEIntegration = 'standard' | 'pre' | 'post' | 'identity';
export const SE_INTEGRATIONS: readonly SEIntegration[] = ['standard', 'pre', 'post', 'identity'];

/**
 * He et al.'s shortcut options where a unit changes shape: A = identity with a stride-s subsample
 * and zero-padded extra channels (no parameters; the paper's CIFAR networks), B = 1×1 projection
 * convolution + BN.
 */
export type ShortcutOption = 'A' | 'B';

export interface ResNetSEOptions {
  attention?: Attention;
  /** Where the attention block sits in each unit. Default 'standard'. */
  integration?: SEIntegration;
}

export interface CifarResNetOptions extends ResNetSEOptions {
  /** 6n + 2: 20, 32, 44, 56, 110, … Default 20. */
  depth?: number;
  /** Default 'A', which gives the paper's parameter counts. */
  shortcut?: ShortcutOption;
  inputShape?: [number, number, number];
  classes?: number;
  name?: string;
}

/** Identity shortcut of option A: keep every s-th row and column, append zero channels. */
export class ZeroPadShortcut extends tfl.layers.Layer {
  static className = 'ZeroPadShortcut';
  readonly strides: number;
  readonly filters: number;

  constructor(args: { strides: number; filters: number } & ConstructorParameters<typeof tfl.layers.Layer>[0]) {
    super(args);
    if (!(Number.isInteger(args.strides) && args.strides >= 1)) throw new Error(`ZeroPadShortcut: strides must be a positive integer, got ${args.strides}`);
    if (!(Number.isInteger(args.filters) && args.filters >= 1)) throw new Error(`ZeroPadShortcut: filters must be a positive integer, got ${args.filters}`);
    this.strides = args.strides;
    this.filters = args.filters;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [n, h, w, c] = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    if (c != null && c > this.filters) throw new Error(`ZeroPadShortcut ${this.name}: input has ${c} channels, more than the ${this.filters} it pads to`);
    const out = (d: number | null | undefined): number | null => (d == null ? null : Math.ceil(d / this.strides));
    return [n ?? null, out(h), out(w), this.filters];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      // A 1×1 average pool with stride s is x[:, ::s, ::s, :] and, unlike stridedSlice, has a gradient.
      const sub = this.strides === 1 ? x : tf.avgPool(x, 1, this.strides, 'valid');
      return tf.pad(sub, [[0, 0], [0, 0], [0, 0], [0, this.filters - x.shape[3]]]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), strides: this.strides, filters: this.filters };
  }
}
tf.serialization.registerClass(ZeroPadShortcut);

type T = tfl.SymbolicTensor;
const apply = (layer: tfl.layers.Layer, x: T | T[]): T => layer.apply(x) as T;

export function conv(x: T, filters: number, kernelSize: number, strides: number, name: string): T {
  // He initialisation and no bias (BN follows every convolution), as in the papers' code.
  return apply(tfl.layers.conv2d({ filters, kernelSize, strides, padding: 'same', useBias: false, kernelInitializer: 'heNormal', name }), x);
}
export const bn = (x: T, name: string): T => apply(new BatchNorm({ axis: -1, momentum: 0.9, epsilon: 1e-5, name }), x);
export const relu = (x: T, name: string): T => apply(tfl.layers.reLU({ name }), x);
export const add = (xs: T[], name: string): T => apply(tfl.layers.add({ name }), xs);

/** The attention block of unit `at` if `where` is the configured integration, else `x` unchanged. */
export function seAt(where: SEIntegration, options: ResNetSEOptions, x: T, at: string): T {
  const { attention, integration = 'standard' } = options;
  if (!SE_INTEGRATIONS.includes(integration)) {
    throw new Error(`unknown SE integration "${String(integration)}": expected one of ${SE_INTEGRATIONS.join(', ')}`);
  }
  return attention && integration === where ? attention(x, at) : x;
}

function stageCount(depth: number, perBlock: number, what: string): number {
  const n = (depth - 2) / perBlock;
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what}: depth must be ${perBlock}n + 2 (n ≥ 1), got ${depth}`);
  return n;
}

/**
 * A post-activation basic unit: conv3×3-BN-ReLU-conv3×3-BN, added to the shortcut, then ReLU.
 * `prefix` is e.g. "conv3_block1".
 */
function basicBlock(x: T, filters: number, strides: number, prefix: string, shortcut: ShortcutOption, se: ResNetSEOptions): T {
  const inChannels = x.shape[3]!;
  let identity: T = x;
  if (strides !== 1 || inChannels !== filters) {
    identity = shortcut === 'A'
      ? apply(new ZeroPadShortcut({ strides, filters, name: `${prefix}_0_pad` }), x)
      : bn(conv(x, filters, 1, strides, `${prefix}_0_conv`), `${prefix}_0_bn`);
  }
  identity = seAt('identity', se, identity, prefix);
  let r = seAt('pre', se, x, prefix);
  r = relu(bn(conv(r, filters, 3, strides, `${prefix}_1_conv`), `${prefix}_1_bn`), `${prefix}_1_relu`);
  r = bn(conv(r, filters, 3, 1, `${prefix}_2_conv`), `${prefix}_2_bn`);
  r = seAt('standard', se, r, prefix);
  const out = relu(add([identity, r], `${prefix}_add`), `${prefix}_out`);
  return seAt('post', se, out, prefix);
}

/** ResNet-(6n+2) for CIFAR: conv 16, three stages of n basic units (16, 32, 64 filters), GAP, dense. */
export function cifarResNet(options: CifarResNetOptions = {}): tfl.LayersModel {
  const { depth = 20, shortcut = 'A', inputShape = [32, 32, 3], classes = 10 } = options;
  if (shortcut !== 'A' && shortcut !== 'B') throw new Error(`resnet: shortcut must be A or B, got ${JSON.stringify(shortcut)}`);
  const n = stageCount(depth, 6, `resnet${depth}`);
  const input = tfl.input({ shape: inputShape, name: 'input_1' });
  let x = relu(bn(conv(input, 16, 3, 1, 'conv1_conv'), 'conv1_bn'), 'conv1_relu');
  [16, 32, 64].forEach((filters, s) => {
    for (let b = 0; b < n; b++) {
      x = basicBlock(x, filters, s > 0 && b === 0 ? 2 : 1, `conv${s + 2}_block${b + 1}`, shortcut, options);
    }
  });
  return tfl.model({ inputs: input, outputs: classificationHead(x, classes), name: options.name ?? resnetName(`resnet${depth}`, options) });
}

/** Model name such as resnet56, resnet56_se or resnet56_eca_pre. */
export function resnetName(base: string, options: ResNetSEOptions): string {
  if (!options.attention) return base;
  const integration = options.integration ?? 'standard';
  const kind = options.attention.kind;
  return integration === 'standard' ? `${base}_${kind}` : `${base}_${kind}_${integration}`;
}

export interface PreactResNetOptions extends ResNetSEOptions {
  /** 9n + 2: 164, 1001, … Default 164. */
  depth?: number;
  inputShape?: [number, number, number];
  classes?: number;
  name?: string;
}

/**
 * The start of a pre-activation unit with `filters` outputs: its shortcut (SE-Identity included) and
 * the input of its residual branch, pre-activated. Where the unit changes shape, its first BN-ReLU is
 * shared by both branches and the shortcut is a 1×1 projection, as in He et al.'s and Zagoruyko &
 * Komodakis' code; the residual branch then starts after that shared pre-activation, which is where
 * SE-PRE sits.
 */
export function preactUnitStart(x: T, filters: number, strides: number, prefix: string, se: ResNetSEOptions): { identity: T; branch: T } {
  const project = strides !== 1 || x.shape[3] !== filters;
  let identity: T = x;
  let r: T;
  if (project) {
    const pre = relu(bn(x, `${prefix}_preact_bn`), `${prefix}_preact_relu`);
    identity = conv(pre, filters, 1, strides, `${prefix}_0_conv`);
    r = seAt('pre', se, pre, prefix);
  } else {
    r = seAt('pre', se, x, prefix);
    r = relu(bn(r, `${prefix}_preact_bn`), `${prefix}_preact_relu`);
  }
  return { identity: seAt('identity', se, identity, prefix), branch: r };
}

/**
 * A pre-activation bottleneck unit: BN-ReLU-conv1×1, BN-ReLU-conv3×3 (stride), BN-ReLU-conv1×1 (4× width),
 * added to the shortcut with nothing after the addition.
 */
function preactBottleneck(x: T, width: number, strides: number, prefix: string, se: ResNetSEOptions): T {
  const filters = 4 * width;
  const { identity, branch } = preactUnitStart(x, filters, strides, prefix, se);
  let r = conv(branch, width, 1, 1, `${prefix}_1_conv`);
  r = conv(relu(bn(r, `${prefix}_1_bn`), `${prefix}_1_relu`), width, 3, strides, `${prefix}_2_conv`);
  r = conv(relu(bn(r, `${prefix}_2_bn`), `${prefix}_2_relu`), filters, 1, 1, `${prefix}_3_conv`);
  r = seAt('standard', se, r, prefix);
  return seAt('post', se, add([identity, r], `${prefix}_out`), prefix);
}

/** Pre-activation ResNet-(9n+2) for CIFAR with bottlenecks of width 16, 32, 64 (outputs 64, 128, 256). */
export function preactResNet(options: PreactResNetOptions = {}): tfl.LayersModel {
  const { depth = 164, inputShape = [32, 32, 3], classes = 10 } = options;
  const n = stageCount(depth, 9, `resnet${depth}`);
  const input = tfl.input({ shape: inputShape, name: 'input_1' });
  let x = conv(input, 16, 3, 1, 'conv1_conv');
  [16, 32, 64].forEach((width, s) => {
    for (let b = 0; b < n; b++) {
      x = preactBottleneck(x, width, s > 0 && b === 0 ? 2 : 1, `conv${s + 2}_block${b + 1}`, options);
    }
  });
  x = relu(bn(x, 'post_bn'), 'post_relu');
  return tfl.model({ inputs: input, outputs: classificationHead(x, classes), name: options.name ?? resnetName(`resnet${depth}`, options) });
}

type Named<O> = Omit<O, 'depth'>;
export const resnet20 = (o: Named<CifarResNetOptions> = {}): tfl.LayersModel => cifarResNet({ ...o, depth: 20 });
export const resnet32 = (o: Named<CifarResNetOptions> = {}): tfl.LayersModel => cifarResNet({ ...o, depth: 32 });
export const resnet44 = (o: Named<CifarResNetOptions> = {}): tfl.LayersModel => cifarResNet({ ...o, depth: 44 });
export const resnet56 = (o: Named<CifarResNetOptions> = {}): tfl.LayersModel => cifarResNet({ ...o, depth: 56 });
export const resnet110 = (o: Named<CifarResNetOptions> = {}): tfl.LayersModel => cifarResNet({ ...o, depth: 110 });
export const resnet164 = (o: Named<PreactResNetOptions> = {}): tfl.LayersModel => preactResNet({ ...o, depth: 164 });

const CIFAR = { inputShape: [32, 32, 3], classes: 10, integration: 'standard' } as const satisfies Partial<ModelOptions>;
const BASIC = 'ResNet for CIFAR (He et al. 2016, basic units, option A shortcuts)';
const basic = (o: ModelOptions): tfl.LayersModel =>
  cifarResNet({ depth: o.depth, inputShape: o.inputShape, classes: o.classes, attention: o.attention, integration: o.integration, name: o.name });

export const RESNET_MODELS: readonly ModelEntry[] = [
  { name: 'resnet20', description: `${BASIC}; resnet<6n+2> for other depths`, aliases: /^resnet(?<depth>\d+)$/, defaults: { ...CIFAR, depth: 20 }, attention: 'residual', build: basic },
  { name: 'resnet32', description: BASIC, defaults: { ...CIFAR, depth: 32 }, attention: 'residual', build: basic },
  { name: 'resnet56', description: BASIC, defaults: { ...CIFAR, depth: 56 }, attention: 'residual', build: basic },
  { name: 'resnet110', description: BASIC, defaults: { ...CIFAR, depth: 110 }, attention: 'residual', build: basic },
  {
    name: 'resnet164',
    description: 'Pre-activation ResNet for CIFAR with bottlenecks (He et al. 2016b); preresnet<9n+2> for other depths',
    aliases: /^preresnet(?<depth>\d+)$/,
    defaults: { ...CIFAR, depth: 164 },
    attention: 'residual',
    build: (o) => preactResNet({ depth: o.depth, inputShape: o.inputShape, classes: o.classes, attention: o.attention, integration: o.integration, name: o.name }),
  },
];

// Efficient Channel Attention (Wang et al., "ECA-Net", CVPR 2020) as one tfjs-layers layer, in
// the shape of the official eca_module.py: squeeze (global average pool over H×W) -> a 1-D
// convolution ACROSS THE CHANNEL AXIS with k taps, no bias, zero 'same' padding -> sigmoid ->
// scale the input. Unlike SE there is no dimensionality reduction: each channel's gate looks only
// at its k neighbouring channels, so a block costs k parameters instead of ~2C²/r. Like
// SqueezeExcitation it is a single graph node, so "insert an ECA block after layer X" is one
// `apply` and its one weight serialises under one layer name.
//
// The channel convolution is written as a sum of k shifted slices of the zero-padded [N, C]
// pooled tensor times the k kernel values (pad, slice, mul, add, sigmoid): ops whose gradients
// every backend has, without relying on a Conv2DBackpropFilter kernel.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { attentionOf, positiveInteger, type Attention, type AttentionKind } from './kind.js';

export interface ECAOptions {
  /**
   * Taps of the channel convolution: a positive odd integer. Default: adaptive,
   * `ecaKernelSize(C, gamma, beta)` from the input's channel count C.
   */
  kernelSize?: number;
  /** γ of the adaptive kernel size (the paper's gamma). Default 2. */
  gamma?: number;
  /** b of the adaptive kernel size (the paper's b, `b` in the official code). Default 1. */
  beta?: number;
}

// tfjs-layers does not re-export LayerArgs; take it from the Layer constructor.
type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
// `kernelSize: null` is what getConfig() writes for "adaptive", so a loaded config may carry it.
export type EfficientChannelAttentionArgs = Omit<ECAOptions, 'kernelSize'> & { kernelSize?: number | null } & LayerArgs;

const DEFAULTS = { gamma: 2, beta: 1 } as const;

function checkChannels(who: string, channels: number): void {
  if (!Number.isInteger(channels) || channels < 1) {
    throw new Error(`${who}: channels must be a positive integer, got ${JSON.stringify(channels)}`);
  }
}

function checkGamma(who: string, gamma: unknown): number {
  if (typeof gamma !== 'number' || !Number.isFinite(gamma) || gamma <= 0) {
    throw new Error(`${who}: gamma must be a positive number, got ${JSON.stringify(gamma)}`);
  }
  return gamma;
}

function checkBeta(who: string, beta: unknown): number {
  if (typeof beta !== 'number' || !Number.isFinite(beta)) {
    throw new Error(`${who}: beta must be a finite number, got ${JSON.stringify(beta)}`);
  }
  return beta;
}

function checkKernelSize(who: string, kernelSize: unknown): number {
  if (typeof kernelSize !== 'number' || !Number.isInteger(kernelSize) || kernelSize < 1 || kernelSize % 2 === 0) {
    throw new Error(`${who}: kernelSize must be a positive odd integer (zero 'same' padding needs an odd size), got ${JSON.stringify(kernelSize)}`);
  }
  return kernelSize;
}

/**
 * The paper's adaptive kernel size, as in the official code:
 * `t = int(abs((log2(C) + b) / gamma)); k = t if t % 2 else t + 1`, i.e. |log2(C)/γ + b/γ|
 * truncated, then moved up to the next odd number. A 1e-9 slack before truncating keeps an exact
 * integer (e.g. C = 512: (9 + 1) / 2 = 5) from dropping to the integer below through rounding.
 */
export function ecaKernelSize(channels: number, gamma: number = DEFAULTS.gamma, beta: number = DEFAULTS.beta): number {
  const who = 'ecaKernelSize';
  checkChannels(who, channels);
  checkGamma(who, gamma);
  checkBeta(who, beta);
  const t = Math.floor(Math.abs((Math.log2(channels) + beta) / gamma) + 1e-9);
  return t % 2 === 1 ? t : t + 1;
}

/** Parameters of one ECA block on `channels` channels: the k taps of the kernel, no bias. */
export function ecaParamCount(channels: number, options: ECAOptions = {}): number {
  const who = 'ecaParamCount';
  checkChannels(who, channels);
  if (options.kernelSize != null) return checkKernelSize(who, options.kernelSize);
  return ecaKernelSize(channels, checkGamma(who, options.gamma ?? DEFAULTS.gamma), checkBeta(who, options.beta ?? DEFAULTS.beta));
}

export class EfficientChannelAttention extends tfl.layers.Layer {
  static className = 'EfficientChannelAttention';

  /** The configured kernel size; null means adaptive (from C, gamma and beta at build time). */
  readonly kernelSize: number | null;
  readonly gamma: number;
  readonly beta: number;

  private kernel: tfl.LayerVariable | null = null;
  private taps = 0;

  constructor(args: EfficientChannelAttentionArgs = {}) {
    super(args);
    const who = 'EfficientChannelAttention';
    this.kernelSize = args.kernelSize == null ? null : checkKernelSize(who, args.kernelSize);
    this.gamma = checkGamma(who, args.gamma ?? DEFAULTS.gamma);
    this.beta = checkBeta(who, args.beta ?? DEFAULTS.beta);
    this.inputSpec = [{ ndim: 4 }];
  }

  /** The number of taps this layer uses on an input with `channels` channels. */
  kernelSizeFor(channels: number): number {
    return this.kernelSize ?? ecaKernelSize(channels, this.gamma, this.beta);
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const channels = shape[3];
    if (shape.length !== 4 || channels == null) {
      throw new Error(`EfficientChannelAttention ${this.name}: expects an NHWC input with a known channel count, got shape [${shape.join(', ')}]`);
    }
    this.taps = this.kernelSizeFor(channels);
    // Shape [k, 1, 1] = Keras Conv1D(filters=1, kernel_size=k)'s kernel, with its default
    // initialiser: glorotUniform then sees fan_in = fan_out = k, as Keras does. kernel[j, 0, 0]
    // is also the official PyTorch code's conv.weight[0, 0, j].
    const kernelInit = () => tfl.initializers.glorotUniform({});
    this.kernel = this.addWeight('conv/kernel', [this.taps, 1, 1], 'float32', kernelInit(), undefined, true, undefined, kernelInit);
    this.inputSpec = [{ ndim: 4, axes: { [-1]: channels } }];
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      if (this.kernel == null) throw new Error(`EfficientChannelAttention ${this.name}: called before build`);
      const k = this.taps;
      const c = x.shape[3];
      const pooled = tf.mean(x, [1, 2]) as tf.Tensor2D; // [N, C]
      const half = (k - 1) / 2;
      const padded = tf.pad(pooled, [[0, 0], [half, half]]); // [N, C + k - 1], zeros outside
      const w = tf.reshape(this.kernel.read(), [k]);
      // Cross-correlation, as Conv1D/nn.Conv1d compute it: y[c] = Σ_j w[j] · pooled[c + j - half].
      let y: tf.Tensor = tf.mul(tf.slice(padded, [0, 0], [-1, c]), tf.slice(w, [0], [1]));
      for (let j = 1; j < k; j++) {
        y = tf.add(y, tf.mul(tf.slice(padded, [0, j], [-1, c]), tf.slice(w, [j], [1])));
      }
      const gate = tf.sigmoid(y);
      return tf.mul(x, tf.reshape(gate, [-1, 1, 1, c]));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      kernelSize: this.kernelSize,
      gamma: this.gamma,
      beta: this.beta,
    };
  }
}
tf.serialization.registerClass(EfficientChannelAttention);

/**
 * Append an ECA block to `x`. The channel count (and so the adaptive kernel size) comes from
 * `x.shape`, so the block can follow any layer, including depthwise convolutions.
 */
export function ecaBlock(x: tfl.SymbolicTensor, options: ECAOptions & { name?: string } = {}): tfl.SymbolicTensor {
  const channels = x.shape[3];
  if (x.shape.length !== 4 || channels == null) {
    throw new Error(`ecaBlock: expects an NHWC tensor with a known channel count, got ${x.name} with shape [${x.shape.join(', ')}]`);
  }
  return new EfficientChannelAttention(options).apply(x) as tfl.SymbolicTensor;
}

/** ECA for the command line and sweeps: the kernel size, adaptive or fixed (the paper's Fig. 4 sizes). */
export const EFFICIENT_CHANNEL_ATTENTION: AttentionKind = {
  kind: 'eca',
  description: 'Efficient Channel Attention (Wang et al. 2020)',
  idPrefix: true,
  settings: [
    {
      key: 'kernelSize',
      flag: '--eca-kernel',
      help: 'ECA kernel size: an odd integer or "adaptive"',
      fallback: 'adaptive',
      all: ['adaptive', 3, 5, 7, 9],
      parse: (text) => (text === 'adaptive' ? text : positiveInteger('--eca-kernel', true)(text)),
      id: (v) => (v === 'adaptive' ? 'adaptive' : `k${v}`),
    },
  ],
  specValue: (_key, value) => (value === 'adaptive' ? undefined : value),
  block: (x, name, settings) => ecaBlock(x, { ...(settings as ECAOptions), name }),
};

export function eca(options: ECAOptions = {}): Attention {
  return attentionOf(EFFICIENT_CHANNEL_ATTENTION, { ...options });
}

// Squeeze-and-Excitation (Hu et al., 2018) as one tfjs-layers layer, in the shape of timm's
// squeeze_excite.py: squeeze (global pool) -> reduce (dense C -> C/r) -> activation ->
// expand (dense C/r -> C) -> gate -> scale the input. Keeping the two dense layers inside one
// layer makes "insert an SE block after layer X" a single graph node, and its weights
// serialise under one layer name.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { GATE_INPUT_GRAD } from '../ops/kernel-names.js';
import { attentionOf, oneOf as oneOfFlag, positiveInteger, type Attention, type AttentionKind } from './kind.js';

export type SqueezeMode = 'avg' | 'max';
export type BottleneckActivation = 'relu' | 'relu6' | 'swish' | 'elu' | 'tanh' | 'linear';
/** The gate functions of the SE paper's ablation (Table 11), plus MobileNetV3's hard sigmoid. */
export type GateActivation = 'sigmoid' | 'hardSigmoid' | 'tanh' | 'relu';

export const SQUEEZE_MODES: readonly SqueezeMode[] = ['avg', 'max'];
export const BOTTLENECK_ACTIVATIONS: readonly BottleneckActivation[] = ['relu', 'relu6', 'swish', 'elu', 'tanh', 'linear'];
export const GATE_ACTIVATIONS: readonly GateActivation[] = ['sigmoid', 'hardSigmoid', 'tanh', 'relu'];

export interface SEOptions {
  /** Channel reduction ratio r; the bottleneck has max(1, floor(C / r)) units. Default 8. */
  ratio?: number;
  /** How to squeeze H×W to one value per channel. Default 'avg' (global average pooling). */
  squeeze?: SqueezeMode;
  /** Activation after the reducing dense layer. Default 'relu'. */
  activation?: BottleneckActivation;
  /** Activation producing the per-channel scale. Default 'sigmoid'. */
  gate?: GateActivation;
  /** Whether both dense layers have a bias. Default true. */
  useBias?: boolean;
}

// tfjs-layers does not re-export LayerArgs; take it from the Layer constructor.
type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
export type SqueezeExcitationArgs = SEOptions & LayerArgs;

const DEFAULTS = { ratio: 8, squeeze: 'avg', activation: 'relu', gate: 'sigmoid', useBias: true } as const;

/** Bottleneck width: `channels // ratio` as in Keras, but never 0. */
export function reducedChannels(channels: number, ratio: number = DEFAULTS.ratio): number {
  return Math.max(1, Math.floor(channels / ratio));
}

/** Parameters of one SE block on `channels` channels: C·⌊C/r⌋ + ⌊C/r⌋ + ⌊C/r⌋·C + C with bias. */
export function seParamCount(channels: number, ratio: number = DEFAULTS.ratio, useBias: boolean = DEFAULTS.useBias): number {
  const r = reducedChannels(channels, ratio);
  return 2 * channels * r + (useBias ? r + channels : 0);
}

function oneOf<T extends string>(what: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new Error(`SqueezeExcitation: ${what} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
}

function applyBottleneck(x: tf.Tensor, activation: BottleneckActivation): tf.Tensor {
  switch (activation) {
    case 'relu': return tf.relu(x);
    case 'relu6': return tf.relu6(x);
    case 'swish': return tf.mul(x, tf.sigmoid(x));
    case 'elu': return tf.elu(x);
    case 'tanh': return tf.tanh(x);
    case 'linear': return x;
  }
}

function applyGate(x: tf.Tensor, gate: GateActivation): tf.Tensor {
  switch (gate) {
    case 'sigmoid': return tf.sigmoid(x);
    // relu6(x + 3) / 6, the hard sigmoid of MobileNetV3, timm and Keras 3 (not Keras 2's 0.2x + 0.5).
    case 'hardSigmoid': return tf.div(tf.relu6(tf.add(x, 3)), 6);
    case 'tanh': return tf.tanh(x);
    case 'relu': return tf.relu(x);
  }
}

export class SqueezeExcitation extends tfl.layers.Layer {
  static className = 'SqueezeExcitation';

  readonly ratio: number;
  readonly squeeze: SqueezeMode;
  readonly activation: BottleneckActivation;
  readonly gate: GateActivation;
  readonly useBias: boolean;

  private reduceKernel: tfl.LayerVariable | null = null;
  private reduceBias: tfl.LayerVariable | null = null;
  private expandKernel: tfl.LayerVariable | null = null;
  private expandBias: tfl.LayerVariable | null = null;

  constructor(args: SqueezeExcitationArgs = {}) {
    super(args);
    const ratio = args.ratio ?? DEFAULTS.ratio;
    if (!Number.isFinite(ratio) || ratio <= 0) {
      throw new Error(`SqueezeExcitation: ratio must be a positive number, got ${JSON.stringify(args.ratio)}`);
    }
    this.ratio = ratio;
    this.squeeze = oneOf('squeeze', args.squeeze ?? DEFAULTS.squeeze, SQUEEZE_MODES);
    this.activation = oneOf('activation', args.activation ?? DEFAULTS.activation, BOTTLENECK_ACTIVATIONS);
    this.gate = oneOf('gate', args.gate ?? DEFAULTS.gate, GATE_ACTIVATIONS);
    this.useBias = args.useBias ?? DEFAULTS.useBias;
    this.inputSpec = [{ ndim: 4 }];
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const channels = shape[3];
    if (shape.length !== 4 || channels == null) {
      throw new Error(`SqueezeExcitation ${this.name}: expects an NHWC input with a known channel count, got shape [${shape.join(', ')}]`);
    }
    const reduced = reducedChannels(channels, this.ratio);
    // Same initialisers as a Keras Dense layer, so an SE block here starts like the reference's.
    const kernelInit = () => tfl.initializers.glorotUniform({});
    const biasInit = () => tfl.initializers.zeros();
    this.reduceKernel = this.addWeight('reduce/kernel', [channels, reduced], 'float32', kernelInit(), undefined, true, undefined, kernelInit);
    if (this.useBias) this.reduceBias = this.addWeight('reduce/bias', [reduced], 'float32', biasInit(), undefined, true, undefined, biasInit);
    this.expandKernel = this.addWeight('expand/kernel', [reduced, channels], 'float32', kernelInit(), undefined, true, undefined, kernelInit);
    if (this.useBias) this.expandBias = this.addWeight('expand/bias', [channels], 'float32', biasInit(), undefined, true, undefined, biasInit);
    this.inputSpec = [{ ndim: 4, axes: { [-1]: channels } }];
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown> = {}): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      if (this.reduceKernel == null || this.expandKernel == null) {
        throw new Error(`SqueezeExcitation ${this.name}: called before build`);
      }
      if (kwargs['training'] && this.hasFusedGradient()) return this.callWithFusedGradient(x);
      const squeezed = this.squeeze === 'avg' ? tf.mean(x, [1, 2]) : tf.max(x, [1, 2]);
      let z: tf.Tensor = tf.matMul(squeezed as tf.Tensor2D, this.reduceKernel.read() as tf.Tensor2D);
      if (this.reduceBias) z = tf.add(z, this.reduceBias.read());
      z = applyBottleneck(z, this.activation);
      let e: tf.Tensor = tf.matMul(z as tf.Tensor2D, this.expandKernel.read() as tf.Tensor2D);
      if (this.expandBias) e = tf.add(e, this.expandBias.read());
      const scale = applyGate(e, this.gate);
      const [n, , , c] = x.shape;
      return tf.mul(x, tf.reshape(scale, [n, 1, 1, c]));
    });
  }

  /**
   * The block's input gradient in one kernel (GATE_INPUT_GRAD) where the backend has it, for the
   * configuration the models use (average squeeze, ReLU bottleneck, sigmoid gate).
   */
  private hasFusedGradient(): boolean {
    return this.squeeze === 'avg' && this.activation === 'relu' && this.gate === 'sigmoid' && tf.getKernel(GATE_INPUT_GRAD, tf.getBackend()) !== undefined;
  }

  /**
   * The same forward pass under tf.customGrad, whose gradient takes the kernels tfjs' tape would,
   * the backend's own gradients included, except that x's gradient, dy·gate from the product plus
   * the average pool's gradient spread over H×W, is one pass (GATE_INPUT_GRAD) instead of a
   * product, a Tile and an Add over the whole activation. Bit for bit the tape's result.
   */
  private callWithFusedGradient(x: tf.Tensor4D): tf.Tensor {
    const [n, h, w, c] = x.shape;
    const weights = [this.reduceKernel, this.reduceBias, this.expandKernel, this.expandBias].map((v) => v?.read() ?? null);
    const present = weights.filter((v): v is tf.Tensor => v !== null);
    const block = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const save = args.pop() as tf.GradSaveFunc;
      const xs = args[0] as tf.Tensor4D;
      const given = args.slice(1) as tf.Tensor[];
      const [reduceKernel, reduceBias, expandKernel, expandBias] = weights.map((v) => (v === null ? null : given.shift()!));
      const squeezed = tf.mean(xs, [1, 2]) as tf.Tensor2D;
      const reduced = tf.matMul(squeezed, reduceKernel as tf.Tensor2D);
      const preActivation = reduceBias ? tf.add(reduced, reduceBias) : reduced;
      const z = tf.relu(preActivation) as tf.Tensor2D;
      const expanded = tf.matMul(z, expandKernel as tf.Tensor2D);
      const gate = tf.sigmoid(expandBias ? tf.add(expanded, expandBias) : expanded) as tf.Tensor2D;
      save([xs, squeezed, preActivation, z, gate, reduceKernel!, expandKernel!]);
      return {
        value: tf.mul(xs, tf.reshape(gate, [n!, 1, 1, c!])),
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const [sx, sSqueezed, sPre, sz, sGate, sReduceKernel, sExpandKernel] = saved as [tf.Tensor4D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
          const dy4 = dy as tf.Tensor4D;
          const gradientOf = (kernelName: string, upstream: tf.Tensor, inputs: tf.Tensor[]) =>
            tf.getGradient(kernelName)!.gradFunc(upstream, inputs, {}) as Record<string, () => tf.Tensor>;
          // The kernels the tape runs, in its order: the product's gradient for the gate, then
          // the sigmoid's, the bias sums and the matmuls' (tfjs-core's BatchMatMul gradient).
          const dGate4 = gradientOf(tf.Multiply, dy4, [sx, tf.reshape(sGate, [n!, 1, 1, c!])])['b']!();
          const dExpanded = gradientOf(tf.Sigmoid, tf.reshape(dGate4, [n!, c!]), [sGate])['x']!();
          const dExpandKernel = tf.matMul(sz, dExpanded, true, false);
          const dz = tf.matMul(dExpanded, sExpandKernel, false, true);
          const dPre = gradientOf(tf.Relu, dz, [sPre])['x']!();
          const dReduceKernel = tf.matMul(sSqueezed, dPre, true, false);
          const dSqueezed = tf.matMul(dPre, sReduceKernel, false, true);
          // The average pool's gradient as the backend's Mean gradient computes it, before the spread.
          const squeezeGrad = tf.mul(dSqueezed, tf.scalar(1 / (h! * w!)));
          const dx = tf.engine().runKernel(GATE_INPUT_GRAD, { dy: dy4, gate: sGate, squeezeGrad }) as tf.Tensor;
          const biasGrad = (d: tf.Tensor) => tf.sum(d, [0]);
          return [dx, dReduceKernel, ...(reduceBias ? [biasGrad(dPre)] : []), dExpandKernel, ...(expandBias ? [biasGrad(dExpanded)] : [])];
        },
      };
    });
    return block(x, ...present);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      ratio: this.ratio,
      squeeze: this.squeeze,
      activation: this.activation,
      gate: this.gate,
      useBias: this.useBias,
    };
  }
}
tf.serialization.registerClass(SqueezeExcitation);

/**
 * Append an SE block to `x`. The channel count comes from `x.shape`, so the block can follow any
 * layer, including depthwise convolutions (which have no `filters`).
 */
export function seBlock(x: tfl.SymbolicTensor, options: SEOptions & { name?: string } = {}): tfl.SymbolicTensor {
  const channels = x.shape[3];
  if (x.shape.length !== 4 || channels == null) {
    throw new Error(`seBlock: expects an NHWC tensor with a known channel count, got ${x.name} with shape [${x.shape.join(', ')}]`);
  }
  return new SqueezeExcitation(options).apply(x) as tfl.SymbolicTensor;
}

/** SE for the command line and sweeps: the SE paper's ratio, gate and squeeze ablations. */
export const SQUEEZE_EXCITATION: AttentionKind = {
  kind: 'se',
  description: 'Squeeze-and-Excitation (Hu et al. 2018)',
  idPrefix: false,
  settings: [
    { key: 'ratio', flag: '--se-ratio', help: 'SE reduction ratio r', fallback: 16, all: [2, 4, 8, 16, 32], parse: positiveInteger('--se-ratio'), id: (v) => `r${v}` },
    { key: 'gate', flag: '--se-gate', help: `SE gate: ${GATE_ACTIVATIONS.join(', ')}`, fallback: 'sigmoid', all: ['sigmoid', 'tanh', 'relu'], parse: oneOfFlag('--se-gate', GATE_ACTIVATIONS), id: String },
    { key: 'squeeze', flag: '--se-squeeze', help: `SE squeeze: ${SQUEEZE_MODES.join(', ')}`, fallback: 'avg', all: SQUEEZE_MODES, parse: oneOfFlag('--se-squeeze', SQUEEZE_MODES), id: String },
  ],
  block: (x, name, settings) => seBlock(x, { ...(settings as SEOptions), name }),
};

export function se(options: SEOptions = {}): Attention {
  return attentionOf(SQUEEZE_EXCITATION, { ...options });
}

// tfjs-layers' Conv2D and DepthwiseConv2D on the onednn backend: their `call` runs SelabConv2D
// (kernels/conv-op.ts) instead of tfjs-core's fused.conv2d / depthwiseConv2d + biasAdd +
// activation. Bias and activation are post-ops of the one oneDNN primitive in training too (tfjs
// unfuses them while recording gradients), and the gradient computes only what the tape needs:
// no dx for a layer fed by the data, the bias gradient inside the weights gradient.
//
// Inside a model (its apply, predict or evaluate), the model's graph may let layers merge:
// - inference: Conv2D/DepthwiseConv2D (linear) → BatchNormalization → ReLU/ReLU6 becomes one
//   convolution, the BatchNorm scale folded into the weights, its shift into the bias and the
//   activation a post-op; the BatchNorm and activation layers pass the result through;
// - inference: any other BatchNormalization → ReLU/ReLU6 becomes one native pass (SelabScaleShift),
//   and after a SqueezeExcitation block that pass also applies the block's gate, in place of its
//   product (MobileNet+SE: SE → BatchNorm → ReLU6);
// - training: BatchNormalization → ReLU/ReLU6 becomes selab's BatchNorm kernels with the
//   activation applied in the forward pass and masked in the gradient's (src/models/batch-norm.ts),
//   the activation layer passing the result through;
// - training and inference: ZeroPadding2D → a 'valid' convolution becomes one convolution with
//   explicit padding (MobileNet's stride-2 blocks), the padding layer passing its input through.
// A merge needs each layer to appear once in the model and each intermediate result to have no
// other consumer and not to be an output of the model; the plan is made per model from its own
// nodes, so a layer shared with another model (a rewritten backbone) merges only while this
// model runs. Folding happens only when no gradient tape is recording. SELAB_ONEDNN_MERGE=off
// turns the merges off.
//
// The classes are patched once, when the backend is registered; on any other backend, and for
// what the kernel does not cover (channels-first, other activations, other dtypes), the original
// `call` runs unchanged.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { conv2dOp, registerConvOpGradient, type Conv2DAttrs } from './kernels/conv-op.js';
import { activatedOutputs } from './kernels/batchnorm.js';
import { nativeScaleShift, SCALE_SHIFT, setMultiplyHook } from './kernels/eltwise.js';
import { BACKEND, recording } from './kernels/native-args.js';
import { BATCH_NORM_ACTIVATION_KWARG } from '../../ops/kernel-names.js';

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

type Layer = tfl.layers.Layer;
type Kwargs = Record<string, unknown> | undefined;
type Call = (this: Layer, inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs) => tf.Tensor | tf.Tensor[];

/** tfjs-layers' BatchNormalization fields that its typings keep private. */
interface BatchNormLayer {
  axis: number;
  epsilon: number;
  gamma: LayerVariable | null;
  beta: LayerVariable | null;
  movingMean: LayerVariable;
  movingVariance: LayerVariable;
}

/** A BatchNorm (and activation) folded into the convolution before it. */
interface BatchNormFold {
  bn: Layer;
  act?: Layer;
  activation: Conv2DAttrs['activation'];
}

/** A BatchNorm (and activation) merged into one native pass, or into an SE block's product. */
interface BatchNormPass {
  bn: Layer;
  act?: Layer;
  activation: Conv2DAttrs['activation'];
}

interface Plan {
  batchNorm: Map<Layer, BatchNormFold>;
  /** BatchNorm layers not folded into a convolution, by layer. */
  affine: Map<Layer, BatchNormPass>;
  /** SqueezeExcitation blocks whose product takes in the BatchNorm (and activation) after them. */
  gated: Map<Layer, BatchNormPass>;
  /** Every BatchNorm followed by its activation alone, for training. */
  activated: Map<Layer, BatchNormPass>;
  /** ZeroPadding2D layers whose padding their consuming convolution takes over. */
  padding: Set<Layer>;
}

/** What a pass-through result still owes: the layer that may pass it on, or padding for the next convolution. */
interface Mark {
  next?: Layer;
  after?: Layer;
  /** [[top, bottom], [left, right]] */
  pad?: [[number, number], [number, number]];
}

const marks = new WeakMap<tf.Tensor, Mark>();

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

function single(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor | undefined {
  return Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
}

// ---- plans ----

const plans = new WeakMap<object, Plan>();
/** The plans of the models running now, innermost last. */
const active: Plan[] = [];

interface GraphNode {
  outboundLayer: Layer;
  inputTensors: tfl.SymbolicTensor[];
  outputTensors: tfl.SymbolicTensor[];
}

/** 'relu' or 'relu6' for a ReLU / ReLU(6) / Activation('relu' | 'relu6') layer; undefined for anything else. */
function activationOf(layer: Layer): 'relu' | 'relu6' | undefined {
  const name = layer.getClassName();
  const config = layer.getConfig() as { maxValue?: number | null; activation?: string };
  if (name === 'ReLU') return config.maxValue == null ? 'relu' : config.maxValue === 6 ? 'relu6' : undefined;
  if (name === 'Activation') return config.activation === 'relu' ? 'relu' : config.activation === 'relu6' ? 'relu6' : undefined;
  return undefined;
}

const CONV_CLASSES: Record<string, boolean> = { Conv2D: false, DepthwiseConv2D: true };

function makePlan(model: { nodesByDepth: Record<string, GraphNode[]>; outputs: tfl.SymbolicTensor[] }): Plan {
  const plan: Plan = { batchNorm: new Map(), affine: new Map(), gated: new Map(), activated: new Map(), padding: new Set() };
  const nodes = Object.values(model.nodesByDepth).flat();
  const uses = new Map<Layer, number>();
  const consumers = new Map<number, GraphNode[]>();
  const producer = new Map<number, GraphNode>();
  for (const node of nodes) {
    uses.set(node.outboundLayer, (uses.get(node.outboundLayer) ?? 0) + 1);
    for (const t of node.inputTensors) consumers.set(t.id, [...(consumers.get(t.id) ?? []), node]);
    for (const t of node.outputTensors) producer.set(t.id, node);
  }
  const outputs = new Set(model.outputs.map((t) => t.id));
  /** The one node consuming the node's only output, when that output is nothing else's and its layer appears once. */
  const next = (node: GraphNode): GraphNode | undefined => {
    if (node.outputTensors.length !== 1) return undefined;
    const t = node.outputTensors[0]!;
    const c = consumers.get(t.id);
    return !outputs.has(t.id) && c?.length === 1 && uses.get(c[0]!.outboundLayer) === 1 ? c[0] : undefined;
  };
  for (const node of nodes) {
    const layer = node.outboundLayer;
    if (uses.get(layer) !== 1) continue;
    const name = layer.getClassName();
    if (name in CONV_CLASSES) {
      const attrs = convAttrs(layer as unknown as ConvLayer, CONV_CLASSES[name]!);
      const bnNode = next(node);
      const bn = bnNode?.outboundLayer as (Layer & BatchNormLayer) | undefined;
      if (!attrs || attrs.activation !== 'linear' || !bn || bn.getClassName() !== 'BatchNormalization' || (bn.axis !== -1 && bn.axis !== 3)) continue;
      const actNode = next(bnNode!);
      const activation = actNode ? activationOf(actNode.outboundLayer) : undefined;
      plan.batchNorm.set(layer, activation ? { bn, act: actNode!.outboundLayer, activation } : { bn, activation: 'linear' });
      patchBatchNorm(bn);
      if (activation) passThrough(actNode!.outboundLayer);
    } else if (name === 'ZeroPadding2D') {
      const convNode = next(node);
      const conv = convNode?.outboundLayer as (Layer & ConvLayer) | undefined;
      const cls = conv?.getClassName();
      if (!conv || !cls || !(cls in CONV_CLASSES) || conv.padding !== 'valid' || (layer as unknown as ConvLayer).dataFormat !== 'channelsLast') continue;
      plan.padding.add(layer);
      padThrough(layer);
    }
  }
  // Every BatchNorm takes its activation in training; in inference, those left after the folds
  // run as one pass with it, in an SE block's product when one feeds them.
  const intoConv = new Set([...plan.batchNorm.values()].map((f) => f.bn));
  for (const node of nodes) {
    const bn = node.outboundLayer as Layer & BatchNormLayer;
    if (uses.get(bn) !== 1 || bn.getClassName() !== 'BatchNormalization' || (bn.axis !== -1 && bn.axis !== 3)) continue;
    const actNode = next(node);
    const activation = actNode ? activationOf(actNode.outboundLayer) : undefined;
    const pass: BatchNormPass = activation ? { bn, act: actNode!.outboundLayer, activation } : { bn, activation: 'linear' };
    if (activation) {
      plan.activated.set(bn, pass);
      patchBatchNorm(bn);
      passThrough(actNode!.outboundLayer);
    }
    if (intoConv.has(bn)) continue;
    plan.affine.set(bn, pass);
    patchBatchNorm(bn);
    const from = node.inputTensors.length === 1 ? producer.get(node.inputTensors[0]!.id) : undefined;
    if (from && from.outboundLayer.getClassName() === 'SqueezeExcitation' && uses.get(from.outboundLayer) === 1 && next(from) === node) {
      plan.gated.set(from.outboundLayer, pass);
      patchGate(from.outboundLayer);
    }
  }
  return plan;
}

function planOf(model: object): Plan {
  let plan = plans.get(model);
  if (!plan) {
    plan = makePlan(model as Parameters<typeof makePlan>[0]);
    plans.set(model, plan);
  }
  return plan;
}

function within<T>(model: object, fn: () => T): T {
  // SELAB_ONEDNN_MERGE=off runs every layer on its own (for measuring the merges).
  if (tf.getBackend() !== BACKEND || process.env['SELAB_ONEDNN_MERGE'] === 'off') return fn();
  active.push(planOf(model));
  try {
    return fn();
  } finally {
    active.pop();
  }
}

const currentPlan = (): Plan | undefined => active[active.length - 1];

// ---- pass-through layers ----

const passing = new WeakSet<Layer>();

type Own = (x: tf.Tensor, kwargs: Kwargs, original: (inputs: tf.Tensor, kwargs: Kwargs) => tf.Tensor | tf.Tensor[]) => tf.Tensor | undefined;

/**
 * Makes the layer hand on, as it is, a result marked for it, and otherwise try `own` before its
 * own `call` (instance-level: only layers a plan merges).
 */
function passThrough(layer: Layer, own?: Own): void {
  if (passing.has(layer)) return;
  passing.add(layer);
  const original = layer.call.bind(layer) as (inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs) => tf.Tensor | tf.Tensor[];
  (layer as unknown as { call: Call }).call = function (inputs, kwargs) {
    const x = single(inputs);
    const mark = x && marks.get(x);
    if (x && mark?.next === layer) {
      // A new tensor on the same storage: the executor disposes the layer's input after it runs.
      const y = tf.clone(x);
      if (mark.after) marks.set(y, { next: mark.after });
      return y;
    }
    return (x && own?.(x, kwargs, original)) ?? original(inputs, kwargs);
  };
}

/** Whether a layer may merge now: inference on onednn without a recording tape, on float32 channels-last input. */
const merging = (x: tf.Tensor, kwargs: Kwargs): boolean =>
  !kwargs?.['training'] && !recording() && tf.getBackend() === BACKEND && x.dtype === 'float32' && x.rank >= 2;

const ACTIVATION_CODE = { linear: 0, relu: 1, relu6: 2 } as const;

/**
 * A training-mode BatchNorm that applies the activation after it, when its kernels can: the
 * activation layer then passes the result through.
 */
function trainActivated(bn: Layer, x: tf.Tensor, kwargs: Kwargs, original: Parameters<Own>[2]): tf.Tensor | undefined {
  const pass = currentPlan()?.activated.get(bn);
  if (!pass?.act || x.dtype !== 'float32') return undefined;
  const y = original(x, { ...kwargs, [BATCH_NORM_ACTIVATION_KWARG]: pass.activation }) as tf.Tensor;
  if (activatedOutputs.has(y.dataId)) marks.set(y, { next: pass.act });
  return y;
}

/**
 * A BatchNorm that passes on what a convolution or SE block did for it; otherwise in training it
 * takes in its activation, and in inference runs with it in one pass.
 */
function patchBatchNorm(bn: Layer): void {
  passThrough(bn, (x, kwargs, original) => {
    if (kwargs?.['training'] && tf.getBackend() === BACKEND) return trainActivated(bn, x, kwargs, original);
    const pass = merging(x, kwargs) ? currentPlan()?.affine.get(bn) : undefined;
    const state = bn as unknown as BatchNormLayer;
    if (!pass || x.shape[x.rank - 1] !== state.movingMean.read().shape[0]) return undefined;
    const f = foldBatchNorm(bn, state, null);
    const y = tf.tidy(
      () => tf.engine().runKernel(SCALE_SHIFT, { x, scale: tf.tensor1d(f.scale), shift: tf.tensor1d(f.bias) }, { activation: ACTIVATION_CODE[pass.activation] }) as tf.Tensor,
    );
    if (pass.act) marks.set(y, { next: pass.act });
    return y;
  });
}

/**
 * An SE block whose product x·gate also applies the BatchNorm and activation after it: the block
 * runs as written, with its last Multiply (x against the [N,1,1,C] gate) replaced by one
 * SelabScaleShift pass. Should the block compute differently, nothing is replaced and the
 * BatchNorm runs on its own.
 */
function patchGate(se: Layer): void {
  if (passing.has(se)) return;
  passing.add(se);
  const original = se.call.bind(se) as (inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs) => tf.Tensor | tf.Tensor[];
  (se as unknown as { call: Call }).call = function (inputs, kwargs) {
    const x = single(inputs);
    const pass = x && x.rank === 4 && merging(x, kwargs) ? currentPlan()?.gated.get(se) : undefined;
    if (!x || !pass) return original(inputs, kwargs);
    const f = foldBatchNorm(pass.bn, pass.bn as unknown as BatchNormLayer, null);
    const [n, , , c] = x.shape;
    let merged = false;
    setMultiplyHook((backend, a, b) => {
      if (merged || a.dataId !== x.dataId || !tf.util.arraysEqual(b.shape, [n!, 1, 1, c!])) return undefined;
      const out = nativeScaleShift(backend, a, f.scale, f.bias, ACTIVATION_CODE[pass.activation], b);
      merged = out !== undefined;
      return out;
    });
    let y: tf.Tensor | tf.Tensor[];
    try {
      y = original(inputs, kwargs);
    } finally {
      setMultiplyHook(null);
    }
    if (merged && !Array.isArray(y)) marks.set(y, { next: pass.bn, after: pass.act });
    return y;
  };
}

/** Makes a ZeroPadding2D that a plan merges hand on its input, marked with the padding it owes. */
function padThrough(layer: Layer): void {
  if (passing.has(layer)) return;
  passing.add(layer);
  const original = layer.call.bind(layer) as (inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs) => tf.Tensor | tf.Tensor[];
  (layer as unknown as { call: Call }).call = function (inputs, kwargs) {
    const x = single(inputs);
    if (!x || x.rank !== 4 || x.dtype !== 'float32' || tf.getBackend() !== BACKEND || !currentPlan()?.padding.has(layer)) return original(inputs, kwargs);
    const y = tf.clone(x);
    marks.set(y, { pad: (layer as unknown as { padding: [[number, number], [number, number]] }).padding });
    return y;
  };
}

// ---- convolutions ----

interface Folded {
  /** The storage ids of the weights it was computed from: a written variable gets a new one. */
  from: unknown[];
  scale: Float32Array;
  bias: Float32Array;
}

const folded = new WeakMap<Layer, Folded>();

/**
 * The BatchNorm's inference affine map as a per-channel scale and the folded bias:
 * y = conv(x, W·scale) + bias. Computed in JavaScript from the (small) weight arrays and kept
 * until one of the weights is written, so a validation pass costs no extra kernels.
 */
function foldBatchNorm(layer: Layer, bn: BatchNormLayer, convBias: tf.Tensor | null): Folded {
  const vars = [bn.movingMean.read(), bn.movingVariance.read(), bn.gamma?.read() ?? null, bn.beta?.read() ?? null, convBias];
  const from = vars.map((v) => v?.dataId ?? null);
  let f = folded.get(layer);
  if (!f || f.from.some((id, k) => id !== from[k])) {
    const [mean, variance, gamma, beta, bias] = vars.map((v) => (v ? (v.dataSync() as Float32Array) : null));
    const channels = mean!.length;
    const scale = new Float32Array(channels);
    const shift = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      const a = (gamma ? gamma[c]! : 1) / Math.sqrt(variance![c]! + bn.epsilon);
      scale[c] = a;
      shift[c] = ((bias ? bias[c]! : 0) - mean![c]!) * a + (beta ? beta[c]! : 0);
    }
    f = { from, scale, bias: shift };
    folded.set(layer, f);
  }
  return f;
}

function nativeCall(layer: ConvLayer & Layer, x: tf.Tensor, kwargs: Kwargs, depthwise: boolean): tf.Tensor | undefined {
  const kernel = depthwise ? layer.depthwiseKernel : layer.kernel;
  if (x.rank !== 4 || x.dtype !== 'float32' || !kernel) return undefined;
  const attrs = convAttrs(layer, depthwise);
  if (!attrs) return undefined;
  const pad = marks.get(x)?.pad;
  if (pad) attrs.pad = [[0, 0], pad[0], pad[1], [0, 0]];
  const fold = !kwargs?.['training'] && !recording() ? currentPlan()?.batchNorm.get(layer) : undefined;
  if (!fold) return tf.tidy(() => conv2dOp(x, kernel.read(), layer.bias ? layer.bias.read() : null, attrs));
  const y = tf.tidy(() => {
    const f = foldBatchNorm(layer, fold.bn as unknown as BatchNormLayer, layer.bias ? layer.bias.read() : null);
    return conv2dOp(x, kernel.read(), tf.tensor1d(f.bias), { ...attrs, activation: fold.activation }, tf.tensor1d(f.scale));
  });
  marks.set(y, { next: fold.bn, after: fold.act });
  return y;
}

function patchConv(layer: Layer, className: string, depthwise: boolean): void {
  const proto = Object.getPrototypeOf(layer) as { call: Call };
  const original = proto.call;
  proto.call = function (this: Layer, inputs, kwargs) {
    const x = single(inputs);
    if (x && this.getClassName() === className && tf.getBackend() === BACKEND) {
      const y = nativeCall(this as unknown as ConvLayer & Layer, x, kwargs, depthwise);
      if (y) return y;
    }
    // Padding a merged ZeroPadding2D left to this layer, made real for the stock path.
    const pad = x && marks.get(x)?.pad;
    if (pad) return tf.tidy(() => original.call(this, tf.pad(x, [[0, 0], pad[0], pad[1], [0, 0]]), kwargs) as tf.Tensor);
    return original.call(this, inputs, kwargs);
  };
}

/** Runs the model's graph methods within its plan. */
function patchModel<T extends object>(proto: T, method: keyof T): void {
  const original = proto[method] as unknown as (...args: unknown[]) => unknown;
  (proto as Record<string, unknown>)[method as string] = function (this: object, ...args: unknown[]) {
    return within(this, () => original.apply(this, args));
  };
}

let installed = false;

/** Routes tfjs-layers' convolutions through SelabConv2D and lets models merge layers while onednn is active (once). */
export function installLayerPaths(): void {
  if (installed) return;
  installed = true;
  registerConvOpGradient();
  patchConv(tfl.layers.conv2d({ filters: 1, kernelSize: 1 }), 'Conv2D', false);
  patchConv(tfl.layers.depthwiseConv2d({ kernelSize: 1 }), 'DepthwiseConv2D', true);
  // apply() runs Container.call; predict() and evaluate() run the graph from predictLoop and testLoop.
  const container = Object.getPrototypeOf(tfl.LayersModel.prototype) as { call: unknown };
  patchModel(container, 'call');
  patchModel(tfl.LayersModel.prototype as unknown as { predictLoop: unknown }, 'predictLoop');
  patchModel(tfl.LayersModel.prototype as unknown as { testLoop: unknown }, 'testLoop');
}

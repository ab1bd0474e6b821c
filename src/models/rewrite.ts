// Graph rewriting for functional models: rebuild a model node by node, re-applying the SAME
// layer objects (so pretrained weights are kept without copying), optionally swapping some
// layers for modified clones (weights copied exactly) and inserting new layers after chosen ones.
// This is how selab turns a Keras-named, ImageNet-initialised VGG16/MobileNet into the
// +BatchNorm and +attention variants of the reference experiment.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Attention } from '../attention/index.js';
import { BatchNorm } from './batch-norm.js';

type Layer = tfl.layers.Layer;
type SymbolicTensor = tfl.SymbolicTensor;

/** Which layers a rule applies to: a name, a list of names, a name pattern, or a predicate. */
export type LayerMatcher = string | readonly string[] | RegExp | ((layer: Layer) => boolean);

export interface Insertion {
  after: LayerMatcher;
  /** Builds the inserted layers on `x` (the matched layer's output); returns the new tensor. */
  insert: (x: SymbolicTensor, after: Layer) => SymbolicTensor;
}

export interface Replacement {
  match: LayerMatcher;
  /**
   * Returns a fresh, unbuilt layer to use instead of `layer`. It must have the same weight
   * shapes: rewriteModel builds it and copies the original's weights into it.
   */
  with: (layer: Layer) => Layer;
}

export interface RewriteOptions {
  insertAfter?: readonly Insertion[];
  replace?: readonly Replacement[];
  /** Name of the new model. Default: the original's. */
  name?: string;
}

export function matches(matcher: LayerMatcher, layer: Layer): boolean {
  if (typeof matcher === 'string') return layer.name === matcher;
  if (matcher instanceof RegExp) return matcher.test(layer.name);
  if (typeof matcher === 'function') return matcher(layer);
  return matcher.includes(layer.name);
}

function describe(matcher: LayerMatcher): string {
  if (typeof matcher === 'function') return '(predicate)';
  if (matcher instanceof RegExp) return String(matcher);
  return JSON.stringify(matcher);
}

function asArray<T>(x: T | T[]): T[] {
  return Array.isArray(x) ? x : [x];
}

/**
 * A new functional model computing the same graph as `model`, with the requested replacements
 * and insertions. Layers neither replaced nor inserted are the original objects (shared with
 * `model`); multi-input layers (Add, Multiply, Concatenate …) are re-wired like any other.
 */
export function rewriteModel(model: tfl.LayersModel, options: RewriteOptions = {}): tfl.LayersModel {
  const { insertAfter = [], replace = [] } = options;
  // Original symbolic tensor id -> its counterpart in the new graph.
  const mapped = new Map<number, SymbolicTensor>();
  const used = new Set<Insertion | Replacement>();
  const replaced = new Map<Layer, Layer>();
  const insertAfterLayer = (x: SymbolicTensor, layer: Layer): SymbolicTensor => {
    for (const ins of insertAfter) {
      if (matches(ins.after, layer)) {
        used.add(ins);
        x = ins.insert(x, layer);
      }
    }
    return x;
  };
  const newInputs = model.inputs.map((t, i) => {
    const inputLayer = model.inputLayers[i]!;
    const fresh = tfl.input({ batchShape: t.shape, dtype: t.dtype, name: inputLayer.name });
    mapped.set(t.id, insertAfterLayer(fresh, inputLayer));
    return fresh;
  });

  // nodesByDepth holds exactly this model's nodes; the deepest are nearest the inputs, and
  // nodes at one depth never depend on each other.
  const depths = Object.keys(model.nodesByDepth).map(Number).sort((a, b) => b - a);
  for (const depth of depths) {
    for (const node of model.nodesByDepth[depth] ?? []) {
      const original = node.outboundLayer;
      if (original.getClassName() === 'InputLayer') continue;
      const inputs = node.inputTensors.map((t) => {
        const m = mapped.get(t.id);
        if (!m) throw new Error(`rewriteModel: input ${t.name} of layer ${original.name} was not produced earlier in ${model.name}`);
        return m;
      });
      const rule = replace.find((r) => matches(r.match, original));
      if (rule) used.add(rule);
      let layer = replaced.get(original) ?? original;
      if (rule && layer === original) {
        layer = buildReplacement(original, rule.with(original), node.inputShapes);
        // A layer applied at several nodes stays one (shared) layer after replacement.
        replaced.set(original, layer);
      }
      const out = layer.apply(inputs.length === 1 ? inputs[0]! : inputs, node.callArgs ?? {});
      const outs = asArray(out as SymbolicTensor | SymbolicTensor[]);
      if (outs.length === 1) {
        mapped.set(node.outputTensors[0]!.id, insertAfterLayer(outs[0]!, original));
      } else {
        if (insertAfter.some((ins) => matches(ins.after, original))) {
          throw new Error(`rewriteModel: cannot insert after ${original.name}: it has ${outs.length} outputs`);
        }
        node.outputTensors.forEach((t, i) => mapped.set(t.id, outs[i]!));
      }
    }
  }
  // A rule that matched nothing is almost always a misspelt layer name.
  [...replace, ...insertAfter].forEach((rule) => {
    if (!used.has(rule)) {
      const matcher = 'match' in rule ? rule.match : rule.after;
      throw new Error(`rewriteModel: ${'match' in rule ? 'replace' : 'insertAfter'} rule ${describe(matcher)} matched no layer of ${model.name}`);
    }
  });
  const newOutputs = model.outputs.map((t) => {
    const m = mapped.get(t.id);
    if (!m) throw new Error(`rewriteModel: output ${t.name} of ${model.name} was not reached`);
    return m;
  });
  return tfl.model({
    inputs: newInputs.length === 1 ? newInputs[0]! : newInputs,
    outputs: newOutputs.length === 1 ? newOutputs[0]! : newOutputs,
    name: options.name ?? model.name,
  });
}

function buildReplacement(original: Layer, replacement: Layer, inputShapes: tfl.Shape | tfl.Shape[]): Layer {
  replacement.build(inputShapes);
  replacement.built = true;
  const from = original.weights.map((w) => w.shape);
  const to = replacement.weights.map((w) => w.shape);
  if (JSON.stringify(from) !== JSON.stringify(to)) {
    throw new Error(`rewriteModel: replacement for ${original.name} has weight shapes ${JSON.stringify(to)}, the original ${JSON.stringify(from)}`);
  }
  // getWeights() returns the variables' own tensors; setWeights assigns them (shared, ref-counted
  // storage): the replacement starts with exactly the original values.
  replacement.setWeights(original.getWeights());
  return replacement;
}

/** A fresh copy of `layer` (same class and config, same name) with a different `activation`. */
export function withActivation(layer: Layer, activation: string): Layer {
  const config = layer.getConfig();
  if (!('activation' in config)) {
    throw new Error(`withActivation: layer ${layer.name} (${layer.getClassName()}) has no activation`);
  }
  const Ctor = layer.constructor as new (args: tf.serialization.ConfigDict) => Layer;
  return new Ctor({ ...config, activation });
}

// ---- insertions used by the reference cases ----

/** BatchNormalization + ReLU named `<layer>_bn`, `<layer>_relu`; pair it with a linear-activation replacement. */
export function insertBatchNormRelu(after: LayerMatcher): Insertion {
  return {
    after,
    insert: (x, layer) => {
      const y = new BatchNorm({ name: `${layer.name}_bn` }).apply(x) as SymbolicTensor;
      return tfl.layers.reLU({ name: `${layer.name}_relu` }).apply(y) as SymbolicTensor;
    },
  };
}

/** An attention block after each matched layer, named after it (`<layer>_se`, `<layer>_eca`). */
export function insertAttention(after: LayerMatcher, attention: Attention): Insertion {
  return { after, insert: (x, layer) => attention(x, layer.name) };
}

/** Matched convolutions lose their activation and are followed by BatchNorm + ReLU. */
export function addBatchNorm(model: tfl.LayersModel, convs: LayerMatcher, name?: string): tfl.LayersModel {
  return rewriteModel(model, {
    replace: [{ match: convs, with: (l) => withActivation(l, 'linear') }],
    insertAfter: [insertBatchNormRelu(convs)],
    name,
  });
}

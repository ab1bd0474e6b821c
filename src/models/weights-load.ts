// Puts a WeightSet into a model: layers are matched by Keras layer name and every tensor is
// checked by shape before anything is assigned, so a mismatch leaves the model untouched.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { baseWeightName, formatShape, type StoredTensor, type WeightSet } from './weights-source.js';

export interface WeightsMismatch {
  /** Model tensors the file has no value for, e.g. `block1_conv1/kernel [3,3,3,64]`. */
  missing: string[];
  /** File tensors with no layer of that name in the model. */
  unexpected: string[];
  /** Tensors present on both sides whose shapes (or per-layer counts) differ. */
  wrongShape: string[];
}

export class WeightsMismatchError extends Error {
  constructor(
    readonly source: string,
    readonly mismatch: WeightsMismatch,
  ) {
    super(describeMismatch(source, mismatch));
    this.name = 'WeightsMismatchError';
  }
}

const LIST_LIMIT = 20;

function section(title: string, items: string[]): string {
  if (items.length === 0) return '';
  const shown = items.slice(0, LIST_LIMIT).map((s) => `    ${s}`);
  if (items.length > LIST_LIMIT) shown.push(`    … and ${items.length - LIST_LIMIT} more`);
  return `\n  ${title} (${items.length}):\n${shown.join('\n')}`;
}

function describeMismatch(source: string, m: WeightsMismatch): string {
  return (
    `weights in ${source} do not match the model; nothing was loaded.` +
    section('missing from the file', m.missing) +
    section('unexpected in the file (no such layer in the model)', m.unexpected) +
    section('wrong shape (file vs model)', m.wrongShape)
  );
}

/** Every layer that owns weights, descending into nested models so inner Keras names are matched. */
function weightedLayers(model: tfl.LayersModel): tfl.layers.Layer[] {
  const out: tfl.layers.Layer[] = [];
  for (const layer of model.layers) {
    const inner = (layer as unknown as { layers?: unknown }).layers;
    if (Array.isArray(inner)) out.push(...weightedLayers(layer as unknown as tfl.LayersModel));
    else if (layer.weights.length > 0) out.push(layer);
  }
  return out;
}

function sameNames(a: string[], b: string[]): boolean {
  if (new Set(a).size !== a.length || a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((n) => set.has(n));
}

/**
 * Pairs each model layer's weights with the file's tensors for that layer: by weight name when the
 * names agree (kernel, bias, gamma, …), otherwise by position as Keras' `load_weights` does (the
 * VGG16 ImageNet file still carries Keras 1 names such as `block1_conv1_W_1:0`).
 */
export function planWeights(model: tfl.LayersModel, set: WeightSet): Array<{ layer: tfl.layers.Layer; tensors: StoredTensor[] }> {
  const mismatch: WeightsMismatch = { missing: [], unexpected: [], wrongShape: [] };
  const plan: Array<{ layer: tfl.layers.Layer; tensors: StoredTensor[] }> = [];
  const seen = new Set<string>();
  for (const layer of weightedLayers(model)) {
    seen.add(layer.name);
    const modelNames = layer.weights.map((w) => baseWeightName(w.originalName));
    const stored = set.layers.get(layer.name);
    if (stored === undefined) {
      layer.weights.forEach((w, i) => mismatch.missing.push(`${layer.name}/${modelNames[i]} ${formatShape(w.shape)}`));
      continue;
    }
    if (stored.length !== layer.weights.length) {
      const list = (xs: Array<{ shape: readonly (number | null)[] }>, names: string[]) => xs.map((x, i) => `${names[i]} ${formatShape(x.shape)}`).join(', ');
      mismatch.wrongShape.push(
        `${layer.name}: file has ${stored.length} tensor(s) (${list(stored, stored.map((s) => s.name))}), model has ${layer.weights.length} (${list(layer.weights, modelNames)})`,
      );
      continue;
    }
    const fileNames = stored.map((s) => baseWeightName(s.name));
    const ordered = sameNames(modelNames, fileNames) ? modelNames.map((n) => stored[fileNames.indexOf(n)] as StoredTensor) : stored;
    let ok = true;
    layer.weights.forEach((w, i) => {
      const t = ordered[i] as StoredTensor;
      const expected = w.shape;
      const size = t.shape.reduce((a, b) => a * b, 1);
      if (t.shape.length !== expected.length || t.shape.some((d, k) => d !== expected[k]) || size !== t.values.length) {
        mismatch.wrongShape.push(`${layer.name}/${modelNames[i]}: file ${formatShape(t.shape)} (${t.name}), model ${formatShape(expected)}`);
        ok = false;
      }
    });
    if (ok) plan.push({ layer, tensors: ordered });
  }
  for (const [name, tensors] of set.layers) {
    if (!seen.has(name)) for (const t of tensors) mismatch.unexpected.push(`${t.name} ${formatShape(t.shape)}`);
  }
  if (mismatch.missing.length + mismatch.unexpected.length + mismatch.wrongShape.length > 0) {
    throw new WeightsMismatchError(set.source, mismatch);
  }
  return plan;
}

/** Validates everything, then assigns layer by layer. Returns the number of tensors loaded. */
export function applyWeights(model: tfl.LayersModel, set: WeightSet): number {
  const plan = planWeights(model, set);
  let count = 0;
  for (const { layer, tensors } of plan) {
    // Copied: backends may keep the array as the variable's storage, and the set can be loaded
    // into several models.
    const values = tensors.map((t) => tf.tensor(t.values.slice(), t.shape, 'float32'));
    try {
      layer.setWeights(values);
    } finally {
      tf.dispose(values);
    }
    count += values.length;
  }
  return count;
}

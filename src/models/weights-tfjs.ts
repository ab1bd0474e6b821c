// Reads the weights of a TensorFlow.js layers model (model.json + binary shards) from disk.
// Shards of one manifest group are concatenated before decoding, as tfjs does, because a tensor
// may straddle two shards; tf.io.decodeWeights handles dtypes and the converter's quantisation.
import * as tf from '@tensorflow/tfjs-core';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { WeightsFileError, type StoredTensor, type WeightSet } from './weights-source.js';

interface ManifestGroup {
  paths: string[];
  weights: tf.io.WeightsManifestEntry[];
}

/** The shard file names a model.json refers to (relative to its folder), for fetching them. */
export function manifestShardPaths(modelJson: unknown, source: string): string[] {
  return parseManifest(modelJson, source).flatMap((g) => g.paths);
}

function parseManifest(json: unknown, source: string): ManifestGroup[] {
  const manifest = (json as { weightsManifest?: unknown } | null)?.weightsManifest;
  if (!Array.isArray(manifest)) {
    throw new WeightsFileError(`${source} is not a TensorFlow.js layers model: no 'weightsManifest' array`);
  }
  for (const group of manifest as ManifestGroup[]) {
    if (!Array.isArray(group?.paths) || !Array.isArray(group.weights)) {
      throw new WeightsFileError(`${source}: each weightsManifest entry needs 'paths' and 'weights' arrays`);
    }
    for (const p of group.paths) {
      // Shards must sit beside model.json: a path leaving that folder is refused.
      if (typeof p !== 'string' || p.startsWith('/') || p.split(/[\\/]/).includes('..') || /^[a-z]+:/i.test(p)) {
        throw new WeightsFileError(`${source}: weight shard path ${JSON.stringify(p)} must be a relative file name beside model.json`);
      }
    }
  }
  return manifest as ManifestGroup[];
}

export async function readModelJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new WeightsFileError(`weights file ${path} does not exist`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new WeightsFileError(`${path} is not valid JSON (expected a TensorFlow.js model.json): ${(err as Error).message}`);
  }
}

/**
 * Reads a model.json and its shards. Tensors are grouped by layer: the part of the weight name
 * before the last `/` (tfjs names them `block1_conv1/kernel`). Optimizer state saved with
 * `includeOptimizer` is skipped.
 */
export async function readTfjsLayersWeights(modelJsonPath: string): Promise<WeightSet> {
  const json = await readModelJson(modelJsonPath);
  const groups = parseManifest(json, modelJsonPath);
  const dir = dirname(modelJsonPath);
  const layers = new Map<string, StoredTensor[]>();
  for (const group of groups) {
    const buffers: Uint8Array[] = [];
    for (const p of group.paths) {
      try {
        buffers.push(await readFile(join(dir, p)));
      } catch {
        throw new WeightsFileError(`${modelJsonPath}: weight shard ${p} is missing (expected ${join(dir, p)})`);
      }
    }
    const data = Buffer.concat(buffers);
    const needed = group.weights.reduce((sum, w) => sum + entryBytes(w, modelJsonPath), 0);
    if (data.byteLength !== needed) {
      throw new WeightsFileError(
        `${modelJsonPath}: shards ${group.paths.join(', ')} hold ${data.byteLength} bytes but the manifest describes ${needed}; a shard is truncated or from another model`,
      );
    }
    const buffer = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    const decoded = tf.io.decodeWeights(buffer, group.weights);
    try {
      for (const entry of group.weights) {
        if (entry.group === 'optimizer') continue;
        const tensor = decoded[entry.name];
        if (tensor === undefined) continue;
        const cut = entry.name.lastIndexOf('/');
        if (cut <= 0) {
          throw new WeightsFileError(`${modelJsonPath}: weight name ${JSON.stringify(entry.name)} has no layer prefix (expected layer_name/weight_name)`);
        }
        const layerName = entry.name.slice(0, cut).split('/')[0] ?? '';
        const list = layers.get(layerName) ?? [];
        list.push({ name: entry.name, shape: [...entry.shape], values: Float32Array.from(tensor.dataSync()) });
        layers.set(layerName, list);
      }
    } finally {
      tf.dispose(Object.values(decoded));
    }
  }
  return { source: modelJsonPath, format: 'tfjs-layers', layers };
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

function entryBytes(entry: tf.io.WeightsManifestEntry, source: string): number {
  const size = entry.shape.reduce((a, b) => a * b, 1);
  const dtype = entry.quantization?.dtype ?? entry.dtype;
  const bytes = BYTES[dtype];
  if (bytes === undefined) throw new WeightsFileError(`${source}: weight ${entry.name} has unsupported dtype ${dtype}`);
  return size * bytes;
}

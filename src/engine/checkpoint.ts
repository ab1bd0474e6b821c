// A checkpoint is a folder, OUT/<run>/checkpoint/, replaced whole after every epoch:
//   weights.bin + weights.json     every model weight (BN moving statistics included), in model.weights order
//   optimizer.bin + optimizer.json optimizer.getWeights(): iteration count and moments (Adam m/v, RMSProp ms/mom, …)
//   state.json                     written last, so a folder without it is incomplete
// The new folder is written under a temporary name (removeStaleTemps clears it once its writer is
// dead), then swapped in with renames. A SIGKILL at any point leaves either `checkpoint` or
// `checkpoint.old` complete, and findCheckpoint picks it.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeStaleTemps, tempPathFor } from '../util/atomic.js';
import { exists } from '../util/fs.js';
import type { HistoryRow } from '../runs/files.js';

export const CHECKPOINT_DIR = 'checkpoint';
const OLD_DIR = 'checkpoint.old';
const STATE_FILE = 'state.json';

interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

export interface CheckpointState {
  version: 1;
  /** Completed epochs; training continues with epoch + 1. */
  epoch: number;
  /**
   * Batch order is a pure function of (seed, epoch), so this is the whole RNG state: resuming at
   * nextEpoch with the same seed replays exactly the shuffles an uninterrupted run would make.
   */
  rng: { seed: number; nextEpoch: number };
  /** The history up to `epoch`; the source of truth on resume (history.json is written after it). */
  rows: HistoryRow[];
  optimizerIterations: number;
  savedAt: string;
}

interface WeightsIndex {
  names: string[];
  specs: tf.io.WeightsManifestEntry[];
}

async function writeWeights(dir: string, base: string, named: NamedTensor[]): Promise<void> {
  // Indexed names keep entries distinct even if two variables share a name.
  const unique = named.map((n, i) => ({ name: `${i}`, tensor: n.tensor }));
  const { data, specs } = await tf.io.encodeWeights(unique);
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(await new Blob(data as ArrayBuffer[]).arrayBuffer());
  await writeFile(join(dir, `${base}.bin`), bytes);
  const index: WeightsIndex = { names: named.map((n) => n.name), specs };
  await writeFile(join(dir, `${base}.json`), JSON.stringify(index) + '\n');
}

async function readWeights(dir: string, base: string): Promise<NamedTensor[]> {
  const index = JSON.parse(await readFile(join(dir, `${base}.json`), 'utf8')) as WeightsIndex;
  const buf = await readFile(join(dir, `${base}.bin`));
  const data = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const map = tf.io.decodeWeights(data, index.specs);
  return index.names.map((name, i) => {
    const tensor = map[`${i}`];
    if (!tensor) throw new Error(`${join(dir, base)}.bin: entry ${i} (${name}) is missing`);
    return { name, tensor };
  });
}

async function isComplete(dir: string): Promise<boolean> {
  try {
    return (await stat(join(dir, STATE_FILE))).isFile();
  } catch {
    return false;
  }
}

export async function saveCheckpoint(
  runDir: string,
  model: tfl.LayersModel,
  optimizer: tf.Optimizer,
  state: Omit<CheckpointState, 'version' | 'savedAt' | 'optimizerIterations'>,
): Promise<void> {
  const current = join(runDir, CHECKPOINT_DIR);
  const old = join(runDir, OLD_DIR);
  const tmp = tempPathFor(current);
  await mkdir(tmp, { recursive: true });
  await writeWeights(tmp, 'weights', model.weights.map((w) => ({ name: w.originalName, tensor: w.read() })));
  const optWeights = await optimizer.getWeights();
  await writeWeights(tmp, 'optimizer', optWeights);
  const iterTensor = optWeights.find((w) => w.name === 'iter')?.tensor;
  const optimizerIterations = iterTensor ? (await iterTensor.data())[0] ?? 0 : 0;
  // getWeights() makes a fresh scalar for the iteration count; the moments are the optimizer's own.
  iterTensor?.dispose();
  const full: CheckpointState = { version: 1, ...state, optimizerIterations, savedAt: new Date().toISOString() };
  await writeFile(join(tmp, STATE_FILE), JSON.stringify(full, null, 2) + '\n');

  // Crash between these renames: `checkpoint` is missing and `checkpoint.old` is complete.
  if (await isComplete(current)) {
    await rm(old, { recursive: true, force: true });
    await rename(current, old);
  } else {
    await rm(current, { recursive: true, force: true });
  }
  await rename(tmp, current);
  await rm(old, { recursive: true, force: true });
}

/** The newest complete checkpoint folder of a run, or null; removes leftovers of interrupted saves. */
export async function findCheckpoint(runDir: string): Promise<string | null> {
  if (!(await exists(runDir))) return null;
  removeStaleTemps(runDir);
  const current = join(runDir, CHECKPOINT_DIR);
  const old = join(runDir, OLD_DIR);
  if (await isComplete(current)) {
    await rm(old, { recursive: true, force: true });
    return current;
  }
  if (await isComplete(old)) {
    await rm(current, { recursive: true, force: true });
    await rename(old, current);
    return current;
  }
  return null;
}

export async function readCheckpointState(dir: string): Promise<CheckpointState> {
  const state = JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')) as CheckpointState;
  if (state.version !== 1 || !Number.isInteger(state.epoch)) throw new Error(`${join(dir, STATE_FILE)}: not a selab checkpoint state`);
  return state;
}

/** Restores model weights and optimizer state in place; returns the saved state. */
export async function loadCheckpoint(dir: string, model: tfl.LayersModel, optimizer: tf.Optimizer): Promise<CheckpointState> {
  const state = await readCheckpointState(dir);
  const weights = await readWeights(dir, 'weights');
  const targets = model.weights;
  const problems: string[] = [];
  if (weights.length !== targets.length) problems.push(`${weights.length} tensors saved, the model has ${targets.length}`);
  targets.forEach((w, i) => {
    const saved = weights[i];
    if (saved && !tf.util.arraysEqual(saved.tensor.shape, w.shape as number[])) {
      problems.push(`${w.originalName}: saved shape [${saved.tensor.shape}], model shape [${w.shape}]`);
    }
  });
  if (problems.length > 0) {
    tf.dispose(weights.map((w) => w.tensor));
    throw new Error(`${join(dir, 'weights.bin')} does not fit this model (a different case or options?): ${problems.slice(0, 5).join('; ')}`);
  }
  model.setWeights(weights.map((w) => w.tensor));
  tf.dispose(weights.map((w) => w.tensor));
  const optWeights = await readWeights(dir, 'optimizer');
  // setWeights turns these into the optimizer's own variables (copies), so ours can go.
  await optimizer.setWeights(optWeights);
  tf.dispose(optWeights.map((w) => w.tensor));
  return state;
}

// A checkpoint is a folder, OUT/<run>/checkpoint/, replaced whole after every epoch:
//   weights.bin + weights.json     every model weight (BN moving statistics included), in model.weights order
//   optimizer.bin + optimizer.json optimizer.getWeights(): iteration count and moments (Adam m/v, RMSProp ms/mom, …)
//   state.json                     written last, so a folder without it is incomplete
// The new folder is written under a temporary name (a failed save removes it; removeStaleTemps
// clears it once a killed writer is dead), then swapped in with renames. A SIGKILL at any point
// leaves either `checkpoint` or `checkpoint.old` complete, and findCheckpoint picks it.
// Reading checks every file against what a save writes, so a damaged checkpoint is named as such.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { removeStaleTemps, withTempPath } from '../util/atomic.js';
import { exists } from '../util/fs.js';
import { normalizeRows, type HistoryRow } from '../runs/files.js';

export const CHECKPOINT_DIR = 'checkpoint';
const OLD_DIR = 'checkpoint.old';
const STATE_FILE = 'state.json';

/**
 * A checkpoint that could not be written (the message names the operation and the path; `code` is
 * the system error's, e.g. ENOSPC) or that is damaged (the message names the file and what was
 * expected of it).
 */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
  readonly code: string | undefined;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = (options?.cause as NodeJS.ErrnoException | undefined)?.code;
  }
}

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

/** Bytes per element in a .bin file, by dtype: tfjs' weights layout, read back by tf.io.decodeWeights. */
const DTYPE_BYTES: Readonly<Record<string, number>> = { float32: 4, int32: 4, bool: 1 };

/** A system error's message without Node's ", syscall 'path'" tail: the caller names the path. */
function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const tail = e.syscall ? e.message.indexOf(`, ${e.syscall}`) : -1;
  return tail > 0 ? e.message.slice(0, tail) : e.message;
}

/** Runs one file operation of a save; a failure names it (`operation` says what, on which path). */
async function step<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw new CheckpointError(`${operation}: ${reason(err)}`, { cause: err });
  }
}

async function writeWeights(dir: string, base: string, what: string, named: NamedTensor[]): Promise<void> {
  const binPath = join(dir, `${base}.bin`);
  // Indexed names keep entries distinct even if two variables share a name.
  const specs: tf.io.WeightsManifestEntry[] = named.map(({ tensor }, i) => {
    if (DTYPE_BYTES[tensor.dtype] === undefined) throw new CheckpointError(`cannot checkpoint ${named[i]!.name}: dtype ${tensor.dtype}`);
    return { name: `${i}`, shape: tensor.shape, dtype: tensor.dtype as 'float32' | 'int32' | 'bool' };
  });
  await step(`writing ${what} to ${binPath}`, async () => {
    const file = await open(binPath, 'w');
    try {
      // One tensor at a time, not tf.io.encodeWeights' single buffer: a copy of the whole state
      // would raise the process's memory high-water mark by its size at the first save.
      for (const { tensor } of named) {
        const data = (await tensor.data()) as Float32Array | Int32Array | Uint8Array;
        await file.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      }
    } finally {
      await file.close();
    }
  });
  const indexPath = join(dir, `${base}.json`);
  const index: WeightsIndex = { names: named.map((n) => n.name), specs };
  await step(`writing the ${what} index to ${indexPath}`, () => writeFile(indexPath, JSON.stringify(index) + '\n'));
}

/** The error for a checkpoint file that is missing or cannot be what a save wrote. */
function damaged(path: string, problem: string): CheckpointError {
  const dir = dirname(path);
  return new CheckpointError(`${path}: ${problem}; the checkpoint is damaged: delete ${dir} to train the run from the start, or restore the folder from a copy`);
}

/** A checkpoint file's bytes; a missing file is damage (state.json is written last, so the rest was complete). */
async function readCheckpointFile(path: string): Promise<NonSharedBuffer> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw damaged(path, 'missing');
    throw new CheckpointError(`reading ${path}: ${reason(err)}`, { cause: err });
  }
}

function parseJson(path: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw damaged(path, `not valid JSON (${(err as Error).message})`);
  }
}

function isWeightsIndex(v: unknown): v is WeightsIndex {
  const index = v as WeightsIndex | null;
  return (
    typeof index === 'object' && index !== null &&
    Array.isArray(index.names) && Array.isArray(index.specs) && index.names.length === index.specs.length &&
    index.names.every((n) => typeof n === 'string') &&
    index.specs.every((s, i) => s?.name === `${i}` && DTYPE_BYTES[s.dtype] !== undefined && Array.isArray(s.shape) && s.shape.every((d) => Number.isInteger(d) && d >= 0))
  );
}

async function readWeights(dir: string, base: string): Promise<NamedTensor[]> {
  const indexPath = join(dir, `${base}.json`);
  const index = parseJson(indexPath, (await readCheckpointFile(indexPath)).toString('utf8'));
  if (!isWeightsIndex(index)) throw damaged(indexPath, 'expected {"names": [...], "specs": [{"name": "0", "shape": [...], "dtype": ...}, ...]} with one spec per name');
  const binPath = join(dir, `${base}.bin`);
  const buf = await readCheckpointFile(binPath);
  const expected = index.specs.reduce((n, s) => n + tf.util.sizeFromShape(s.shape) * DTYPE_BYTES[s.dtype]!, 0);
  if (buf.byteLength !== expected) {
    const why = buf.byteLength < expected ? 'the file is truncated' : `longer than the ${index.specs.length} tensors ${base}.json lists`;
    throw damaged(binPath, `${buf.byteLength.toLocaleString('en-US')} bytes, expected ${expected.toLocaleString('en-US')} (${why})`);
  }
  const data = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const map = tf.io.decodeWeights(data, index.specs);
  return index.names.map((name, i) => ({ name, tensor: map[`${i}`]! }));
}

async function isComplete(dir: string): Promise<boolean> {
  try {
    return (await stat(join(dir, STATE_FILE))).isFile();
  } catch {
    return false;
  }
}

/**
 * Writes a checkpoint of `model` and `optimizer` into `runDir`, replacing the previous one. A
 * failure (disk full, read-only, permission) leaves the previous checkpoint in place, removes the
 * partial new one and throws a CheckpointError naming the operation and the path.
 */
export async function saveCheckpoint(
  runDir: string,
  model: tfl.LayersModel,
  optimizer: tf.Optimizer,
  state: Omit<CheckpointState, 'version' | 'savedAt' | 'optimizerIterations'>,
): Promise<void> {
  const current = join(runDir, CHECKPOINT_DIR);
  const old = join(runDir, OLD_DIR);
  const removeOld = () => step(`removing the previous checkpoint ${old}`, () => rm(old, { recursive: true, force: true }));
  await withTempPath(current, async (tmp) => {
    await step(`creating the checkpoint folder ${tmp}`, () => mkdir(tmp, { recursive: true }));
    await writeWeights(tmp, 'weights', 'checkpoint weights', model.weights.map((w) => ({ name: w.originalName, tensor: w.read() })));
    const optWeights = await optimizer.getWeights();
    try {
      await writeWeights(tmp, 'optimizer', 'optimizer state', optWeights);
    } finally {
      // getWeights() makes a fresh scalar for the iteration count; the moments are the optimizer's own.
      optWeights.find((w) => w.name === 'iter')?.tensor.dispose();
    }
    const full: CheckpointState = { version: 1, ...state, optimizerIterations: optimizer.iterations, savedAt: new Date().toISOString() };
    const statePath = join(tmp, STATE_FILE);
    await step(`writing the checkpoint state to ${statePath}`, () => writeFile(statePath, JSON.stringify(full, null, 2) + '\n'));

    // Crash between these renames: `checkpoint` is missing and `checkpoint.old` is complete.
    if (await isComplete(current)) {
      await removeOld();
      await step(`renaming the previous checkpoint ${current} to ${old}`, () => rename(current, old));
    } else {
      await step(`removing the incomplete checkpoint ${current}`, () => rm(current, { recursive: true, force: true }));
    }
    await step(`renaming the new checkpoint ${tmp} to ${current}`, () => rename(tmp, current));
    await removeOld();
  });
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

function isCheckpointState(v: unknown): v is CheckpointState {
  const s = v as CheckpointState | null;
  return (
    typeof s === 'object' && s !== null && s.version === 1 &&
    Number.isInteger(s.epoch) && s.epoch >= 0 &&
    typeof s.rng === 'object' && s.rng !== null && typeof s.rng.seed === 'number' && Number.isInteger(s.rng.nextEpoch) &&
    Array.isArray(s.rows) &&
    Number.isInteger(s.optimizerIterations) && s.optimizerIterations >= 0
  );
}

export async function readCheckpointState(dir: string): Promise<CheckpointState> {
  const path = join(dir, STATE_FILE);
  const state = parseJson(path, (await readCheckpointFile(path)).toString('utf8'));
  if (!isCheckpointState(state)) {
    throw damaged(path, 'expected a selab checkpoint state {"version": 1, "epoch", "rng": {"seed", "nextEpoch"}, "rows": [...], "optimizerIterations", "savedAt"}');
  }
  // Rows saved before test_acc existed: see normalizeRows.
  return { ...state, rows: normalizeRows(state.rows) };
}

/** Restores model weights and optimizer state in place; returns the saved state. Reads and checks every file before changing either. */
export async function loadCheckpoint(dir: string, model: tfl.LayersModel, optimizer: tf.Optimizer): Promise<CheckpointState> {
  const state = await readCheckpointState(dir);
  const weights = await readWeights(dir, 'weights');
  let optWeights: NamedTensor[];
  try {
    optWeights = await readWeights(dir, 'optimizer');
  } catch (err) {
    tf.dispose(weights.map((w) => w.tensor));
    throw err;
  }
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
    tf.dispose([...weights, ...optWeights].map((w) => w.tensor));
    throw new Error(`${join(dir, 'weights.bin')} does not fit this model (a different case or options?): ${problems.slice(0, 5).join('; ')}`);
  }
  model.setWeights(weights.map((w) => w.tensor));
  tf.dispose(weights.map((w) => w.tensor));
  // setWeights turns these into the optimizer's own variables (copies), so ours can go.
  await optimizer.setWeights(optWeights);
  tf.dispose(optWeights.map((w) => w.tensor));
  return state;
}

// One training run end to end: build the model, resume from its checkpoint when asked, train
// epoch by epoch with validation on the test split, and keep the run files (docs/run-format.md)
// and the checkpoint current after every epoch.
//
// Per epoch the order of writes is: checkpoint (holding the history up to this epoch), then
// history.json, then run.json. A SIGKILL between any two leaves a checkpoint at least as new as
// the history, so a history row never exists without its checkpoint, and --resume restores the
// history from the checkpoint itself: no gap, no duplicate.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { loadAddon } from '../backend/onednn/addon.js';
import type { Split } from '../data/format.js';
import { BatchIterator, type Batch as DataBatch } from '../data/batches.js';
import { preprocessTensor, type PreprocessMode } from '../data/preprocess.js';
import { countParams, macsPerImage, trainableParams } from '../models/summary.js';
import { exists } from '../util/fs.js';
import { packageRoot } from '../util/paths.js';
import { findCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { evaluate, NonFiniteLossError, trainEpoch, type Batch } from './loop.js';
import { chooseMicroBatch, defaultMemoryBudget } from './microbatch.js';
import { makeOptimizer, setLearningRate, type OptimizerName } from './optimizers.js';
import { formatDuration, silentProgress, type ProgressSink } from './progress.js';
import { stepLr } from './schedule.js';
import { withSeededRandom } from './seed.js';
import {
  readRunFile,
  RUN_FILE,
  summarizeRows,
  writeHistory,
  writeRunFile,
  type HistoryRow,
  type RunConfig,
  type RunFile,
} from '../runs/files.js';

/** What describes the run in run.json besides its configuration. */
export type RunMeta = Pick<RunFile, 'case' | 'name' | 'model' | 'additions' | 'se' | 'seOptions' | 'training' | 'sweep'>;

export interface RunRequest {
  /** Output folder (`--out`) and the run's folder below it, e.g. `case_1`. */
  out: string;
  id: string;
  meta: RunMeta;
  /** microBatch null: chosen from the model's activation size. */
  config: Omit<RunConfig, 'microBatch'> & { microBatch: number | null };
  /**
   * Builds a fresh model (weights initialised from Math.random, which is seeded from config.seed).
   * `restoring`: a checkpoint will overwrite every weight, so pretrained weights need not be loaded.
   */
  buildModel: (opts: { restoring: boolean }) => Promise<tfl.LayersModel>;
  train: Split;
  test: Split;
  /** Continue from the run's checkpoint if it has one (otherwise start fresh). */
  resume: boolean;
  progress?: ProgressSink;
  /** Stops the run after the current step; the run is marked stopped and the last checkpoint stays. */
  signal?: AbortSignal;
  /** Activation memory budget for the automatic micro-batch, in bytes. */
  memoryBudget?: number;
  /** Prefix of progress lines, e.g. "case 1". */
  label?: string;
}

/** Configuration that may differ when a run is resumed; anything else must match. */
const RESUMABLE_CHANGES: readonly (keyof RunConfig)[] = ['epochs', 'backend', 'data', 'lr', 'lrDecayEpochs', 'lrDecayFactor'];

/** The optional fields filled in, so that runs written before they existed compare and resume. */
function withDefaults<C extends RunRequest['config']>(config: C): C & Required<Pick<RunConfig, 'normalize' | 'weightDecay' | 'lrDecayEpochs' | 'lrDecayFactor'>> {
  return { ...config, normalize: config.normalize ?? null, weightDecay: config.weightDecay ?? 0, lrDecayEpochs: config.lrDecayEpochs ?? [], lrDecayFactor: config.lrDecayFactor ?? 0.1 };
}

export class RunError extends Error {
  constructor(
    message: string,
    readonly run: RunFile | null,
  ) {
    super(message);
    this.name = 'RunError';
  }
}

export function validateConfig(config: RunRequest['config']): void {
  const intAtLeast = (flag: string, v: number | null, min: number): void => {
    if (v !== null && !(Number.isInteger(v) && v >= min)) throw new Error(`${flag} must be an integer ≥ ${min}, got ${v}`);
  };
  intAtLeast('--epochs', config.epochs, 1);
  intAtLeast('--batch-size', config.batchSize, 1);
  intAtLeast('--micro-batch', config.microBatch, 1);
  intAtLeast('--train-limit', config.trainLimit, 1);
  intAtLeast('--test-limit', config.testLimit, 1);
  intAtLeast('--seed', config.seed, 0);
  if (config.microBatch !== null && config.batchSize % config.microBatch !== 0) {
    throw new Error(`--micro-batch ${config.microBatch} must divide --batch-size ${config.batchSize}`);
  }
  if (!(Number.isFinite(config.lr) && config.lr > 0)) throw new Error(`--lr must be a positive number, got ${config.lr}`);
  const wd = config.weightDecay ?? 0;
  if (!(Number.isFinite(wd) && wd >= 0)) throw new Error(`--weight-decay must be a number ≥ 0, got ${wd}`);
  for (const e of config.lrDecayEpochs ?? []) intAtLeast('--lr-decay-epochs', e, 1);
  if (config.normalize && config.preprocess !== 'scale') throw new Error(`--normalize replaces --preprocess ${config.preprocess}: use one or the other`);
  const factor = config.lrDecayFactor ?? 0.1;
  if (!(factor > 0 && factor <= 1)) throw new Error(`--lr-decay-factor must be in (0, 1], got ${factor}`);
}

let cachedVersions: Record<string, string> | undefined;

function versions(backend: string): Record<string, string> {
  if (!cachedVersions) {
    const require = createRequire(import.meta.url);
    const pkg = require(join(packageRoot(), 'package.json')) as { version: string };
    cachedVersions = { selab: pkg.version, tfjs: tf.version_core, node: process.version };
  }
  const dnnl = backend === 'onednn' ? loadAddon()?.info() : undefined;
  return { ...cachedVersions, backend, ...(dnnl ? { dnnl: dnnl.dnnl, threads: String(dnnl.threads) } : {}) };
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: packageRoot(), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || null;
  } catch {
    return null;
  }
}

function describeBatchNorm(model: tfl.LayersModel, batchSize: number, microBatch: number): string {
  const hasBN = model.layers.some(function bn(l): boolean {
    const nested = l as tfl.LayersModel;
    return l.getClassName() === 'BatchNormalization' || (Array.isArray(nested.layers) && nested.layers.some(bn));
  });
  if (!hasBN) return 'none (the model has no BatchNormalization)';
  return microBatch === batchSize
    ? `per batch of ${batchSize} images`
    : `per micro-batch of ${microBatch} images (gradients accumulated over ${batchSize / microBatch} micro-batches per step of ${batchSize})`;
}

/** The training and test batches of one epoch as loop batches, preprocessed as configured. */
async function* asLoopBatches(source: AsyncGenerator<DataBatch>, preprocess: PreprocessMode): AsyncGenerator<Batch> {
  for await (const b of source) {
    if (preprocess === 'scale') {
      yield { xs: b.xs, ys: b.ys };
    } else {
      const xs = preprocessTensor(preprocess, b.xs);
      b.xs.dispose();
      yield { xs, ys: b.ys };
    }
  }
}

function checkResumable(savedConfig: RunConfig, wantedConfig: RunRequest['config'], dir: string): void {
  const saved = withDefaults(savedConfig);
  const wanted = withDefaults(wantedConfig);
  const diffs: string[] = [];
  for (const key of Object.keys(saved) as (keyof RunConfig)[]) {
    if (RESUMABLE_CHANGES.includes(key) || key === 'microBatch') continue;
    if (JSON.stringify(saved[key] ?? null) !== JSON.stringify(wanted[key] ?? null)) {
      diffs.push(`${key}: ${JSON.stringify(wanted[key])} (the run has ${JSON.stringify(saved[key])})`);
    }
  }
  if (wanted.microBatch !== null && wanted.microBatch !== saved.microBatch) {
    diffs.push(`microBatch: ${wanted.microBatch} (the run has ${saved.microBatch})`);
  }
  if (diffs.length > 0) {
    throw new Error(
      `cannot resume ${dir} with a different configuration: ${diffs.join('; ')}. ` +
        `Only ${RESUMABLE_CHANGES.join(', ')} may change on --resume; start a new run with another --out instead`,
    );
  }
}

/**
 * Trains one run to completion (or to its first failure) and returns its final run file. Errors
 * are thrown as RunError after run.json has been marked failed or stopped.
 */
export async function runTraining(req: RunRequest): Promise<RunFile> {
  validateConfig(req.config);
  const dir = join(req.out, req.id);
  const progress = req.progress ?? silentProgress;
  const label = req.label ?? req.id;
  const hasRunFile = await exists(join(dir, RUN_FILE));
  if (hasRunFile && !req.resume) {
    throw new Error(`${dir} already holds a run (${RUN_FILE}); pass --resume to continue it, or choose another --out`);
  }
  const previous = hasRunFile ? await readRunFile(dir) : null;
  const checkpoint = req.resume ? await findCheckpoint(dir) : null;
  if (previous && checkpoint) checkResumable(previous.config, req.config, dir);

  const model = await withSeededRandom(req.config.seed, () => req.buildModel({ restoring: checkpoint !== null }));
  const microBatch = req.config.microBatch ?? (checkpoint && previous ? previous.config.microBatch : chooseMicroBatch(model, req.config.batchSize, req.memoryBudget ?? defaultMemoryBudget(tf.getBackend())));
  const config: RunConfig = withDefaults({ ...req.config, microBatch });
  const lrAt = (epoch: number): number => stepLr(config.lr, epoch, config.lrDecayEpochs ?? [], config.lrDecayFactor ?? 0.1);
  const optimizer = makeOptimizer({ name: config.optimizer as OptimizerName, lr: config.lr, ...(config.momentum !== null ? { momentum: config.momentum } : {}) });

  let rows: HistoryRow[] = [];
  if (checkpoint) {
    const state = await loadCheckpoint(checkpoint, model, optimizer);
    rows = state.rows;
    if (state.rng.seed !== config.seed) throw new Error(`${checkpoint}: saved with seed ${state.rng.seed}, this run has --seed ${config.seed}`);
  }

  const now = new Date().toISOString();
  let run: RunFile = {
    version: 1,
    id: req.id,
    ...req.meta,
    config,
    batchNormStatistics: describeBatchNorm(model, config.batchSize, microBatch),
    params: countParams(model),
    trainableParams: trainableParams(model),
    macs: macsPerImage(model),
    versions: versions(config.backend),
    gitCommit: gitCommit(),
    startedAt: checkpoint && previous ? previous.startedAt : now,
    endedAt: null,
    resumes: checkpoint && previous ? [...(previous.resumes ?? []), { at: now, fromEpoch: rows.length }] : [],
    status: 'running',
    error: null,
    ...summarizeRows(rows),
  };

  const trainData = new BatchIterator(req.train, {
    batchSize: microBatch,
    seed: config.seed,
    upsample: config.upsample,
    augment: config.augment,
    ...(config.normalize ? { normalize: config.normalize } : {}),
    ...(config.trainLimit !== null ? { limit: config.trainLimit } : {}),
  });
  const testData = new BatchIterator(req.test, {
    batchSize: microBatch,
    shuffle: false,
    upsample: config.upsample,
    ...(config.normalize ? { normalize: config.normalize } : {}),
    ...(config.testLimit !== null ? { limit: config.testLimit } : {}),
  });
  const preprocess = config.preprocess as PreprocessMode;

  const finish = async (status: RunFile['status'], error: string | null): Promise<void> => {
    run = { ...run, status, error, endedAt: new Date().toISOString() };
    await writeRunFile(dir, run);
  };

  await mkdir(dir, { recursive: true });
  await writeRunFile(dir, run);
  if (checkpoint) await writeHistory(dir, rows);
  progress.log(
    `${label}: ${req.meta.name}, ${run.params.toLocaleString('en-US')} params, batch ${config.batchSize} as ${config.batchSize / microBatch} × ${microBatch}, ` +
      `${trainData.count} train / ${testData.count} test images, ${config.optimizer} lr ${config.lr}` +
      (config.lrDecayEpochs?.length ? ` ×${config.lrDecayFactor} after epoch${config.lrDecayEpochs.length > 1 ? 's' : ''} ${config.lrDecayEpochs.join(', ')}` : '') +
      (config.weightDecay ? `, weight decay ${config.weightDecay}` : '') +
      (config.normalize ? ', normalised' : '') +
      `, backend ${config.backend}` +
      (rows.length > 0 ? `, resuming after epoch ${rows.length}` : ''),
  );

  let tensorsAfterEpoch: number | null = null;
  try {
    for (let epoch = rows.length + 1; epoch <= config.epochs; epoch++) {
      const t0 = performance.now();
      const lr = lrAt(epoch);
      setLearningRate(optimizer, lr);
      progress.startEpoch(`${label} epoch ${epoch}/${config.epochs}`, Math.ceil(trainData.count / config.batchSize));
      const trained = await trainEpoch({
        model,
        optimizer,
        batches: asLoopBatches(trainData.epoch(epoch), preprocess),
        images: trainData.count,
        batchSize: config.batchSize,
        weightDecay: config.weightDecay ?? 0,
        onStep: (info) => progress.step(info),
        ...(req.signal ? { signal: req.signal } : {}),
      });
      const tested = await evaluate(model, asLoopBatches(testData.epoch(epoch), preprocess));
      const row: HistoryRow = {
        epoch,
        loss: trained.loss,
        acc: trained.acc,
        val_loss: tested.loss,
        val_acc: tested.acc,
        lr,
        seconds: (performance.now() - t0) / 1000,
        imagesPerSecond: trained.images / trained.seconds,
      };
      rows = [...rows, row];
      await saveCheckpoint(dir, model, optimizer, { epoch, rng: { seed: config.seed, nextEpoch: epoch + 1 }, rows });
      await writeHistory(dir, rows);
      run = { ...run, ...summarizeRows(rows) };
      await writeRunFile(dir, run);
      progress.endEpoch(
        `${label} epoch ${epoch}/${config.epochs}: loss ${row.loss.toFixed(4)} acc ${row.acc.toFixed(4)} ` +
          `val_loss ${row.val_loss.toFixed(4)} val_acc ${row.val_acc.toFixed(4)} ` +
          `${row.imagesPerSecond.toFixed(1)} img/s ${formatDuration(row.seconds)}`,
      );
      // The optimizer creates its slots in the first epoch; after that the count must stay put.
      const tensors = tf.memory().numTensors;
      if (tensorsAfterEpoch !== null && tensors > tensorsAfterEpoch && process.env.SELAB_DEBUG) {
        throw new Error(`tensor leak: ${tensors - tensorsAfterEpoch} more live tensors after epoch ${epoch} than after the one before`);
      }
      tensorsAfterEpoch = tensors;
    }
    await finish('completed', null);
    return run;
  } catch (e) {
    const last = rows.length;
    const kept = last > 0 ? `the checkpoint of epoch ${last} is kept in ${join(dir, 'checkpoint')}` : 'no epoch had completed, so there is no checkpoint';
    if (e instanceof NonFiniteLossError) {
      const message = `epoch ${last + 1}: ${e.message}; training stopped, ${kept}. Try a lower --lr, then --resume`;
      await finish('failed', message);
      throw new RunError(message, run);
    }
    if ((e as Error).name === 'AbortError') {
      const message = `stopped by the user during epoch ${last + 1}; ${kept}. Continue with --resume`;
      await finish('stopped', message);
      throw new RunError(message, run);
    }
    const message = `epoch ${last + 1}: ${(e as Error).message}`;
    await finish('failed', message).catch(() => undefined);
    throw new RunError(message, run);
  } finally {
    await trainData.close();
    await testData.close();
    optimizer.dispose();
    model.dispose();
  }
}

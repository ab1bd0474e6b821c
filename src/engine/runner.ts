// One training run end to end: build the model, continue from its checkpoint when asked, then
// train epoch by epoch with validation on the test split. Everything else a run does (its files,
// its progress lines, the NaN guard, the leak check) is a callback (src/engine/callbacks/).
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { join } from 'node:path';
import { BatchIterator, type Batch as DataBatch } from '../data/batches.js';
import type { Split } from '../data/format.js';
import { preprocessTensor, type PreprocessMode } from '../data/preprocess.js';
import { countParams, macsPerImage, trainableParams } from '../models/summary.js';
import type { Environment, TrainConfig } from '../runs/config.js';
import { summarizeRows, type HistoryRow, type RunDescription, type RunFile } from '../runs/files.js';
import { callHook, type Callback, type TrainContext, type TrainEnd } from './callbacks.js';
import { leakCheck } from './callbacks/leak-check.js';
import { nanGuard, NonFiniteLossError } from './callbacks/nan-guard.js';
import { progressLog } from './callbacks/progress-log.js';
import { runFiles } from './callbacks/run-files.js';
import { loadCheckpoint } from './checkpoint.js';
import { evaluate, trainEpoch, type Batch } from './loop.js';
import { chooseMicroBatch, defaultMemoryBudget } from './microbatch.js';
import { makeOptimizer, setLearningRate, type OptimizerName } from './optimizers.js';
import { silentProgress, type ProgressSink } from './progress.js';
import { openRun } from './resume.js';
import { referenceValidationWindows, replicaView, validationSeed } from './protocol.js';
import { describeBatchNorm, gitCommit, versions } from './run-metadata.js';
import { stepLr } from './schedule.js';
import { withSeededRandom } from './seed.js';

export interface RunRequest {
  /** Output folder (`--out`) and the run's folder below it, e.g. `case_1`. */
  out: string;
  id: string;
  describe: RunDescription;
  config: TrainConfig;
  environment: Environment;
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
  /** Called after the standard callbacks (run files, progress, NaN guard, leak check). */
  callbacks?: readonly Callback[];
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

interface Iterators {
  trainData: BatchIterator;
  /** The whole test split (--test-limit images), in order. */
  testData: BatchIterator;
  /** The reference protocol's validation subset, reshuffled each epoch; null under keras (the validation is testData). */
  validationData: BatchIterator | null;
}

/**
 * The epoch's batches. Under the reference protocol an epoch trains on floor(N / batch) whole
 * batches of a new permutation (the remainder unused that epoch), and validates on the first
 * eighth of each of floor(test / batch) batches of a new permutation of the test split.
 */
function batchIterators(config: TrainContext['config'], train: Split, test: Split): Iterators {
  const common = { batchSize: config.microBatch, upsample: config.upsample, ...(config.normalize ? { normalize: config.normalize } : {}) };
  const testLimit = config.testLimit !== null ? { limit: config.testLimit } : {};
  const reference = config.protocol === 'reference';
  const wholeBatches = (split: Split, limit: number | null, what: string): { size: number; use: number } => {
    const images = Math.min(limit ?? split.count, split.count);
    if (images < config.batchSize) throw new Error(`--protocol reference uses whole batches of ${config.batchSize}, and the ${what} has only ${images} images: lower --batch-size or use --protocol keras`);
    return { size: config.batchSize, use: config.batchSize };
  };
  return {
    trainData: new BatchIterator(train, {
      ...common, seed: config.seed, augment: config.augment,
      ...(config.trainLimit !== null ? { limit: config.trainLimit } : {}),
      ...(reference ? { windows: wholeBatches(train, config.trainLimit, 'training split') } : {}),
    }),
    testData: new BatchIterator(test, { ...common, shuffle: false, ...testLimit }),
    validationData: reference
      ? (wholeBatches(test, config.testLimit, 'test split'), new BatchIterator(test, { ...common, seed: validationSeed(config.seed), windows: referenceValidationWindows(config.batchSize), ...testLimit }))
      : null,
  };
}

/**
 * The message run.json and the caller get for an error that ended training in `epoch`; `saved` is
 * the last epoch whose checkpoint and run files were written (an epoch whose checkpoint failed is
 * not one of them).
 */
function endOf(e: unknown, epoch: number, saved: number, dir: string): TrainEnd {
  const kept = saved > 0 ? `the checkpoint of epoch ${saved} is kept in ${join(dir, 'checkpoint')}` : 'no epoch had completed, so there is no checkpoint';
  if (e instanceof NonFiniteLossError) return { status: 'failed', error: `epoch ${epoch}: ${e.message}; training stopped, ${kept}. Try a lower --lr, then --resume` };
  if ((e as Error).name === 'AbortError') return { status: 'stopped', error: `stopped by the user during epoch ${epoch}; ${kept}. Continue with --resume` };
  return { status: 'failed', error: `epoch ${epoch}: ${(e as Error).message}; ${kept}` };
}

/** run.json at the start: the run's description, configuration, size and provenance. */
function newRunFile(req: RunRequest, config: TrainContext['config'], model: tfl.LayersModel, resumed: RunFile | null, rows: HistoryRow[]): RunFile {
  const now = new Date().toISOString();
  const batchNorm = describeBatchNorm(model, config.batchSize, config.microBatch, replicaView(config));
  return {
    version: 1,
    id: req.id,
    ...req.describe,
    config,
    environment: req.environment,
    batchNormStatistics: batchNorm.text,
    batchNormGroup: batchNorm.group,
    params: countParams(model),
    trainableParams: trainableParams(model),
    macs: macsPerImage(model),
    versions: versions(req.environment.backend),
    gitCommit: gitCommit(),
    startedAt: resumed ? resumed.startedAt : now,
    endedAt: null,
    resumes: resumed ? [...(resumed.resumes ?? []), { at: now, fromEpoch: rows.length }] : [],
    status: 'running',
    error: null,
    ...summarizeRows(rows, config.validation),
  };
}

interface EpochInputs extends Iterators {
  preprocess: PreprocessMode;
  callbacks: readonly Callback[];
  signal?: AbortSignal;
}

/** One epoch of training at its scheduled lr, then validation: the epoch's history row. */
async function trainAndValidate(epoch: number, ctx: TrainContext, io: EpochInputs): Promise<HistoryRow> {
  const { model, optimizer, config } = ctx;
  const replicas = replicaView(config);
  const t0 = performance.now();
  const lr = stepLr(config.lr, epoch, config.lrDecayEpochs, config.lrDecayFactor);
  setLearningRate(optimizer, lr);
  const trained = await trainEpoch({
    model,
    optimizer,
    batches: asLoopBatches(io.trainData.epoch(epoch), io.preprocess),
    images: io.trainData.perEpoch,
    batchSize: config.batchSize,
    weightDecay: config.weightDecay,
    ...(replicas ? { replicas } : {}),
    onStep: (info) => {
      for (const cb of io.callbacks) cb.onStep?.(info, ctx);
    },
    ...(io.signal ? { signal: io.signal } : {}),
  });
  const tested = await evaluate(model, asLoopBatches(io.testData.epoch(epoch), io.preprocess));
  const validated = io.validationData ? await evaluate(model, asLoopBatches(io.validationData.epoch(epoch), io.preprocess)) : tested;
  return {
    epoch,
    loss: trained.loss,
    acc: trained.acc,
    val_loss: validated.loss,
    val_acc: validated.acc,
    test_loss: tested.loss,
    test_acc: tested.acc,
    lr,
    seconds: (performance.now() - t0) / 1000,
    imagesPerSecond: trained.images / trained.seconds,
  };
}

/**
 * Trains one run to completion (or to its first failure) and returns its final run file. Errors
 * are thrown as RunError after run.json has been marked failed or stopped.
 */
export async function runTraining(req: RunRequest): Promise<RunFile> {
  const dir = join(req.out, req.id);
  const { previous, checkpoint } = await openRun(dir, req.resume, req.config);
  if (previous && checkpoint && previous.status === 'completed' && previous.epochsCompleted >= req.config.epochs) return previous;

  const model = await withSeededRandom(req.config.seed, () => req.buildModel({ restoring: checkpoint !== null }));
  const microBatch =
    req.config.microBatch ??
    (checkpoint && previous ? previous.config.microBatch : null) ??
    chooseMicroBatch(model, req.config.batchSize, req.memoryBudget ?? defaultMemoryBudget(tf.getBackend()));
  const config = { ...req.config, microBatch };
  const optimizer = makeOptimizer({ name: config.optimizer as OptimizerName, lr: config.lr, ...(config.momentum !== null ? { momentum: config.momentum } : {}) });

  let rows: HistoryRow[] = [];
  if (checkpoint) {
    const state = await loadCheckpoint(checkpoint, model, optimizer);
    rows = state.rows;
    if (state.rng.seed !== config.seed) throw new Error(`${checkpoint}: saved with seed ${state.rng.seed}, this run has --seed ${config.seed}`);
  }

  const iterators = batchIterators(config, req.train, req.test);
  const { trainData, testData } = iterators;
  const ctx: TrainContext = {
    dir,
    label: req.label ?? req.id,
    config,
    model,
    optimizer,
    trainImages: trainData.perEpoch,
    testImages: testData.count,
    stepsPerEpoch: Math.ceil(trainData.perEpoch / config.batchSize),
    rows,
    run: newRunFile(req, config, model, checkpoint !== null ? previous : null, rows),
  };
  const callbacks: Callback[] = [runFiles, progressLog(req.progress ?? silentProgress, req.describe.name), nanGuard, leakCheck(), ...(req.callbacks ?? [])];
  const preprocess = config.preprocess as PreprocessMode;

  let epoch = rows.length + 1;
  try {
    await callHook(callbacks, 'onTrainBegin', ctx);
    for (; epoch <= config.epochs; epoch++) {
      for (const cb of callbacks) cb.onEpochBegin?.(epoch, ctx);
      const row = await trainAndValidate(epoch, ctx, { ...iterators, preprocess, callbacks, ...(req.signal ? { signal: req.signal } : {}) });
      ctx.rows = [...ctx.rows, row];
      await callHook(callbacks, 'onEpochEnd', row, ctx);
    }
    await callHook(callbacks, 'onTrainEnd', { status: 'completed', error: null }, ctx);
    return ctx.run;
  } catch (e) {
    const end = endOf(e, Math.min(epoch, config.epochs), ctx.run.epochsCompleted, dir);
    await callHook(callbacks, 'onTrainEnd', end, ctx).catch(() => undefined);
    throw new RunError(end.error!, ctx.run);
  } finally {
    await trainData.close();
    await testData.close();
    await iterators.validationData?.close();
    optimizer.dispose();
    model.dispose();
  }
}


// Running a sweep: every (point, repeat) is an ordinary run in its own folder, trained by the
// runner's single-run function; a sweep only decides which runs exist, skips the completed
// ones, and continues the interrupted ones when asked to (--resume).
import { relative, resolve, sep } from 'node:path';
import { selectBackend } from '../backend/select.js';
import { loadCifar10 } from '../data/cifar.js';
import { SE_INTEGRATIONS } from '../models/resnet.js';
import { SQUEEZE_MODES } from '../attention/squeeze-excitation.js';
import { CIFAR10_NORMALIZE, DEFAULT_OUT, DEFAULT_SEED, parseBackend, parseOverrides, type TrainFlags } from './run-cases.js';
import { makeProgress, type ProgressSink } from '../engine/progress.js';
import { readRunFile, type RunFile } from '../runs/files.js';
import { stepLr } from '../engine/schedule.js';
import { RunError, runTraining, validateConfig, type RunRequest } from '../engine/runner.js';
import {
  checkSweepName, parseGates, parseIntegrations, parseRatios, parseSqueezes, pointParams, repeatSeed,
  scaledDecayEpochs, SE_CIFAR_RECIPE, SWEEP_GATES, SWEEP_RATIOS, sweepModel, sweepPoints, sweepRunDir,
  type SweepGrid, type SweepModel, type SweepPoint,
} from './sweep-plan.js';

export interface SweepSpec {
  name: string;
  model: string;
  residual: boolean;
  grid: SweepGrid;
  /** Include the point without SE that every SE point is compared with. */
  baseline: boolean;
  repeats: number;
  /** Seed of repeat 1; repeat k uses seed + k − 1 at every point. */
  seed: number;
  out: string;
}

export interface SweepJob {
  point: SweepPoint;
  /** 1-based repeat index (the folder seed_<k>). */
  repeat: number;
  seed: number;
  dir: string;
  /** run.json `id`: the folder relative to OUT. */
  id: string;
  sweep: NonNullable<RunFile['sweep']>;
}

export function sweepJobs(spec: SweepSpec): SweepJob[] {
  if (!(Number.isInteger(spec.repeats) && spec.repeats >= 1)) throw new Error(`--repeats must be a positive integer, got ${spec.repeats}`);
  if (!Number.isInteger(spec.seed)) throw new Error(`--seed must be an integer, got ${spec.seed}`);
  const points = sweepPoints(spec.grid, { residual: spec.residual, baseline: spec.baseline });
  if (points.length === 0) throw new Error('the sweep has no points: give at least one SE setting or keep the baseline');
  const jobs: SweepJob[] = [];
  for (const point of points) {
    for (let k = 1; k <= spec.repeats; k++) {
      const dir = sweepRunDir(spec.out, spec.name, point.id, k);
      const seed = repeatSeed(spec.seed, k);
      jobs.push({
        point, repeat: k, seed, dir,
        id: relative(spec.out, dir).split(sep).join('/'),
        sweep: { name: spec.name, point: point.id, params: pointParams(point), seed },
      });
    }
  }
  return jobs;
}

export type JobState = { state: 'new' } | { state: 'completed'; run: RunFile } | { state: 'unfinished'; run: RunFile };

/** A run is complete once it has trained all `epochs` (one completed with fewer, then given more, is not). */
export async function jobState(job: SweepJob, epochs: number): Promise<JobState> {
  let run: RunFile;
  try {
    run = await readRunFile(job.dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'new' };
    throw e;
  }
  if (run.sweep?.name !== job.sweep.name || run.sweep.point !== job.sweep.point || run.sweep.seed !== job.seed) {
    throw new Error(`${job.dir}/run.json belongs to another run (sweep ${JSON.stringify(run.sweep)}); expected sweep ${job.sweep.name}, point ${job.sweep.point}, seed ${job.seed}`);
  }
  return run.status === 'completed' && run.epochsCompleted >= epochs ? { state: 'completed', run } : { state: 'unfinished', run };
}

export interface SweepHooks {
  /** Trains one run into job.dir: a new run (previous null), or continues the one there. */
  train(job: SweepJob, previous: RunFile | null): Promise<void>;
  log(message: string): void;
  /** True once the user asked to stop (Ctrl-C): no further run starts. */
  stopped?(): boolean;
}

export interface SweepOutcome {
  trained: number;
  skipped: number;
  failed: { job: SweepJob; error: string }[];
}

/**
 * Runs the jobs in order. Completed runs are skipped; an unfinished one is an error unless
 * `resume`, which continues it from its last checkpoint. A run that fails while training (a NaN
 * loss, say) is marked failed in its own run.json by the runner and the sweep goes on, since other
 * points may still train; an error before training starts (bad configuration) or a stop request
 * ends the sweep.
 */
export async function runSweep(jobs: readonly SweepJob[], options: { resume: boolean; epochs: number }, hooks: SweepHooks): Promise<SweepOutcome> {
  const states = await Promise.all(jobs.map((j) => jobState(j, options.epochs)));
  const unfinished = jobs.filter((_, i) => states[i]!.state === 'unfinished');
  if (unfinished.length && !options.resume) {
    throw new Error(
      `${unfinished.length} run${unfinished.length === 1 ? '' : 's'} of this sweep already started and did not complete (${unfinished.slice(0, 3).map((j) => j.dir).join(', ')}${unfinished.length > 3 ? ', …' : ''}): pass --resume to continue ${unfinished.length === 1 ? 'it' : 'them'}`,
    );
  }
  const outcome: SweepOutcome = { trained: 0, skipped: 0, failed: [] };
  for (const [i, job] of jobs.entries()) {
    const state = states[i]!;
    const label = `[${i + 1}/${jobs.length}] ${job.point.id} seed_${job.repeat} (seed ${job.seed})`;
    if (state.state === 'completed') {
      outcome.skipped++;
      hooks.log(`${label}: already completed, skipped`);
      continue;
    }
    hooks.log(`${label}: ${state.state === 'unfinished' ? `resuming after epoch ${state.run.epochsCompleted}` : 'training'} → ${job.dir}`);
    try {
      await hooks.train(job, state.state === 'unfinished' ? state.run : null);
      outcome.trained++;
    } catch (e) {
      if (!(e instanceof RunError) || hooks.stopped?.()) throw e;
      outcome.failed.push({ job, error: e.message });
      hooks.log(`${label}: failed: ${e.message}`);
    }
    if (hooks.stopped?.()) break;
  }
  return outcome;
}

// ---- the `selab sweep` command: flags → runs ---------------------------------------------------

/** Training recipes a sweep can start from; flags override any field. */
export const SWEEP_PRESETS = {
  /**
   * The SE paper's CIFAR recipe: SGD momentum 0.9, lr 0.1 divided by 10 after epochs 82 and 123
   * (scaled to --epochs), weight decay 1e-4, batch 128, 164 epochs, pad-4 + random-crop + flip
   * augmentation, per-channel mean/std normalisation.
   */
  'se-cifar': {
    epochs: SE_CIFAR_RECIPE.epochs, batchSize: SE_CIFAR_RECIPE.batchSize, optimizer: 'sgd-momentum',
    lr: SE_CIFAR_RECIPE.lr, momentum: SE_CIFAR_RECIPE.momentum, augment: SE_CIFAR_RECIPE.augment, lrDecay: true,
    weightDecay: SE_CIFAR_RECIPE.weightDecay, normalize: SE_CIFAR_RECIPE.normalize,
  },
  /** The reference study's from-scratch training (cases 1–2): Adam 1e-3, batch 1024, 100 epochs, no augmentation. */
  reference: { epochs: 100, batchSize: 1024, optimizer: 'adam', lr: 1e-3, momentum: null, augment: false, lrDecay: false, weightDecay: 0, normalize: false },
} as const;
export type SweepPresetId = keyof typeof SWEEP_PRESETS;
export const SWEEP_PRESET_IDS = Object.keys(SWEEP_PRESETS) as SweepPresetId[];

export interface SweepFlags extends TrainFlags {
  model: string;
  name?: string;
  ratio?: string;
  gate?: string;
  squeeze?: string;
  integration?: string;
  baseline?: boolean;
  repeats?: string;
  preset?: string;
}

/** `all` means the SE paper's values for that dimension. */
function gridFrom(flags: SweepFlags): SweepGrid {
  const all = (v: string | undefined) => v?.trim() === 'all';
  return {
    ratio: all(flags.ratio) ? [...SWEEP_RATIOS] : parseRatios(flags.ratio ?? '16'),
    gate: all(flags.gate) ? [...SWEEP_GATES] : parseGates(flags.gate ?? 'sigmoid'),
    squeeze: all(flags.squeeze) ? [...SQUEEZE_MODES] : parseSqueezes(flags.squeeze ?? 'avg'),
    integration: all(flags.integration) ? [...SE_INTEGRATIONS] : parseIntegrations(flags.integration ?? 'standard'),
  };
}

export interface PlannedSweep {
  spec: SweepSpec;
  model: SweepModel;
  preset: SweepPresetId;
  config: RunRequest['config'];
  jobs: SweepJob[];
}

/** Every check that needs neither data nor a backend; writes nothing. */
export function planSweep(flags: SweepFlags): PlannedSweep {
  const model = sweepModel(flags.model);
  if (!model.residual && flags.integration !== undefined && flags.integration !== 'standard') {
    throw new Error(`--integration: ${model.name} has no residual units, so SE has one place in it; --integration applies to resnet*, preresnet* and wrn* models`);
  }
  if (flags.weights !== undefined && flags.weights !== 'none') throw new Error(`--weights: sweep models train from scratch (got ${JSON.stringify(flags.weights)}; only "none")`);
  const preset = (flags.preset ?? 'se-cifar') as SweepPresetId;
  if (!SWEEP_PRESET_IDS.includes(preset)) throw new Error(`--preset ${JSON.stringify(flags.preset)}: expected one of ${SWEEP_PRESET_IDS.join(', ')}`);
  const repeats = flags.repeats === undefined ? 1 : Number(flags.repeats);
  if (!(/^\d+$/.test((flags.repeats ?? '1').trim()) && repeats >= 1)) throw new Error(`--repeats ${JSON.stringify(flags.repeats)}: expected an integer ≥ 1`);
  const overrides = parseOverrides(flags);
  const p = SWEEP_PRESETS[preset];
  const config: RunRequest['config'] = {
    epochs: overrides.epochs ?? p.epochs,
    batchSize: overrides.batchSize ?? p.batchSize,
    microBatch: overrides.microBatch ?? null,
    optimizer: overrides.optimizer?.name ?? p.optimizer,
    lr: overrides.lr ?? overrides.optimizer?.lr ?? p.lr,
    momentum: overrides.optimizer ? overrides.optimizer.momentum : p.momentum,
    upsample: 1,
    inputShape: [32, 32, 3],
    trainLimit: overrides.trainLimit ?? null,
    testLimit: overrides.testLimit ?? null,
    seed: overrides.seed ?? DEFAULT_SEED,
    backend: '',
    data: '',
    weights: 'none',
    preprocess: overrides.preprocess ?? 'scale',
    // --no-augment and --no-normalize switch off the se-cifar preset's augmentation and normalisation.
    augment: flags.augment === false ? false : (overrides.augment ?? p.augment),
    normalize: (flags.normalize === false ? false : (overrides.normalize ?? p.normalize)) ? CIFAR10_NORMALIZE : null,
    weightDecay: overrides.weightDecay ?? p.weightDecay,
    lrDecayEpochs: overrides.lrDecayEpochs ?? (p.lrDecay ? scaledDecayEpochs(overrides.epochs ?? p.epochs) : []),
    lrDecayFactor: overrides.lrDecayFactor ?? SE_CIFAR_RECIPE.lrDecayFactor,
  };
  validateConfig({ ...config, backend: 'x', data: 'x' });
  const spec: SweepSpec = {
    name: checkSweepName(flags.name ?? flags.model),
    model: model.name,
    residual: model.residual,
    grid: gridFrom(flags),
    baseline: flags.baseline ?? true,
    repeats,
    seed: config.seed,
    out: flags.out ?? DEFAULT_OUT,
  };
  return { spec, model, preset, config, jobs: sweepJobs(spec) };
}

/** The lr of every epoch as constant stretches, e.g. "0.1 to epoch 82, 0.01 to epoch 123, 0.001 to epoch 164". */
export function describeLrSchedule(config: RunRequest['config']): string {
  const parts: string[] = [];
  for (let e = 1; e <= config.epochs; e++) {
    const lr = stepLr(config.lr, e, config.lrDecayEpochs ?? [], config.lrDecayFactor ?? 0.1);
    const next = e < config.epochs ? stepLr(config.lr, e + 1, config.lrDecayEpochs ?? [], config.lrDecayFactor ?? 0.1) : NaN;
    if (lr !== next) parts.push(`${lr} to epoch ${e}`);
  }
  return parts.join(', ');
}

export interface SweepRunOptions {
  progress?: ProgressSink;
  signal?: AbortSignal;
}

/** Loads the data, selects the backend, then trains every job of the plan as an ordinary run. */
export async function executeSweep(plan: PlannedSweep, flags: SweepFlags, options: SweepRunOptions = {}): Promise<SweepOutcome> {
  const progress = options.progress ?? makeProgress();
  const backend = await selectBackend(parseBackend(flags.backend));
  const data = flags.data ?? process.env.SELAB_DATA;
  const dataset = await loadCifar10({ ...(data !== undefined ? { data } : {}), ...(flags.verify === false ? { verify: false } : {}) });
  const dataSpec = data !== undefined && !/^[a-z][a-z0-9+.-]*:\/\//i.test(data) ? resolve(data) : dataset.source.spec;
  const config = { ...plan.config, backend, data: dataSpec };
  return runSweep(plan.jobs, { resume: flags.resume ?? false, epochs: plan.config.epochs }, {
    log: (m) => progress.log(m),
    stopped: () => options.signal?.aborted ?? false,
    train: async (job, previous) => {
      const se = job.point.se;
      await runTraining({
        out: plan.spec.out,
        id: job.id,
        meta: {
          case: null,
          name: `${plan.model.name} ${job.point.id}`,
          model: plan.model.name,
          additions: [],
          se: se !== null,
          seOptions: se ? { ...se } : null,
          training: 'scratch',
          sweep: job.sweep,
        },
        config: { ...config, seed: job.seed },
        buildModel: async () => plan.model.build(se, [32, 32, 3]),
        train: dataset.train,
        test: dataset.test,
        resume: previous !== null,
        progress,
        label: `${plan.spec.name}/${job.point.id}/seed_${job.repeat}`,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    },
  });
}

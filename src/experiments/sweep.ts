// Running a sweep: every (point, repeat) is an ordinary run in its own folder, trained by the
// runner's single-run function; a sweep only decides which runs exist, skips the completed
// ones, and continues the interrupted ones when asked to (--resume).
import { relative, sep } from 'node:path';
import { makeProgress } from '../engine/progress.js';
import { RunError } from '../engine/runner.js';
import { stepLr } from '../engine/schedule.js';
import { resolveConfig, type TrainConfig } from '../runs/config.js';
import { readRunFile, type RunFile } from '../runs/files.js';
import { openEnvironment, probeOut, trainPlanned, type Launch, type PlannedRun } from './plan.js';
import { trainingPreset } from './presets.js';
import { checkSweepName, pointParams, repeatSeed, sweepModel, sweepPoints, sweepRunDir, type SweepGrid, type SweepModel, type SweepPoint } from './sweep-plan.js';

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

export interface SweepRequest {
  model: string;
  /** Default: the model name. */
  name?: string;
  grid: SweepGrid;
  baseline: boolean;
  repeats: number;
  /** A training preset id of presets.ts (default se-cifar). */
  preset: string;
  overrides: Partial<TrainConfig>;
  out: string;
}

export interface PlannedSweep {
  spec: SweepSpec;
  model: SweepModel;
  preset: string;
  config: TrainConfig;
  jobs: SweepJob[];
}

/** Every check that needs neither data nor a backend; writes nothing. */
export function planSweep(req: SweepRequest): PlannedSweep {
  const model = sweepModel(req.model);
  if (!model.residual && (req.grid.integration.length !== 1 || req.grid.integration[0] !== 'standard')) {
    throw new Error(`--integration: ${model.name} has no residual units, so attention has one place in it; --integration applies to resnet*, preresnet* and wrn* models`);
  }
  if (req.overrides.weights !== undefined && req.overrides.weights !== 'none') {
    throw new Error(`--weights: sweep models train from scratch (got ${JSON.stringify(req.overrides.weights)}; only "none")`);
  }
  if (!(Number.isInteger(req.repeats) && req.repeats >= 1)) throw new Error(`--repeats must be an integer ≥ 1, got ${req.repeats}`);
  const config = resolveConfig(trainingPreset(req.preset, req.overrides.epochs, req.overrides.protocol), req.overrides);
  const spec: SweepSpec = {
    name: checkSweepName(req.name ?? req.model),
    model: model.name,
    residual: model.residual,
    grid: req.grid,
    baseline: req.baseline,
    repeats: req.repeats,
    seed: config.seed,
    out: req.out,
  };
  return { spec, model, preset: req.preset, config, jobs: sweepJobs(spec) };
}

/** The lr of every epoch as constant stretches, e.g. "0.1 to epoch 82, 0.01 to epoch 123, 0.001 to epoch 164". */
export function describeLrSchedule(config: TrainConfig): string {
  const parts: string[] = [];
  for (let e = 1; e <= config.epochs; e++) {
    const lr = stepLr(config.lr, e, config.lrDecayEpochs, config.lrDecayFactor);
    const next = e < config.epochs ? stepLr(config.lr, e + 1, config.lrDecayEpochs, config.lrDecayFactor) : NaN;
    if (lr !== next) parts.push(`${lr} to epoch ${e}`);
  }
  return parts.join(', ');
}

/**
 * One job of a sweep as a planned run: its folder, description and seed. `resume` continues the
 * run already in the folder (a new run when there is none).
 */
export function planSweepRun(plan: PlannedSweep, job: SweepJob, resume: boolean): PlannedRun {
  const attention = job.point.attention;
  return {
    id: job.id,
    label: `${plan.spec.name}/${job.point.id}/seed_${job.repeat}`,
    describe: {
      case: null,
      name: `${plan.model.name} ${job.point.id}`,
      model: plan.model.name,
      additions: [],
      se: attention?.kind === 'se',
      attention,
      training: 'scratch',
      sweep: job.sweep,
    },
    config: { ...plan.config, seed: job.seed },
    build: () => plan.model.build(job.point, [32, 32, 3]),
    resume,
  };
}

/** Loads the data, selects the backend, then trains every job of the plan as an ordinary run. */
export async function executeSweep(plan: PlannedSweep, launch: Launch): Promise<SweepOutcome> {
  const progress = launch.progress ?? makeProgress();
  await probeOut(plan.spec.out);
  const { environment, dataset } = await openEnvironment(launch.env);
  return runSweep(plan.jobs, { resume: launch.resume, epochs: plan.config.epochs }, {
    log: (m) => progress.log(m),
    stopped: () => launch.signal?.aborted ?? false,
    train: async (job, previous) => {
      await trainPlanned(planSweepRun(plan, job, previous !== null), { ...launch, out: plan.spec.out, progress }, environment, dataset);
    },
  });
}

// Running a sweep: every (point, repeat) is an ordinary run in its own folder, trained by the
// runner's single-run function; a sweep only decides which runs exist, skips the completed
// ones, and continues the interrupted ones when asked to (--resume).
import { relative, sep } from 'node:path';
import { NonFiniteLossError } from './loop.js';
import { readRunFile, type RunFile } from './runfiles.js';
import { pointParams, repeatSeed, sweepPoints, sweepRunDir, type SweepGrid, type SweepPoint } from './sweep-plan.js';

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

export async function jobState(job: SweepJob): Promise<JobState> {
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
  return run.status === 'completed' ? { state: 'completed', run } : { state: 'unfinished', run };
}

export interface SweepHooks {
  /** Trains one run into job.dir (a new run, or, with resume, continuing the one there). */
  train(job: SweepJob, resume: boolean): Promise<void>;
  log(message: string): void;
}

export interface SweepOutcome {
  trained: number;
  skipped: number;
  failed: { job: SweepJob; error: string }[];
}

/**
 * Runs the jobs in order. Completed runs are skipped; an unfinished one is an error unless
 * `resume`, which continues it from its last checkpoint. A run whose loss diverges (NaN or
 * infinite) is recorded and the sweep goes on, since other points may still train; any other
 * error (bad data, out of memory, a bug) stops the sweep, as it would stop every run after it.
 */
export async function runSweep(jobs: readonly SweepJob[], options: { resume: boolean }, hooks: SweepHooks): Promise<SweepOutcome> {
  const states = await Promise.all(jobs.map(jobState));
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
      await hooks.train(job, state.state === 'unfinished');
      outcome.trained++;
    } catch (e) {
      if (!(e instanceof NonFiniteLossError)) throw e;
      const error = e.message;
      outcome.failed.push({ job, error });
      hooks.log(`${label}: failed: ${error}`);
    }
  }
  return outcome;
}

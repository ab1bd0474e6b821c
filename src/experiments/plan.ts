// What every command that trains shares: the planned run (what to build, with which configuration,
// into which folder), the checks made before anything is written, the environment (backend and
// data), and running the plans one after the other.
import type * as tfl from '@tensorflow/tfjs-layers';
import { constants } from 'node:fs';
import { access, mkdir, readdir, rmdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { selectBackend, type BackendName } from '../backend/select.js';
import { loadCifar10, type Dataset } from '../data/cifar.js';
import type { Callback } from '../engine/callbacks.js';
import { makeProgress, type ProgressSink } from '../engine/progress.js';
import { nativeThreads } from '../engine/run-metadata.js';
import { RunError, runTraining } from '../engine/runner.js';
import { resolveWeights } from '../models/weights.js';
import type { ImagenetArch } from '../models/weights.js';
import type { Environment, TrainConfig } from '../runs/config.js';
import type { RunDescription, RunFile } from '../runs/files.js';

export interface PlannedRun {
  /** The run's folder below --out, e.g. case_1. */
  id: string;
  label: string;
  describe: RunDescription;
  config: TrainConfig;
  /** Builds the model; `loadBaseWeights` is set when the configuration names pretrained weights. */
  build: (loadBaseWeights: ((base: tfl.LayersModel) => Promise<void>) | undefined) => Promise<tfl.LayersModel>;
  /** Which file `--weights imagenet` means for this model. */
  imagenet?: ImagenetArch;
  /** Continue this run (sweeps decide per run; otherwise --resume). */
  resume?: boolean;
}

/** Where runs execute and what they read: chosen once for a command. */
export interface EnvironmentOptions {
  backend: BackendName;
  /** A folder, archive or URL; default $SELAB_DATA, else the official download. */
  data?: string;
  verify?: boolean;
}

export interface Launch {
  out: string;
  resume: boolean;
  env: EnvironmentOptions;
  progress?: ProgressSink;
  signal?: AbortSignal;
  /** Called after the runner's own callbacks (e.g. a queue worker's progress reports). */
  callbacks?: readonly Callback[];
}

export interface RunOutcome {
  id: string;
  run: RunFile | null;
  error: string | null;
}

/** The nearest folder above `path` that exists. */
async function existingAncestor(path: string): Promise<string> {
  let dir = resolve(path);
  for (;;) {
    try {
      await stat(dir);
      return dir;
    } catch {
      const up = dirname(dir);
      if (up === dir) return dir;
      dir = up;
    }
  }
}

/**
 * Fails before any write when --out is a file or cannot be created; returns whether it created
 * the folder (so that a command that then fails before writing a run can take it away again).
 */
export async function probeOut(out: string): Promise<boolean> {
  try {
    const s = await stat(out);
    if (!s.isDirectory()) throw new Error(`--out ${out}: exists and is not a folder`);
    return false;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      if ((e as Error).message.startsWith('--out')) throw e;
      throw new Error(`--out ${out}: cannot be used (${(e as Error).message})`, { cause: e });
    }
  }
  try {
    await mkdir(out, { recursive: true });
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const ancestor = await existingAncestor(out);
    // mkdir -p may report ENOENT on a read-only mount; asking the folder itself tells why.
    const denied = await access(ancestor, constants.W_OK).then(() => null, (err: NodeJS.ErrnoException) => err.code ?? 'EACCES');
    const why =
      code === 'EROFS' || denied === 'EROFS' ? `${ancestor} is on a read-only file system`
        : denied !== null || code === 'EACCES' || code === 'EPERM' ? `${ancestor} is not writable`
          : (code ?? (e as Error).message);
    throw new Error(`--out ${out}: cannot create the folder (${why})`, { cause: e });
  }
}

/** Removes `out` if it is an empty folder this command created. */
async function removeIfEmpty(out: string): Promise<void> {
  if ((await readdir(out).catch(() => ['?'])).length === 0) await rmdir(out).catch(() => undefined);
}

/** Selects the backend and loads CIFAR-10. */
export async function openEnvironment(env: EnvironmentOptions): Promise<{ environment: Environment; dataset: Dataset }> {
  const backend = await selectBackend(env.backend);
  const data = env.data ?? process.env.SELAB_DATA;
  const dataset = await loadCifar10({ ...(data !== undefined ? { data } : {}), ...(env.verify === false ? { verify: false } : {}) });
  const source = data !== undefined && !/^[a-z][a-z0-9+.-]*:\/\//i.test(data) ? resolve(data) : dataset.source.spec;
  return { environment: { backend, data: source, threads: nativeThreads(backend) }, dataset };
}

/** Trains one planned run; a restored run overwrites every weight, so it fetches no pretrained ones. */
export function trainPlanned(plan: PlannedRun, launch: Launch, environment: Environment, dataset: Dataset): Promise<RunFile> {
  return runTraining({
    out: launch.out,
    id: plan.id,
    describe: plan.describe,
    config: plan.config,
    environment,
    buildModel: async ({ restoring }) => {
      const load = restoring ? undefined : await resolveWeights(plan.config.weights, plan.imagenet ? { arch: plan.imagenet } : {});
      return plan.build(load);
    },
    train: dataset.train,
    test: dataset.test,
    resume: plan.resume ?? launch.resume,
    label: plan.label,
    ...(launch.progress ? { progress: launch.progress } : {}),
    ...(launch.signal ? { signal: launch.signal } : {}),
    ...(launch.callbacks ? { callbacks: launch.callbacks } : {}),
  });
}

/**
 * Trains the plans one after the other. A run that fails (e.g. a NaN loss) is reported and the
 * next one still runs; a stop request ends them all.
 */
export async function executeRuns(plans: readonly PlannedRun[], launch: Launch): Promise<RunOutcome[]> {
  const created = await probeOut(launch.out);
  const progress = launch.progress ?? makeProgress();
  const outcomes: RunOutcome[] = [];
  try {
    const { environment, dataset } = await openEnvironment(launch.env);
    for (const plan of plans) {
      try {
        outcomes.push({ id: plan.id, run: await trainPlanned(plan, { ...launch, progress }, environment, dataset), error: null });
      } catch (e) {
        const message = (e as Error).message;
        progress.log(`${plan.label}: ${message}`);
        outcomes.push({ id: plan.id, run: e instanceof RunError ? e.run : null, error: message });
        if (launch.signal?.aborted) break;
      }
    }
  } finally {
    // A run that failed before writing anything (a bad weights file, say) leaves no empty --out.
    if (created) await removeIfEmpty(launch.out);
  }
  return outcomes;
}

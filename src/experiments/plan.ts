// What every command that trains shares: the planned run (what to build, with which configuration,
// into which folder), the checks made before anything is written, the environment (backend and
// data), and running the plans one after the other.
import type * as tfl from '@tensorflow/tfjs-layers';
import { mkdir, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { selectBackend, type BackendName } from '../backend/select.js';
import { loadCifar10, type Dataset } from '../data/cifar.js';
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
}

export interface RunOutcome {
  id: string;
  run: RunFile | null;
  error: string | null;
}

/** Fails before any write when --out is a file or cannot be created. */
export async function probeOut(out: string): Promise<void> {
  try {
    const s = await stat(out);
    if (!s.isDirectory()) throw new Error(`--out ${out}: exists and is not a folder`);
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      if ((e as Error).message.startsWith('--out')) throw e;
      throw new Error(`--out ${out}: cannot be used (${(e as Error).message})`, { cause: e });
    }
  }
  try {
    await mkdir(out, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EROFS' ? 'the file system is read-only' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (code ?? (e as Error).message);
    throw new Error(`--out ${out}: cannot create the folder (${why})`, { cause: e });
  }
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
  });
}

/**
 * Trains the plans one after the other. A run that fails (e.g. a NaN loss) is reported and the
 * next one still runs; a stop request ends them all.
 */
export async function executeRuns(plans: readonly PlannedRun[], launch: Launch): Promise<RunOutcome[]> {
  await probeOut(launch.out);
  const progress = launch.progress ?? makeProgress();
  const { environment, dataset } = await openEnvironment(launch.env);
  const outcomes: RunOutcome[] = [];
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
  return outcomes;
}

// `selab train --case N` and `selab run --cases LIST`: turn flags and a reference case's preset
// into a run, check everything that can be checked before any file is written, then train.
import { mkdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BACKEND_NAMES, selectBackend, type BackendName } from '../backend/select.js';
import { loadCifar10 } from '../data/cifar.js';
import { CIFAR10_MEAN, CIFAR10_STD } from '../data/batches.js';
import { parsePreprocess } from '../data/preprocess.js';
import { buildCaseModel, CASES, getCase, type ReferenceCase } from './cases.js';
import { imagenetArchFor, resolveWeights } from '../models/weights.js';
import { getOptimizerPreset } from '../engine/optimizers.js';
import { makeProgress, type ProgressSink } from '../engine/progress.js';
import { parseCaseList } from './ranges.js';
import { readRunFile, RUN_FILE, type RunConfig, type RunFile } from '../runs/files.js';
import { RunError, runTraining, validateConfig, type RunRequest } from '../engine/runner.js';
import { parseDecayEpochs, parseDecayFactor } from '../engine/schedule.js';

/** The flags as commander gives them: undefined when not given. */
export interface TrainFlags {
  epochs?: string;
  batchSize?: string;
  microBatch?: string;
  optimizer?: string;
  lr?: string;
  trainLimit?: string;
  testLimit?: string;
  seed?: string;
  backend?: string;
  data?: string;
  verify?: boolean;
  out?: string;
  resume?: boolean;
  weights?: string;
  preprocess?: string;
  augment?: boolean;
  normalize?: boolean;
  weightDecay?: string;
  lrDecayEpochs?: string;
  lrDecayFactor?: string;
}

/** `--normalize`: CIFAR-10's per-channel mean/std of pixel/255. */
export const CIFAR10_NORMALIZE = { mean: [...CIFAR10_MEAN], std: [...CIFAR10_STD] };

export const DEFAULT_OUT = 'runs';
export const DEFAULT_SEED = 1;

function parseInteger(flag: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!/^[+-]?\d+$/.test(text.trim()) || !Number.isSafeInteger(v) || v < min) {
    throw new Error(`${flag} ${JSON.stringify(text)}: expected an integer ≥ ${min}`);
  }
  return v;
}

function parsePositive(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v <= 0) throw new Error(`${flag} ${JSON.stringify(text)}: expected a positive number`);
  return v;
}

/** Flag values that override a case's preset (or, on --resume, the run's saved configuration). */
export interface Overrides {
  epochs?: number;
  batchSize?: number;
  microBatch?: number;
  optimizer?: { name: string; lr: number; momentum: number | null };
  lr?: number;
  trainLimit?: number;
  testLimit?: number;
  seed?: number;
  preprocess?: string;
  augment?: boolean;
  normalize?: boolean;
  weightDecay?: number;
  lrDecayEpochs?: number[];
  lrDecayFactor?: number;
  weights?: string;
}

/** Checks every flag; throws a clear error naming the flag. Writes nothing. */
export function parseOverrides(flags: TrainFlags): Overrides {
  const o: Overrides = {};
  const set = <K extends keyof Overrides>(key: K, v: Overrides[K] | undefined): void => {
    if (v !== undefined) o[key] = v;
  };
  set('epochs', parseInteger('--epochs', flags.epochs, 1));
  set('batchSize', parseInteger('--batch-size', flags.batchSize, 1));
  set('microBatch', parseInteger('--micro-batch', flags.microBatch, 1));
  set('trainLimit', parseInteger('--train-limit', flags.trainLimit, 1));
  set('testLimit', parseInteger('--test-limit', flags.testLimit, 1));
  set('seed', parseInteger('--seed', flags.seed, 0));
  set('lr', parsePositive('--lr', flags.lr));
  if (flags.optimizer !== undefined) {
    let preset;
    try {
      preset = getOptimizerPreset(flags.optimizer);
    } catch (e) {
      throw new Error(`--optimizer: ${(e as Error).message}`, { cause: e });
    }
    o.optimizer = { name: preset.name, lr: preset.lr, momentum: preset.momentum ?? null };
  }
  if (flags.preprocess !== undefined) o.preprocess = parsePreprocess(flags.preprocess);
  if (flags.augment) o.augment = true;
  if (flags.normalize) o.normalize = true;
  if (flags.weightDecay !== undefined) {
    const wd = Number(flags.weightDecay);
    if (flags.weightDecay.trim() === '' || !Number.isFinite(wd) || wd < 0) throw new Error(`--weight-decay ${JSON.stringify(flags.weightDecay)}: expected a number ≥ 0`);
    o.weightDecay = wd;
  }
  if (flags.lrDecayEpochs !== undefined) o.lrDecayEpochs = parseDecayEpochs(flags.lrDecayEpochs);
  if (flags.lrDecayFactor !== undefined) o.lrDecayFactor = parseDecayFactor(flags.lrDecayFactor);
  if (flags.weights !== undefined) {
    if (flags.weights.trim() === '') throw new Error('--weights: empty value (expected imagenet, none, a file path or a URL)');
    o.weights = flags.weights;
  }
  if (o.batchSize !== undefined && o.microBatch !== undefined && o.batchSize % o.microBatch !== 0) {
    throw new Error(`--micro-batch ${o.microBatch} must divide --batch-size ${o.batchSize}`);
  }
  return o;
}

export function parseBackend(name: string | undefined): BackendName {
  const b = name ?? 'auto';
  if (!(BACKEND_NAMES as readonly string[]).includes(b)) throw new Error(`--backend ${JSON.stringify(b)}: expected one of ${BACKEND_NAMES.join(', ')}`);
  return b as BackendName;
}

/** A case's configuration: its preset with the overrides applied. `backend`/`data` are filled in later. */
export function caseConfig(c: ReferenceCase, o: Overrides, base?: RunConfig): RunRequest['config'] {
  const preset = getOptimizerPreset(c.optimizer);
  const fromPreset: RunRequest['config'] = base ?? {
    epochs: c.epochs,
    batchSize: c.batchSize,
    microBatch: null,
    optimizer: preset.name,
    lr: preset.lr,
    momentum: preset.momentum ?? null,
    upsample: c.upsample,
    inputShape: [...c.inputShape],
    trainLimit: null,
    testLimit: null,
    seed: DEFAULT_SEED,
    backend: '',
    data: '',
    weights: c.training === 'transfer' ? 'imagenet' : 'none',
    preprocess: 'scale',
    augment: false,
    normalize: null,
    weightDecay: 0,
    lrDecayEpochs: [],
    lrDecayFactor: 0.1,
  };
  const config = { ...fromPreset };
  if (o.optimizer) Object.assign(config, { optimizer: o.optimizer.name, lr: o.optimizer.lr, momentum: o.optimizer.momentum });
  if (o.lr !== undefined) config.lr = o.lr;
  if (o.epochs !== undefined) config.epochs = o.epochs;
  if (o.batchSize !== undefined) config.batchSize = o.batchSize;
  if (o.microBatch !== undefined) config.microBatch = o.microBatch;
  if (o.trainLimit !== undefined) config.trainLimit = o.trainLimit;
  if (o.testLimit !== undefined) config.testLimit = o.testLimit;
  if (o.seed !== undefined) config.seed = o.seed;
  if (o.preprocess !== undefined) config.preprocess = o.preprocess;
  if (o.augment !== undefined) config.augment = o.augment;
  if (o.normalize) config.normalize = CIFAR10_NORMALIZE;
  if (o.weightDecay !== undefined) config.weightDecay = o.weightDecay;
  if (o.lrDecayEpochs !== undefined) config.lrDecayEpochs = o.lrDecayEpochs;
  if (o.lrDecayFactor !== undefined) config.lrDecayFactor = o.lrDecayFactor;
  if (o.weights !== undefined) config.weights = o.weights;
  return config;
}

async function probeOut(out: string): Promise<void> {
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
    throw new Error(`--out ${out}: cannot create the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
}

async function hasRunFile(dir: string): Promise<boolean> {
  try {
    return (await stat(join(dir, RUN_FILE))).isFile();
  } catch {
    return false;
  }
}

export interface CasesRunOptions {
  caseIds: number[];
  flags: TrainFlags;
  progress?: ProgressSink;
  signal?: AbortSignal;
}

export interface CasesRunResult {
  out: string;
  runs: { id: number; run: RunFile | null; error: string | null }[];
}

/** Parses `--cases` text against the reference cases. */
export function parseCases(text: string, flag = '--cases'): number[] {
  return parseCaseList(text, CASES.map((c) => c.id), flag);
}

/** Parses `--case N` (a number or a case name such as plain10-se). */
export function parseOneCase(text: string): number {
  try {
    return getCase(text).id;
  } catch (e) {
    throw new Error(`--case: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Validates everything, then trains each case in turn into OUT/case_N. A case that fails (e.g.
 * a NaN loss) is reported and the next one still runs; a stop request ends them all.
 */
export async function runCases(opts: CasesRunOptions): Promise<CasesRunResult> {
  const { flags } = opts;
  const overrides = parseOverrides(flags);
  const backendName = parseBackend(flags.backend);
  const out = flags.out ?? DEFAULT_OUT;
  const resume = flags.resume ?? false;
  const cases = opts.caseIds.map((id) => getCase(id));
  const data = flags.data ?? process.env.SELAB_DATA;

  // Every check that needs no data or backend happens before anything is written.
  const previous = new Map<number, RunFile>();
  for (const c of cases) {
    const dir = join(out, `case_${c.id}`);
    if (!(await hasRunFile(dir))) continue;
    if (!resume) throw new Error(`${dir} already holds a run (${RUN_FILE}); pass --resume to continue it, or choose another --out`);
    previous.set(c.id, await readRunFile(dir));
  }
  const configs = new Map(cases.map((c) => [c.id, caseConfig(c, overrides, previous.get(c.id)?.config)]));
  for (const config of configs.values()) validateConfig({ ...config, backend: 'x', data: 'x' });
  await probeOut(out);

  const progress = opts.progress ?? makeProgress();
  const backend = await selectBackend(backendName);
  const dataset = await loadCifar10({ ...(data !== undefined ? { data } : {}), ...(flags.verify === false ? { verify: false } : {}) });
  const dataSpec = data !== undefined && !/^[a-z][a-z0-9+.-]*:\/\//i.test(data) ? resolve(data) : dataset.source.spec;

  const result: CasesRunResult = { out, runs: [] };
  for (const c of cases) {
    const config = { ...configs.get(c.id)!, backend, data: dataSpec };
    try {
      const arch = imagenetArchFor(c);
      const weightsSpec = config.weights;
      const run = await runTraining({
        out,
        id: `case_${c.id}`,
        meta: {
          case: c.id,
          name: c.name,
          model: c.model,
          additions: [...c.additions],
          se: c.se,
          seOptions: c.se ? { ratio: c.seRatio, squeeze: 'avg', gate: 'sigmoid' } : null,
          training: c.training,
          sweep: null,
        },
        config,
        buildModel: async ({ restoring }) => {
          // A restored run overwrites every weight from its checkpoint: no need to fetch ImageNet's.
          const loadBaseWeights = restoring ? undefined : await resolveWeights(weightsSpec, arch ? { arch } : {});
          return buildCaseModel(c, loadBaseWeights ? { loadBaseWeights } : {});
        },
        train: dataset.train,
        test: dataset.test,
        resume,
        progress,
        label: `case ${c.id}`,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      result.runs.push({ id: c.id, run, error: null });
    } catch (e) {
      const message = (e as Error).message;
      progress.log(`case ${c.id}: ${message}`);
      result.runs.push({ id: c.id, run: e instanceof RunError ? e.run : null, error: message });
      if (opts.signal?.aborted) break;
    }
  }
  return result;
}

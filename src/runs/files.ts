// The run-file contract (docs/run-format.md): history.json and run.json, read and written here
// so that train, run, sweep, table and report agree on one shape.
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { AttentionSpec } from '../attention/index.js';
import { writeFileAtomic, writeFileAtomicSync } from '../util/atomic.js';
import type { Environment, TrainConfig, Validation } from './config.js';

export const HISTORY_FILE = 'history.json';
export const RUN_FILE = 'run.json';

export interface HistoryRow {
  epoch: number;
  /** Training loss and accuracy as the protocol logs them (under 'reference', replica 0's share of each step). */
  loss: number;
  acc: number;
  /** The protocol's validation: the reference's subset under 'reference', the whole test split under 'keras'. */
  val_loss: number;
  val_acc: number;
  /** The whole test split (--test-limit images), whatever the protocol. */
  test_loss: number;
  test_acc: number;
  lr: number;
  seconds: number;
  imagesPerSecond: number;
}

export interface History {
  version: 1;
  rows: HistoryRow[];
}

export type RunStatus = 'running' | 'completed' | 'failed' | 'stopped';

/** What a run is, apart from how it trains: its case or sweep point, model and attention. */
export interface RunDescription {
  case: number | null;
  name: string;
  /** A registered model name (for the reference cases, the architecture family: plain10, vgg16, mobilenet). */
  model: string;
  additions: string[];
  /** The run has SE blocks (the reference cases' SE column). */
  se: boolean;
  attention: AttentionSpec | null;
  training: string;
  sweep: { name: string; point: string; params: Record<string, unknown>; seed: number } | null;
}

export interface RunFile extends RunDescription {
  version: 1;
  id: string;
  config: TrainConfig;
  environment: Environment;
  batchNormStatistics: string;
  /** Images per BatchNorm statistics group as trained; null when the model has no BatchNorm. */
  batchNormGroup: number | null;
  params: number;
  trainableParams: number;
  macs: number | null;
  versions: Record<string, string>;
  gitCommit: string | null;
  startedAt: string;
  endedAt: string | null;
  /** One entry per `--resume` that continued this run: when, and from which completed epoch. */
  resumes: { at: string; fromEpoch: number }[];
  status: RunStatus;
  error: string | null;
  epochsCompleted: number;
  final: { epoch: number; val_acc: number; val_loss: number; test_acc: number; test_loss: number } | null;
  /** The epoch `config.validation` ranks highest: by val_acc ('reference') or test_acc ('full'). */
  best: { epoch: number; val_acc: number; test_acc: number } | null;
}

/**
 * `final` is the last row; `best` the row with the highest accuracy on the validation that
 * `validation` names (val_acc for 'reference', test_acc for 'full'), the earliest on ties.
 */
export function summarizeRows(rows: readonly HistoryRow[], validation: Validation): Pick<RunFile, 'epochsCompleted' | 'final' | 'best'> {
  const last = rows[rows.length - 1];
  if (!last) return { epochsCompleted: 0, final: null, best: null };
  const acc = (r: HistoryRow): number => (validation === 'reference' ? r.val_acc : r.test_acc);
  let best = last;
  for (const r of rows) if (acc(r) > acc(best) || (acc(r) === acc(best) && r.epoch < best.epoch)) best = r;
  return {
    epochsCompleted: last.epoch,
    final: { epoch: last.epoch, val_acc: last.val_acc, val_loss: last.val_loss, test_acc: last.test_acc, test_loss: last.test_loss },
    best: { epoch: best.epoch, val_acc: best.val_acc, test_acc: best.test_acc },
  };
}

/**
 * Rows in today's shape. Rows written before test_acc existed come from runs that validated on
 * the whole test split (the keras protocol), so their val_* are the test_* values.
 */
export function normalizeRows(rows: readonly HistoryRow[]): HistoryRow[] {
  return rows.map((r) => ({ ...r, test_loss: r.test_loss ?? r.val_loss, test_acc: r.test_acc ?? r.val_acc }));
}

export async function writeHistory(dir: string, rows: readonly HistoryRow[]): Promise<void> {
  const history: History = { version: 1, rows: [...rows] };
  await writeFileAtomic(join(dir, HISTORY_FILE), JSON.stringify(history, null, 2) + '\n');
}

export async function writeRunFile(dir: string, run: RunFile): Promise<void> {
  await writeFileAtomic(join(dir, RUN_FILE), JSON.stringify(run, null, 2) + '\n');
}

/** For a process about to exit, where nothing asynchronous runs any more. */
export function writeRunFileSync(dir: string, run: RunFile): void {
  writeFileAtomicSync(join(dir, RUN_FILE), JSON.stringify(run, null, 2) + '\n');
}

export async function readJson<T>(file: string): Promise<T> {
  const text = await readFile(file, 'utf8');
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

export async function readHistory(dir: string): Promise<History> {
  const file = join(dir, HISTORY_FILE);
  const h = await readJson<History>(file);
  if (h.version !== 1 || !Array.isArray(h.rows)) throw new Error(`${file}: expected { "version": 1, "rows": [...] }`);
  return { ...h, rows: normalizeRows(h.rows) };
}

export async function readRunFile(dir: string): Promise<RunFile> {
  const file = join(dir, RUN_FILE);
  const r = await readJson<RunFile>(file);
  if (r.version !== 1 || typeof r.id !== 'string') throw new Error(`${file}: expected a selab run file (version 1 with an id)`);
  return normalizeRunFile(r);
}

/** The fields a run.json written before the attention and environment fields existed holds instead. */
interface LegacyRunFields {
  seOptions?: Record<string, unknown> | null;
  config: TrainConfig & Partial<Pick<Environment, 'backend' | 'data'>>;
}

/**
 * A run file in today's shape: older files kept backend and data in `config`, SE settings in
 * `seOptions`, and lacked the fields that had defaults (normalize, weight decay, lr schedule).
 * Files from before the protocols were trained the Keras way and validated on the whole test
 * split: protocol 'keras', validation 'full', test_* equal to val_*, and BatchNorm statistics per
 * micro-batch.
 */
export function normalizeRunFile(raw: RunFile): RunFile {
  const legacy = raw as RunFile & LegacyRunFields;
  const { backend, data, ...config } = legacy.config;
  const { seOptions, ...run } = legacy;
  const attention: AttentionSpec | null =
    run.attention !== undefined ? run.attention : run.se ? ({ kind: 'se', ...(seOptions ?? {}) } as AttentionSpec) : null;
  const final = run.final ? { ...run.final, test_acc: run.final.test_acc ?? run.final.val_acc, test_loss: run.final.test_loss ?? run.final.val_loss } : null;
  const best = run.best ? { ...run.best, test_acc: run.best.test_acc ?? run.best.val_acc } : null;
  const batchNormGroup = run.batchNormGroup !== undefined ? run.batchNormGroup : String(run.batchNormStatistics ?? '').startsWith('none') ? null : config.microBatch;
  return {
    ...run,
    attention,
    final,
    best,
    batchNormGroup,
    config: {
      ...config,
      normalize: config.normalize ?? null,
      weightDecay: config.weightDecay ?? 0,
      lrDecayEpochs: config.lrDecayEpochs ?? [],
      lrDecayFactor: config.lrDecayFactor ?? 0.1,
      protocol: config.protocol ?? 'keras',
      validation: config.validation ?? 'full',
    },
    environment: run.environment ?? { backend: backend ?? 'unknown', data: data ?? 'unknown', threads: null },
  };
}

export interface FoundRun {
  dir: string;
  run: RunFile;
  history: History | null;
}

/** Every run below `out` (any folder holding a run.json), sorted by its id. */
export async function findRuns(out: string): Promise<FoundRun[]> {
  const dirs: string[] = [];
  async function walk(dir: string): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true });
    if (entries.some((e) => e.isFile() && e.name === RUN_FILE)) dirs.push(dir);
    for (const e of entries) {
      // checkpoints and temporaries never hold run files; skipping them keeps the walk cheap
      if (e.isDirectory() && !e.name.startsWith('checkpoint') && !e.name.startsWith('.')) await walk(join(dir, e.name));
    }
  }
  await walk(out);
  const runs: FoundRun[] = [];
  for (const dir of dirs) {
    const run = await readRunFile(dir);
    let history: History | null = null;
    try {
      history = await readHistory(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    runs.push({ dir, run, history });
  }
  return runs.sort((a, b) => runId(out, a.dir).localeCompare(runId(out, b.dir), 'en', { numeric: true }));
}

/** A run's id: its folder relative to the output folder, with forward slashes. */
export function runId(out: string, dir: string): string {
  return relative(out, dir).split(sep).join('/');
}

// `selab bench`: training and inference throughput of the reference models on each tfjs
// backend and on PyTorch (bench/torch_peer.py), measured in the same run.
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { selectBackend, type BackendName } from '../backend/select.js';
import { buildCaseModel } from '../experiments/cases.js';
import { macsPerImage } from '../models/summary.js';
import { packageRoot } from '../util/paths.js';
import { webgpuAdapter } from '../backend/webgpu/backend.js';
import { describeAdapter } from '../backend/webgpu/dawn.js';
import { formatProfile, profileDeviceKernels, profileKernels } from './profile.js';
import { inferStepAsync, makeAsyncTrainStep, median, randomBatch, timeMedianAsync } from './step.js';
import { makeOptimizer } from '../engine/optimizers.js';

export interface BenchModel {
  name: string;
  /** Reference case it is built from (random weights: speed does not depend on them). */
  caseId: number;
  /** Default batch: the plain10 measurement uses 128; the big models less, to keep the run short. */
  batch: number;
}

export const BENCH_MODELS: readonly BenchModel[] = [
  { name: 'plain10', caseId: 1, batch: 128 },
  { name: 'plain10-se', caseId: 2, batch: 128 },
  { name: 'vgg16-bn-se', caseId: 5, batch: 16 },
  { name: 'mobilenet', caseId: 6, batch: 32 },
  { name: 'mobilenet-se', caseId: 7, batch: 32 },
];

export const BENCH_BACKENDS = ['webgpu', 'onednn', 'wasm', 'cpu', 'tensorflow'] as const;
export type BenchBackend = (typeof BENCH_BACKENDS)[number];
/** cpu (pure JS) needs minutes per step; it runs only when asked for. */
export const DEFAULT_BACKENDS: readonly BenchBackend[] = ['onednn', 'wasm'];
/** wasm memory stops at 4 GB (plain10+SE at batch 128 does not fit), so its batches are capped. */
const WASM_MAX_BATCH = 32;

export type Phase = 'train' | 'infer';

export interface BenchRow {
  model: string;
  backend: string;
  phase: Phase;
  batch: number;
  imagesPerSecond: number;
  gflops: number;
  /** With several rounds: each round's images/s; imagesPerSecond and gflops are their median's. */
  rounds?: number[];
}

export interface BenchOptions {
  models: readonly string[];
  backends: readonly BenchBackend[];
  phases: readonly Phase[];
  /** Overrides every model's default batch. */
  batch?: number;
  steps: number;
  warmup: number;
  /**
   * Times the whole measurement is repeated. This machine's speed drifts by up to 25 % within
   * minutes; each round's ratio pairs a model's rows seconds apart, and the median over rounds
   * leaves out a round that drift caught between the two.
   */
  rounds: number;
  torch: boolean;
  /** Print a per-kernel profile of one training step and one inference pass for each tfjs row. */
  profile: boolean;
  log: (line: string) => void;
}

export interface BenchResult {
  threads: number;
  /** The GPU the webgpu rows ran on, e.g. "NVIDIA H200 (nvidia hopper)". */
  adapter?: string;
  rows: BenchRow[];
  /** Why backends or the PyTorch peer were skipped. */
  skipped: string[];
}

/** The thread count selab's native code uses: SELAB_THREADS, else OMP_NUM_THREADS, else every core. */
export function benchThreads(): number {
  for (const v of [process.env.SELAB_THREADS, process.env.OMP_NUM_THREADS]) {
    const n = Number(v);
    if (v && Number.isInteger(n) && n > 0) return n;
  }
  return availableParallelism();
}

export function benchModel(name: string): BenchModel {
  const m = BENCH_MODELS.find((x) => x.name === name);
  if (!m) throw new Error(`unknown model "${name}" for --models; expected one of ${BENCH_MODELS.map((x) => x.name).join(', ')}`);
  return m;
}

/** Floating-point operations per image: 2 per MAC forward; a training step ≈ 3 forward passes. */
export function flopsPerImage(macs: number, phase: Phase): number {
  return (phase === 'train' ? 6 : 2) * macs;
}

/** Benchmarks one model on the active backend; returns its forward MACs per image. */
async function benchOnBackend(backend: string, spec: BenchModel, batch: number, opts: BenchOptions, rows: BenchRow[]): Promise<number> {
  const model = await buildCaseModel(spec.caseId);
  const macs = macsPerImage(model);
  const inputShape = model.inputs[0]!.shape.slice(1) as number[];
  const { xs, ys } = randomBatch(batch, inputShape, 10);
  // The runner's optimizer (Keras' Adam settings, fused on onednn), as the cases train with it.
  const optimizer = makeOptimizer('adam');
  try {
    for (const phase of opts.phases) {
      // Every step ends with reading its result back (asynchronously: a GPU backend has no
      // synchronous read), so a step's time includes all of its device work.
      const train = phase === 'train' ? makeAsyncTrainStep(model, optimizer) : undefined;
      const run = train ? () => train(xs, ys) : () => inferStepAsync(model, xs);
      const seconds = await timeMedianAsync(run, opts.warmup, opts.steps);
      if (opts.profile) {
        // On a GPU the kernels run after they are recorded: their device time comes from tf.profile.
        let pending: Promise<unknown> | undefined;
        const profile = backend === 'webgpu' ? await profileDeviceKernels(run) : profileKernels(backend, () => void (pending = run()));
        await pending;
        const what = train ? 'one training step' : 'one inference pass';
        opts.log(`profile of ${what}, ${spec.name} on ${backend}, batch ${batch}:\n${formatProfile(profile)}`);
      }
      const imagesPerSecond = batch / seconds;
      const row: BenchRow = { model: spec.name, backend, phase, batch, imagesPerSecond, gflops: (flopsPerImage(macs, phase) * imagesPerSecond) / 1e9 };
      rows.push(row);
      opts.log(`${spec.name} ${backend} ${phase} batch ${batch}: ${imagesPerSecond.toFixed(1)} img/s, ${row.gflops.toFixed(1)} GFLOPS`);
    }
  } finally {
    tf.dispose([xs, ys]);
    optimizer.dispose();
    model.dispose();
  }
  return macs;
}

export const TORCH_PEER = join(packageRoot(), 'bench', 'torch_peer.py');
export const PYTHON = '/usr/bin/python3';

interface PeerRow {
  model: string;
  phase: Phase;
  batch: number;
  imagesPerSecond: number;
}

/**
 * The peer's environment: selab's thread count, and glibc malloc told to keep freed memory,
 * as the onednn addon tells it in-process (native/src/malloc.cc). Without that, PyTorch maps
 * and faults in every large activation afresh each step and trains plain10 here at ~50
 * images/s instead of ~190; the peer should be PyTorch at its best. Settings already in the
 * environment win.
 */
export function torchPeerEnv(threads: number, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    MALLOC_MMAP_THRESHOLD_: String(2 ** 30),
    MALLOC_TRIM_THRESHOLD_: String(2 ** 31 - 1),
    MALLOC_TOP_PAD_: String(2 ** 28),
    ...env,
    OMP_NUM_THREADS: String(threads),
  };
}

/** Why the PyTorch peer cannot run here, or null when it can. */
function torchUnavailable(): string | null {
  if (!existsSync(PYTHON)) return `torch: ${PYTHON} not found`;
  const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  return probe.status === 0 ? null : `torch: ${PYTHON} cannot import torch (apt-get install -y python3-torch)`;
}

function runTorch(spec: BenchModel, batch: number, macs: number, opts: BenchOptions, threads: number, rows: BenchRow[]): void {
  const args = [
    TORCH_PEER,
    '--models', spec.name,
    '--batches', String(batch),
    '--phases', opts.phases.join(','),
    '--threads', String(threads),
    '--warmup', String(opts.warmup),
    '--steps', String(opts.steps),
  ];
  const res = spawnSync(PYTHON, args, { encoding: 'utf8', maxBuffer: 1 << 24, env: torchPeerEnv(threads) });
  if (res.status !== 0) throw new Error(`bench/torch_peer.py failed (exit ${res.status}): ${res.stderr.trim().split('\n').slice(-3).join(' ')}`);
  const out = JSON.parse(res.stdout) as { rows: PeerRow[] };
  for (const r of out.rows) {
    const row: BenchRow = { model: r.model, backend: 'torch', phase: r.phase, batch: r.batch, imagesPerSecond: r.imagesPerSecond, gflops: (flopsPerImage(macs, r.phase) * r.imagesPerSecond) / 1e9 };
    rows.push(row);
    opts.log(`${r.model} torch ${r.phase} batch ${r.batch}: ${r.imagesPerSecond.toFixed(1)} img/s, ${row.gflops.toFixed(1)} GFLOPS`);
  }
}

/**
 * Each round takes the models in turn, each on every backend and then on the PyTorch peer, so
 * that a ratio pairs measurements seconds apart rather than a whole side of the run apart.
 */
export async function runBench(opts: BenchOptions): Promise<BenchResult> {
  const threads = benchThreads();
  const specs = opts.models.map(benchModel);
  const skipped = new Set<string>();
  const torchSkip = opts.torch ? torchUnavailable() : null;
  if (torchSkip) skipped.add(torchSkip);
  const failed = new Set<string>();
  const macsByModel = new Map<string, number>();
  const rounds: BenchRow[][] = [];
  let adapter: string | undefined;
  for (let round = 0; round < opts.rounds; round++) {
    const rows: BenchRow[] = [];
    const log = opts.rounds > 1 ? (line: string) => opts.log(`round ${round + 1}/${opts.rounds}: ${line}`) : opts.log;
    // One kernel profile is enough: only the first round prints it.
    const roundOpts = { ...opts, log, profile: opts.profile && round === 0 };
    for (const spec of specs) {
      for (const backend of opts.backends) {
        if (failed.has(backend)) continue;
        try {
          await selectBackend(backend as BackendName);
        } catch (e) {
          opts.log(`skipping ${backend}: ${(e as Error).message}`);
          skipped.add(`${backend}: ${(e as Error).message}`);
          failed.add(backend);
          continue;
        }
        const gpu = backend === 'webgpu' && adapter === undefined ? webgpuAdapter() : undefined;
        if (gpu) {
          adapter = describeAdapter(gpu);
          opts.log(`webgpu on ${adapter}`);
        }
        const batch = Math.min(opts.batch ?? spec.batch, backend === 'wasm' ? WASM_MAX_BATCH : Infinity);
        macsByModel.set(spec.name, await benchOnBackend(backend, spec, batch, roundOpts, rows));
      }
      if (opts.torch && !torchSkip) {
        // With no selab backend running, the model is built once for its MAC count, not every round.
        if (!macsByModel.has(spec.name)) {
          const model = await buildCaseModel(spec.caseId);
          macsByModel.set(spec.name, macsPerImage(model));
          model.dispose();
        }
        runTorch(spec, opts.batch ?? spec.batch, macsByModel.get(spec.name)!, roundOpts, threads, rows);
      }
    }
    rounds.push(rows);
  }
  return { threads, ...(adapter ? { adapter } : {}), rows: combineRounds(rounds), skipped: [...skipped] };
}

/**
 * One row per model, backend, phase and batch from several rounds of the same measurement: the
 * median images/s (and its GFLOPS), with every round's figure in `rounds`. A single round is
 * returned as it is.
 */
export function combineRounds(rounds: readonly (readonly BenchRow[])[]): BenchRow[] {
  if (rounds.length === 1) return [...rounds[0]!];
  const key = (r: BenchRow) => `${r.model}|${r.backend}|${r.phase}|${r.batch}`;
  return rounds[0]!.map((first) => {
    const values = rounds.map((rows) => rows.find((r) => key(r) === key(first))?.imagesPerSecond ?? NaN);
    const imagesPerSecond = median(values);
    return { ...first, imagesPerSecond, gflops: (first.gflops / first.imagesPerSecond) * imagesPerSecond, rounds: values };
  });
}

/** The throughput of the PyTorch row for the same model and phase, if measured. */
export function torchPeer(rows: readonly BenchRow[], row: BenchRow): BenchRow | undefined {
  return rows.find((r) => r.backend === 'torch' && r.model === row.model && r.phase === row.phase);
}

/** row / peer: with rounds, the median of the rounds' ratios (each pairs measurements minutes apart). */
export function ratioToPeer(row: BenchRow, peer: BenchRow): number {
  if (row.rounds && peer.rounds && row.rounds.length === peer.rounds.length) return median(row.rounds.map((v, k) => v / peer.rounds![k]!));
  return row.imagesPerSecond / peer.imagesPerSecond;
}

export function formatBenchTable(result: BenchResult): string {
  const spread = result.rows.some((r) => r.rounds);
  const header = ['model', 'backend', 'phase', 'batch', 'img/s', ...(spread ? ['rounds min–max'] : []), 'GFLOPS', 'vs torch'];
  const body = result.rows.map((r) => {
    const peer = r.backend === 'torch' ? undefined : torchPeer(result.rows, r);
    const range = r.rounds ? `${Math.min(...r.rounds).toFixed(1)}–${Math.max(...r.rounds).toFixed(1)}` : '';
    return [r.model, r.backend, r.phase, String(r.batch), r.imagesPerSecond.toFixed(1), ...(spread ? [range] : []), r.gflops.toFixed(1), peer ? `${ratioToPeer(r, peer).toFixed(2)}×` : ''];
  });
  const widths = header.map((h, k) => Math.max(h.length, ...body.map((b) => b[k]!.length)));
  const line = (cells: string[]) => cells.map((c, k) => (k < 3 ? c.padEnd(widths[k]!) : c.padStart(widths[k]!))).join('  ');
  return [line(header), ...body.map(line), `threads: ${result.threads}`, ...(result.adapter ? [`gpu: ${result.adapter}`] : []), ...result.skipped.map((s) => `skipped ${s}`)].join('\n');
}

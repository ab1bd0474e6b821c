// The runner's extension points, as Keras' Callback: everything a run does besides training —
// writing its files, showing progress, guarding against a diverging loss, checking for leaks — is
// a small object called at these moments, in the order the runner lists them.
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { TrainConfig } from '../runs/config.js';
import type { HistoryRow, RunFile, RunStatus } from '../runs/files.js';
import type { StepInfo } from './loop.js';

export interface TrainContext {
  /** The run's folder, OUT/<id>. */
  readonly dir: string;
  /** Prefix of progress lines, e.g. "case 1". */
  readonly label: string;
  readonly config: TrainConfig & { microBatch: number };
  readonly model: tfl.LayersModel;
  readonly optimizer: tf.Optimizer;
  readonly trainImages: number;
  readonly testImages: number;
  readonly stepsPerEpoch: number;
  /** The run file as it stands; a callback that writes it keeps it current. */
  run: RunFile;
  /** The history so far (restored from the checkpoint on resume). */
  rows: readonly HistoryRow[];
}

export interface TrainEnd {
  status: Exclude<RunStatus, 'running'>;
  error: string | null;
}

export interface Callback {
  onTrainBegin?(ctx: TrainContext): Promise<void> | void;
  onEpochBegin?(epoch: number, ctx: TrainContext): void;
  /** After each optimizer step; throwing ends the epoch (and the run) with that error. */
  onStep?(info: StepInfo, ctx: TrainContext): void;
  /** After validation; `ctx.rows` already ends with `row`. */
  onEpochEnd?(row: HistoryRow, ctx: TrainContext): Promise<void> | void;
  onTrainEnd?(end: TrainEnd, ctx: TrainContext): Promise<void> | void;
}

type Hook = 'onTrainBegin' | 'onEpochEnd' | 'onTrainEnd';

/** Calls one asynchronous hook of every callback, in order. */
export async function callHook<H extends Hook>(callbacks: readonly Callback[], hook: H, ...args: Parameters<NonNullable<Callback[H]>>): Promise<void> {
  for (const cb of callbacks) {
    const fn = cb[hook] as ((...a: typeof args) => Promise<void> | void) | undefined;
    if (fn) await fn.apply(cb, args);
  }
}

// Keeps a run's files current (docs/run-format.md). Per epoch the order of writes is: checkpoint
// (holding the history up to this epoch), then history.json, then run.json. A SIGKILL between any
// two leaves a checkpoint at least as new as the history, so a history row never exists without
// its checkpoint, and --resume restores the history from the checkpoint itself: no gap, no
// duplicate.
import { mkdir } from 'node:fs/promises';
import { summarizeRows, writeHistory, writeRunFile, writeRunFileSync } from '../../runs/files.js';
import type { Callback, TrainContext } from '../callbacks.js';
import { saveCheckpoint } from '../checkpoint.js';

async function writeRun(ctx: TrainContext): Promise<void> {
  await writeRunFile(ctx.dir, ctx.run);
}

/** Runs of this process whose run.json says running. */
const active = new Set<TrainContext>();

/**
 * Marks every run of this process stopped, synchronously: for a process that quits at once (a
 * second Ctrl-C), so that no run.json is left saying "running". The last checkpoint stays.
 */
export function markRunsStopped(reason: string): void {
  for (const ctx of active) {
    const kept = ctx.rows.length > 0 ? `the checkpoint of epoch ${ctx.rows.length} is kept` : 'no epoch had completed';
    writeRunFileSync(ctx.dir, { ...ctx.run, status: 'stopped', error: `${reason} during epoch ${ctx.rows.length + 1}; ${kept}. Continue with --resume`, endedAt: new Date().toISOString() });
  }
  active.clear();
}

export const runFiles: Callback = {
  async onTrainBegin(ctx) {
    await mkdir(ctx.dir, { recursive: true });
    await writeRun(ctx);
    active.add(ctx);
    if (ctx.rows.length > 0) await writeHistory(ctx.dir, ctx.rows);
  },
  async onEpochEnd(row, ctx) {
    const { config } = ctx;
    await saveCheckpoint(ctx.dir, ctx.model, ctx.optimizer, { epoch: row.epoch, rng: { seed: config.seed, nextEpoch: row.epoch + 1 }, rows: [...ctx.rows] });
    await writeHistory(ctx.dir, ctx.rows);
    ctx.run = { ...ctx.run, ...summarizeRows(ctx.rows, config.validation) };
    await writeRun(ctx);
  },
  async onTrainEnd(end, ctx) {
    active.delete(ctx);
    ctx.run = { ...ctx.run, status: end.status, error: end.error, endedAt: new Date().toISOString() };
    await writeRun(ctx);
  },
};

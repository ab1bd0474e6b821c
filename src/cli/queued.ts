// `selab run|sweep … --queue URL` and `selab queue wait`: queue an experiment, follow its jobs with
// a line per progress report, then print the same tables as the local command.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { follow, submit, type Experiment, type FollowResult } from '../cluster/coordinator.js';
import { parseQueueUrl, type QueueTarget } from '../cluster/connection.js';
import type { ExperimentRecord } from '../cluster/queue-state.js';
import { caseTables, formatTables } from '../report/table-format.js';
import { sweepMarkdown, sweepTables } from '../report/sweep.js';
import { findRuns } from '../runs/files.js';
import { DEFAULT_ATTEMPTS, DEFAULT_RETRY_DELAY_MS } from '../cluster/coordinator.js';

/** `--queue` and its companions, for the commands that can hand their runs to `selab worker`s. */
export interface QueueFlags {
  queue?: string;
  detach?: boolean;
  attempts?: string;
  retryDelay?: string;
}

export interface QueueSettings {
  url: string;
  detach: boolean;
  attempts: number;
  retryDelayMs: number;
}

export function addQueueOptions(cmd: Command): Command {
  return cmd
    .option('--queue <url>', 'queue the runs on Redis for `selab worker`s (redis://[user:pass@]host:port[/db], rediss:// for TLS) instead of training here; --out must be a folder every worker sees at the same path')
    .option('--detach', 'with --queue: queue the runs and exit (follow them with selab queue wait)')
    .option('--attempts <n>', `with --queue: tries per run for failures of its own, e.g. a NaN loss (default: ${DEFAULT_ATTEMPTS}); a killed worker does not use one up`)
    .option('--retry-delay <s>', `with --queue: seconds before the first retry of a failed run, doubling after each (default: ${DEFAULT_RETRY_DELAY_MS / 1000})`);
}

/** The queue settings, or null to train here; a flag that needs --queue without it is an error. */
export function parseQueueFlags(flags: QueueFlags & { backend?: string }): QueueSettings | null {
  if (flags.queue === undefined) {
    const stray = (['detach', 'attempts', 'retryDelay'] as const).find((k) => flags[k] !== undefined);
    if (stray) throw new Error(`--${stray.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies with --queue only`);
    return null;
  }
  if (flags.backend !== undefined) throw new Error('--backend: with --queue each worker trains on its own backend (selab worker --backend)');
  const attempts = flags.attempts === undefined ? DEFAULT_ATTEMPTS : Number(flags.attempts);
  if (!/^\d+$/.test((flags.attempts ?? '1').trim()) || !Number.isSafeInteger(attempts) || attempts < 1) throw new Error(`--attempts ${JSON.stringify(flags.attempts)}: expected an integer ≥ 1`);
  const delay = flags.retryDelay === undefined ? DEFAULT_RETRY_DELAY_MS / 1000 : Number(flags.retryDelay);
  if ((flags.retryDelay !== undefined && flags.retryDelay.trim() === '') || !Number.isFinite(delay) || delay < 0) throw new Error(`--retry-delay ${JSON.stringify(flags.retryDelay)}: expected a number of seconds ≥ 0`);
  return { url: flags.queue, detach: flags.detach ?? false, attempts, retryDelayMs: Math.round(delay * 1000) };
}

export interface QueuedOutcome {
  detached: boolean;
  follow: FollowResult | null;
  trained: number;
  alreadyCompleted: number;
  failed: number;
}

function hints(target: QueueTarget, id: string): string {
  return `selab queue wait --queue ${target.display} --experiment ${id} (or status, cancel)`;
}

export function summarize(result: FollowResult): Pick<QueuedOutcome, 'trained' | 'alreadyCompleted' | 'failed'> {
  const done = result.outcomes.filter((o) => o.state === 'completed');
  return {
    trained: done.filter((o) => o.result?.trained !== false).length,
    alreadyCompleted: done.filter((o) => o.result?.trained === false).length,
    failed: result.outcomes.filter((o) => o.state !== 'completed').length,
  };
}

/** Follows the experiment's jobs until each has ended (or Ctrl-C: the jobs go on). */
export async function followExperiment(target: QueueTarget, record: ExperimentRecord, signal: AbortSignal | undefined, lastEventId?: string): Promise<FollowResult> {
  const result = await follow(target, record, { onLine: (line) => console.log(line), ...(signal ? { signal } : {}), ...(lastEventId ? { lastEventId } : {}) });
  if (result.interrupted) console.error(`stopped following; the jobs go on on the workers: ${hints(target, record.id)}`);
  return result;
}

/** Queues the experiment's jobs (after writing its manifest), then follows them unless `detach`. */
export async function runQueued(exp: Experiment, q: QueueSettings, signal?: AbortSignal): Promise<QueuedOutcome> {
  const target = parseQueueUrl(q.url);
  if (exp.jobs.length === 0) {
    console.error(`nothing to queue: the ${exp.skipped.length} run${exp.skipped.length === 1 ? ' is' : 's are'} already completed`);
    return { detached: false, follow: null, trained: 0, alreadyCompleted: exp.skipped.length, failed: 0 };
  }
  const submitted = await submit(exp, target, { attempts: q.attempts, retryDelayMs: q.retryDelayMs });
  const skipped = exp.skipped.length ? `, ${exp.skipped.length} already completed (not queued)` : '';
  console.error(`experiment ${exp.id}: ${exp.jobs.length} run${exp.jobs.length === 1 ? '' : 's'} queued on ${target.display}${skipped}; manifest ${submitted.manifest}`);
  if (q.detach) {
    console.error(`detached; follow with ${hints(target, exp.id)}`);
    return { detached: true, follow: null, trained: 0, alreadyCompleted: exp.skipped.length, failed: 0 };
  }
  const result = await followExperiment(target, submitted.record, signal, submitted.lastEventId);
  const s = summarize(result);
  return { detached: false, follow: result, ...s, alreadyCompleted: s.alreadyCompleted + exp.skipped.length };
}

/** The tables a local run of the experiment's command prints, when its output folder is visible here. */
export async function experimentTables(record: Pick<ExperimentRecord, 'command' | 'name' | 'out'>): Promise<string | null> {
  if (!existsSync(record.out)) return null;
  if (record.command === 'run') return formatTables(await caseTables(record.out), 'md');
  return sweepMarkdown(sweepTables(await findRuns(record.out)).filter((t) => t.name === record.name));
}

// The coordinator's side: `selab run|sweep … --queue URL` plans the runs exactly as the local
// command does (the same checks, nothing trained), writes the experiment manifest into the shared
// output folder, queues one job per run, then follows the jobs until each has completed or failed.
// `selab queue status|wait|cancel` use the same functions from any machine.
import { Queue, QueueEvents, type Job, type JobsOptions } from 'bullmq';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { probeOut } from '../experiments/plan.js';
import { planCases } from '../experiments/run-cases.js';
import { jobState, type PlannedSweep, type SweepRequest } from '../experiments/sweep.js';
import type { TrainConfig } from '../runs/config.js';
import { checkReachable, connect, disconnect, type QueueTarget } from './connection.js';
import { isUrl, JOB_NAME, JOB_VERSION, type JobData, type JobResult, type JobSpec } from './job.js';
import { newManifest, writeManifest } from './manifest.js';
import type { ProgressReport } from './protocol.js';
import { getExperiment, listExperiments, markCancelled, saveExperiment, type ExperimentRecord } from './queue-state.js';

/** Where the queued runs go and what the workers read; `data` is passed on only as a URL. */
export interface QueueLaunch {
  out: string;
  resume: boolean;
  data?: string;
  verify?: boolean;
}

export interface Experiment {
  id: string;
  command: 'run' | 'sweep';
  name: string | null;
  out: string;
  jobs: { id: string; data: JobData }[];
  /** Runs already complete, not queued (sweeps skip them as a local sweep does). */
  skipped: string[];
}

export function newExperimentId(command: string, name: string | null, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, '').replace('T', '-');
  return [command, ...(name ? [name] : []), stamp, randomBytes(2).toString('hex')].join('-');
}

/** The overrides as a job carries them: a weights file as a path inside the output folder. */
export function jobOverrides(overrides: Partial<TrainConfig>, out: string): Partial<TrainConfig> {
  const w = overrides.weights;
  if (w === undefined || w === 'imagenet' || w === 'none' || isUrl(w)) return overrides;
  const rel = relative(out, resolve(w));
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    throw new Error(`--weights ${w}: with --queue, a weights file must lie inside --out ${out}, the folder every worker sees (or give a URL, for workers started with --allow-remote)`);
  }
  return { ...overrides, weights: rel.split(sep).join('/') };
}

function baseData(id: string, launch: QueueLaunch): Pick<JobData, 'version' | 'experiment' | 'out'> & Partial<Pick<JobData, 'data' | 'verify'>> {
  if (launch.data !== undefined && !isUrl(launch.data)) {
    throw new Error(
      `--data ${launch.data}: with --queue each worker reads CIFAR-10 from its own --data, $SELAB_DATA or SELAB_HOME cache; ` +
        'start the workers with --data (a URL given here is passed on to workers started with --allow-remote)',
    );
  }
  return {
    version: JOB_VERSION,
    experiment: id,
    out: launch.out,
    ...(launch.data !== undefined ? { data: launch.data, ...(launch.verify === false ? { verify: false } : {}) } : {}),
  };
}

function jobOf(base: ReturnType<typeof baseData>, run: string, spec: JobSpec): { id: string; data: JobData } {
  return { id: `${base.experiment}/${run}`, data: { ...base, run, spec } };
}

/** The reference cases as jobs, checked as `selab run` checks them (an existing run needs --resume). */
export async function planCaseExperiment(caseIds: readonly number[], overrides: Partial<TrainConfig>, launch: QueueLaunch): Promise<Experiment> {
  const out = resolve(launch.out);
  const plans = await planCases(caseIds, overrides, out, launch.resume);
  const id = newExperimentId('run', null);
  const base = baseData(id, { ...launch, out });
  const o = jobOverrides(overrides, out);
  return {
    id,
    command: 'run',
    name: null,
    out,
    jobs: plans.map((p, i) => jobOf(base, p.id, { kind: 'case', caseId: caseIds[i]!, overrides: o })),
    skipped: [],
  };
}

/**
 * The sweep's runs as jobs, checked as a local sweep checks them: completed runs are skipped, and
 * unfinished ones need --resume.
 */
export async function planSweepExperiment(request: SweepRequest, plan: PlannedSweep, launch: QueueLaunch): Promise<Experiment> {
  const out = resolve(launch.out);
  const states = await Promise.all(plan.jobs.map((j) => jobState({ ...j, dir: resolve(j.dir) }, plan.config.epochs)));
  const unfinished = plan.jobs.filter((_, i) => states[i]!.state === 'unfinished');
  if (unfinished.length && !launch.resume) {
    throw new Error(
      `${unfinished.length} run${unfinished.length === 1 ? '' : 's'} of this sweep already started and did not complete (${unfinished.slice(0, 3).map((j) => j.dir).join(', ')}${unfinished.length > 3 ? ', …' : ''}): pass --resume to continue ${unfinished.length === 1 ? 'it' : 'them'}`,
    );
  }
  const id = newExperimentId('sweep', plan.spec.name, new Date());
  const base = baseData(id, { ...launch, out });
  // The request as the workers re-plan it: every field but `out`, which is the job's.
  const req: Omit<SweepRequest, 'out'> & { out?: string } = { ...request, overrides: jobOverrides(request.overrides, out) };
  delete req.out;
  const jobs: Experiment['jobs'] = [];
  const skipped: string[] = [];
  plan.jobs.forEach((j, index) => {
    if (states[index]!.state === 'completed') skipped.push(j.id);
    else jobs.push(jobOf(base, j.id, { kind: 'sweep', request: req, index }));
  });
  return { id, command: 'sweep', name: plan.spec.name, out, jobs, skipped };
}

export interface SubmitOptions {
  /** Tries per job for errors of the run's own (BullMQ attempts); stalls (killed workers) do not count. */
  attempts: number;
  /** First retry after this long, doubling each time. */
  retryDelayMs: number;
}

export const DEFAULT_ATTEMPTS = 3;
export const DEFAULT_RETRY_DELAY_MS = 30_000;
const KEEP_FINISHED_S = 30 * 24 * 3600;

export interface Submitted {
  record: ExperimentRecord;
  manifest: string;
  /** The queue's event stream position before the jobs were added: follow from here. */
  lastEventId: string;
}

/** Writes the manifest into the output folder, then queues the jobs (an experiment without jobs queues nothing). */
export async function submit(exp: Experiment, target: QueueTarget, opts: SubmitOptions): Promise<Submitted> {
  const redis = connect(target, `selab coordinator ${hostname()}:${process.pid}`);
  try {
    await checkReachable(redis, target);
    await probeOut(exp.out);
    const manifest = await writeManifest(newManifest({ id: exp.id, command: exp.command, name: exp.name, out: exp.out, queue: target.display, jobs: exp.jobs }));
    const record: ExperimentRecord = {
      id: exp.id, command: exp.command, name: exp.name, out: exp.out, createdAt: new Date().toISOString(), host: hostname(),
      jobs: exp.jobs.map((j) => ({ id: j.id, run: j.data.run })), skipped: exp.skipped,
    };
    const queue = new Queue(target.queue, { connection: redis });
    try {
      const last = await redis.xrevrange(queue.keys.events!, '+', '-', 'COUNT', 1);
      await saveExperiment(redis, target, record);
      const jobOpts: JobsOptions = {
        attempts: opts.attempts,
        backoff: { type: 'exponential', delay: opts.retryDelayMs },
        removeOnComplete: { age: KEEP_FINISHED_S },
        removeOnFail: { age: KEEP_FINISHED_S },
      };
      for (let i = 0; i < exp.jobs.length; i += 1000) {
        await queue.addBulk(exp.jobs.slice(i, i + 1000).map((j) => ({ name: JOB_NAME, data: j.data, opts: { ...jobOpts, jobId: j.id } })));
      }
      return { record, manifest, lastEventId: last[0]?.[0] ?? '0' };
    } finally {
      await queue.close();
    }
  } finally {
    await disconnect(redis);
  }
}

export interface JobOutcome {
  id: string;
  run: string;
  state: 'completed' | 'failed' | 'cancelled';
  result: JobResult | null;
  error: string | null;
}

export interface FollowOptions {
  onLine: (line: string) => void;
  signal?: AbortSignal;
  /** Follow events from this stream position (default: from now). */
  lastEventId?: string;
  /**
   * Besides the events, each pending job's state is checked once at the start, after each
   * reconnection to Redis, and then about once per this many seconds (default 60; at most 100
   * checks a second), to catch an event missed.
   */
  recheckSeconds?: number;
}

export interface FollowResult {
  outcomes: JobOutcome[];
  /** Stopped following (Ctrl-C) before every job had ended; the jobs go on. */
  interrupted: boolean;
}

const fix = (x: number | undefined, d: number): string => (x === undefined ? '-' : x.toFixed(d));

export function formatProgress(label: string, p: ProgressReport): string {
  if (p.phase === 'start') {
    const from = p.resumedFrom ? `, continuing after epoch ${p.resumedFrom} from its checkpoint` : '';
    return `${label}: training on ${p.worker} (attempt ${p.attempt}${from})`;
  }
  if (p.phase === 'epoch') {
    return `${label} epoch ${p.epoch}/${p.epochs}: loss ${fix(p.loss, 4)} acc ${fix(p.acc, 4)} val_loss ${fix(p.val_loss, 4)} val_acc ${fix(p.val_acc, 4)} ${fix(p.imagesPerSecond, 1)} img/s on ${p.worker}`;
  }
  return `${label} epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.steps} loss ${fix(p.loss, 4)} acc ${fix(p.acc, 4)} ${fix(p.imagesPerSecond, 1)} img/s on ${p.worker}`;
}

function parseResult(value: unknown): JobResult | null {
  if (typeof value === 'string') {
    try {
      return JSON.parse(value) as JobResult;
    } catch {
      return null;
    }
  }
  return (value as JobResult | null) ?? null;
}

/**
 * Follows an experiment's jobs until every one has completed, failed for good, or been removed
 * (cancelled): progress lines from BullMQ's progress events, then one line as each ends. Events
 * are backed by a steady check of the pending jobs' states, so none is missed across a Redis
 * restart.
 */
export async function follow(target: QueueTarget, record: ExperimentRecord, opts: FollowOptions): Promise<FollowResult> {
  const redis = connect(target, `selab follow ${hostname()}:${process.pid}`);
  const eventsRedis = connect(target, `selab follow events ${hostname()}:${process.pid}`);
  const queue = new Queue(target.queue, { connection: redis });
  const events = new QueueEvents(target.queue, { connection: eventsRedis, autorun: false, ...(opts.lastEventId ? { lastEventId: opts.lastEventId } : {}) });
  const total = record.jobs.length;
  const index = new Map(record.jobs.map((j, i) => [j.id, { run: j.run, label: `[${i + 1}/${total}] ${j.run}` }]));
  const pending = new Set(record.jobs.map((j) => j.id));
  const outcomes = new Map<string, JobOutcome>();
  let lost = false;
  /** The next check of the pending jobs checks all of them (at the start, after a reconnection). */
  let full = true;
  let wake: (() => void) | undefined;

  const finish = (id: string, state: JobOutcome['state'], result: JobResult | null, error: string | null): void => {
    if (!pending.delete(id)) return;
    const { run, label } = index.get(id)!;
    outcomes.set(id, { id, run, state, result, error });
    if (state === 'completed') {
      opts.onLine(`${label}: ${result?.trained === false ? 'already completed, not trained again' : `completed${result?.worker ? ` on ${result.worker}` : ''}${result?.finalValAcc != null ? ` (val_acc ${result.finalValAcc.toFixed(4)})` : ''}`}`);
    } else if (state === 'failed') {
      opts.onLine(`${label}: failed: ${error}`);
    } else {
      opts.onLine(`${label}: cancelled (removed from the queue)`);
    }
    if (pending.size === 0) wake?.();
  };
  const ours = (id: string): boolean => pending.has(id);

  events.on('progress', ({ jobId, data }) => {
    if (ours(jobId)) opts.onLine(formatProgress(index.get(jobId)!.label, data as unknown as ProgressReport));
  });
  events.on('completed', ({ jobId, returnvalue }) => {
    if (ours(jobId)) finish(jobId, 'completed', parseResult(returnvalue), null);
  });
  events.on('failed', ({ jobId, failedReason }) => {
    if (ours(jobId)) finish(jobId, 'failed', null, failedReason);
  });
  events.on('removed', ({ jobId }) => {
    if (ours(jobId)) finish(jobId, 'cancelled', null, 'removed from the queue');
  });
  events.on('stalled', ({ jobId }) => {
    if (ours(jobId)) opts.onLine(`${index.get(jobId)!.label}: its worker stopped renewing the job's lock (killed, or cut off): back in the queue, to continue from its last checkpoint`);
  });
  events.on('delayed', ({ jobId, delay }) => {
    if (!ours(jobId)) return;
    void queue.getJob(jobId).then((job) => {
      if (job?.failedReason) opts.onLine(`${index.get(jobId)!.label}: attempt ${job.attemptsMade} failed (${job.failedReason}); retrying in ${Math.round((Number(delay) - Date.now()) / 1000)} s`);
    }, () => undefined);
  });
  const onError = (e: Error): void => {
    if (!lost) opts.onLine(`lost Redis at ${target.display} (${e.message}); reconnecting, the jobs go on`);
    lost = true;
  };
  redis.on('error', onError);
  redis.on('ready', () => {
    if (lost) opts.onLine(`reconnected to Redis at ${target.display}`);
    if (lost) full = true;
    lost = false;
  });
  events.on('error', () => undefined);
  const running = events.run().catch(() => undefined);

  /** Checks pending jobs' states, to catch what the events missed: all of them when `full`, else a share. */
  const check = async (id: string): Promise<void> => {
    const state = await queue.getJobState(id);
    if (state === 'completed' || state === 'failed') {
      const job: Job | undefined = await queue.getJob(id);
      if (state === 'completed') finish(id, 'completed', parseResult(job?.returnvalue), null);
      else finish(id, 'failed', null, job?.failedReason ?? 'failed');
    } else if (state === 'unknown') {
      finish(id, 'cancelled', null, 'removed from the queue');
    }
  };
  const checker = (async () => {
    const every = opts.recheckSeconds ?? 60;
    let cursor = 0;
    while (pending.size > 0 && !opts.signal?.aborted) {
      const ids = [...pending];
      const share = full ? ids.length : Math.min(100, Math.ceil(ids.length / every));
      full = false;
      const batch = Array.from({ length: Math.min(share, ids.length) }, (_, k) => ids[(cursor + k) % ids.length]!);
      cursor = (cursor + batch.length) % Math.max(1, ids.length);
      for (let i = 0; i < batch.length; i += 500) await Promise.all(batch.slice(i, i + 500).map(check)).catch(() => undefined);
      await new Promise<void>((r) => {
        const t = setTimeout(() => wake?.(), 1000);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  })();
  const onAbort = (): void => wake?.();
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  await checker;
  opts.signal?.removeEventListener('abort', onAbort);
  const interrupted = pending.size > 0;
  await events.close().catch(() => undefined);
  await running;
  await queue.close().catch(() => undefined);
  await disconnect(redis);
  await disconnect(eventsRedis);
  return { outcomes: record.jobs.map((j) => outcomes.get(j.id)).filter((o): o is JobOutcome => o !== undefined), interrupted };
}

/** Opens the queue for one command (status, wait, cancel), failing fast when Redis is out of reach. */
export async function withQueue<T>(target: QueueTarget, use: (queue: Queue, redis: ReturnType<typeof connect>) => Promise<T>): Promise<T> {
  const redis = connect(target, `selab queue ${hostname()}:${process.pid}`);
  try {
    await checkReachable(redis, target);
    const queue = new Queue(target.queue, { connection: redis });
    try {
      return await use(queue, redis);
    } finally {
      await queue.close();
    }
  } finally {
    await disconnect(redis);
  }
}

export async function findExperiment(target: QueueTarget, id: string): Promise<ExperimentRecord> {
  const record = await withQueue(target, (_q, redis) => getExperiment(redis, target, id));
  if (!record) throw new Error(`--experiment ${id}: no such experiment on ${target.display} (selab queue status lists them)`);
  return record;
}

export interface JobStatus {
  id: string;
  run: string;
  state: string;
  attemptsMade: number;
  worker: string | null;
  progress: ProgressReport | null;
  error: string | null;
}

export interface ExperimentStatus {
  record: ExperimentRecord;
  counts: Record<string, number>;
  jobs: JobStatus[];
}

/** Each experiment (or the one named) with its jobs' states. */
export async function experimentStatus(target: QueueTarget, id?: string): Promise<ExperimentStatus[]> {
  return withQueue(target, async (queue, redis) => {
    const records = id !== undefined ? [await getExperiment(redis, target, id)] : await listExperiments(redis, target);
    if (id !== undefined && records[0] === null) throw new Error(`--experiment ${id}: no such experiment on ${target.display}`);
    const result: ExperimentStatus[] = [];
    for (const record of records as ExperimentRecord[]) {
      const jobs = await Promise.all(record.jobs.map(async ({ id: jobId, run }): Promise<JobStatus> => {
        const job = await queue.getJob(jobId);
        const state = job ? await job.getState() : 'removed';
        const progress = job && typeof job.progress === 'object' ? (job.progress as unknown as ProgressReport) : null;
        return { id: jobId, run, state, attemptsMade: job?.attemptsMade ?? 0, worker: job?.processedBy ?? progress?.worker ?? null, progress, error: job?.failedReason || null };
      }));
      const counts: Record<string, number> = {};
      for (const j of jobs) counts[j.state] = (counts[j.state] ?? 0) + 1;
      result.push({ record, counts, jobs });
    }
    return result;
  });
}

/**
 * Cancels an experiment: its queued jobs are removed, and the workers stop its jobs in progress
 * after their current step (the runs are marked stopped; --resume continues them later).
 */
export async function cancelExperiment(target: QueueTarget, id: string): Promise<{ removed: number; stopping: number; finished: number }> {
  return withQueue(target, async (queue, redis) => {
    const record = await getExperiment(redis, target, id);
    if (!record) throw new Error(`--experiment ${id}: no such experiment on ${target.display}`);
    // The queued jobs are removed and the others counted before the workers learn of the
    // cancellation: once they do, a job stops within one step, and its worker could take a job
    // of this experiment that the loop had not reached yet.
    let removed = 0;
    let stopping = 0;
    let finished = 0;
    for (const { id: jobId } of record.jobs) {
      const job = await queue.getJob(jobId);
      if (!job) continue;
      const state = await job.getState();
      if (state === 'completed' || state === 'failed') finished++;
      else if (state !== 'active' && (await job.remove().then(() => true, () => false))) removed++;
      // Active, or taken by a worker between the two calls above.
      else stopping++;
    }
    await markCancelled(redis, target, id);
    return { removed, stopping, finished };
  });
}

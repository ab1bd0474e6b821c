// `selab worker`: takes training jobs from the queue and runs each in a sandboxed child process
// (src/cluster/processor.ts) with the ordinary runner.
//
// Lock settings, and why:
// - lockDuration 30 s (BullMQ's default). The lock is renewed every 15 s by this process, whose
//   event loop never trains (training runs in the child), so a healthy job keeps its lock however
//   long one training step takes. The lock lapses only when this process or its machine dies, or
//   Redis is out of reach for 30 s: that is the delay before another worker resumes the run.
// - stalledInterval 30 s: each worker looks for lapsed locks this often; with several workers
//   some worker looks much sooner. A dead worker's job is back in the queue 30–60 s after death.
// - maxStalledCount 10 (BullMQ's default is 1). A stall means a worker died holding the job, and
//   a killed machine must not fail an experiment; ten deaths of the machines running one job
//   means something kills whatever runs it (e.g. a node whose memory the job exceeds), and the
//   job is then failed with BullMQ's "job stalled more than allowable limit".
// - A job that failed for a reason of its own (a NaN loss, a bad weights file) is retried up to
//   its attempts (set by the coordinator, default 3), then failed; a job the worker refuses
//   (schema, paths, remote sources, manifest) fails at once.
// And beyond BullMQ: a job whose lock this process could not renew for a whole lockDuration (Redis
// unreachable) is stopped, since another worker may have been handed it; the run folder's lease
// keeps that other worker waiting until this one has stopped writing.
import { Worker, type Job } from 'bullmq';
import { hostname } from 'node:os';
import { extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectBackend, type BackendName } from '../backend/select.js';
import { nativeThreads } from '../engine/run-metadata.js';
import { selabHome } from '../util/home.js';
import { connect, disconnect, type QueueTarget } from './connection.js';
import { isUrl, type JobResult } from './job.js';
import { CANCELLED, CONFIG_ENV, LOCK_LOST, SHUTDOWN, type ProcessorConfig } from './protocol.js';
import { isCancelled } from './queue-state.js';

export interface WorkerSettings {
  target: QueueTarget;
  /** Shown in logs and progress lines; default host:pid. */
  name?: string;
  backend: BackendName;
  /** Native threads per training process (SELAB_THREADS). */
  threads?: number;
  concurrency: number;
  /** This worker's CIFAR-10 source (default $SELAB_DATA, else the official download into SELAB_HOME). */
  data?: string;
  verify?: boolean;
  /** Let jobs name weights URLs and data sources. */
  allowRemote: boolean;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  maxStalledCount?: number;
  /** The run folder lease's lifetime (renewed every quarter of it). */
  leaseTtlMs?: number;
  progressIntervalMs?: number;
  log?: (line: string) => void;
}

export const LOCK_DURATION_MS = 30_000;
export const STALLED_INTERVAL_MS = 30_000;
export const MAX_STALLED_COUNT = 10;
export const LEASE_TTL_MS = 60_000;
/** A step progress report per job at most this often (besides one per epoch): 500 workers make ~17 lines a second. */
export const PROGRESS_INTERVAL_MS = 30_000;

export interface RunningWorker {
  name: string;
  backend: string;
  threads: number | null;
  /** Stops taking jobs; jobs in progress stop after their current step and go back to the queue. */
  stop(): Promise<void>;
  /** Resolves once the worker has stopped. */
  closed: Promise<void>;
}

/** The processor next to this module: .ts when run from source (tsx), .js when built. */
function processorFile(): URL {
  const ext = extname(fileURLToPath(import.meta.url));
  return new URL(`./processor${ext}`, import.meta.url);
}

function describeJob(job: Job): string {
  const data = job.data as { run?: unknown } | undefined;
  return `${job.id}${typeof data?.run === 'string' ? '' : ' (not a selab job)'}`;
}

export async function startWorker(s: WorkerSettings): Promise<RunningWorker> {
  const log = s.log ?? ((line: string) => console.log(line));
  const name = s.name ?? `${hostname()}:${process.pid}`;
  const lockDuration = s.lockDurationMs ?? LOCK_DURATION_MS;
  const stalledInterval = s.stalledIntervalMs ?? STALLED_INTERVAL_MS;
  const maxStalledCount = s.maxStalledCount ?? MAX_STALLED_COUNT;
  const leaseTtlMs = s.leaseTtlMs ?? LEASE_TTL_MS;
  if (s.threads !== undefined) process.env.SELAB_THREADS = String(s.threads);
  // The training processes resolve the cache from the same absolute folder.
  process.env.SELAB_HOME = selabHome();

  const backend = await selectBackend(s.backend);
  const threads = nativeThreads(backend);
  const data = s.data === undefined ? undefined : isUrl(s.data) ? s.data : resolve(s.data);
  const config: ProcessorConfig = {
    worker: name,
    backend: backend as BackendName,
    ...(data !== undefined ? { data } : {}),
    ...(s.verify === false ? { verify: false } : {}),
    allowRemote: s.allowRemote,
    leaseTtlMs,
    leaseWaitMs: 2 * leaseTtlMs + lockDuration,
    progressIntervalMs: s.progressIntervalMs ?? PROGRESS_INTERVAL_MS,
  };

  const redis = connect(s.target, `selab-worker ${name}`);
  const worker = new Worker(s.target.queue, processorFile(), {
    connection: redis,
    name,
    concurrency: s.concurrency,
    lockDuration,
    stalledInterval,
    maxStalledCount,
    autorun: false,
    workerForkOptions: { env: { ...process.env, [CONFIG_ENV]: JSON.stringify(config) } },
  });

  /** Jobs in progress here: their experiment (for cancellation) and when their lock was last renewed. */
  const active = new Map<string, { experiment: string | undefined; renewed: number }>();
  let outage: string | null = null;
  let stopping = false;

  worker.on('active', (job) => {
    const d = job.data as { experiment?: string; run?: string };
    active.set(String(job.id), { experiment: d?.experiment, renewed: Date.now() });
    const stalls = job.stalledCounter ? `, after ${job.stalledCounter} stall${job.stalledCounter === 1 ? '' : 's'}` : '';
    log(`took job ${describeJob(job)} (attempt ${job.attemptsMade + 1}${stalls})`);
  });
  worker.on('completed', (job, result: JobResult) => {
    active.delete(String(job.id));
    log(`finished job ${job.id}: ${result?.trained === false ? 'already completed, not trained again' : `${result?.status ?? 'done'}, ${result?.epochsCompleted ?? '?'} epochs`}`);
  });
  worker.on('failed', (job, err) => {
    if (!job) return;
    active.delete(String(job.id));
    const attempts = job.opts.attempts ?? 1;
    const final = err.name === 'UnrecoverableError' || job.attemptsMade >= attempts;
    log(`job ${job.id} ${final ? 'failed' : `failed (attempt ${job.attemptsMade} of ${attempts}; it will be retried)`}: ${err.message}`);
  });
  worker.on('locksRenewed', ({ jobIds }) => {
    const now = Date.now();
    for (const id of jobIds) {
      const a = active.get(id);
      if (a) a.renewed = now;
    }
  });
  worker.on('lockRenewalFailed', (jobIds) => {
    for (const id of jobIds) {
      log(`lost the lock of job ${id} (another worker holds it now): stopping it here`);
      worker.cancelJob(id, LOCK_LOST);
      active.delete(id);
    }
  });
  worker.on('stalled', (jobId) => log(`job ${jobId} stalled (its worker stopped renewing its lock): back in the queue`));
  worker.on('error', (err) => {
    const message = err.message || String(err);
    if (/could not renew lock|Missing lock/i.test(message)) return; // reported by lockRenewalFailed / the watchdog
    if (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|Connection is closed|connect/i.test(message)) {
      if (outage === null) log(`lost Redis at ${s.target.display} (${message}); reconnecting`);
      outage = message;
      return;
    }
    log(`worker error: ${message}`);
  });
  redis.on('ready', () => {
    if (outage !== null) log(`reconnected to Redis at ${s.target.display}`);
    outage = null;
  });

  // A lock not renewed for a whole lockDuration has lapsed in Redis: another worker may be handed
  // the job, so stop writing its run (the lease makes that worker wait meanwhile).
  const watchdog = setInterval(() => {
    const now = Date.now();
    for (const [id, a] of active) {
      if (now - a.renewed > lockDuration) {
        log(`could not renew the lock of job ${id} for ${lockDuration / 1000} s (Redis unreachable): stopping it here; it goes on from its checkpoint`);
        worker.cancelJob(id, LOCK_LOST);
        // BullMQ reports no end for a job whose lock is gone: forget it here.
        active.delete(id);
      }
    }
  }, Math.max(100, lockDuration / 4));
  // `selab queue cancel`: stop the experiment's jobs in progress after their current step.
  const cancelPoll = setInterval(() => {
    for (const [id, a] of active) {
      if (a.experiment === undefined) continue;
      void isCancelled(redis, s.target, a.experiment).then((yes) => {
        if (yes && active.has(id)) {
          log(`job ${id}: experiment ${a.experiment} was cancelled; stopping it after the current step`);
          a.experiment = undefined;
          worker.cancelJob(id, CANCELLED);
        }
      }, () => undefined);
    }
  }, 2000);

  log(
    `selab worker ${name}: backend ${backend}${threads !== null ? `, ${threads} thread${threads === 1 ? '' : 's'}` : ''}, concurrency ${s.concurrency}, ` +
      `queue "${s.target.queue}" on ${s.target.display}; lock ${lockDuration / 1000} s, stall check every ${stalledInterval / 1000} s, at most ${maxStalledCount} stalls per job` +
      `${data !== undefined ? `; data ${data}` : ''}${s.allowRemote ? '; jobs may name remote weights and data (--allow-remote)' : ''}`,
  );
  const running = worker.run();
  const closed = (async () => {
    try {
      await running;
    } finally {
      clearInterval(watchdog);
      clearInterval(cancelPoll);
      await disconnect(redis);
    }
  })();

  return {
    name,
    backend,
    threads,
    closed,
    async stop() {
      if (stopping) return closed;
      stopping = true;
      log(`stopping: no new jobs${active.size ? `; ${active.size} job${active.size === 1 ? '' : 's'} in progress stop after the current step and go back to the queue` : ''}`);
      await worker.pause(true);
      worker.cancelAllJobs(SHUTDOWN);
      active.clear();
      await worker.close();
      return closed;
    },
  };
}

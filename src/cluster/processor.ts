// The sandboxed processor: BullMQ runs this module in a child process of `selab worker` (one per
// --concurrency slot, reused from job to job), so that training, which keeps its thread busy for
// a whole micro-batch at a time, never delays the renewal of the job's lock: that happens in the
// worker's own process, whose event loop does nothing else.
//
// Per job: check it (schema, paths, remote sources, the experiment manifest), rebuild the run with
// the ordinary planners, take the run folder's lease, then train with the ordinary runner, which
// continues from the run's last checkpoint whatever an earlier attempt (a killed worker) left.
import type { SandboxedJob } from 'bullmq';
import { UnrecoverableError, WaitingError } from 'bullmq';
import type { Callback } from '../engine/callbacks.js';
import { makeProgress } from '../engine/progress.js';
import { openEnvironment, trainPlanned, type EnvironmentOptions } from '../experiments/plan.js';
import { readRunFile } from '../runs/files.js';
import { checkJob, planJob, runDir, type JobData, type JobResult } from './job.js';
import { acquireLease, describeHolder } from './lease.js';
import { checkManifest } from './manifest.js';
import { CANCELLED, CONFIG_ENV, EXIT_LEASE_LOST, EXIT_ORPHANED, SHUTDOWN, type ProcessorConfig, type ProgressReport } from './protocol.js';

function config(): ProcessorConfig {
  const text = process.env[CONFIG_ENV];
  if (!text) throw new Error(`${CONFIG_ENV} is not set: this module is run by selab worker`);
  return JSON.parse(text) as ProcessorConfig;
}

// The worker's process is gone (killed, or its machine's network to it): stop at once rather
// than go on writing a run folder that another worker will be handed.
process.on('disconnect', () => {
  process.stderr.write(`selab worker process ${process.pid}: the worker is gone; stopping\n`);
  process.exit(EXIT_ORPHANED);
});

const log = (line: string): void => void process.stdout.write(`${line}\n`);

let opened: { key: string; value: ReturnType<typeof openEnvironment> } | undefined;

/** The backend and the data, loaded once per process and data source. */
function environmentFor(env: EnvironmentOptions): ReturnType<typeof openEnvironment> {
  const key = JSON.stringify(env);
  if (opened?.key !== key) {
    const value = openEnvironment(env);
    opened = { key, value };
    value.catch(() => {
      if (opened?.value === value) opened = undefined; // a failed load is tried again by the next job
    });
  }
  return opened.value;
}

/** Reports progress to BullMQ (the coordinator shows it): steps at most every intervalMs, and every epoch's end. */
function progressReporter(report: (p: ProgressReport) => void, base: Pick<ProgressReport, 'run' | 'worker' | 'attempt'>, intervalMs: number): Callback {
  let epoch = 0;
  let last = 0;
  return {
    onTrainBegin(ctx) {
      report({ ...base, phase: 'start', epochs: ctx.config.epochs, resumedFrom: ctx.rows.length });
    },
    onEpochBegin(e) {
      epoch = e;
    },
    onStep(info, ctx) {
      const now = Date.now();
      if (now - last < intervalMs || info.step === info.steps) return;
      last = now;
      report({
        ...base, phase: 'step', epoch, epochs: ctx.config.epochs, step: info.step, steps: info.steps, loss: info.loss, acc: info.acc,
        imagesPerSecond: info.seconds > 0 ? info.images / info.seconds : 0,
      });
    },
    onEpochEnd(row, ctx) {
      last = Date.now();
      report({
        ...base, phase: 'epoch', epoch: row.epoch, epochs: ctx.config.epochs, loss: row.loss, acc: row.acc, val_loss: row.val_loss, val_acc: row.val_acc,
        imagesPerSecond: row.imagesPerSecond,
      });
    },
  };
}

export default async function processJob(job: SandboxedJob<unknown, JobResult>, token?: string, signal?: AbortSignal): Promise<JobResult> {
  const cfg = config();
  const jobId = String(job.id);
  const data: JobData = checkJob(job.data, { allowRemote: cfg.allowRemote });
  await checkManifest(data, jobId);
  const plan = await planJob(data);
  const dir = runDir(data);
  const attempt = job.attemptsMade + 1;
  const base = { run: data.run, worker: cfg.worker, attempt };
  const report = (p: ProgressReport): void => void job.updateProgress(p as unknown as Record<string, unknown>).catch(() => undefined);

  const lease = await acquireLease(dir, { worker: cfg.worker, job: jobId, token: token ?? `${process.pid}-${Date.now()}` }, {
    ttlMs: cfg.leaseTtlMs,
    waitMs: cfg.leaseWaitMs,
    ...(signal ? { signal } : {}),
    onWait: (holder) => log(`${data.run}: waiting for ${describeHolder(holder)}`),
    onTakeover: (holder, why) => log(`${data.run}: taking over the lease of ${holder.worker} (${why})`),
  });
  // A lease found taken means another worker was handed this run: stop writing at once, as if
  // this process had been killed (the other worker continues from the last checkpoint).
  lease.keepAlive((why) => {
    process.stderr.write(`${data.run}: ${why}; stopping this training process\n`);
    process.exit(EXIT_LEASE_LOST);
  });
  try {
    const done = await readRunFile(dir).catch(() => null);
    if (done && done.status === 'completed' && done.epochsCompleted >= plan.config.epochs) {
      log(`${data.run}: already completed (${done.epochsCompleted} epochs), not trained again`);
      return { run: data.run, status: done.status, epochsCompleted: done.epochsCompleted, trained: false, worker: cfg.worker, finalValAcc: done.final?.val_acc ?? null };
    }
    const env: EnvironmentOptions = {
      backend: cfg.backend,
      ...(data.data !== undefined ? { data: data.data, ...(data.verify === false ? { verify: false } : {}) } : cfg.data !== undefined ? { data: cfg.data, ...(cfg.verify === false ? { verify: false } : {}) } : {}),
    };
    const { environment, dataset } = await environmentFor(env);
    const run = await trainPlanned(
      plan,
      {
        out: data.out,
        resume: true,
        env,
        progress: makeProgress(process.stdout),
        ...(signal ? { signal } : {}),
        callbacks: [progressReporter(report, base, cfg.progressIntervalMs)],
      },
      environment,
      dataset,
    );
    return { run: data.run, status: run.status, epochsCompleted: run.epochsCompleted, trained: true, worker: cfg.worker, finalValAcc: run.final?.val_acc ?? null };
  } catch (e) {
    const reason = signal?.aborted ? String(signal.reason) : null;
    if (reason === CANCELLED) throw new UnrecoverableError(`cancelled (selab queue cancel): ${(e as Error).message}`);
    if (reason === SHUTDOWN) {
      // Back to the queue without using up an attempt; another worker continues from the checkpoint.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    throw e;
  } finally {
    await lease.release();
  }
}

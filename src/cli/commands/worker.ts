import type { Command } from 'commander';
import { parseQueueUrl } from '../../cluster/connection.js';
import { LEASE_TTL_MS, LOCK_DURATION_MS, MAX_STALLED_COUNT, PROGRESS_INTERVAL_MS, STALLED_INTERVAL_MS, startWorker } from '../../cluster/worker.js';
import { BACKEND_NAMES } from '../../backend/select.js';
import { parseBackend, parseInteger } from '../options.js';

interface WorkerFlags {
  queue?: string;
  backend?: string;
  threads?: string;
  concurrency?: string;
  data?: string;
  verify?: boolean;
  allowRemote?: boolean;
  name?: string;
  lockDuration?: string;
  stalledInterval?: string;
  maxStalled?: string;
  lease?: string;
  progressInterval?: string;
}

function seconds(flag: string, text: string | undefined, fallbackMs: number): number {
  if (text === undefined) return fallbackMs;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v <= 0) throw new Error(`${flag} ${JSON.stringify(text)}: expected a positive number of seconds`);
  return Math.round(v * 1000);
}

export function register(program: Command): void {
  program
    .command('worker')
    .description(
      'Take training jobs queued by `selab run|sweep --queue` from Redis and train them with the ordinary runner, each in a child process, ' +
        'until stopped (SIGTERM or Ctrl-C: the jobs in progress stop after their current step and go back to the queue)',
    )
    .option('--queue <url>', '(required) redis://[user:pass@]host:port[/db] or rediss:// (TLS); ?queue=NAME picks a queue other than "selab"')
    .option('--backend <name>', `${BACKEND_NAMES.join(', ')} (default: auto)`)
    .option('--threads <n>', 'native threads per training process (default: $SELAB_THREADS, else every core)')
    .option('--concurrency <n>', 'jobs trained at once, each in its own process (default: 1)')
    .option('--data <source>', "CIFAR-10 for this worker's runs: a folder, the .tar.gz archive or a URL (default: $SELAB_DATA, else the official download into $SELAB_HOME)")
    .option('--no-verify', 'accept a CIFAR-10 archive whose MD5 is not the official one')
    .option('--allow-remote', 'let jobs name weights URLs and data sources (default: refused)')
    .option('--name <name>', 'worker name in logs and progress lines (default: host:pid)')
    .option('--lock-duration <s>', `BullMQ job lock, renewed every half of it; a dead worker's job is resumed elsewhere after about this long (default: ${LOCK_DURATION_MS / 1000})`)
    .option('--stalled-interval <s>', `how often this worker looks for jobs whose lock lapsed (default: ${STALLED_INTERVAL_MS / 1000})`)
    .option('--max-stalled <n>', `a job whose worker died this many times is failed (default: ${MAX_STALLED_COUNT})`)
    .option('--lease <s>', `lifetime of a run folder's lease, renewed every quarter of it (default: ${LEASE_TTL_MS / 1000})`)
    .option('--progress-interval <s>', `at most one progress report per job this often, besides one per epoch's end (default: ${PROGRESS_INTERVAL_MS / 1000})`)
    .action(async (opts: WorkerFlags) => {
      let running: Awaited<ReturnType<typeof startWorker>> | undefined;
      let signals = 0;
      const onSignal = (): void => {
        signals++;
        if (signals > 1 || !running) process.exit(130);
        void running.stop();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        if (opts.queue === undefined) throw new Error('--queue is required, e.g. --queue redis://localhost:6379');
        running = await startWorker({
          target: parseQueueUrl(opts.queue),
          backend: parseBackend(opts.backend),
          concurrency: parseInteger('--concurrency', opts.concurrency, 1) ?? 1,
          allowRemote: opts.allowRemote ?? false,
          ...(opts.threads !== undefined ? { threads: parseInteger('--threads', opts.threads, 1)! } : {}),
          ...(opts.data !== undefined ? { data: opts.data } : {}),
          ...(opts.verify === false ? { verify: false } : {}),
          ...(opts.name !== undefined ? { name: opts.name } : {}),
          lockDurationMs: seconds('--lock-duration', opts.lockDuration, LOCK_DURATION_MS),
          stalledIntervalMs: seconds('--stalled-interval', opts.stalledInterval, STALLED_INTERVAL_MS),
          maxStalledCount: parseInteger('--max-stalled', opts.maxStalled, 1) ?? MAX_STALLED_COUNT,
          leaseTtlMs: seconds('--lease', opts.lease, LEASE_TTL_MS),
          progressIntervalMs: opts.progressInterval === '0' ? 0 : seconds('--progress-interval', opts.progressInterval, PROGRESS_INTERVAL_MS),
        });
        if (signals > 0) void running.stop();
        await running.closed;
        console.log(`selab worker ${running.name}: stopped`);
      } catch (e) {
        console.error(`selab worker: ${(e as Error).message}`);
        process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

// How the queue scales: N simulated workers (BullMQ workers whose jobs only report progress once
// and sleep), 10,000 jobs queued and followed by selab's own coordinator (submit + follow, as
// `selab sweep --queue` does). Reports jobs dispatched per second, the coordinator's CPU time and
// memory, and Redis's memory and CPU. Starts its own redis-server (AOF on, fsync every second, as
// docs/cluster.md recommends) on a free port.
//
//   node --import tsx bench/queue-scale.ts [--workers 1,10,100,500] [--jobs 10000] [--sleep-ms 10] [--processes 4]
import { Worker } from 'bullmq';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { follow, submit, type Experiment } from '../src/cluster/coordinator.js';
import { parseQueueUrl } from '../src/cluster/connection.js';
import { JOB_VERSION, type JobData } from '../src/cluster/job.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A worker process: `count` BullMQ workers, concurrency 1 each, sharing one connection. */
async function workersRole(): Promise<void> {
  const url = arg('url', '');
  const count = Number(arg('count', '1'));
  const sleepMs = Number(arg('sleep-ms', '10'));
  const target = parseQueueUrl(url);
  const shared = new Redis({ ...target.options, maxRetriesPerRequest: null });
  const workers: Worker[] = [];
  for (let i = 0; i < count; i++) {
    const name = `${process.pid}-${i}`;
    workers.push(new Worker(target.queue, async (job) => {
      await job.updateProgress({ phase: 'start', worker: name, run: (job.data as JobData).run, attempt: 1 });
      await sleep(sleepMs);
      return { run: (job.data as JobData).run, status: 'completed', epochsCompleted: 1, trained: true, worker: name, finalValAcc: null };
    }, { connection: shared, concurrency: 1, name }));
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  process.send!('ready');
  process.on('message', async (m) => {
    if (m !== 'stop') return;
    await Promise.all(workers.map((w) => w.close(true)));
    shared.disconnect();
    process.exit(0);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function startRedis(dir: string): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxclients', '10000'], { stdio: 'ignore' });
  const probe = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  probe.on('error', () => undefined);
  for (let i = 0; i < 200; i++) {
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch {
      await sleep(50);
    }
  }
  probe.disconnect();
  return { url: `redis://127.0.0.1:${port}`, proc };
}

function info(text: string, key: string): number {
  return Number(new RegExp(`^${key}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN);
}

interface Row {
  workers: number;
  jobs: number;
  enqueueS: number;
  wallS: number;
  jobsPerS: number;
  idealPerS: number;
  coordinatorCpuS: number;
  coordinatorRssMiB: number;
  coordinatorRssGrowthMiB: number;
  redisPeakMiB: number;
  redisCpuS: number;
  lines: number;
}

async function measure(workers: number, jobs: number, sleepMs: number, processes: number): Promise<Row> {
  const dir = await mkdtemp(join(tmpdir(), 'selab-queue-scale-'));
  const redis = await startRedis(dir);
  const target = parseQueueUrl(redis.url);
  const self = fileURLToPath(import.meta.url);
  const procs: ChildProcess[] = [];
  const per = Math.ceil(workers / Math.min(processes, workers));
  for (let left = workers; left > 0; left -= per) {
    procs.push(fork(self, ['--role', 'workers', '--url', redis.url, '--count', String(Math.min(per, left)), '--sleep-ms', String(sleepMs)], { execArgv: process.execArgv, stdio: 'ignore' }));
  }
  await Promise.all(procs.map((p) => new Promise<void>((r) => p.once('message', () => r()))));
  const admin = new Redis(target.options);
  const redisBefore = await admin.info();

  const id = `bench-${workers}`;
  const out = join(dir, 'out');
  const exp: Experiment = {
    id, command: 'sweep', name: 'bench', out, skipped: [],
    jobs: Array.from({ length: jobs }, (_, i) => {
      const data: JobData = { version: JOB_VERSION, experiment: id, out, run: `sweep_bench/p${Math.floor(i / 10)}/seed_${(i % 10) + 1}`, spec: { kind: 'case', caseId: 1, overrides: {} } };
      return { id: `${id}/${data.run}`, data };
    }),
  };
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let rss = rssBefore;
  let redisPeak = 0;
  const sampler = setInterval(() => {
    rss = Math.max(rss, process.memoryUsage().rss);
    void admin.info('memory').then((t) => (redisPeak = Math.max(redisPeak, info(t, 'used_memory'))), () => undefined);
  }, 100);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const submitted = await submit(exp, target, { attempts: 3, retryDelayMs: 1000 });
  const t1 = performance.now();
  let lines = 0;
  const result = await follow(target, submitted.record, { onLine: () => void lines++, lastEventId: submitted.lastEventId });
  const t2 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  const redisAfter = await admin.info();
  const done = result.outcomes.filter((o) => o.state === 'completed').length;
  if (done !== jobs) throw new Error(`${jobs - done} jobs did not complete`);

  for (const p of procs) p.send('stop');
  await Promise.all(procs.map((p) => new Promise((r) => p.once('exit', r))));
  admin.disconnect();
  redis.proc.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
  const wallS = (t2 - t0) / 1000;
  return {
    workers, jobs,
    enqueueS: (t1 - t0) / 1000,
    wallS,
    jobsPerS: jobs / wallS,
    idealPerS: (workers * 1000) / sleepMs,
    coordinatorCpuS: (cpu.user + cpu.system) / 1e6,
    coordinatorRssMiB: rss / 2 ** 20,
    coordinatorRssGrowthMiB: (rss - rssBefore) / 2 ** 20,
    redisPeakMiB: Math.max(redisPeak, info(redisAfter, 'used_memory_peak')) / 2 ** 20,
    redisCpuS: info(redisAfter, 'used_cpu_sys') + info(redisAfter, 'used_cpu_user') - info(redisBefore, 'used_cpu_sys') - info(redisBefore, 'used_cpu_user'),
    lines,
  };
}

async function main(): Promise<void> {
  const workerCounts = arg('workers', '1,10,100,500').split(',').map(Number);
  const jobs = Number(arg('jobs', '10000'));
  const sleepMs = Number(arg('sleep-ms', '10'));
  const processes = Number(arg('processes', '4'));
  console.log(`# queue scaling: ${jobs} jobs of ${sleepMs} ms sleep each; workers in ${processes} processes; ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}; node ${process.version}; ${new Date().toISOString()}`);
  console.log('| workers | enqueue s | wall s | jobs/s | ideal jobs/s | coordinator CPU s | coordinator RSS MiB (growth) | Redis peak MiB | Redis CPU s | progress lines |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const n of workerCounts) {
    const r = await measure(n, jobs, sleepMs, processes);
    console.log(`| ${r.workers} | ${r.enqueueS.toFixed(1)} | ${r.wallS.toFixed(1)} | ${r.jobsPerS.toFixed(0)} | ${r.idealPerS.toFixed(0)} | ${r.coordinatorCpuS.toFixed(1)} | ${r.coordinatorRssMiB.toFixed(0)} (+${r.coordinatorRssGrowthMiB.toFixed(0)}) | ${r.redisPeakMiB.toFixed(1)} | ${r.redisCpuS.toFixed(1)} | ${r.lines} |`);
  }
}

if (arg('role', 'main') === 'workers') await workersRole();
else await main();

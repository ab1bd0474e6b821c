// Shared by the queue tests: a real redis-server on a free port, `selab worker` and coordinator
// processes, and a generated CIFAR-10 folder.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { History, HistoryRow } from '../src/runs/files.js';
import { packageRoot } from '../src/util/paths.js';

export const ROOT = packageRoot();
const CLI = join(ROOT, 'src/cli/main.ts');

/** CIFAR-10 binary layout: 5 train files and a test file of 10,000 records each (1 label + 3,072 pixels). */
export async function writeCifar(dir: string): Promise<void> {
  const bin = join(dir, 'cifar-10-batches-bin');
  await mkdir(bin, { recursive: true });
  const files = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];
  for (const [f, name] of files.entries()) {
    const buf = Buffer.alloc(10_000 * 3073);
    for (let i = 0; i < 10_000; i++) {
      const label = (i + f) % 10;
      buf[i * 3073] = label;
      buf.fill(label * 25, i * 3073 + 1 + (i % 3) * 1024, i * 3073 + 1 + ((i % 3) + 1) * 1024);
    }
    await writeFile(join(bin, name), buf);
  }
  await writeFile(join(bin, 'batches.meta.txt'), 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n');
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `ready()` holds; false after `timeoutMs`. */
export async function until(ready: () => boolean, timeoutMs = 240_000, everyMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (ready()) return true;
    await sleep(everyMs);
  }
  return ready();
}

export interface Proc {
  child: ChildProcess;
  /** stdout and stderr lines so far. */
  lines: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  text(): string;
}

function track(child: ChildProcess): Proc {
  const lines: string[] = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    let partial = '';
    stream.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString()).split('\n');
      partial = parts.pop()!;
      lines.push(...parts);
    });
  }
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, lines, exit, text: () => lines.join('\n') };
}

/** `selab ARGS` in its own process group (so that a test can kill it with all its children). */
export function selab(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  return track(spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SELAB_THREADS: '1', ...env },
  }));
}

/** Kills a process started by `selab` together with its children (a machine dying). */
export function killGroup(p: Proc, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-p.child.pid!, signal);
  } catch {
    // already gone
  }
}

export function groupAlive(p: Proc): boolean {
  try {
    process.kill(-p.child.pid!, 0);
    return true;
  } catch {
    return false;
  }
}

export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server (SIGKILL by default: nothing flushed but what the AOF already has). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and data folder. */
  start(): Promise<void>;
}

/** A redis-server on a free port, its data in `dir`, every write in the AOF before it is acknowledged. */
export async function startRedis(dir: string): Promise<RedisServer> {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  let proc: Proc | undefined;
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      proc = track(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: ['ignore', 'pipe', 'pipe'] }));
      const ok = await until(() => proc!.lines.some((l) => /Ready to accept connections/.test(l)) || proc!.child.exitCode !== null, 15_000);
      if (!ok || proc.child.exitCode !== null) throw new Error(`redis-server did not start on port ${port}: ${proc.text()}`);
    },
    async stop(signal = 'SIGKILL') {
      if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
      proc.child.kill(signal);
      await proc.exit;
    },
  };
  await server.start();
  return server;
}

/** A worker with the test's lock settings: a dead worker's job is back in the queue within seconds. */
export function worker(redis: RedisServer, name: string, data: string, extra: string[] = []): Proc {
  return selab(['worker', '--queue', redis.url, '--name', name, '--data', data, '--lock-duration', '3', '--stalled-interval', '1', '--progress-interval', '0', '--lease', '4', ...extra]);
}

export async function workerReady(w: Proc): Promise<void> {
  if (!(await until(() => w.lines.some((l) => l.startsWith('selab worker ')) || w.child.exitCode !== null, 180_000))) throw new Error(`the worker did not start: ${w.text()}`);
  if (w.child.exitCode !== null) throw new Error(`the worker exited: ${w.text()}`);
}

export const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

export function historyRows(dir: string): HistoryRow[] {
  const file = join(dir, 'history.json');
  if (!existsSync(file)) return [];
  try {
    return readJson<History>(file).rows;
  } catch {
    return [];
  }
}

/** A history without its timings, which differ from run to run. */
export const comparable = (rows: readonly HistoryRow[]) => rows.map(({ seconds: _s, imagesPerSecond: _i, ...r }) => r);

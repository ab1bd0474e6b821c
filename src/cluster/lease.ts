// A lease on a run folder: OUT/<run>/lease.json names the one training process allowed to write
// the folder, until `expiresAt`. It backs BullMQ's job lock, which lives in Redis: a worker cut
// off from Redis keeps its lease (and so its folder) until it notices and stops, and the worker
// that was handed the job meanwhile waits for the lease instead of writing beside it.
//
// The lease is created with O_EXCL (atomic on local file systems and NFSv3+), renewed by its
// holder every ttl/4, and taken over only once expired, or at once when its holder is a process
// of this machine that no longer exists. Clocks of the machines are assumed to agree to well
// within the ttl (NTP).
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';

export const LEASE_FILE = 'lease.json';

export interface LeaseOwner {
  /** The worker's name (selab worker --name). */
  worker: string;
  /** The BullMQ job id and this attempt's lock token. */
  job: string;
  token: string;
}

export interface LeaseRecord extends LeaseOwner {
  version: 1;
  host: string;
  pid: number;
  acquiredAt: string;
  renewedAt: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

export class LeaseHeld extends Error {
  override name = 'LeaseHeld';
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLease(path: string): Promise<LeaseRecord | null> {
  try {
    const r = JSON.parse(await readFile(path, 'utf8')) as LeaseRecord;
    return r && r.version === 1 && typeof r.token === 'string' && typeof r.expiresAt === 'number' ? r : null;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw e;
    return null;
  }
}

/** Why a lease no longer holds, or null while it does. */
export function staleness(r: LeaseRecord, now = Date.now()): string | null {
  if (r.expiresAt < now) return `expired ${((now - r.expiresAt) / 1000).toFixed(1)} s ago`;
  if (r.host === hostname() && !pidAlive(r.pid)) return `its process ${r.pid} on ${r.host} is gone`;
  return null;
}

export function describeHolder(r: LeaseRecord): string {
  return `worker ${r.worker} (pid ${r.pid} on ${r.host}, job ${r.job}), lease renewed ${((Date.now() - Date.parse(r.renewedAt)) / 1000).toFixed(1)} s ago`;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

export interface AcquireOptions {
  ttlMs: number;
  /** How long to wait for a live holder before giving up (LeaseHeld). */
  waitMs: number;
  pollMs?: number;
  signal?: AbortSignal;
  /** Called once when the lease is held by someone else and we start waiting. */
  onWait?: (holder: LeaseRecord) => void;
  /** Called when a stale lease is taken over. */
  onTakeover?: (holder: LeaseRecord, why: string) => void;
}

export class Lease {
  private timer: NodeJS.Timeout | undefined;
  private lastRenewed = Date.now();
  /** The renewal in flight: release waits for it, so that no renewal writes the file after it is removed. */
  private renewing: Promise<unknown> = Promise.resolve();
  private released = false;

  constructor(
    readonly path: string,
    private record: LeaseRecord,
    private readonly ttlMs: number,
  ) {}

  get holder(): LeaseRecord {
    return this.record;
  }

  /** Extends the lease; false when it is no longer ours (taken over, or removed). */
  renew(): Promise<boolean> {
    const next = this.renewing.then(() => this.renewNow());
    this.renewing = next.catch(() => undefined);
    return next;
  }

  private async renewNow(): Promise<boolean> {
    if (this.released) return false;
    let current: LeaseRecord | null;
    try {
      current = await readLease(this.path);
    } catch {
      return false;
    }
    if (current?.token !== this.record.token) return false;
    const now = Date.now();
    this.record = { ...this.record, renewedAt: new Date(now).toISOString(), expiresAt: now + this.ttlMs };
    await writeFileAtomic(this.path, JSON.stringify(this.record, null, 2) + '\n');
    this.lastRenewed = now;
    return true;
  }

  /**
   * Renews every ttl/4 until released; `onLost` runs once if the lease is found taken, or could
   * not be renewed for a whole ttl (e.g. the shared folder unreachable).
   */
  keepAlive(onLost: (why: string) => void): void {
    const tick = async (): Promise<void> => {
      try {
        if (await this.renew()) return;
        if (this.released) return;
        this.stop();
        onLost(`the lease ${this.path} is no longer this process's`);
      } catch (e) {
        if (Date.now() - this.lastRenewed > this.ttlMs) {
          this.stop();
          onLost(`the lease ${this.path} could not be renewed for ${this.ttlMs / 1000} s (${(e as Error).message})`);
        }
      }
    };
    this.timer = setInterval(() => void tick(), Math.max(50, this.ttlMs / 4));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Gives the folder up (only if the lease is still ours). */
  async release(): Promise<void> {
    this.stop();
    this.released = true;
    await this.renewing;
    try {
      if ((await readLease(this.path))?.token === this.record.token) await rm(this.path, { force: true });
    } catch {
      // gone already
    }
  }
}

/** Moves a stale lease aside; if what was moved is not the lease judged stale (a race), puts it back. */
async function breakStale(path: string, stale: LeaseRecord | null): Promise<void> {
  const grave = `${path}.stale-${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, grave);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const moved = await readLease(grave).catch(() => null);
  if (stale !== null && moved !== null && (moved.token !== stale.token || moved.renewedAt !== stale.renewedAt)) {
    await link(grave, path).catch(() => undefined);
  }
  await rm(grave, { force: true });
}

/** Takes the lease of `dir` (creating the folder), waiting up to `waitMs` for a live holder. */
export async function acquireLease(dir: string, owner: LeaseOwner, opts: AcquireOptions): Promise<Lease> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, LEASE_FILE);
  const deadline = Date.now() + opts.waitMs;
  let waited = false;
  for (;;) {
    const now = Date.now();
    const record: LeaseRecord = {
      version: 1,
      ...owner,
      host: hostname(),
      pid: process.pid,
      acquiredAt: new Date(now).toISOString(),
      renewedAt: new Date(now).toISOString(),
      expiresAt: now + opts.ttlMs,
    };
    try {
      await writeFile(path, JSON.stringify(record, null, 2) + '\n', { flag: 'wx' });
      return new Lease(path, record, opts.ttlMs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let held: LeaseRecord | null;
    try {
      held = await readLease(path);
    } catch {
      continue; // released meanwhile
    }
    if (held === null) {
      // Unreadable: a holder killed while creating it, or one writing it right now.
      const age = Date.now() - (await stat(path).then((s) => s.mtimeMs, () => Date.now()));
      if (age > 5000) await breakStale(path, null);
      else await sleep(200, opts.signal);
      continue;
    }
    if (held.token === owner.token) {
      const lease = new Lease(path, held, opts.ttlMs);
      await lease.renew();
      return lease;
    }
    const why = staleness(held);
    if (why !== null) {
      opts.onTakeover?.(held, why);
      await breakStale(path, held);
      continue;
    }
    if (Date.now() >= deadline || opts.signal?.aborted) {
      throw new LeaseHeld(`${dir} is being written by ${describeHolder(held)}; not writing beside it (waited ${(opts.waitMs / 1000).toFixed(0)} s)`);
    }
    if (!waited) opts.onWait?.(held);
    waited = true;
    await sleep(opts.pollMs ?? 1000, opts.signal);
  }
}

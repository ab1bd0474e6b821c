// The run folder's lease: one holder at a time; a live holder makes others wait (and give up,
// naming it); an expired lease, or one whose process on this machine is gone, is taken over; a
// holder whose lease was taken finds out at its next renewal; release removes only its own.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { acquireLease, LEASE_FILE, LeaseHeld, type LeaseRecord } from '../src/cluster/lease.js';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'selab-lease-'));
});
after(() => rm(tmp, { recursive: true, force: true }));

const owner = (name: string) => ({ worker: name, job: `job-${name}`, token: `token-${name}` });

describe('run folder lease', () => {
  it('is held by one process; another waits, then gives up naming the holder', async () => {
    const dir = join(tmp, 'a');
    const a = await acquireLease(dir, owner('a'), { ttlMs: 10_000, waitMs: 0 });
    let waitedFor: string | undefined;
    await assert.rejects(
      acquireLease(dir, owner('b'), { ttlMs: 10_000, waitMs: 300, pollMs: 50, onWait: (h) => (waitedFor = h.worker) }),
      (e: Error) => e instanceof LeaseHeld && /is being written by worker a \(pid \d+ on .*, job job-a\), lease renewed [\d.]+ s ago; not writing beside it/.test(e.message),
    );
    assert.equal(waitedFor, 'a');
    assert.equal(await a.renew(), true);
    await a.release();
    assert.ok(!existsSync(join(dir, LEASE_FILE)));
    const b = await acquireLease(dir, owner('b'), { ttlMs: 10_000, waitMs: 0 });
    await b.release();
  });

  it('is taken over once expired, and its old holder learns it at its next renewal', async () => {
    const dir = join(tmp, 'b');
    const a = await acquireLease(dir, owner('a'), { ttlMs: 100, waitMs: 0 });
    await new Promise((r) => setTimeout(r, 150));
    let why = '';
    const b = await acquireLease(dir, owner('b'), { ttlMs: 10_000, waitMs: 0, onTakeover: (_h, w) => (why = w) });
    assert.match(why, /expired [\d.]+ s ago/);
    assert.equal(await a.renew(), false, 'the old holder no longer holds it');
    await a.release();
    assert.ok(existsSync(join(dir, LEASE_FILE)), "release leaves another holder's lease alone");
    assert.equal(await b.renew(), true);
    await b.release();
  });

  it('is taken over at once when its holder was a process of this machine that is gone', async () => {
    const dir = join(tmp, 'c');
    await mkdir(dir, { recursive: true });
    const dead: LeaseRecord = { version: 1, ...owner('dead'), host: hostname(), pid: 2 ** 22 + 17, acquiredAt: new Date().toISOString(), renewedAt: new Date().toISOString(), expiresAt: Date.now() + 3_600_000 };
    await writeFile(join(dir, LEASE_FILE), JSON.stringify(dead));
    let why = '';
    const b = await acquireLease(dir, owner('b'), { ttlMs: 10_000, waitMs: 0, onTakeover: (_h, w) => (why = w) });
    assert.match(why, /its process \d+ on .* is gone/);
    await b.release();
  });

  it('a renewal in flight never recreates a released lease', async () => {
    const dir = join(tmp, 'd');
    const a = await acquireLease(dir, owner('a'), { ttlMs: 40, waitMs: 0 });
    a.keepAlive(() => assert.fail('lost'));
    for (let i = 0; i < 20; i++) {
      void a.renew();
      await new Promise((r) => setTimeout(r, 3));
    }
    await a.release();
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(!existsSync(join(dir, LEASE_FILE)));
  });
});

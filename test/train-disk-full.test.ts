// A full disk while a run writes its files: the temporary checkpoint goes, the last good one stays,
// run.json says failed with the epoch that failed and the file and operation, and --resume works
// once there is space. The disk is a small tmpfs (root only; skipped elsewhere).
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findCheckpoint, readCheckpointState } from '../src/engine/checkpoint.js';
import { RunError, runTraining } from '../src/engine/runner.js';
import { readHistory, readRunFile } from '../src/runs/files.js';
import { tinyRequest } from './train-helpers.js';

let dir: string;
const mounts: string[] = [];

/** A tmpfs of `kib` KiB, or null where this process may not mount one. */
function smallDisk(name: string, kib: number): string | null {
  const path = join(dir, name);
  mkdirSync(path);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k`, 'tmpfs', path], { stdio: 'ignore' });
  } catch {
    return null;
  }
  mounts.push(path);
  return path;
}

before(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'selab-disk-full-'));
});
after(async () => {
  for (const m of mounts) execFileSync('umount', [m]);
  await rm(dir, { recursive: true, force: true });
});

const canMount = process.getuid?.() === 0;

describe('a full disk during a run', { skip: canMount ? false : 'mounting a tmpfs needs root' }, () => {
  // Pages of 4 KiB: run.json and history.json take one each, a checkpoint five, and replacing a
  // checkpoint needs the new one beside the old: 40 KiB hold epoch 1's files, not epoch 2's.
  it('a later checkpoint: epoch 2 named, epoch 1 kept, run failed, no temporary left, resumable', async () => {
    const out = smallDisk('later', 40);
    assert.ok(out);
    const err = await runTraining(tinyRequest(out, { epochs: 3 })).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof RunError, String(err));
    assert.match(err.message, /^epoch 2: writing .* to .*\.checkpoint\.selab-tmp-[^/]+\/\S+: ENOSPC: no space left on device; the checkpoint of epoch 1 is kept in /);
    const runDir = join(out, 'tiny');
    const run = await readRunFile(runDir);
    assert.equal(run.status, 'failed');
    assert.equal(run.error, err.message);
    assert.equal(run.epochsCompleted, 1);
    assert.deepEqual(readdirSync(runDir).filter((n) => n.startsWith('.')), [], 'no temporary file or folder is left');
    assert.deepEqual((await readHistory(runDir)).rows.map((r) => r.epoch), [1]);
    const checkpoint = await findCheckpoint(runDir);
    assert.equal((await readCheckpointState(checkpoint!)).epoch, 1);
    execFileSync('mount', ['-o', 'remount,size=1m', out]);
    const resumed = await runTraining(tinyRequest(out, { epochs: 3 }, { resume: true }));
    assert.equal(resumed.status, 'completed');
    assert.deepEqual((await readHistory(runDir)).rows.map((r) => r.epoch), [1, 2, 3]);
  });

  it('the first checkpoint: epoch 1 named, no checkpoint, run failed', async () => {
    const out = smallDisk('first', 16);
    assert.ok(out);
    const err = await runTraining(tinyRequest(out, { epochs: 2 })).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof RunError, String(err));
    assert.match(err.message, /^epoch 1: .*ENOSPC.*; no epoch had completed, so there is no checkpoint$/);
    const runDir = join(out, 'tiny');
    const run = await readRunFile(runDir);
    assert.equal(run.status, 'failed');
    assert.deepEqual(readdirSync(runDir).filter((n) => n.startsWith('.') || n.startsWith('checkpoint')), []);
  });

  it('--out on a read-only file system: the error says so and names the folder', async () => {
    const ro = join(dir, 'ro');
    mkdirSync(ro);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=16k', 'tmpfs', ro]);
    mounts.push(ro);
    const { probeOut } = await import('../src/experiments/plan.js');
    await assert.rejects(probeOut(join(ro, 'runs')), new RegExp(`^Error: --out ${ro}/runs: cannot create the folder \\(${ro} is on a read-only file system\\)$`));
  });
});

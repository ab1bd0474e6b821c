// Checkpoint failures: a save that cannot write (disk full, permission) keeps the last good
// checkpoint and leaves no temporary behind; a damaged checkpoint names the file and what was
// expected of it. The full disk is a real tmpfs where this process may mount one (root), and an
// injected write failure everywhere.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fsPromises, { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CheckpointError, findCheckpoint, loadCheckpoint, readCheckpointState, saveCheckpoint } from '../src/engine/checkpoint.js';
import { makeOptimizer } from '../src/engine/optimizers.js';

let dir: string;
before(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'selab-ckpt-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A dense model of `inputs`×`units` weights with its Adam moments: about 12·inputs·units bytes of checkpoint. */
function trained(inputs: number, units: number): { model: tfl.LayersModel; optimizer: tf.Optimizer } {
  const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [inputs], units })] });
  const optimizer = makeOptimizer('adam');
  tf.tidy(() => {
    const xs = tf.randomUniform([2, inputs], -1, 1, 'float32', 3);
    optimizer.minimize(() => tf.mean(tf.square(model.apply(xs) as tf.Tensor)) as tf.Scalar);
  });
  return { model, optimizer };
}

const save = (runDir: string, m: ReturnType<typeof trained>, epoch: number) =>
  saveCheckpoint(runDir, m.model, m.optimizer, { epoch, rng: { seed: 1, nextEpoch: epoch + 1 }, rows: [] });

/** Every file of a checkpoint folder with the hash of its content, except state.json's timestamp. */
async function contents(folder: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(folder)).sort()) out[name] = createHash('sha256').update(await readFile(join(folder, name))).digest('hex');
  return out;
}

/** After a failed save: no temporary left, and the previous checkpoint (or none) exactly as it was. */
async function assertKept(runDir: string, before: Record<string, string> | null, make = () => trained(4, 3)): Promise<void> {
  const left = (await readdir(runDir)).filter((n) => n.includes('selab-tmp'));
  assert.deepEqual(left, [], 'the failed save left its temporary folder');
  const found = await findCheckpoint(runDir);
  if (before === null) {
    assert.equal(found, null);
    return;
  }
  assert.equal(found, join(runDir, 'checkpoint'));
  assert.deepEqual(await contents(found), before);
  const m = make();
  assert.equal((await loadCheckpoint(found, m.model, m.optimizer)).epoch, 1);
}

const TEMP_FILE = /\/\.checkpoint\.selab-tmp-\d+-[0-9a-f]+\//;

function canMountTmpfs(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  const probe = join(tmpdir(), `selab-mount-probe-${process.pid}`);
  try {
    execFileSync('mkdir', ['-p', probe]);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe]);
    return true;
  } catch {
    return false;
  } finally {
    execFileSync('rmdir', [probe]);
  }
}

describe('a full disk (a 1 MiB tmpfs)', { skip: canMountTmpfs() ? false : 'needs root and mount -t tmpfs' }, () => {
  let disk: string;
  before(async () => {
    disk = join(dir, 'disk');
    await mkdir(disk);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', disk]);
  });
  after(() => {
    execFileSync('umount', [disk]);
  });

  // 160×400 weights: a 770 kB checkpoint, so the disk holds one but not two.
  it('the first checkpoint fails: nothing is left, and a save fits again once there is room', async () => {
    const runDir = join(disk, 'first');
    const m = trained(160, 400);
    await mkdir(runDir);
    await writeFile(join(disk, 'filler'), Buffer.alloc(400_000));
    await assert.rejects(save(runDir, m, 1), (err: Error) => {
      assert.ok(err instanceof CheckpointError, String(err));
      assert.equal(err.code, 'ENOSPC');
      assert.match(err.message, /^writing (checkpoint weights|optimizer state) to \S+\.bin: ENOSPC: no space left on device$/);
      assert.match(err.message, TEMP_FILE);
      return true;
    });
    await assertKept(runDir, null);
    await rm(join(disk, 'filler'));
    await save(runDir, m, 1);
    assert.equal(await findCheckpoint(runDir), join(runDir, 'checkpoint'));
    await rm(runDir, { recursive: true });
  });

  it('a later checkpoint fails: the previous one is kept intact', async () => {
    const runDir = join(disk, 'later');
    const m = trained(160, 400);
    await save(runDir, m, 1);
    const good = await contents(join(runDir, 'checkpoint'));
    await assert.rejects(save(runDir, m, 2), /^CheckpointError: writing (checkpoint weights|optimizer state) to \S+\.bin: ENOSPC: no space left on device$/);
    await assertKept(runDir, good, () => trained(160, 400));
  });
});

/**
 * Makes node:fs/promises' `name` fail with a system error `code` when a path it is given ends in
 * `suffix`, while `run` runs (syncBuiltinESMExports carries the patch to ESM imports).
 */
async function failing(name: 'writeFile' | 'rename', suffix: string, code: string, run: () => Promise<void>): Promise<void> {
  const fs = fsPromises as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = fs[name]!;
  fs[name] = (...args: unknown[]) => {
    const path = String(args[0]);
    if (!args.slice(0, 2).some((a) => typeof a === 'string' && a.endsWith(suffix))) return original(...args);
    return Promise.reject(Object.assign(new Error(`${code}: injected failure, ${name === 'rename' ? 'rename' : 'open'} '${path}'`), { code, syscall: name === 'rename' ? 'rename' : 'open', path }));
  };
  syncBuiltinESMExports();
  try {
    await run();
  } finally {
    fs[name] = original;
    syncBuiltinESMExports();
  }
}

describe('an injected write failure', () => {
  it('in the first checkpoint: no temporary, no checkpoint', async () => {
    const runDir = join(dir, 'inject-first');
    await failing('writeFile', 'state.json', 'EACCES', async () => {
      await assert.rejects(save(runDir, trained(4, 3), 1), (err: Error) => {
        assert.ok(err instanceof CheckpointError);
        assert.equal(err.code, 'EACCES');
        assert.match(err.message, /^writing the checkpoint state to \S+\/state\.json: EACCES: injected failure$/);
        assert.match(err.message, TEMP_FILE);
        return true;
      });
    });
    await assertKept(runDir, null);
  });

  for (const [k, [name, suffix, operation]] of ([
    ['writeFile', 'optimizer.json', /^CheckpointError: writing the optimizer state index to \S+\/optimizer\.json: EROFS: injected failure$/],
    ['rename', 'checkpoint.old', /^CheckpointError: renaming the previous checkpoint \S+\/checkpoint to \S+\/checkpoint\.old: EROFS: injected failure$/],
  ] as const).entries()) {
    it(`in a later checkpoint (${name} ${suffix}): the previous checkpoint is kept intact`, async () => {
      const runDir = join(dir, `inject-later-${k}`);
      await save(runDir, trained(4, 3), 1);
      const good = await contents(join(runDir, 'checkpoint'));
      await failing(name, suffix, 'EROFS', () => assert.rejects(save(runDir, trained(4, 3), 2), operation));
      await assertKept(runDir, good);
    });
  }
});

describe('a damaged checkpoint names the file and what was expected', () => {
  let runDir: string;
  let ckpt: string;
  before(async () => {
    runDir = join(dir, 'damaged');
  });
  /** A fresh good checkpoint of a 20×10 dense model; returns its folder. */
  async function fresh(): Promise<string> {
    await rm(runDir, { recursive: true, force: true });
    await save(runDir, trained(20, 10), 1);
    ckpt = (await findCheckpoint(runDir))!;
    return ckpt;
  }
  const load = () => {
    const m = trained(20, 10);
    return loadCheckpoint(ckpt, m.model, m.optimizer);
  };
  const damage = (file: string) => `${join(ckpt, file)}: `;
  const advice = () => `; the checkpoint is damaged: delete ${ckpt} to train the run from the start, or restore the folder from a copy`;

  for (const [file, bytes] of [['weights.bin', (20 * 10 + 10) * 4], ['optimizer.bin', 4 + 2 * (20 * 10 + 10) * 4]] as const) {
    it(`a truncated ${file}`, async () => {
      await fresh();
      await truncate(join(ckpt, file), 100);
      await assert.rejects(load(), { name: 'CheckpointError', message: `${damage(file)}100 bytes, expected ${bytes.toLocaleString('en-US')} (the file is truncated)${advice()}` });
    });
  }

  it('a weights.bin with bytes to spare', async () => {
    await fresh();
    await writeFile(join(ckpt, 'weights.bin'), Buffer.alloc(1), { flag: 'a' });
    await assert.rejects(load(), { message: `${damage('weights.bin')}841 bytes, expected 840 (longer than the 2 tensors weights.json lists)${advice()}` });
  });

  it('a missing optimizer.bin', async () => {
    await fresh();
    await rm(join(ckpt, 'optimizer.bin'));
    await assert.rejects(load(), { message: `${damage('optimizer.bin')}missing${advice()}` });
  });

  it('a corrupt weights.json', async () => {
    await fresh();
    await writeFile(join(ckpt, 'weights.json'), '{"names": ["a"], "specs": [{"name": "0", "shape": [2], "dtype": "float64"}]}');
    await assert.rejects(load(), (err: Error) => err.message.startsWith(`${damage('weights.json')}expected {"names"`) && err.message.endsWith(advice()));
  });

  it('a corrupt state.json: cut short, or not a state', async () => {
    await fresh();
    const path = join(ckpt, 'state.json');
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.slice(0, 20));
    assert.equal(await findCheckpoint(runDir), ckpt, 'state.json exists, so the folder is the checkpoint to resume');
    for (const read of [() => readCheckpointState(ckpt), load]) {
      await assert.rejects(read(), (err: Error) => {
        assert.ok(err.message.startsWith(`${damage('state.json')}not valid JSON (`), err.message);
        assert.ok(err.message.endsWith(advice()), err.message);
        return true;
      });
    }
    await writeFile(path, JSON.stringify({ ...JSON.parse(text), epoch: 'one' }));
    await assert.rejects(readCheckpointState(ckpt), { message: `${damage('state.json')}expected a selab checkpoint state {"version": 1, "epoch", "rng": {"seed", "nextEpoch"}, "rows": [...], "optimizerIterations", "savedAt"}${advice()}` });
  });

  it('a damaged optimizer.bin leaves the model untouched', async () => {
    await fresh();
    await truncate(join(ckpt, 'optimizer.bin'), 8);
    const m = trained(20, 10);
    const before = m.model.getWeights().map((w) => Array.from(w.dataSync()));
    await assert.rejects(loadCheckpoint(ckpt, m.model, m.optimizer), /optimizer\.bin: 8 bytes/);
    assert.deepEqual(m.model.getWeights().map((w) => Array.from(w.dataSync())), before);
  });
});

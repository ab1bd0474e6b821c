// Faults of a queued run, with a real redis-server and `selab worker` processes: a worker killed
// mid-epoch (its training process must stop with it), a machine killed while a checkpoint is being
// written, and Redis restarted during a run. Each time the job ends on a worker, its history has
// consecutive epochs, none twice, and equals the uninterrupted run's number for number.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, watch } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { HistoryRow, RunFile } from '../src/runs/files.js';
import { comparable, groupAlive, historyRows, killGroup, readJson, selab, sleep, startRedis, until, worker, workerReady, writeCifar, type Proc, type RedisServer } from './cluster-helpers.js';

let tmp: string;
let data: string;
let redis: RedisServer;
let reference: HistoryRow[];
const procs: Proc[] = [];

/** One ECA point, one seed: 3 epochs of 32 steps, so that a kill lands well inside an epoch. */
const sweep = (name: string): string[] => [
  'sweep', '--model', 'resnet8', '--name', name, '--attention', 'eca', '--eca-kernel', '3', '--no-baseline',
  '--epochs', '3', '--batch-size', '8', '--train-limit', '256', '--test-limit', '8',
];
const runDir = (out: string, name: string): string => join(out, `sweep_${name}`, 'eca-k3-standard', 'seed_1');
const start = (p: Proc): Proc => (procs.push(p), p);

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'selab-cluster-faults-'));
  data = join(tmp, 'data');
  await writeCifar(data);
  redis = await startRedis(join(tmp, 'redis'));
  const local = start(selab([...sweep('ref'), '--data', data, '--out', join(tmp, 'ref')]));
  assert.equal((await local.exit).code, 0, local.text());
  reference = historyRows(runDir(join(tmp, 'ref'), 'ref'));
  assert.equal(reference.length, 3);
});

after(async () => {
  for (const p of procs) killGroup(p);
  await redis?.stop();
  await rm(tmp, { recursive: true, force: true });
});

/** The run ended once, completed, with the uninterrupted run's history. */
function assertSameAsUninterrupted(dir: string): RunFile {
  const rows = historyRows(dir);
  assert.deepEqual(rows.map((r) => r.epoch), [1, 2, 3], 'consecutive epochs, none twice');
  assert.deepEqual(comparable(rows), comparable(reference), 'the history equals the uninterrupted run, number for number');
  const run = readJson<RunFile>(join(dir, 'run.json'));
  assert.equal(run.status, 'completed');
  assert.equal(run.epochsCompleted, 3);
  return run;
}

describe('a queued run survives', () => {
  it('its worker SIGKILLed mid-epoch: the training process stops too, another worker resumes from the checkpoint', { timeout: 400_000 }, async () => {
    const out = join(tmp, 'a');
    const dir = runDir(out, 'a');
    const first = start(worker(redis, 'a1', data));
    await workerReady(first);
    const coordinator = start(selab([...sweep('a'), '--out', out, '--queue', redis.url]));
    assert.ok(await until(() => coordinator.lines.some((l) => /training on a1/.test(l))), coordinator.text());
    // The worker that will take over starts while a1 trains (it cannot take the job a1 holds).
    const second = start(worker(redis, 'a2', data));
    assert.ok(await until(() => coordinator.lines.some((l) => /sweep_a\/\S+ epoch 2\/3 step ([4-9]|1\d)\/32 /.test(l))), `epoch 2 under way: ${coordinator.text()}`);
    assert.equal(historyRows(dir).length, 1, 'killed during epoch 2');
    process.kill(first.child.pid!, 'SIGKILL'); // the worker's own process; its training process is left behind
    assert.ok(await until(() => !groupAlive(first), 20_000), 'the orphaned training process stopped by itself');
    assert.equal(historyRows(dir).length, 1, 'nothing finished epoch 2 after the worker died');

    const { code } = await coordinator.exit;
    assert.equal(code, 0, coordinator.text());
    const run = assertSameAsUninterrupted(dir);
    assert.deepEqual(run.resumes.map((r) => r.fromEpoch), [1], 'resumed once, from the checkpoint of epoch 1');
    assert.match(coordinator.text(), /sweep_a\/eca-k3-standard\/seed_1: its worker stopped renewing the job's lock .*back in the queue/);
    assert.match(coordinator.text(), /sweep_a\/eca-k3-standard\/seed_1: training on a2 \(attempt 1, continuing after epoch 1 from its checkpoint\)/, 'a stall does not use up an attempt');
    assert.match(coordinator.text(), /sweep_a\/eca-k3-standard\/seed_1: completed on a2/);
    assert.match(second.text(), /took job sweep-a-\S+ \(attempt 1, after 1 stall\)/);
    assert.ok(!existsSync(join(dir, 'lease.json')));
    killGroup(second);
  });

  it('its machine killed while a checkpoint is being written: another worker finishes it', { timeout: 400_000 }, async (t) => {
    const out = join(tmp, 'b');
    const dir = runDir(out, 'b');
    const first = start(worker(redis, 'b1', data));
    await workerReady(first);
    const coordinator = start(selab([...sweep('b'), '--out', out, '--queue', redis.url]));
    assert.ok(await until(() => coordinator.lines.some((l) => /training on b1/.test(l))), coordinator.text());
    const second = start(worker(redis, 'b2', data));
    assert.ok(await until(() => historyRows(dir).length === 1), 'epoch 1 done');
    // Kill the worker and its training process the moment epoch 2's checkpoint write begins.
    let seen: string | null = null;
    const watcher = watch(dir, (_event, name) => {
      if (seen === null && name && name.startsWith('.checkpoint') && name.includes('selab-tmp')) {
        seen = name;
        killGroup(first);
      }
    });
    t.after(() => watcher.close());
    assert.ok(await until(() => seen !== null || historyRows(dir).length > 1, 60_000));
    assert.ok(seen !== null, 'the kill landed during the checkpoint write of epoch 2');
    await first.exit;
    watcher.close();
    const left = readdirSync(dir);
    t.diagnostic(`left in the run folder by the kill: ${left.join(', ')}`);
    assert.ok(historyRows(dir).length === 1, 'history.json still ends at epoch 1 (it is written after the checkpoint)');

    const { code } = await coordinator.exit;
    assert.equal(code, 0, coordinator.text());
    const run = assertSameAsUninterrupted(dir);
    assert.equal(run.resumes.length, 1);
    assert.ok([1, 2].includes(run.resumes[0]!.fromEpoch), `resumed from a complete checkpoint (epoch ${run.resumes[0]!.fromEpoch})`);
    assert.match(coordinator.text(), /sweep_b\/eca-k3-standard\/seed_1: completed on b2/);
    killGroup(second);
  });

  it('Redis restarted during the run: the worker and the coordinator reconnect; nothing is lost or trained twice', { timeout: 400_000 }, async () => {
    const out = join(tmp, 'c');
    const dir = runDir(out, 'c');
    const w = start(worker(redis, 'c1', data, ['--lock-duration', '20']));
    await workerReady(w);
    const coordinator = start(selab([...sweep('c'), '--out', out, '--queue', redis.url]));
    assert.ok(await until(() => historyRows(dir).length === 1), 'epoch 1 done');
    await redis.stop('SIGKILL');
    await sleep(1000);
    await redis.start();
    const { code } = await coordinator.exit;
    assert.equal(code, 0, coordinator.text());
    const run = assertSameAsUninterrupted(dir);
    assert.deepEqual(run.resumes, [], 'trained once, never restarted');
    assert.match(w.text(), /lost Redis at redis:\/\/127\.0\.0\.1:\d+\/0 .*reconnecting/);
    assert.match(w.text(), /reconnected to Redis/);
    assert.equal(w.lines.filter((l) => l.startsWith('took job ')).length, 1, 'the job was taken once');
    assert.equal(w.lines.filter((l) => /^finished job sweep-c-\S+: completed, 3 epochs$/.test(l)).length, 1);
    assert.match(coordinator.text(), /sweep c: 1 trained on the queue, 0 already completed, 0 failed/);
    killGroup(w);
  });
});

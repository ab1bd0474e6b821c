// A sweep of 2 points × 2 seeds queued on a real redis-server and trained by 3 `selab worker`
// processes: every run completes, and each history equals, number for number, the same run trained
// locally by `selab sweep` with the same seed; the table is the local one.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { parseQueueUrl } from '../src/cluster/connection.js';
import { planSweepExperiment } from '../src/cluster/coordinator.js';
import { sweepRequest } from '../src/cli/commands/sweep.js';
import { planSweep } from '../src/experiments/sweep.js';
import { newManifest, writeManifest, type ExperimentManifest } from '../src/cluster/manifest.js';
import { sweepMarkdown, sweepTables } from '../src/report/sweep.js';
import { findRuns, type RunFile } from '../src/runs/files.js';
import { comparable, historyRows, killGroup, readJson, selab, sleep, startRedis, worker, workerReady, writeCifar, type Proc, type RedisServer } from './cluster-helpers.js';

let tmp: string;
let redis: RedisServer;
const workers: Proc[] = [];

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'selab-cluster-'));
  await writeCifar(join(tmp, 'data'));
  redis = await startRedis(join(tmp, 'redis'));
});

after(async () => {
  for (const w of workers) killGroup(w);
  await redis?.stop();
  await rm(tmp, { recursive: true, force: true });
});

const SWEEP = ['sweep', '--model', 'resnet8', '--name', 'q', '--se-ratio', '4', '--repeats', '2', '--epochs', '2', '--lr-decay-epochs', '1', '--batch-size', '8', '--train-limit', '16', '--test-limit', '8'];
const RUNS = ['baseline/seed_1', 'baseline/seed_2', 'r4-sigmoid-avg-standard/seed_1', 'r4-sigmoid-avg-standard/seed_2'];

test('a 2 × 2 sweep on 3 workers: every run completes, each history equals the local run with its seed, and so does the table', { timeout: 480_000 }, async (t) => {
  const t0 = Date.now();
  const at = (what: string) => t.diagnostic(`${what} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const data = join(tmp, 'data');
  for (const name of ['w1', 'w2', 'w3']) workers.push(worker(redis, name, data));
  const local = selab([...SWEEP, '--data', data, '--out', join(tmp, 'local')]);
  await Promise.all(workers.map(workerReady));
  at('workers ready');
  for (const w of workers) assert.match(w.text(), /^selab worker w\d: backend \w+(, 1 thread)?, concurrency 1, queue "selab" on redis:\/\/127\.0\.0\.1:\d+\/0; lock 3 s/m);

  const queuedOut = join(tmp, 'queued');
  const queued = selab([...SWEEP, '--out', queuedOut, '--queue', redis.url]);
  const [l, q] = await Promise.all([local.exit.then((r) => (at('local sweep done'), r)), queued.exit.then((r) => (at('queued sweep done'), r))]);
  assert.equal(l.code, 0, local.text());
  assert.equal(q.code, 0, queued.text());

  const out = queued.text();
  const experiment = /^experiment (sweep-q-\S+): 4 runs queued on redis:\/\/127\.0\.0\.1:\d+\/0; manifest (\S+)$/m.exec(out);
  assert.ok(experiment, out);
  assert.ok(existsSync(experiment[2]!), 'the manifest is in the shared output folder');
  assert.match(out, /^\[\d\/4\] sweep_q\/baseline\/seed_1 epoch 1\/2 step 1\/2 loss \d\.\d{4} acc \d\.\d{4} [\d.]+ img\/s on w\d$/m, 'a progress line per step, naming the worker');
  assert.match(out, /^\[\d\/4\] sweep_q\/r4-sigmoid-avg-standard\/seed_2 epoch 2\/2: loss \d\.\d{4} acc \d\.\d{4} val_loss \d\.\d{4} val_acc \d\.\d{4} [\d.]+ img\/s on w\d$/m);
  assert.match(out, /sweep q: 4 trained on the queue, 0 already completed, 0 failed/);

  const trainedBy = new Set<string>();
  for (const run of RUNS) {
    const dir = join(queuedOut, 'sweep_q', run);
    const file = readJson<RunFile>(join(dir, 'run.json'));
    assert.equal(file.status, 'completed', run);
    assert.deepEqual(file.resumes, [], `${run} trained once, from scratch`);
    assert.deepEqual(historyRows(dir).map((r) => r.epoch), [1, 2]);
    assert.deepEqual(comparable(historyRows(dir)), comparable(historyRows(join(tmp, 'local', 'sweep_q', run))), `${run}: the queued run's history equals the local one`);
    assert.ok(!readdirSync(dir).includes('lease.json'), 'the lease is released');
    trainedBy.add(/completed on (w\d)/.exec(out.split('\n').filter((line) => line.includes(`sweep_q/${run}: completed on`)).join('\n'))?.[1] ?? '?');
  }
  assert.ok(trainedBy.size >= 2 && !trainedBy.has('?'), `the runs were spread over the workers (${[...trainedBy].join(', ')})`);

  const table = (o: string) => findRuns(o).then((runs) => sweepMarkdown(sweepTables(runs)));
  assert.equal(await table(queuedOut), await table(join(tmp, 'local')), 'the same table and verdicts as the local sweep');
  const rows = (await table(queuedOut)).split('\n').filter((line) => /^\| \S/.test(line));
  assert.ok(rows.length >= 4 && rows.every((line) => out.includes(line)), 'the coordinator printed the table');
  for (const w of workers) assert.match(w.text(), /took job sweep-q-\S+\/sweep_q\/\S+ \(attempt 1\)/);

  // A job for a run that is already complete (a worker killed after its last epoch, an experiment
  // queued twice) completes at once without training.
  const manifest = readJson<ExperimentManifest>(experiment[2]!);
  const again = { ...manifest.jobs[0]!.data, experiment: 'sweep-q-again' };
  await writeManifest(newManifest({ id: 'sweep-q-again', command: 'sweep', name: 'q', out: queuedOut, queue: redis.url, jobs: [{ id: 'sweep-q-again/one', data: again }] }));
  const connection = new Redis({ ...parseQueueUrl(redis.url).options, maxRetriesPerRequest: null });
  const queue = new Queue('selab', { connection });
  try {
    const before = readJson<RunFile>(join(queuedOut, again.run, 'run.json'));
    const done = await queue.add('train', again, { jobId: 'sweep-q-again/one' });
    for (let i = 0; i < 600 && !(await done.isCompleted()); i++) await sleep(100);
    const result = (await queue.getJob('sweep-q-again/one'))!.returnvalue as { trained: boolean; status: string };
    assert.deepEqual([result.trained, result.status], [false, 'completed']);
    assert.deepEqual(readJson<RunFile>(join(queuedOut, again.run, 'run.json')), before, 'run.json untouched');
  } finally {
    await queue.close();
    connection.disconnect();
  }

  // Planned again: the completed runs are skipped and not queued, as a local sweep skips them.
  const request = sweepRequest({ model: 'resnet8', name: 'q', seRatio: '4', repeats: '2', epochs: '2', lrDecayEpochs: '1', batchSize: '8', trainLimit: '16', testLimit: '8', out: queuedOut });
  const replanned = await planSweepExperiment(request, planSweep(request), { out: queuedOut, resume: false });
  assert.deepEqual([replanned.jobs.length, replanned.skipped.length], [0, 4]);
});

test('--detach, then selab queue status, cancel and wait from elsewhere', { timeout: 400_000 }, async () => {
  assert.equal(workers.length, 3, 'the workers of the first test are still running');
  const out = join(tmp, 'detached');
  // Runs far longer than the test: they are still in progress when cancelled.
  const args = ['sweep', '--model', 'resnet8', '--name', 'd', '--se-ratio', '4', '--repeats', '3', '--epochs', '500', '--batch-size', '8', '--train-limit', '256', '--test-limit', '8', '--out', out];
  const detach = selab([...args, '--queue', redis.url, '--detach']);
  assert.equal((await detach.exit).code, 0, detach.text());
  const id = /^experiment (sweep-d-\S+): 6 runs queued/m.exec(detach.text())?.[1];
  assert.ok(id, detach.text());
  assert.match(detach.text(), new RegExp(`detached; follow with selab queue wait --queue redis://127\\.0\\.0\\.1:\\d+/0 --experiment ${id}`));

  // Wait until every worker is training one of its jobs.
  const connection = new Redis({ ...parseQueueUrl(redis.url).options, maxRetriesPerRequest: null });
  const queue = new Queue('selab', { connection });
  try {
    for (let i = 0; i < 600 && (await queue.getActiveCount()) < 3; i++) await sleep(100);
    assert.equal(await queue.getActiveCount(), 3);
  } finally {
    await queue.close();
    connection.disconnect();
  }

  const status = selab(['queue', 'status', '--queue', redis.url]);
  assert.equal((await status.exit).code, 0, status.text());
  assert.match(status.text(), new RegExp(`^${id}  sweep d  6 jobs: (?=.*3 active)(?=.*3 waiting).*out ${out}$`, 'm'));
  assert.match(status.text(), /^sweep-q-\S+ {2}sweep q {2}4 jobs: 4 completed/m, 'the first test\'s experiment');

  const cancel = selab(['queue', 'cancel', '--queue', redis.url, '--experiment', id]);
  assert.equal((await cancel.exit).code, 0, cancel.text());
  assert.match(cancel.text(), new RegExp(`experiment ${id}: 3 queued jobs removed, 3 in progress stopping after the current step, 0 already ended`));

  const wait = selab(['queue', 'wait', '--queue', redis.url, '--experiment', id]);
  assert.equal((await wait.exit).code, 1, wait.text());
  assert.match(wait.text(), /: failed: cancelled \(selab queue cancel\): stopped by the user during epoch \d/);
  assert.match(wait.text(), new RegExp(`experiment ${id}: 0 trained, 0 already completed, 6 failed or cancelled`));
  const stopped = ['baseline', 'r4-sigmoid-avg-standard'].flatMap((p) => [1, 2, 3].map((k) => join(out, 'sweep_d', p, `seed_${k}`, 'run.json'))).filter((f) => existsSync(f));
  assert.equal(stopped.length, 3, 'only the three runs in progress were started');
  for (const f of stopped) assert.equal(readJson<RunFile>(f).status, 'stopped');
  for (const w of workers) assert.match(w.text(), new RegExp(`experiment ${id} was cancelled; stopping it after the current step`));
});

// What a worker trusts: a job is checked against the schema, may not name paths outside its output
// folder nor remote sources unless allowed, and must be one the experiment's manifest lists.
// Forged jobs put straight into Redis are refused with a clear error and write nothing. A run that
// fails on its own (a NaN loss) is failed after its bounded attempts, with its error in run.json
// and in the table, and the rest of the experiment goes on.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { checkJob, planJob, type JobData } from '../src/cluster/job.js';
import { parseQueueUrl } from '../src/cluster/connection.js';
import { newManifest, writeManifest } from '../src/cluster/manifest.js';
import type { RunFile } from '../src/runs/files.js';
import { killGroup, readJson, selab, startRedis, until, worker, workerReady, writeCifar, type Proc, type RedisServer } from './cluster-helpers.js';

const OUT = '/srv/runs';
const job = (over: Record<string, unknown> = {}, spec: Record<string, unknown> = {}): unknown => ({
  version: 1,
  experiment: 'run-20260101-000000-abcd',
  out: OUT,
  run: 'case_1',
  spec: { kind: 'case', caseId: 1, overrides: { epochs: 2 }, ...spec },
  ...over,
});
const strict = { allowRemote: false };

describe('checkJob', () => {
  it('accepts a well-formed job', () => {
    assert.equal(checkJob(job(), strict).run, 'case_1');
    assert.equal((checkJob(job({}, { overrides: { weights: 'https://example.org/w.h5' } }), { allowRemote: true }).spec as { overrides: { weights: string } }).overrides.weights, 'https://example.org/w.h5');
  });

  it('refuses wrong types and unknown fields, naming the field', () => {
    const cases: [unknown, RegExp][] = [
      [job({}, { overrides: { epochs: '2' } }), /job schema: spec\.overrides\.epochs must be integer/],
      [job({}, { caseId: 1.5 }), /spec\.caseId must be integer/],
      [job({}, { overrides: { lr: -1 } }), /spec\.overrides\.lr must be > 0/],
      [job({}, { overrides: { shell: 'rm -rf /' } }), /spec\.overrides: unknown field "shell"/],
      [job({ version: 2 }), /version must be equal to constant/],
      [job({}, { kind: 'script' }), /spec\.kind must be equal to one of the allowed values \("case", "model", "sweep"\)/],
      ['a string', /the job must be object/],
    ];
    for (const [data, message] of cases) assert.throws(() => checkJob(data, strict), (e: Error) => e.name === 'UnrecoverableError' && message.test(e.message), String(message));
  });

  it('refuses paths that leave the output folder', () => {
    const cases: [unknown, RegExp][] = [
      [job({ out: '/srv/runs/../../etc' }), /out "\/srv\/runs\/\.\.\/\.\.\/etc" must be an absolute path without '\.\.'/],
      [job({ out: 'runs' }), /out "runs" must be an absolute path/],
      [job({ out: '/' }), /root of the file system/],
      [job({ run: '../../etc/cron.d' }), /run "\.\.\/\.\.\/etc\/cron\.d": a job may only name a path inside the output folder/],
      [job({ run: '/etc' }), /run "\/etc": a job may only name a path inside the output folder/],
      [job({}, { overrides: { weights: '/etc/shadow' } }), /weights "\/etc\/shadow": a job may only name a path inside the output folder/],
      [job({}, { overrides: { weights: 'weights/../../x.h5' } }), /weights "weights\/\.\.\/\.\.\/x\.h5"/],
    ];
    for (const [data, message] of cases) assert.throws(() => checkJob(data, strict), message);
  });

  it('refuses remote weights and data unless the worker allows them', () => {
    assert.throws(() => checkJob(job({}, { overrides: { weights: 'https://evil.example/w.h5' } }), strict), /the job names the weights URL https:\/\/evil\.example\/w\.h5; this worker reads remote weights only when started with --allow-remote/);
    assert.throws(() => checkJob(job({}, { overrides: { weights: 'file:///etc/passwd' } }), { allowRemote: true }), /only http\(s\) URLs/);
    assert.throws(() => checkJob(job({ data: 'https://evil.example/cifar.tar.gz' }), strict), /names the data source https:\/\/evil\.example\/cifar\.tar\.gz; this worker reads data named by jobs only when started with --allow-remote/);
    assert.throws(() => checkJob(job({ data: '/home/me/cifar' }), { allowRemote: true }), /a job may name a data source only as a URL/);
  });

  it('refuses attention settings the kind does not have, or values its flags would not give', () => {
    const sweepJob = (attention: unknown) => job({ run: 'sweep_s/baseline/seed_1' }, {
      kind: 'sweep', caseId: undefined, overrides: undefined, index: 0,
      request: { model: 'resnet8', name: 's', grid: { attention, integration: ['standard'] }, baseline: true, repeats: 1, preset: 'se-cifar', overrides: {} },
    });
    const clean = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;
    assert.throws(() => checkJob(clean(sweepJob([{ kind: 'cbam', values: {} }])), strict), /refused: attention: "cbam" is not one of/);
    assert.throws(() => checkJob(clean(sweepJob([{ kind: 'se', values: { ratio: [0] } }])), strict), /refused: attention se ratio:/);
    assert.throws(() => checkJob(clean(sweepJob([{ kind: 'se', values: { depth: [2] } }])), strict), /attention se has no setting "depth"/);
  });

  it('plans a registry model job as `selab train --model` would', async () => {
    const data = job({ run: 'resnet8-se' }, { kind: 'model', caseId: undefined, model: 'resnet8', attention: { kind: 'se', ratio: 4 }, integration: 'standard', preset: 'se-cifar', overrides: { epochs: 2 } });
    const plan = await planJob(checkJob(JSON.parse(JSON.stringify(data)), strict));
    assert.deepEqual([plan.id, plan.config.epochs, plan.resume, plan.describe.model], ['resnet8-se', 2, true, 'resnet8']);
  });

  it('refuses a job whose spec plans another run than the one it names', async () => {
    await assert.rejects(planJob(checkJob(job({ run: 'case_2' }), strict) as JobData), /the job names run "case_2", but its spec is the run "case_1"/);
  });
});

describe('--queue URLs', () => {
  it('take credentials, a database, a queue name and TLS, and never show the password', () => {
    const t = parseQueueUrl('rediss://selab:p%40ss@redis.example:6380/2?queue=gpu');
    assert.deepEqual(t.options, { host: 'redis.example', port: 6380, db: 2, username: 'selab', password: 'p@ss', tls: { servername: 'redis.example' } });
    assert.equal(t.queue, 'gpu');
    assert.equal(t.display, 'rediss://selab:***@redis.example:6380/2?queue=gpu');
    assert.deepEqual(parseQueueUrl('redis://localhost').options, { host: 'localhost', port: 6379, db: 0 });
    assert.throws(() => parseQueueUrl('http://localhost:6379'), /--queue "http:\/\/localhost:6379": expected redis:\/\/\[user:password@\]host\[:port\]\[\/db\] or rediss:\/\/… \(TLS\)/);
    assert.throws(() => parseQueueUrl('redis://localhost/zero'), /the database "zero" is not a number/);
    assert.throws(() => parseQueueUrl('redis://localhost?timeout=1'), /unknown parameter "timeout"/);
  });
});

describe('forged jobs on the queue', { timeout: 300_000 }, () => {
  let tmp: string;
  let redis: RedisServer;
  let w: Proc;
  let queue: Queue;
  let connection: Redis;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'selab-cluster-trust-'));
    await writeCifar(join(tmp, 'data'));
    redis = await startRedis(join(tmp, 'redis'));
    w = worker(redis, 't1', join(tmp, 'data'));
    await workerReady(w);
    connection = new Redis({ ...parseQueueUrl(redis.url).options, maxRetriesPerRequest: null });
    queue = new Queue('selab', { connection });
  });

  after(async () => {
    killGroup(w);
    await queue?.close();
    connection?.disconnect();
    await redis?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  /** Every path below `dir`. */
  const listing = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).sort() : []);

  async function failed(id: string, data: unknown, attempts = 3): Promise<{ reason: string; attemptsMade: number }> {
    await queue.add('train', data, { jobId: id, attempts, backoff: { type: 'fixed', delay: 100 } });
    assert.ok(await until(() => w.lines.some((l) => l.startsWith(`job ${id} failed:`)), 60_000), `the worker failed job ${id}: ${w.text()}`);
    const j = (await queue.getJob(id))!;
    assert.equal(await j.getState(), 'failed');
    return { reason: j.failedReason, attemptsMade: j.attemptsMade };
  }

  it('are refused at once with a clear error, and write nothing', async () => {
    const out = join(tmp, 'shared');
    await mkdir(out);
    const experiment = 'run-20260101-000000-beef';
    const genuine = { version: 1, experiment, out, run: 'case_1', spec: { kind: 'case', caseId: 1, overrides: { epochs: 1, batchSize: 8, trainLimit: 8, testLimit: 8 } } };
    await writeManifest(newManifest({ id: experiment, command: 'run', name: null, out, queue: redis.url, jobs: [{ id: `${experiment}/case_1`, data: genuine as JobData }] }));
    const before = listing(out);
    const escape = join(tmp, 'escaped');

    const forged: [string, unknown, RegExp][] = [
      ['traversal', { ...genuine, out: `${out}/../escaped` }, /refused: out ".*\/shared\/\.\.\/escaped" must be an absolute path without '\.\.'/],
      ['remote', { ...genuine, spec: { ...genuine.spec, overrides: { ...genuine.spec.overrides, weights: 'https://evil.example/w.h5' } } }, /the job names the weights URL https:\/\/evil\.example\/w\.h5; this worker reads remote weights only when started with --allow-remote/],
      ['type', { ...genuine, spec: { ...genuine.spec, overrides: { epochs: 'many' } } }, /does not match selab's job schema: spec\.overrides\.epochs must be integer/],
      ['unlisted', { ...genuine, run: 'case_2', spec: { ...genuine.spec, caseId: 2 } }, /the experiment manifest .*experiments\/run-20260101-000000-beef\.json lists no job run-20260101-000000-beef\/case_2/],
      ['altered', { ...genuine, spec: { ...genuine.spec, overrides: { ...genuine.spec.overrides, epochs: 100 } } }, /differs from the one the experiment manifest .* records/],
    ];
    for (const [name, data, message] of forged) {
      const id = name === 'unlisted' ? `${experiment}/case_2` : name === 'altered' ? `${experiment}/case_1` : `forged-${name}`;
      const { reason, attemptsMade } = await failed(id, data);
      assert.match(reason, message, name);
      assert.equal(attemptsMade, 1, `${name}: refused without retries`);
      if (name === 'altered') await queue.remove(id);
    }
    assert.deepEqual(listing(out), before, 'nothing written into the output folder');
    assert.ok(!existsSync(escape), 'nothing written outside it');
  });

  it('a worker that does not see --out names the manifest it looked for and trains nothing', async () => {
    const out = join(tmp, 'not-mounted-here');
    const data = { version: 1, experiment: 'run-20260101-000000-cafe', out, run: 'case_1', spec: { kind: 'case', caseId: 1, overrides: {} } };
    const { reason } = await failed('unseen', data, 1);
    assert.match(reason, new RegExp(`this worker \\(.*\\) cannot see the experiment manifest ${out}/experiments/run-20260101-000000-cafe\\.json \\(ENOENT\\): --out ${out} must be a folder every worker sees at the same path`));
    assert.ok(!existsSync(out), 'no private output folder created');
  });

  it('a run whose loss turns NaN fails after its bounded attempts, with its error in run.json and the table', async () => {
    const out = join(tmp, 'nan');
    const coordinator = selab(['sweep', '--model', 'resnet8', '--name', 'nan', '--no-baseline', '--se-ratio', '4', '--epochs', '1', '--batch-size', '8', '--train-limit', '16', '--test-limit', '8',
      '--lr', '1e30', '--attempts', '2', '--retry-delay', '0.2', '--out', out, '--queue', redis.url]);
    const { code } = await coordinator.exit;
    const text = coordinator.text();
    assert.equal(code, 1, text);
    for (const point of ['r4-sigmoid-avg-standard']) {
      assert.match(text, new RegExp(`sweep_nan/${point}/seed_1: attempt 1 failed \\(epoch 1: the training loss became \\S+ at step \\d+.*\\); retrying in \\d+ s`), point);
      assert.match(text, new RegExp(`sweep_nan/${point}/seed_1: failed: epoch 1: the training loss became`), point);
      assert.equal(w.lines.filter((l) => l.includes(`/sweep_nan/${point}/seed_1 (attempt`)).length, 2, `${point}: two attempts, then no more`);
      const run = readJson<RunFile>(join(out, 'sweep_nan', point, 'seed_1', 'run.json'));
      assert.equal(run.status, 'failed');
      assert.match(run.error ?? '', /the training loss became/);
    }
    assert.match(text, /sweep nan: 0 trained on the queue, 0 already completed, 1 failed/);
    assert.match(text, /^\| [^|]+ \| 0 \(\+1 unfinished\) \|/m, 'the table counts the failed run');
  });
});

// A tiny sweep end to end through the CLI: three points (baseline, SE, ECA) × two seeds, two epochs
// of 8 generated CIFAR-format images, as ordinary runs; then the table, skip and resume rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sweepCsv, sweepTables } from '../src/report/sweep.js';
import { findRuns, type RunFile } from '../src/runs/files.js';
import { sweepRequest } from '../src/cli/commands/sweep.js';
import { planSweep, runSweep, type SweepJob } from '../src/experiments/sweep.js';
import { packageRoot } from '../src/util/paths.js';

const run = promisify(execFile);
const ROOT = packageRoot();

/** CIFAR-10 binary layout: 5 train files and a test file of 10,000 records each (1 label + 3,072 pixels). */
async function writeCifar(dir: string): Promise<void> {
  const bin = join(dir, 'cifar-10-batches-bin');
  await mkdir(bin, { recursive: true });
  const files = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];
  for (const [f, name] of files.entries()) {
    const buf = Buffer.alloc(10_000 * 3073);
    for (let i = 0; i < 10_000; i++) {
      const label = (i + f) % 10;
      buf[i * 3073] = label;
      // A class-dependent brightness, so the images are not all alike.
      buf.fill(label * 25, i * 3073 + 1 + (i % 3) * 1024, i * 3073 + 1 + ((i % 3) + 1) * 1024);
    }
    await writeFile(join(bin, name), buf);
  }
  await writeFile(join(bin, 'batches.meta.txt'), 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n');
}

async function selab(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, maxBuffer: 1 << 24 });
    return { stdout, stderr, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { stdout: err.stdout, stderr: err.stderr, code: err.code };
  }
}

test('a tiny sweep (3 points × 2 seeds, 2 short epochs) runs end to end and its table shows mean, spread and verdict for SE and ECA', { timeout: 300_000 }, async (t) => {
  const tmp = await mkdtemp(join(tmpdir(), 'selab-sweep-'));
  t.after(() => rm(tmp, { recursive: true, force: true }));
  const data = join(tmp, 'data');
  const out = join(tmp, 'runs');
  await writeCifar(data);
  // Two epochs with the lr divided by 10 after the first: the runner's own per-epoch schedule.
  const args = ['sweep', '--model', 'resnet8', '--name', 'tiny', '--attention', 'se,eca', '--se-ratio', '4', '--eca-kernel', '3', '--repeats', '2', '--epochs', '2', '--lr-decay-epochs', '1',
    '--batch-size', '8', '--train-limit', '8', '--test-limit', '8', '--data', data, '--out', out];

  const first = await selab(args);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /sweep tiny: resnet8, 3 points × 2 seeds = 6 runs, preset se-cifar \(sgd-momentum lr 0\.1 to epoch 1, 0\.01 to epoch 2, weight decay 0\.0001, batch 8, augmentation, normalisation\)/);
  assert.doesNotMatch(first.stderr, /not applied/);
  assert.match(first.stderr, /6 trained, 0 already completed, 0 failed/);
  assert.match(first.stdout, /\[4\/6\] r4-sigmoid-avg-standard seed_2 \(seed 2\): training/);
  assert.match(first.stdout, /\[6\/6\] eca-k3-standard seed_2 \(seed 2\): training/);

  // Ordinary runs in OUT/sweep_<name>/<point>/seed_<k>/ with their sweep record.
  const PARAMS = {
    baseline: {},
    'r4-sigmoid-avg-standard': { attention: 'se', ratio: 4, gate: 'sigmoid', squeeze: 'avg', integration: 'standard' },
    'eca-k3-standard': { attention: 'eca', kernelSize: 3, integration: 'standard' },
  };
  const ATTENTION = { baseline: null, 'r4-sigmoid-avg-standard': { kind: 'se', ratio: 4, gate: 'sigmoid', squeeze: 'avg' }, 'eca-k3-standard': { kind: 'eca', kernelSize: 3 } };
  for (const point of ['baseline', 'r4-sigmoid-avg-standard', 'eca-k3-standard'] as const) for (const k of [1, 2]) {
    const dir = join(out, 'sweep_tiny', point, `seed_${k}`);
    const runFile = JSON.parse(await readFile(join(dir, 'run.json'), 'utf8'));
    assert.equal(runFile.status, 'completed');
    assert.equal(runFile.id, `sweep_tiny/${point}/seed_${k}`);
    assert.deepEqual(runFile.sweep, { name: 'tiny', point, params: PARAMS[point], seed: k });
    assert.equal(runFile.config.seed, k);
    assert.deepEqual(runFile.attention, ATTENTION[point]);
    assert.equal(runFile.config.augment, true);
    assert.deepEqual([runFile.config.lr, runFile.config.lrDecayEpochs, runFile.config.lrDecayFactor, runFile.config.weightDecay], [0.1, [1], 0.1, 1e-4]);
    assert.deepEqual(runFile.config.normalize, { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] });
    const history = JSON.parse(await readFile(join(dir, 'history.json'), 'utf8'));
    assert.deepEqual(history.rows.map((r: { epoch: number; lr: number }) => [r.epoch, Number(r.lr.toPrecision(6))]), [[1, 0.1], [2, 0.01]]);
    assert.equal(runFile.resumes.length, 0, 'one run trains the whole schedule, no phases resumed from checkpoints');
  }

  // The table: every point with 2 runs, "mean ± std" cells, and a verdict for the SE and ECA points
  // (the same Welch test against the same baseline; ECA adds k = 3 weights to each of resnet8's 3 units).
  const baseRow = /\| baseline \(no attention\) \| 2 \| 75,770 \| \d+\.\d\d ± \d+\.\d\d \| \d+\.\d\d ± \d+\.\d\d \| \(baseline\) \| \(baseline\) \|/;
  const seRow = /\| r4 sigmoid avg standard \| 2 \| 78,598 \| \d+\.\d\d ± \d+\.\d\d \| \d+\.\d\d ± \d+\.\d\d \| [+−]\d+\.\d\d \[[+−]\d+\.\d\d, [+−]\d+\.\d\d\] (better|worse|within noise) \|/;
  const ecaRow = /\| eca k3 standard \| 2 \| 75,779 \| \d+\.\d\d ± \d+\.\d\d \| \d+\.\d\d ± \d+\.\d\d \| [+−]\d+\.\d\d \[[+−]\d+\.\d\d, [+−]\d+\.\d\d\] (better|worse|within noise) \|/;
  assert.match(first.stdout, baseRow);
  assert.match(first.stdout, seRow);
  assert.match(first.stdout, ecaRow);

  // The same table from the run files alone (what `selab sweep --table --format csv` prints).
  const csv = sweepCsv(sweepTables(await findRuns(out)));
  assert.equal(csv.trim().split('\n').length, 4);
  assert.match(csv, /^tiny,resnet8,r4-sigmoid-avg-standard,se,4,sigmoid,avg,,standard,true,78598,2,0,/m);
  assert.match(csv, /^tiny,resnet8,eca-k3-standard,eca,,,,3,standard,true,75779,2,0,/m);

  // Again, in-process: completed runs are skipped; an unfinished one needs --resume and is then
  // handed to the runner to continue.
  const plan = planSweep(sweepRequest({ model: 'resnet8', name: 'tiny', attention: 'se,eca', seRatio: '4', ecaKernel: '3', repeats: '2', epochs: '2', lrDecayEpochs: '1', batchSize: '8', trainLimit: '8', testLimit: '8', out }));
  const trained: [string, string | null][] = [];
  const hooks = { log: () => undefined, train: async (job: SweepJob, previous: RunFile | null) => void trained.push([job.id, previous?.status ?? null]) };
  assert.deepEqual(await runSweep(plan.jobs, { resume: false, epochs: 2 }, hooks), { trained: 0, skipped: 6, failed: [] });
  const runJson = join(out, 'sweep_tiny', 'baseline', 'seed_2', 'run.json');
  const saved = JSON.parse(await readFile(runJson, 'utf8'));
  await writeFile(runJson, JSON.stringify({ ...saved, status: 'stopped' }));
  await assert.rejects(runSweep(plan.jobs, { resume: false, epochs: 2 }, hooks), /1 run of this sweep already started and did not complete \(.*baseline[/\\]seed_2\): pass --resume to continue it/);
  assert.deepEqual(trained, []);
  assert.deepEqual(await runSweep(plan.jobs, { resume: true, epochs: 2 }, hooks), { trained: 1, skipped: 5, failed: [] });
  assert.deepEqual(trained, [['sweep_tiny/baseline/seed_2', 'stopped']]);
});

test('sweep flags are checked before anything is written', () => {
  type Flags = Parameters<typeof sweepRequest>[0];
  const cases: [Flags, RegExp][] = [
    [{ model: 'vgg16' }, /--model: "vgg16" is not a model with attention: it has no place for channel attention/],
    [{ model: 'resnet20', seRatio: '0' }, /--se-ratio: "0" is not a positive integer/],
    [{ model: 'resnet20', seGate: 'softmax' }, /--se-gate: "softmax" is not one of/],
    [{ model: 'resnet20', attention: 'se,cbam' }, /--attention: "cbam" is not one of se, eca/],
    [{ model: 'resnet20', attention: 'eca', ecaKernel: '4' }, /--eca-kernel: "4" is not a positive odd integer/],
    [{ model: 'plain10', integration: 'post' }, /--integration: plain10 has no residual units/],
    [{ model: 'resnet20', repeats: '0' }, /--repeats "0": expected an integer ≥ 1/],
    [{ model: 'resnet20', preset: 'imagenet' }, /--preset "imagenet": expected one of se-cifar, reference/],
    [{ model: 'resnet20', name: '../x' }, /--name: "\.\.\/x" must be letters, digits/],
    [{ model: 'resnet20', epochs: '-1' }, /--epochs "-1": expected an integer ≥ 1/],
    [{ model: 'resnet20', weights: 'imagenet' }, /--weights: sweep models train from scratch/],
  ];
  for (const [flags, message] of cases) assert.throws(() => planSweep(sweepRequest(flags)), message);
  // Presets and overrides.
  const p = planSweep(sweepRequest({ model: 'resnet20', preset: 'reference', lr: '0.01', augment: true }));
  assert.deepEqual([p.config.optimizer, p.config.lr, p.config.batchSize, p.config.epochs, p.config.augment], ['adam', 0.01, 1024, 100, true]);
  const q = planSweep(sweepRequest({ model: 'wrn16-8', seRatio: 'all', seGate: 'all', seSqueeze: 'all', integration: 'all', repeats: '3', augment: false }));
  assert.equal(q.jobs.length, (1 + 5 * 3 * 2 * 4) * 3);
  assert.deepEqual([q.config.optimizer, q.config.lr, q.config.momentum, q.config.batchSize, q.config.epochs, q.config.augment], ['sgd-momentum', 0.1, 0.9, 128, 164, false]);
});

// `selab bench --json` on a tiny run: the output schema, and PyTorch rows beside selab's
// when /usr/bin/python3 has torch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../src/util/paths.js';
import { registerOneDnnBackend } from '../src/backend/onednn/backend.js';
import { combineRounds, formatBenchTable, ratioToPeer, type BenchRow } from '../src/bench/run.js';

const root = packageRoot();
const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const hasOneDnn = registerOneDnnBackend();

function selab(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, SELAB_THREADS: '1' },
    timeout: 600_000,
  });
}

test('selab bench --json prints rows with the documented fields, torch rows included', { timeout: 600_000 }, () => {
  const res = selab(['bench', '--json', '--models', 'plain10', '--backends', 'onednn', '--steps', '1', '--warmup', '1', '--batch', '2']);
  assert.equal(res.status, 0, res.stderr);
  const out = JSON.parse(res.stdout) as { threads: number; rows: Record<string, unknown>[]; skipped: string[] };
  assert.equal(out.threads, 1, 'SELAB_THREADS sets the thread count, for selab and the peer alike');
  const backends = new Set(out.rows.map((r) => r['backend']));
  assert.equal(backends.has('onednn'), hasOneDnn, `onednn rows iff the addon is built (skipped: ${out.skipped.join('; ')})`);
  assert.equal(backends.has('torch'), hasTorch, 'torch rows iff /usr/bin/python3 has torch');
  assert.equal(out.rows.length, (hasOneDnn ? 2 : 0) + (hasTorch ? 2 : 0));
  for (const r of out.rows) {
    assert.deepEqual(Object.keys(r).sort(), ['backend', 'batch', 'gflops', 'imagesPerSecond', 'model', 'phase']);
    assert.equal(r['model'], 'plain10');
    assert.ok(r['phase'] === 'train' || r['phase'] === 'infer');
    assert.equal(r['batch'], 2);
    const ips = r['imagesPerSecond'] as number;
    assert.ok(ips > 0 && Number.isFinite(ips));
    // plain10 has 266,013,184 MACs per image: 2 FLOPs per MAC forward, 6 per MAC for a training step.
    const perImage = (r['phase'] === 'train' ? 6 : 2) * 0.266013184;
    assert.ok(Math.abs((r['gflops'] as number) - perImage * ips) < 1e-3 * perImage * ips, `gflops of ${JSON.stringify(r)}`);
  }
});

test('selab bench measures each model on selab and then on PyTorch before the next model', { skip: hasOneDnn && hasTorch ? false : 'needs the onednn addon and torch', timeout: 600_000 }, () => {
  const res = selab(['bench', '--json', '--models', 'plain10,plain10-se', '--backends', 'onednn', '--phases', 'train', '--steps', '1', '--warmup', '0', '--batch', '2']);
  assert.equal(res.status, 0, res.stderr);
  const out = JSON.parse(res.stdout) as { rows: BenchRow[] };
  // Rows come in the order they were measured: a ratio pairs neighbours in time.
  assert.deepEqual(out.rows.map((r) => `${r.model} ${r.backend}`), ['plain10 onednn', 'plain10 torch', 'plain10-se onednn', 'plain10-se torch']);
});

test('selab bench rejects an unknown model and a bad --steps', () => {
  const model = selab(['bench', '--models', 'resnet9000', '--no-torch']);
  assert.notEqual(model.status, 0);
  assert.match(model.stderr, /--models expects a comma-separated list of plain10, plain10-se, vgg16-bn-se, mobilenet, mobilenet-se; got "resnet9000"/);
  const steps = selab(['bench', '--steps', '0', '--no-torch']);
  assert.notEqual(steps.status, 0);
  assert.match(steps.stderr, /--steps expects an integer ≥ 1, got "0"/);
  const rounds = selab(['bench', '--rounds', '1.5', '--no-torch']);
  assert.notEqual(rounds.status, 0);
  assert.match(rounds.stderr, /--rounds expects an integer ≥ 1, got "1.5"/);
});

test('rounds: each row is the median of its rounds, and the ratio to PyTorch the median of the rounds\' ratios', () => {
  const row = (backend: string, phase: 'train' | 'infer', imagesPerSecond: number): BenchRow => ({ model: 'plain10', backend, phase, batch: 128, imagesPerSecond, gflops: imagesPerSecond * 1.6 });
  const rounds = [
    [row('onednn', 'train', 200), row('onednn', 'infer', 900), row('torch', 'train', 160)],
    [row('onednn', 'train', 260), row('onednn', 'infer', 800), row('torch', 'train', 200)],
    [row('onednn', 'train', 240), row('onednn', 'infer', 1000), row('torch', 'train', 100)],
  ];
  const rows = combineRounds(rounds);
  assert.deepEqual(rows.map((r) => [r.backend, r.phase, r.imagesPerSecond, r.rounds]), [
    ['onednn', 'train', 240, [200, 260, 240]],
    ['onednn', 'infer', 900, [900, 800, 1000]],
    ['torch', 'train', 160, [160, 200, 100]],
  ]);
  assert.ok(Math.abs(rows[0]!.gflops - 240 * 1.6) < 1e-9);
  // The rounds' ratios are 1.25, 1.3 and 2.4 (PyTorch had a slow third round): median 1.3, where
  // the medians' ratio, 240 / 160, pairs figures from different rounds.
  assert.equal(ratioToPeer(rows[0]!, rows[2]!), 1.3);
  assert.equal(ratioToPeer(row('onednn', 'train', 300), row('torch', 'train', 200)), 1.5);
  const table = formatBenchTable({ threads: 2, rows, skipped: [] });
  assert.match(table, /plain10 +onednn +train +128 +240\.0 +200\.0–260\.0 +384\.0 +1\.30×/);
  assert.deepEqual(combineRounds([rounds[0]!]), rounds[0]);
});

test('selab bench --rounds 2 --json: a rounds array per row, its median as imagesPerSecond', { skip: hasOneDnn ? false : 'the onednn addon is not built', timeout: 600_000 }, () => {
  const res = selab(['bench', '--json', '--models', 'plain10', '--backends', 'onednn', '--phases', 'infer', '--steps', '1', '--warmup', '0', '--batch', '2', '--rounds', '2', '--no-torch']);
  assert.equal(res.status, 0, res.stderr);
  const [r] = (JSON.parse(res.stdout) as { rows: BenchRow[] }).rows;
  assert.equal(r!.rounds!.length, 2);
  assert.ok(Math.abs(r!.imagesPerSecond - (r!.rounds![0]! + r!.rounds![1]!) / 2) < 1e-9 * r!.imagesPerSecond);
  assert.match(res.stderr, /round 2\/2: plain10 onednn infer batch 2/);
});

test('selab bench --profile: a kernel table for the training step and for the inference pass', { skip: hasOneDnn ? false : 'the onednn addon is not built', timeout: 600_000 }, () => {
  const res = selab(['bench', '--models', 'plain10', '--backends', 'onednn', '--steps', '1', '--warmup', '0', '--batch', '2', '--no-torch', '--profile']);
  assert.equal(res.status, 0, res.stderr);
  for (const phase of ['one training step', 'one inference pass']) {
    const table = res.stderr.split(`profile of ${phase}, plain10 on onednn, batch 2:\n`)[1];
    assert.ok(table, `a profile of ${phase} in:\n${res.stderr}`);
    // plain10's nine convolutions (its tenth layer is dense) each run SelabConv2D once per pass.
    assert.match(table!, /^SelabConv2D +9 /m, table);
  }
});

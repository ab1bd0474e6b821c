// `selab bench --json` on a tiny run: the output schema, and PyTorch rows beside selab's
// when /usr/bin/python3 has torch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../src/util/paths.js';
import { registerOneDnnBackend } from '../src/backend/onednn/backend.js';

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

test('selab bench rejects an unknown model and a bad --steps', () => {
  const model = selab(['bench', '--models', 'resnet9000', '--no-torch']);
  assert.notEqual(model.status, 0);
  assert.match(model.stderr, /--models expects a comma-separated list of plain10, plain10-se, vgg16-bn-se, mobilenet, mobilenet-se; got "resnet9000"/);
  const steps = selab(['bench', '--steps', '0', '--no-torch']);
  assert.notEqual(steps.status, 0);
  assert.match(steps.stderr, /--steps expects an integer ≥ 1, got "0"/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findRuns, writeHistory, writeRunFile, type RunFile, type RunStatus } from '../src/runs/files.js';
import { sweepCharts, sweepCsv, sweepJson, sweepMarkdown, sweepReportSections, sweepTables } from '../src/report/sweep.js';
import { renderSvg } from '../src/report/render-chart.js';

interface Fixture {
  point: string;
  params: Record<string, unknown>;
  seed: number;
  final: number;
  best: number;
  status?: RunStatus;
}

function runFile(f: Fixture, id: string): RunFile {
  const se = f.point !== 'baseline';
  return {
    version: 1, id, case: null, name: `resnet20 ${f.point}`, model: 'resnet20', additions: [], se,
    attention: se ? { kind: 'se', ratio: f.params.ratio as number, gate: f.params.gate as 'sigmoid', squeeze: f.params.squeeze as 'avg' } : null,
    training: 'scratch', sweep: { name: 'demo', point: f.point, params: f.params, seed: f.seed },
    config: { epochs: 3, batchSize: 128, microBatch: 128, optimizer: 'sgd-momentum', lr: 0.1, momentum: 0.9, upsample: 1, inputShape: [32, 32, 3],
      trainLimit: null, testLimit: null, seed: f.seed, weights: 'none', preprocess: 'scale', augment: true, normalize: null, weightDecay: 0, lrDecayEpochs: [], lrDecayFactor: 0.1,
      protocol: 'keras', validation: 'full' },
    environment: { backend: 'cpu', data: 'fixture', threads: null },
    batchNormStatistics: 'per batch', batchNormGroup: 128, params: se ? 273_471 : 271_098, trainableParams: 0, macs: null, versions: {}, gitCommit: null,
    startedAt: '2026-11-28T23:00:00.000Z', endedAt: null, resumes: [], status: f.status ?? 'completed', error: null,
    epochsCompleted: 3, final: { epoch: 3, val_acc: f.final, val_loss: 0.3, test_acc: f.final, test_loss: 0.3 }, best: { epoch: 2, val_acc: f.best, test_acc: f.best },
  };
}

const R16 = { ratio: 16, gate: 'sigmoid', squeeze: 'avg', integration: 'standard' };
const R4 = { ratio: 4, gate: 'sigmoid', squeeze: 'avg', integration: 'standard' };
const FIXTURES: Fixture[] = [
  { point: 'baseline', params: {}, seed: 1, final: 0.90, best: 0.91 },
  { point: 'baseline', params: {}, seed: 2, final: 0.91, best: 0.92 },
  { point: 'baseline', params: {}, seed: 3, final: 0.905, best: 0.915 },
  { point: 'r16-sigmoid-avg-standard', params: R16, seed: 1, final: 0.93, best: 0.93 },
  { point: 'r16-sigmoid-avg-standard', params: R16, seed: 2, final: 0.935, best: 0.94 },
  { point: 'r16-sigmoid-avg-standard', params: R16, seed: 3, final: 0.928, best: 0.93 },
  { point: 'r4-sigmoid-avg-standard', params: R4, seed: 1, final: 0.906, best: 0.91 },
  { point: 'r4-sigmoid-avg-standard', params: R4, seed: 2, final: 0.899, best: 0.90 },
  { point: 'r4-sigmoid-avg-standard', params: R4, seed: 3, final: 0.912, best: 0.92 },
  // Still running: listed, but kept out of the statistics.
  { point: 'r4-sigmoid-avg-standard', params: R4, seed: 4, final: 0.10, best: 0.10, status: 'running' },
];

async function writeFixtures(): Promise<string> {
  const out = await mkdtemp(join(tmpdir(), 'selab-sweep-table-'));
  for (const f of FIXTURES) {
    const id = `sweep_demo/${f.point}/seed_${f.seed}`;
    const dir = join(out, id);
    await mkdir(dir, { recursive: true });
    await writeRunFile(dir, runFile(f, id));
    await writeHistory(dir, [{ epoch: 1, loss: 1, acc: 0.5, val_loss: 1, val_acc: f.final, test_loss: 1, test_acc: f.final, lr: 0.1, seconds: 1, imagesPerSecond: 10 }]);
  }
  return out;
}

test('sweep table: mean ± std per point, Welch gain with 95% CI and verdict against the baseline', async (t) => {
  const out = await writeFixtures();
  t.after(() => rm(out, { recursive: true, force: true }));
  const [table, ...rest] = sweepTables(await findRuns(out));
  assert.equal(rest.length, 0);
  assert.equal(table!.name, 'demo');
  assert.equal(table!.baseline, 'baseline');
  assert.deepEqual(table!.rows.map((r) => r.point), ['baseline', 'r4-sigmoid-avg-standard', 'r16-sigmoid-avg-standard']);

  const [base, r4, r16] = table!.rows;
  assert.equal(base!.runs, 3);
  assert.ok(Math.abs(base!.final.mean - 0.905) < 1e-12 && Math.abs(base!.final.std - 0.005) < 1e-12);
  assert.equal(r4!.runs, 3);
  assert.equal(r4!.unfinished, 1);
  // Hand values (and mpmath, 30 digits): SE r=16 vs baseline, final accuracy:
  // diff 0.026, t 7.30536933, df 3.637279597, p 0.002677249747, CI [0.01571753428, 0.03628246572].
  const g = r16!.finalGain!.test!;
  assert.ok(Math.abs(g.diff - 0.026) < 1e-12);
  assert.ok(Math.abs(g.t - 7.30536933) < 1e-6 && Math.abs(g.df - 3.637279597) < 1e-6 && Math.abs(g.p - 0.002677249747) < 1e-8);
  assert.ok(Math.abs(g.ci[0] - 0.01571753428) < 1e-8 && Math.abs(g.ci[1] - 0.03628246572) < 1e-8);
  assert.equal(r16!.finalGain!.verdict, 'better');
  // r=4: diff 0.000667, CI [−0.01283790103, 0.01417123436] → within noise.
  assert.ok(Math.abs(r4!.finalGain!.test!.ci[0] + 0.01283790103) < 1e-8);
  assert.equal(r4!.finalGain!.verdict, 'within noise');

  const md = sweepMarkdown([table!]);
  assert.match(md, /\| baseline \(no attention\) \| 3 \| 271,098 \| 90\.50 ± 0\.50 \| 91\.50 ± 0\.50 \| \(baseline\) \| \(baseline\) \|/);
  assert.match(md, /\| r16 sigmoid avg standard \| 3 \| 273,471 \| 93\.10 ± 0\.36 \| 93\.33 ± 0\.58 \| \+2\.60 \[\+1\.57, \+3\.63\] better \|/);
  assert.match(md, /\| r4 sigmoid avg standard \| 3 \(\+1 unfinished\) \| 273,471 \| 90\.57 ± 0\.65 \| .* \| \+0\.07 \[−1\.28, \+1\.42\] within noise \|/);
  assert.match(md, /ResNet-110 \| 6\.37 \| 5\.21 \| \+1\.16/);

  const csv = sweepCsv([table!]).trim().split('\n');
  assert.equal(csv.length, 4);
  assert.match(csv[3]!, /^demo,resnet20,r16-sigmoid-avg-standard,,16,sigmoid,avg,,standard,true,273471,3,0,0\.931/);
  assert.match(csv[3]!, /,better,/);
  const json = JSON.parse(sweepJson([table!])) as { sweeps: { rows: { finalGain: unknown }[] }[] };
  assert.equal(json.sweeps[0]!.rows[0]!.finalGain, null);
});

test('sweep charts: accuracy against r with error bars and the baseline band, rendered to SVG', async (t) => {
  const out = await writeFixtures();
  t.after(() => rm(out, { recursive: true, force: true }));
  const [table] = sweepTables(await findRuns(out));
  const charts = sweepCharts(table!);
  assert.deepEqual(charts.map((c) => c.id), ['sweep-demo-points', 'sweep-demo-ratio'], 'only r varies in this sweep');
  const points = charts[0]!.spec as { data: { values: { point: string; n: number }[] } };
  assert.deepEqual(points.data.values.map((v) => [v.point, v.n]), [['baseline (no attention)', 3], ['r4 sigmoid avg standard', 3], ['r16 sigmoid avg standard', 3]]);
  const spec = charts[1]!.spec as { data: { values: { x: number; mean: number; lo: number; hi: number }[] } };
  const r16 = spec.data.values.find((v) => v.x === 16)!;
  assert.ok(Math.abs(r16.mean - 93.1) < 1e-9 && Math.abs(r16.hi - r16.lo - 2 * 0.36055512754639896) < 1e-9);
  const svg = await renderSvg(charts[1]!.spec, 'c0');
  assert.match(await renderSvg(charts[0]!.spec, 'c1'), /baseline \(no attention\)/);
  assert.match(svg, /^<svg/);
  assert.match(svg, /reduction ratio r/);
  // Error bars, points and the baseline rule are all drawn.
  assert.ok((svg.match(/<path/g) ?? []).length >= 4, 'marks drawn');
  const sections = sweepReportSections(await findRuns(out));
  assert.equal(sections.length, 1);
  assert.match(sections[0]!.html!, /data-verdict="better"/);
});

test('one run per side: the gain is shown, the verdict says too few runs', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'selab-sweep-one-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  for (const f of [FIXTURES[0]!, FIXTURES[3]!]) {
    const id = `sweep_demo/${f.point}/seed_${f.seed}`;
    await mkdir(join(out, id), { recursive: true });
    await writeRunFile(join(out, id), runFile(f, id));
  }
  const [table] = sweepTables(await findRuns(out));
  const se = table!.rows[1]!;
  assert.equal(se.finalGain!.verdict, 'too few runs');
  assert.equal(se.finalGain!.test, null);
  assert.match(sweepMarkdown([table!]), /\| r16 sigmoid avg standard \| 1 \| 273,471 \| 93\.00 \| 93\.00 \| \+3\.00 \(too few runs\) \| \+2\.00 \(too few runs\) \|/);
});

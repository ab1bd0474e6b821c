import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import {
  lrPhases, parseDecayEpochs, parseGates, parseIntegrations, parseRatios, parseSqueezes, pointId, repeatSeed, scaledDecayEpochs, stepLr, sweepModel, sweepPoints, sweepRunDir,
} from '../src/train/sweep-plan.js';

test('the full grid: 5 ratios × 3 gates × 2 squeezes × 4 integrations, plus the baseline', () => {
  const grid = { ratio: [2, 4, 8, 16, 32], gate: parseGates('sigmoid,tanh,relu'), squeeze: parseSqueezes('avg,max'), integration: parseIntegrations('standard,pre,post,identity') };
  const points = sweepPoints(grid, { residual: true, baseline: true });
  assert.equal(points.length, 1 + 5 * 3 * 2 * 4);
  assert.deepEqual(points.slice(0, 3).map((p) => p.id), ['baseline', 'r2-sigmoid-avg-standard', 'r2-sigmoid-avg-pre']);
  assert.equal(new Set(points.map((p) => p.id)).size, points.length, 'ids are unique');
  // A plain model has no integration dimension.
  const plain = sweepPoints(grid, { residual: false, baseline: false });
  assert.equal(plain.length, 30);
  assert.equal(plain[0]!.id, 'r2-sigmoid-avg');
  assert.equal(pointId(null), 'baseline');
});

test('run folders and seeds follow docs/run-format.md', () => {
  assert.equal(sweepRunDir('runs', 'ratio', 'r16-sigmoid-avg-standard', 2), join('runs', 'sweep_ratio', 'r16-sigmoid-avg-standard', 'seed_2'));
  assert.deepEqual([1, 2, 3].map((k) => repeatSeed(10, k)), [10, 11, 12]);
});

test('flag values are checked with clear errors', () => {
  assert.deepEqual(parseRatios('16, 4'), [16, 4]);
  assert.throws(() => parseRatios('4,x'), /--ratio: "x" is not a positive integer/);
  assert.throws(() => parseRatios('4,4'), /--ratio: "4,4" lists a value twice/);
  assert.throws(() => parseGates('sigmoid,swish'), /--gate: "swish" is not one of sigmoid, hardSigmoid, tanh, relu/);
  assert.throws(() => parseIntegrations('inside'), /--integration: "inside" is not one of standard, pre, post, identity/);
  assert.throws(() => sweepModel('vgg16'), /--model: "vgg16" is not a model with SE/);
});

test('sweep models build with the point\'s SE settings', () => {
  const m = sweepModel('resnet8').build({ ratio: 4, gate: 'tanh', squeeze: 'max', integration: 'post' }, [8, 8, 3]);
  const se = m.getLayer('conv2_block1_se').getConfig();
  assert.deepEqual([se.ratio, se.gate, se.squeeze], [4, 'tanh', 'max']);
  assert.deepEqual(m.getLayer('conv2_block1_se').inboundNodes[0]!.inboundLayers.map((l) => l.name), ['conv2_block1_out']);
  m.dispose();
  assert.equal(sweepModel('resnet8').build(null, [8, 8, 3]).layers.filter((l) => l.name.endsWith('_se')).length, 0);
  assert.equal(sweepModel('wrn16-8').residual, true);
  assert.equal(sweepModel('plain10').residual, false);
});

test('step learning-rate schedule of the SE CIFAR recipe', () => {
  assert.deepEqual([1, 82, 83, 123, 124, 164].map((e) => Number(stepLr(0.1, e, [82, 123], 0.1).toPrecision(6))), [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]);
});

test('a step schedule becomes constant-lr phases, each continued from the last checkpoint', () => {
  const phases = lrPhases(164, 0.1, [82, 123], 0.1).map((p) => ({ until: p.until, lr: Number(p.lr.toPrecision(6)) }));
  assert.deepEqual(phases, [{ until: 82, lr: 0.1 }, { until: 123, lr: 0.01 }, { until: 164, lr: 0.001 }]);
  // Decays outside 1 … epochs − 1 do nothing; the recipe's points scale with the run's length.
  assert.deepEqual(lrPhases(1, 0.1, [82, 123], 0.1), [{ until: 1, lr: 0.1 }]);
  assert.deepEqual(scaledDecayEpochs(164), [82, 123]);
  assert.deepEqual(scaledDecayEpochs(20), [10, 15]);
  assert.deepEqual(parseDecayEpochs('none'), []);
  assert.throws(() => parseDecayEpochs('0'), /--lr-decay-epochs: "0" is not a positive integer/);
});

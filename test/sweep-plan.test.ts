import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import { parseDecayEpochs, parseDecayFactor, stepLr } from '../src/engine/schedule.js';
import { sweepRequest } from '../src/cli/commands/sweep.js';
import { scaledDecayEpochs } from '../src/experiments/presets.js';
import {
  parseIntegrations, parseSettingList, pointId, repeatSeed, sweepModel, sweepPoints, sweepRunDir, type SweepGrid,
} from '../src/experiments/sweep-plan.js';
import { describeLrSchedule, planSweep } from '../src/experiments/sweep.js';
import { EFFICIENT_CHANNEL_ATTENTION } from '../src/attention/efficient-channel-attention.js';
import { SQUEEZE_EXCITATION } from '../src/attention/squeeze-excitation.js';

const [RATIO, GATE, SQUEEZE] = SQUEEZE_EXCITATION.settings;
const [KERNEL] = EFFICIENT_CHANNEL_ATTENTION.settings;

const sweep = (flags: Parameters<typeof sweepRequest>[0]) => planSweep(sweepRequest(flags));

test('the full grid: 5 ratios × 3 gates × 2 squeezes × 4 integrations, plus the baseline', () => {
  const grid: SweepGrid = {
    attention: [{ kind: 'se', values: { ratio: parseSettingList(RATIO!, 'all'), gate: parseSettingList(GATE!, 'sigmoid,tanh,relu'), squeeze: parseSettingList(SQUEEZE!, 'avg,max') } }],
    integration: parseIntegrations('standard,pre,post,identity'),
  };
  const points = sweepPoints(grid, { residual: true, baseline: true });
  assert.equal(points.length, 1 + 5 * 3 * 2 * 4);
  assert.deepEqual(points.slice(0, 3).map((p) => p.id), ['baseline', 'r2-sigmoid-avg-standard', 'r2-sigmoid-avg-pre']);
  assert.equal(new Set(points.map((p) => p.id)).size, points.length, 'ids are unique');
  // A plain model has no integration dimension.
  const plain = sweepPoints(grid, { residual: false, baseline: false });
  assert.equal(plain.length, 30);
  assert.equal(plain[0]!.id, 'r2-sigmoid-avg');
  assert.equal(pointId({ attention: null }), 'baseline');
});

test('SE and ECA points side by side: ECA adds its kernel sizes, each at every integration', () => {
  const grid: SweepGrid = {
    attention: [{ kind: 'se', values: { ratio: [16], gate: ['sigmoid'], squeeze: ['avg'] } }, { kind: 'eca', values: { kernelSize: parseSettingList(KERNEL!, 'adaptive,3') } }],
    integration: ['standard', 'post'],
  };
  const points = sweepPoints(grid, { residual: true, baseline: true });
  assert.deepEqual(points.map((p) => p.id), ['baseline', 'r16-sigmoid-avg-standard', 'r16-sigmoid-avg-post', 'eca-adaptive-standard', 'eca-adaptive-post', 'eca-k3-standard', 'eca-k3-post']);
  assert.deepEqual(points[5]!.attention, { kind: 'eca', kernelSize: 3 });
  assert.throws(() => parseSettingList(KERNEL!, '3,4'), /--eca-kernel: "4" is not a positive odd integer/);
  assert.deepEqual(parseSettingList(KERNEL!, 'all'), ['adaptive', 3, 5, 7, 9]);
});

test('run folders and seeds follow docs/run-format.md', () => {
  assert.equal(sweepRunDir('runs', 'ratio', 'r16-sigmoid-avg-standard', 2), join('runs', 'sweep_ratio', 'r16-sigmoid-avg-standard', 'seed_2'));
  assert.deepEqual([1, 2, 3].map((k) => repeatSeed(10, k)), [10, 11, 12]);
});

test('flag values are checked with clear errors', () => {
  assert.deepEqual(parseSettingList(RATIO!, '16, 4'), [16, 4]);
  assert.throws(() => parseSettingList(RATIO!, '4,x'), /--se-ratio: "x" is not a positive integer/);
  assert.throws(() => parseSettingList(RATIO!, '4,4'), /--se-ratio: "4,4" lists a value twice/);
  assert.throws(() => parseSettingList(GATE!, 'sigmoid,swish'), /--se-gate: "swish" is not one of sigmoid, hardSigmoid, tanh, relu/);
  assert.throws(() => parseIntegrations('inside'), /--integration: "inside" is not one of standard, pre, post, identity/);
  assert.throws(() => sweepModel('vgg16'), /--model: "vgg16" is not a model with attention/);
  assert.throws(() => sweepModel('resnet'), /--model: "resnet" is not a model with attention: unknown model "resnet"/);
});

test('sweep models build with the point\'s attention settings', async () => {
  const m = await sweepModel('resnet8').build({ id: 'r4-tanh-max-post', attention: { kind: 'se', ratio: 4, gate: 'tanh', squeeze: 'max' }, integration: 'post' }, [8, 8, 3]);
  const se = m.getLayer('conv2_block1_se').getConfig();
  assert.deepEqual([se.ratio, se.gate, se.squeeze], [4, 'tanh', 'max']);
  assert.deepEqual(m.getLayer('conv2_block1_se').inboundNodes[0]!.inboundLayers.map((l) => l.name), ['conv2_block1_out']);
  m.dispose();
  assert.equal((await sweepModel('resnet8').build({ id: 'baseline', attention: null }, [8, 8, 3])).layers.filter((l) => l.name.endsWith('_se')).length, 0);
  const eca = await sweepModel('resnet8').build({ id: 'eca-k5-pre', attention: { kind: 'eca', kernelSize: 5 }, integration: 'pre' }, [8, 8, 3]);
  assert.equal(eca.getLayer('conv2_block1_eca').getConfig().kernelSize, 5);
  assert.equal(eca.layers.filter((l) => l.getClassName() === 'EfficientChannelAttention').length, 3);
  assert.equal(sweepModel('wrn16-8').residual, true);
  assert.equal(sweepModel('plain10').residual, false);
});

test('step learning-rate schedule of the SE CIFAR recipe', () => {
  // Exactly the decimal values, without binary noise: they are written to history.json as they are.
  assert.deepEqual([1, 82, 83, 123, 124, 164].map((e) => stepLr(0.1, e, [82, 123], 0.1)), [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]);
  assert.deepEqual([1, 2, 3].map((e) => stepLr(0.05, e, [1, 2], 0.1)), [0.05, 0.005, 0.0005]);
});

test('the recipe\'s decay epochs scale with the run\'s length; the sweep passes them to the runner', () => {
  assert.deepEqual(scaledDecayEpochs(164), [82, 123]);
  assert.deepEqual(scaledDecayEpochs(20), [10, 15]);
  // 0.5 and 0.75 of one epoch both round to 1: one decay, not two.
  assert.deepEqual(scaledDecayEpochs(1), [1]);
  assert.deepEqual(parseDecayEpochs('none'), []);
  assert.deepEqual(parseDecayEpochs('123, 82'), [82, 123]);
  assert.throws(() => parseDecayEpochs('0'), /--lr-decay-epochs: "0" is not a positive integer/);
  assert.throws(() => parseDecayEpochs('3,3'), /--lr-decay-epochs: "3,3" lists an epoch twice/);
  assert.equal(parseDecayFactor('0.2'), 0.2);
  assert.throws(() => parseDecayFactor('2'), /--lr-decay-factor "2": expected a number in \(0, 1\]/);
  const p = sweep({ model: 'resnet20' });
  assert.deepEqual([p.config.lrDecayEpochs, p.config.lrDecayFactor, p.config.weightDecay], [[82, 123], 0.1, 1e-4]);
  assert.deepEqual(p.config.normalize, { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] });
  assert.equal(describeLrSchedule(p.config), '0.1 to epoch 82, 0.01 to epoch 123, 0.001 to epoch 164');
  const q = sweep({ model: 'resnet20', epochs: '20', lrDecayEpochs: '5', lrDecayFactor: '0.5', weightDecay: '5e-4', normalize: false });
  assert.deepEqual([q.config.lrDecayEpochs, q.config.lrDecayFactor, q.config.weightDecay, q.config.normalize], [[5], 0.5, 5e-4, null]);
  assert.equal(describeLrSchedule(q.config), '0.1 to epoch 5, 0.05 to epoch 20');
  const r = sweep({ model: 'resnet20', preset: 'reference' });
  assert.deepEqual([r.config.lrDecayEpochs, r.config.weightDecay, r.config.normalize], [[], 0, null]);
  assert.throws(() => sweep({ model: 'resnet20', weightDecay: '-1' }), /--weight-decay "-1": expected a number ≥ 0/);
});

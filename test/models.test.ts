import { test } from 'node:test';
import assert from 'node:assert/strict';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { CASES, buildCaseModel, getCase } from '../src/experiments/cases.js';
import { plain10 } from '../src/models/plain10.js';
import { vgg16, VGG16_CONV_NAMES } from '../src/models/vgg16.js';
import { mobilenetV1 } from '../src/models/mobilenet.js';
import { macsPerImage, summarize, trainableParams } from '../src/models/summary.js';
import { createModel, getModelEntry, modelEntries, registerModel } from '../src/models/all.js';
import { se as seAttention } from '../src/attention/index.js';
import { seParamCount } from '../src/attention/squeeze-excitation.js';
import { OPTIMIZER_PRESETS, getOptimizerPreset, makeOptimizer } from '../src/engine/optimizers.js';

await tf.setBackend('cpu');

const EXPECTED_PARAMS: Record<number, number> = {
  1: 1_927_946, 2: 1_993_970, 3: 14_719_818, 4: 14_736_714, 5: 15_194_074, 6: 3_239_114, 7: 4_205_590,
};

for (const c of CASES) {
  test(`case ${c.id} (${c.name}) has exactly ${EXPECTED_PARAMS[c.id]} parameters`, async () => {
    assert.equal(c.expectedParams, EXPECTED_PARAMS[c.id]);
    const model = await buildCaseModel(c);
    assert.equal(model.countParams(), EXPECTED_PARAMS[c.id]);
    assert.deepEqual(model.inputs[0]!.shape, [null, ...c.inputShape]);
    assert.deepEqual(model.outputs[0]!.shape, [null, 10]);
    tf.dispose(model.weights.map((w) => w.read()));
  });
}

test('case table: baselines, reference accuracies, training setup', () => {
  assert.deepEqual(CASES.map((c) => c.id), [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(CASES.map((c) => c.baselineCase), [undefined, 1, undefined, 3, 3, undefined, 6]);
  assert.deepEqual(CASES.map((c) => c.referenceAccuracy), [89.33, 89.51, 90.34, 91.12, 91.03, 93.45, 92.38]);
  assert.deepEqual(CASES.map((c) => c.upsample), [1, 1, 2, 2, 2, 4, 4]);
  assert.deepEqual(CASES.map((c) => c.architecture), ['plain10', 'plain10', 'vgg16', 'vgg16-bn', 'vgg16-bn', 'mobilenet', 'mobilenet']);
  assert.deepEqual(CASES.map((c) => c.optimizer), ['adam', 'adam', 'rmsprop', 'rmsprop', 'rmsprop', 'rmsprop', 'rmsprop']);
  for (const c of CASES) {
    assert.equal(c.batchSize, 1024);
    assert.equal(c.epochs, 100);
    // The reference's SE: r = 8, sigmoid gate, average squeeze, on the SE cases only.
    if (c.se) assert.deepEqual(c.attention, { kind: 'se', ratio: 8, squeeze: 'avg', gate: 'sigmoid' });
    else assert.equal(c.attention, null);
    assert.equal(c.inputShape[0], 32 * c.upsample);
  }
  assert.equal(getCase(5).name, 'vgg16-bn-se');
  assert.equal(getCase('5').id, 5);
  assert.equal(getCase('mobilenet-se').id, 7);
  assert.throws(() => getCase(8), /unknown case "8": expected 1–7 or one of plain10, plain10-se/);
});

test('the SE increments are the SE blocks at the chosen placements', () => {
  const se = (c: number) => seParamCount(c, 8);
  // plain10: after each of the 9 conv units.
  assert.equal(EXPECTED_PARAMS[2]! - EXPECTED_PARAMS[1]!, 3 * (se(64) + se(128) + se(256)));
  // VGG16+BN: 4 weights per channel of each of the 13 convs; +SE after each of them.
  assert.equal(EXPECTED_PARAMS[4]! - EXPECTED_PARAMS[3]!, 4 * (2 * 64 + 2 * 128 + 3 * 256 + 6 * 512));
  assert.equal(EXPECTED_PARAMS[5]! - EXPECTED_PARAMS[4]!, 2 * se(64) + 2 * se(128) + 3 * se(256) + 6 * se(512));
  // MobileNet: after conv1 (32) and conv_pw_1 … conv_pw_13.
  assert.equal(EXPECTED_PARAMS[7]! - EXPECTED_PARAMS[6]!,
    se(32) + se(64) + 2 * se(128) + 2 * se(256) + 6 * se(512) + 2 * se(1024));
});

test('case builders pass the headless Keras-named backbone to loadBaseWeights before rewriting', async () => {
  const seen: string[][] = [];
  const model = await buildCaseModel(7, {
    loadBaseWeights: async (base) => {
      seen.push(base.layers.map((l) => l.name));
      const conv = base.getLayer('conv_pw_13');
      conv.setWeights([tf.fill(conv.weights[0]!.shape as number[], 0.25)]);
    },
  });
  assert.equal(seen.length, 1);
  assert.ok(!seen[0]!.some((n) => n.endsWith('_se')), 'SE blocks must not exist yet');
  assert.equal(seen[0]!.at(-1), 'conv_pw_13_relu');
  const w = model.getLayer('conv_pw_13').getWeights()[0]!;
  assert.deepEqual([...new Set(w.dataSync())], [0.25]);
  let called = false;
  await buildCaseModel(1, { loadBaseWeights: async () => { called = true; } });
  assert.equal(called, false, 'scratch cases load nothing');
});

test('VGG16 layers match keras.applications.vgg16 (include_top=False)', () => {
  const m = vgg16({ inputShape: [32, 32, 3] });
  assert.equal(m.countParams(), 14_714_688);
  assert.deepEqual(m.layers.map((l) => l.name), [
    'input_1',
    'block1_conv1', 'block1_conv2', 'block1_pool',
    'block2_conv1', 'block2_conv2', 'block2_pool',
    'block3_conv1', 'block3_conv2', 'block3_conv3', 'block3_pool',
    'block4_conv1', 'block4_conv2', 'block4_conv3', 'block4_pool',
    'block5_conv1', 'block5_conv2', 'block5_conv3', 'block5_pool',
  ]);
  assert.equal(VGG16_CONV_NAMES.length, 13);
  assert.deepEqual(m.outputs[0]!.shape, [null, 1, 1, 512]);
  assert.equal(m.getLayer('block3_conv2').getConfig().activation, 'relu');
});

test('MobileNet v1 layers match keras.applications.mobilenet (include_top=False)', () => {
  const m = mobilenetV1({ inputShape: [224, 224, 3] });
  assert.equal(m.countParams(), 3_228_864); // Keras MobileNet(include_top=False) at alpha 1
  const names = m.layers.map((l) => l.name);
  assert.deepEqual(names.slice(0, 12), [
    'input_1', 'conv1', 'conv1_bn', 'conv1_relu',
    'conv_dw_1', 'conv_dw_1_bn', 'conv_dw_1_relu', 'conv_pw_1', 'conv_pw_1_bn', 'conv_pw_1_relu',
    'conv_pad_2', 'conv_dw_2',
  ]);
  assert.deepEqual(names.filter((n) => n.startsWith('conv_pad_')), ['conv_pad_2', 'conv_pad_4', 'conv_pad_6', 'conv_pad_12']);
  assert.equal(names.at(-1), 'conv_pw_13_relu');
  assert.equal(names.length, 1 + 3 + 13 * 6 + 4);
  assert.deepEqual(m.outputs[0]!.shape, [null, 7, 7, 1024]);
  const conv1 = m.getLayer('conv1').getConfig();
  assert.equal(conv1.useBias, false);
  const bn = m.getLayer('conv_dw_5_bn').getConfig();
  assert.equal(bn.epsilon, 1e-3);
  assert.equal(bn.momentum, 0.99);
  assert.equal(m.getLayer('conv_pw_3_relu').getConfig().maxValue, 6);
  assert.equal(m.getLayer('conv_dw_4').getConfig().padding, 'valid');

  const small = mobilenetV1({ alpha: 0.25, inputShape: [32, 32, 3] });
  assert.deepEqual(small.outputs[0]!.shape, [null, 1, 1, 256]);
  assert.equal(small.name, 'mobilenet_0.25_32');
  assert.throws(() => mobilenetV1({ inputShape: [16, 16, 3] }), /at least 32×32/);
});

test('trainable parameters exclude only BatchNorm moving statistics', async () => {
  const p = plain10();
  assert.equal(trainableParams(p), 1_927_946 - 2 * (3 * 64 + 3 * 128 + 3 * 256));
  const m = await buildCaseModel(6);
  const bnChannels = 32 + [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    .reduce((s, c, i) => s + c + [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024][i]!, 0);
  assert.equal(trainableParams(m), 3_239_114 - 2 * bnChannels);
});

test('MACs per image: hand counts for plain10, the published VGG16 and MobileNet figures', () => {
  const conv = (hw: number, cout: number, k: number, cin: number) => hw * hw * cout * k * k * cin;
  const plainMacs = conv(32, 64, 3, 3) + 2 * conv(32, 64, 3, 64)
    + conv(16, 128, 3, 64) + 2 * conv(16, 128, 3, 128)
    + conv(8, 256, 3, 128) + 2 * conv(8, 256, 3, 256) + 256 * 10;
  assert.equal(macsPerImage(plain10()), plainMacs);
  assert.equal(macsPerImage(plain10({ attention: seAttention({ ratio: 8 }) })), plainMacs + 3 * (2 * 64 * 8 + 2 * 128 * 16 + 2 * 256 * 32));
  // VGG16 convolutions at 224×224: 15.35 GMACs (the usual published figure).
  assert.equal(macsPerImage(vgg16()), 15_346_630_656);
  // MobileNet v1 paper: 569 M mult-adds at 224 with the 1000-way classifier (1,024,000 of them).
  assert.equal(Math.round((macsPerImage(mobilenetV1()) + 1_024_000) / 1e6), 569);
  const s = summarize(plain10());
  assert.deepEqual(s, { params: 1_927_946, trainableParams: 1_925_258, macs: plainMacs, inputShape: [32, 32, 3] });
});

test('optimizer presets: data, Keras defaults, clear errors', () => {
  assert.deepEqual(OPTIMIZER_PRESETS.adam, { name: 'adam', lr: 1e-3 });
  assert.deepEqual(OPTIMIZER_PRESETS.rmsprop, { name: 'rmsprop', lr: 1e-5 });
  assert.deepEqual(OPTIMIZER_PRESETS['rmsprop-1e-4'], { name: 'rmsprop', lr: 1e-4 });
  assert.deepEqual(OPTIMIZER_PRESETS['sgd-momentum'], { name: 'sgd-momentum', lr: 1e-3, momentum: 0.9 });
  const adam = makeOptimizer('adam').getConfig();
  assert.deepEqual([adam.learningRate, adam.beta1, adam.beta2, adam.epsilon], [1e-3, 0.9, 0.999, 1e-7]);
  const rms = makeOptimizer(getOptimizerPreset('rmsprop-1e-4')).getConfig();
  assert.deepEqual([rms.learningRate, rms.decay, rms.momentum, rms.epsilon, rms.centered], [1e-4, 0.9, 0, 1e-7, false]);
  const sgd = makeOptimizer('sgd-momentum').getConfig();
  assert.deepEqual([sgd.learningRate, sgd.momentum, sgd.useNesterov], [1e-3, 0.9, false]);
  assert.throws(() => makeOptimizer('adamw'), /unknown optimizer preset "adamw": expected one of adam, rmsprop, rmsprop-1e-4, sgd-momentum/);
  assert.throws(() => makeOptimizer({ name: 'lion' as never, lr: 1e-3 }), /unknown optimizer "lion"/);
  assert.throws(() => makeOptimizer({ name: 'adam', lr: -1 }), /lr must be a positive number/);

  // One Keras-style RMSprop step: w -= lr·g / sqrt(0.1·g² + ε).
  const w = tf.variable(tf.tensor1d([1]));
  const opt = makeOptimizer({ name: 'rmsprop', lr: 0.1 });
  opt.minimize(() => tf.sum(tf.mul(w, 2)) as tf.Scalar, false, [w]);
  assert.ok(Math.abs(w.dataSync()[0]! - (1 - 0.1 * 2 / Math.sqrt(0.1 * 4 + 1e-7))) < 1e-6);
});

test('model registry: lists built-in variants, rejects duplicates and unknown names', async () => {
  const names = modelEntries().map((m) => m.name);
  assert.ok(names.includes('mobilenet'));
  assert.equal(getModelEntry('mobilenet').defaults.depthwiseAttention, false);
  const m = await createModel('mobilenet', { inputShape: [128, 128, 3], attention: seAttention({ ratio: 8 }), depthwiseAttention: true });
  // Case 7 plus an SE block after every depthwise convolution (C = the block's input channels).
  const dwChannels = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024];
  assert.equal(m.countParams(), 4_205_590 + dwChannels.reduce((s, c) => s + seParamCount(c, 8), 0));
  const entry = { description: '', defaults: { inputShape: [1, 1, 1] as [number, number, number], classes: 10, integration: 'standard' as const }, attention: 'none' as const, build: () => m };
  assert.throws(() => registerModel({ name: 'mobilenet', ...entry }), /already registered/);
  assert.throws(() => registerModel({ name: 'Bad Name', ...entry }), /lower-case/);
  assert.throws(() => getModelEntry('nope'), /unknown model "nope": expected one of .*mobilenet/);
  m.dispose();
});

test('disposing a case model frees every tensor, rewritten cases included', async () => {
  for (const id of [1, 3, 4, 7]) {
    const before = tf.memory().numTensors;
    const model = await buildCaseModel({ ...getCase(id), inputShape: [32, 32, 3] });
    assert.ok(tf.memory().numTensors > before);
    model.dispose();
    assert.equal(tf.memory().numTensors, before, `case ${id} leaks ${tf.memory().numTensors - before} tensors`);
  }
});

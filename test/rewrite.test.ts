import { test } from 'node:test';
import assert from 'node:assert/strict';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { insertAttention, rewriteModel, withActivation } from '../src/models/rewrite.js';
import { mobilenetWithAttention, vgg16WithBatchNorm } from '../src/models/presets.js';
import { se } from '../src/attention/index.js';
import { mobilenetV1 } from '../src/models/mobilenet.js';
import { vgg16, VGG16_CONV_NAMES } from '../src/models/vgg16.js';
import { SqueezeExcitation, seParamCount } from '../src/attention/squeeze-excitation.js';

await tf.setBackend('cpu');

function predict(model: tfl.LayersModel, x: tf.Tensor): number[] {
  return tf.tidy(() => Array.from((model.predict(x) as tf.Tensor).dataSync()));
}

function sameValues(a: tfl.layers.Layer, b: tfl.layers.Layer): boolean {
  const wa = a.getWeights();
  const wb = b.getWeights();
  return wa.length === wb.length && wa.every((w, i) => {
    const other = wb[i]!;
    return w.shape.join() === other.shape.join() && tf.tidy(() => tf.all(tf.equal(w, other)).dataSync()[0] === 1);
  });
}

/** Gives every weight of `model` random values, so "weights kept" is not satisfied by defaults. */
function randomizeWeights(model: tfl.LayersModel, seed: number): void {
  for (const layer of model.layers) {
    layer.setWeights(layer.getWeights().map((w, i) =>
      // Positive values keep BatchNorm variances valid.
      tf.randomUniform(w.shape, 0.05, 0.3, 'float32', seed + i)));
    seed += 17;
  }
}

function modelNodes(model: tfl.LayersModel) {
  return Object.values(model.nodesByDepth).flat();
}

/** Name of the layer feeding `layerName` in `model` (layers shared between models have several nodes). */
function inboundName(model: tfl.LayersModel, layerName: string): string {
  const layer = model.getLayer(layerName);
  const node = modelNodes(model).find((n) => n.outboundLayer === layer);
  assert.ok(node, `${layerName} has a node in ${model.name}`);
  return node.inboundLayers[0]!.name;
}

test('inserting nothing: the same layer objects and identical outputs (MobileNet 0.25, 32×32)', () => {
  const base = mobilenetV1({ alpha: 0.25, inputShape: [32, 32, 3] });
  randomizeWeights(base, 1);
  const copy = rewriteModel(base);
  assert.deepEqual(copy.layers.map((l) => l.name), base.layers.map((l) => l.name));
  for (const layer of base.layers.slice(1)) assert.equal(copy.getLayer(layer.name), layer);
  const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 3);
  assert.deepEqual(predict(copy, x), predict(base, x));
});

test('MobileNet + SE: blocks right after conv1 and conv_pw_i (before BN), weights kept', () => {
  const base = mobilenetV1({ alpha: 0.25, inputShape: [32, 32, 3] });
  randomizeWeights(base, 5);
  const snapshot = new Map(base.layers.map((l) => [l.name, l.getWeights().map((w) => w.clone())]));
  // A relu gate with zero expand kernel and bias 1 scales by exactly 1: the SE model must then
  // compute exactly what the base computes.
  const model = mobilenetWithAttention(base, se({ gate: 'relu' }));
  const seLayers = model.layers.filter((l) => l instanceof SqueezeExcitation);
  assert.deepEqual(seLayers.map((l) => l.name), ['conv1_se', ...Array.from({ length: 13 }, (_, i) => `conv_pw_${i + 1}_se`)]);
  assert.equal(inboundName(model, 'conv1_se'), 'conv1');
  assert.equal(inboundName(model, 'conv1_bn'), 'conv1_se');
  assert.equal(inboundName(model, 'conv_pw_7_bn'), 'conv_pw_7_se');
  assert.equal(inboundName(model, 'conv_dw_7_bn'), 'conv_dw_7');
  assert.equal(model.countParams(), base.countParams() + seLayers.reduce((s, l) => s + seParamCount(l.weights[3]!.shape[0]!, 8), 0));

  for (const layer of base.layers.slice(1)) {
    assert.equal(model.getLayer(layer.name), layer, `${layer.name} is re-used`);
    const before = snapshot.get(layer.name)!;
    assert.ok(before.every((w, i) => tf.tidy(() => tf.all(tf.equal(w, layer.getWeights()[i]!)).dataSync()[0] === 1)));
  }
  for (const block of seLayers) {
    const [k1, b1, k2, b2] = block.getWeights();
    block.setWeights([k1!, b1!, tf.zerosLike(k2!), tf.onesLike(b2!)]);
  }
  const x = tf.randomUniform([1, 32, 32, 3], -1, 1, 'float32', 9);
  assert.deepEqual(predict(model, x), predict(base, x));
  // Once the gate is not 1, the output changes: the blocks are really on the path.
  const last = seLayers.at(-1)!;
  const w = last.getWeights();
  last.setWeights([w[0]!, w[1]!, w[2]!, tf.fill(w[3]!.shape, 0.5)]);
  assert.notDeepEqual(predict(model, x), predict(base, x));
});

test('MobileNet + SE after depthwise layers too', () => {
  const base = mobilenetV1({ alpha: 0.25, inputShape: [32, 32, 3] });
  const model = mobilenetWithAttention(base, se(), { depthwise: true });
  assert.equal(model.layers.filter((l) => l instanceof SqueezeExcitation).length, 27);
  assert.equal(inboundName(model, 'conv_dw_3_bn'), 'conv_dw_3_se');
  // The same base can be rewritten again: its layers now have several inbound nodes.
  assert.equal(mobilenetWithAttention(base, se()).layers.filter((l) => l instanceof SqueezeExcitation).length, 14);
});

test('VGG16 + BN: convs become linear clones holding the same weights; the base is untouched', () => {
  const base = vgg16({ inputShape: [32, 32, 3] });
  const model = vgg16WithBatchNorm(base);
  for (const name of VGG16_CONV_NAMES) {
    const original = base.getLayer(name);
    const clone = model.getLayer(name);
    assert.notEqual(clone, original);
    assert.equal(clone.getConfig().activation, 'linear');
    assert.equal(original.getConfig().activation, 'relu');
    assert.ok(sameValues(clone, original), `${name} weights copied`);
    assert.equal(inboundName(model, `${name}_bn`), name);
    assert.equal(inboundName(model, `${name}_relu`), `${name}_bn`);
  }
  assert.equal(model.getLayer('block1_pool'), base.getLayer('block1_pool'));
  assert.equal(inboundName(model, 'block1_pool'), 'block1_conv2_relu');

  // With BN set to the identity (mean 0, variance 1 − ε, γ 1, β 0) the network is VGG16 again.
  for (const name of VGG16_CONV_NAMES) {
    const bn = model.getLayer(`${name}_bn`);
    const c = bn.weights[0]!.shape[0]!;
    bn.setWeights([tf.ones([c]), tf.zeros([c]), tf.zeros([c]), tf.fill([c], 1 - 1e-3)]);
  }
  const x = tf.randomUniform([1, 32, 32, 3], 0, 1, 'float32', 11);
  const a = predict(base, x);
  const b = predict(model, x);
  const scale = Math.max(...a.map(Math.abs));
  assert.ok(scale > 0);
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= 1e-4 * scale, `output ${i}: ${v} vs ${b[i]}`));
});

test('VGG16 + BN + SE: conv → BN → ReLU → SE after each of the 13 convolutions', () => {
  const base = vgg16({ inputShape: [32, 32, 3] });
  const model = vgg16WithBatchNorm(base, se());
  assert.equal(model.name, `${base.name}_bn_se`);
  assert.deepEqual(model.layers.filter((l) => l instanceof SqueezeExcitation).map((l) => l.name), VGG16_CONV_NAMES.map((n) => `${n}_se`));
  assert.equal(inboundName(model, 'block4_conv2_se'), 'block4_conv2_relu');
  assert.equal(inboundName(model, 'block4_conv3'), 'block4_conv2_se');
  assert.equal(inboundName(model, 'block4_pool'), 'block4_conv3_se');
});

test('multi-input layers (Add, Multiply) are re-wired; insertions feed every consumer', () => {
  const input = tfl.input({ shape: [4, 4, 2], name: 'in' });
  const a = tfl.layers.conv2d({ filters: 4, kernelSize: 1, name: 'a' }).apply(input) as tfl.SymbolicTensor;
  const b = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'b' }).apply(a) as tfl.SymbolicTensor;
  const sum = tfl.layers.add({ name: 'sum' }).apply([a, b]) as tfl.SymbolicTensor;
  const prod = tfl.layers.multiply({ name: 'prod' }).apply([sum, a]) as tfl.SymbolicTensor;
  const base = tfl.model({ inputs: input, outputs: prod, name: 'residual' });
  const x = tf.randomUniform([2, 4, 4, 2], -1, 1, 'float32', 13);

  assert.deepEqual(predict(rewriteModel(base), x), predict(base, x));

  const withSE = rewriteModel(base, { insertAfter: [insertAttention('a', se({ ratio: 2 }))] });
  const seLayer = withSE.getLayer('a_se');
  const consumers = modelNodes(withSE).filter((n) => n.inboundLayers.includes(seLayer)).map((n) => n.outboundLayer.name);
  assert.deepEqual(consumers.sort(), ['b', 'prod', 'sum']);
  assert.equal(withSE.countParams(), base.countParams() + seParamCount(4, 2));
  assert.equal(withSE.getLayer('sum'), base.getLayer('sum'));
});

test('withActivation and bad replacements give clear errors', () => {
  const pool = tfl.layers.maxPooling2d({ poolSize: 2, name: 'p' });
  assert.throws(() => withActivation(pool, 'linear'), /layer p \(MaxPooling2D\) has no activation/);
  const input = tfl.input({ shape: [4, 4, 2] });
  const conv = tfl.layers.conv2d({ filters: 3, kernelSize: 1, name: 'c' });
  const base = tfl.model({ inputs: input, outputs: conv.apply(input) as tfl.SymbolicTensor });
  assert.throws(
    () => rewriteModel(base, { replace: [{ match: 'c', with: () => tfl.layers.conv2d({ filters: 5, kernelSize: 1 }) }] }),
    /replacement for c has weight shapes \[\[1,1,2,5\],\[5\]\], the original \[\[1,1,2,3\],\[3\]\]/);
});

test('insertion after the input layer; a rule that matches no layer is an error', () => {
  const input = tfl.input({ shape: [4, 4, 8], name: 'in' });
  const conv = tfl.layers.conv2d({ filters: 2, kernelSize: 1, name: 'c' }).apply(input) as tfl.SymbolicTensor;
  const base = tfl.model({ inputs: input, outputs: conv, name: 'tiny' });
  const model = rewriteModel(base, { insertAfter: [insertAttention('in', se({ ratio: 4 }))] });
  assert.equal(inboundName(model, 'in_se'), 'in');
  assert.equal(inboundName(model, 'c'), 'in_se');
  assert.equal(model.countParams(), base.countParams() + seParamCount(8, 4));
  assert.throws(() => rewriteModel(base, { insertAfter: [insertAttention('block1_conv1', se())] }),
    /insertAfter rule "block1_conv1" matched no layer of tiny/);
  assert.throws(() => rewriteModel(base, { replace: [{ match: /^conv_dw/, with: (l) => l }] }),
    /replace rule \/\^conv_dw\/ matched no layer of tiny/);
});

test('a layer shared by two nodes stays one shared layer after replacement', () => {
  const input = tfl.input({ shape: [3], name: 'in' });
  const shared = tfl.layers.dense({ units: 3, activation: 'relu', name: 'shared' });
  const twice = shared.apply(shared.apply(input)) as tfl.SymbolicTensor;
  const base = tfl.model({ inputs: input, outputs: twice, name: 'twice' });
  const model = rewriteModel(base, { replace: [{ match: 'shared', with: (l) => withActivation(l, 'linear') }] });
  assert.equal(model.layers.filter((l) => l.name === 'shared').length, 1);
  assert.equal(model.countParams(), base.countParams());
  const x = tf.tensor2d([[1, -2, 3]]);
  const w = (shared.getWeights()[0]!.arraySync() as number[][]);
  const b = Array.from(shared.getWeights()[1]!.dataSync());
  const dense = (v: number[]) => b.map((bj, j) => v.reduce((s, vi, i) => s + vi * w[i]![j]!, bj));
  const expected = dense(dense([1, -2, 3]));
  predict(model, x).forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-5, `${v} vs ${expected[i]}`));
});

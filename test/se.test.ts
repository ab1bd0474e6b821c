import { test } from 'node:test';
import assert from 'node:assert/strict';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { SqueezeExcitation, reducedChannels, seBlock, seParamCount } from '../src/attention/squeeze-excitation.js';
import { se } from '../src/attention/index.js';
import { plain10 } from '../src/models/plain10.js';
import { registerOneDnnBackend } from '../src/backend/onednn/backend.js';

await tf.setBackend('cpu');

// 1×2×2×4 input; per-channel mean over H×W = [2, 1, 2, 1], max = [4, 2, 4, 4].
const X = [
  [[1, 2, 3, 4], [3, 2, 1, 0]],
  [[0, 0, 0, 0], [4, 0, 4, 0]],
];
// ratio 2 -> 2 bottleneck units.
const W1 = [[1, 0], [0, 1], [1, 0], [0, -1]];
const B1 = [-1, 0.5];
const W2 = [[0, 1, 0, -1], [2, 0, -2, 0]];
const B2 = [-1, -2, 1, 0];

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

function seWithKnownWeights(options: ConstructorParameters<typeof SqueezeExcitation>[0]): SqueezeExcitation {
  const layer = new SqueezeExcitation({ ratio: 2, ...options });
  layer.build([null, 2, 2, 4]);
  layer.setWeights([tf.tensor2d(W1), tf.tensor1d(B1), tf.tensor2d(W2), tf.tensor1d(B2)]);
  return layer;
}

function runLayer(layer: SqueezeExcitation): number[][][] {
  const out = layer.apply(tf.tensor4d([X])) as tf.Tensor;
  return (out.arraySync() as number[][][][])[0]!;
}

function expectScaled(actual: number[][][], gate: number[]): void {
  for (let h = 0; h < 2; h++) {
    for (let w = 0; w < 2; w++) {
      for (let c = 0; c < 4; c++) {
        const expected = X[h]![w]![c]! * gate[c]!;
        assert.ok(Math.abs(actual[h]![w]![c]! - expected) < 1e-6, `[${h},${w},${c}]: ${actual[h]![w]![c]} vs ${expected}`);
      }
    }
  }
}

test('avg squeeze, relu bottleneck, sigmoid gate: matches the hand computation', () => {
  // s = [2,1,2,1]; s·W1 + B1 = [4,0] + [-1,0.5] = [3,0.5]; relu -> [3,0.5];
  // ·W2 = [1,3,-1,-3]; + B2 = [0,1,0,-3]; sigmoid -> gate.
  expectScaled(runLayer(seWithKnownWeights({})), [0, 1, 0, -3].map(sigmoid));
});

test('max squeeze: matches the hand computation', () => {
  // s = [4,2,4,4]; s·W1 + B1 = [8,-2] + [-1,0.5] = [7,-1.5]; relu -> [7,0]; ·W2 + B2 = [-1,5,1,-7].
  expectScaled(runLayer(seWithKnownWeights({ squeeze: 'max' })), [-1, 5, 1, -7].map(sigmoid));
});

test('gates of the SE ablation: hardSigmoid = relu6(x+3)/6, tanh, relu', () => {
  const e = [0, 1, 0, -3];
  expectScaled(runLayer(seWithKnownWeights({ gate: 'hardSigmoid' })), e.map((v) => Math.min(6, Math.max(0, v + 3)) / 6));
  expectScaled(runLayer(seWithKnownWeights({ gate: 'tanh' })), e.map(Math.tanh));
  expectScaled(runLayer(seWithKnownWeights({ gate: 'relu' })), e.map((v) => Math.max(0, v)));
});

test('linear bottleneck lets the negative unit through', () => {
  // z = [3,0.5] either way here, so use the max squeeze where the second unit is -1.5:
  // [7,-1.5]·W2 = [-3,7,3,-7]; + B2 = [-4,5,4,-7].
  expectScaled(runLayer(seWithKnownWeights({ squeeze: 'max', activation: 'linear' })), [-4, 5, 4, -7].map(sigmoid));
});

test('without bias: two kernels only', () => {
  const layer = new SqueezeExcitation({ ratio: 2, useBias: false });
  layer.build([null, 2, 2, 4]);
  assert.deepEqual(layer.weights.map((w) => w.shape), [[4, 2], [2, 4]]);
  layer.setWeights([tf.tensor2d(W1), tf.tensor2d(W2)]);
  // s·W1 = [4,0]; relu; ·W2 = [0,4,0,-4].
  expectScaled(runLayer(layer), [0, 4, 0, -4].map(sigmoid));
});

test('reduced width and parameter count follow Keras channels // r, at least 1', () => {
  assert.equal(reducedChannels(64, 8), 8);
  assert.equal(reducedChannels(100, 8), 12);
  assert.equal(reducedChannels(4, 8), 1);
  assert.equal(seParamCount(64), 64 * 8 + 8 + 8 * 64 + 64);
  assert.equal(seParamCount(1024, 8), 263_296);
  assert.equal(seParamCount(64, 8, false), 2 * 64 * 8);
  const x = tfl.input({ shape: [5, 5, 100] });
  const y = seBlock(x, { name: 'se' });
  const model = tfl.model({ inputs: x, outputs: y });
  assert.equal(model.countParams(), seParamCount(100, 8));
  assert.deepEqual(model.getLayer('se').weights.map((w) => w.shape), [[100, 12], [12], [12, 100], [100]]);
});

test('seBlock reads C from the tensor, so it follows a depthwise convolution', () => {
  const x = tfl.input({ shape: [6, 6, 12] });
  const dw = tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same' }).apply(x) as tfl.SymbolicTensor;
  const y = seBlock(dw, { ratio: 4 });
  assert.deepEqual(y.shape, [null, 6, 6, 24]);
  assert.equal(tfl.model({ inputs: x, outputs: y }).countParams(), 3 * 3 * 12 * 2 + 24 + seParamCount(24, 4));
});

test('bad options and inputs give clear errors', () => {
  assert.throws(() => new SqueezeExcitation({ ratio: 0 }), /ratio must be a positive number/);
  assert.throws(() => new SqueezeExcitation({ gate: 'softmax' as never }), /gate must be one of sigmoid, hardSigmoid, tanh, relu/);
  assert.throws(() => new SqueezeExcitation({ squeeze: 'median' as never }), /squeeze must be one of avg, max/);
  assert.throws(() => seBlock(tfl.input({ shape: [10] })), /expects an NHWC tensor/);
});

test('save/load round trip of a model with SE blocks: same config, weights and outputs', async () => {
  const seOptions = { ratio: 4, squeeze: 'max', gate: 'hardSigmoid', activation: 'relu6' } as const;
  const model = plain10({ attention: se(seOptions), inputShape: [8, 8, 3] });
  assert.equal(model.name, 'plain10_se');
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    saved = artifacts;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  assert.ok(saved);
  // Through JSON text, as a file would carry it.
  const topology = JSON.parse(JSON.stringify(saved.modelTopology)) as object;
  const loaded = await tfl.loadLayersModel(tf.io.fromMemory({ ...saved, modelTopology: topology }));

  const block = loaded.getLayer('block2_conv3_se');
  assert.ok(block instanceof SqueezeExcitation);
  assert.equal(block.ratio, 4);
  assert.equal(block.squeeze, 'max');
  assert.equal(block.gate, 'hardSigmoid');
  assert.equal(block.activation, 'relu6');
  assert.equal(block.useBias, true);
  assert.equal(loaded.countParams(), model.countParams());

  const x = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 7);
  const a = (model.predict(x) as tf.Tensor).dataSync();
  const b = (loaded.predict(x) as tf.Tensor).dataSync();
  assert.deepEqual(Array.from(b), Array.from(a));
});

test('SE weights train: gradients reach both kernels', () => {
  const x = tfl.input({ shape: [2, 2, 4] });
  const layer = new SqueezeExcitation({ ratio: 2 });
  const model = tfl.model({ inputs: x, outputs: layer.apply(x) as tfl.SymbolicTensor });
  // Known weights keep both bottleneck units active (z = [3, 0.5]), so every weight has a gradient.
  layer.setWeights([tf.tensor2d(W1), tf.tensor1d(B1), tf.tensor2d(W2), tf.tensor1d(B2)]);
  const input = tf.tensor4d([X]);
  const { grads } = tf.variableGrads(() => tf.sum(model.predict(input) as tf.Tensor) as tf.Scalar,
    layer.trainableWeights.map((w) => w.read() as tf.Variable));
  const names = Object.keys(grads);
  assert.equal(names.length, 4);
  for (const n of names) assert.ok(tf.sum(tf.abs(grads[n]!)).dataSync()[0]! > 0, `no gradient for ${n}`);
});

for (const useBias of [true, false]) {
  test(`SE gradient in one kernel on onednn equals tfjs' op-by-op gradient bit for bit (useBias ${useBias})`, { skip: registerOneDnnBackend() ? false : 'the onednn addon is not built' }, async () => {
    tf.setBackend('onednn');
    // 5×7 positions: 1/35 is not exact in float32, so the average pool's share is rounded as the backend's Mean gradient rounds it.
    const shape = [3, 5, 7, 24];
    const layer = new SqueezeExcitation({ ratio: 8, useBias });
    layer.build(shape);
    const size = tf.util.sizeFromShape(shape);
    const x = tf.tensor(Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.37) * 3), shape);
    const upstream = tf.tensor(Float32Array.from({ length: size }, (_, i) => Math.cos(i * 0.11)), shape);
    const weights = layer.trainableWeights.map((v) => v.read() as tf.Variable);
    // training: true takes the fused gradient; training: false is tfjs' tape through every op.
    const gradients = (training: boolean) => {
      const f = (xs: tf.Tensor) => tf.sum(tf.mul(layer.apply(xs, { training }) as tf.Tensor, upstream));
      const dx = tf.grad(f)(x);
      const { grads } = tf.variableGrads(() => f(x) as tf.Scalar, weights);
      return [dx, ...weights.map((v) => grads[v.name]!)].map((t) => t.dataSync());
    };
    const fused = gradients(true);
    const tape = gradients(false);
    assert.equal(fused.length, useBias ? 5 : 3);
    fused.forEach((g, k) => assert.deepEqual(g, tape[k], `gradient ${k}`));
    // The loss's Sum spreads its gradient with one Tile; the tape spreads the average pool's with a second.
    const kernelsOf = async (training: boolean) =>
      (await tf.profile(() => tf.grad((xs: tf.Tensor) => tf.sum(layer.apply(xs, { training }) as tf.Tensor))(x))).kernels.map((k) => k.name);
    const [fusedKernels, tapeKernels] = [await kernelsOf(true), await kernelsOf(false)];
    const tiles = (names: string[]) => names.filter((k) => k === 'Tile').length;
    assert.ok(fusedKernels.includes('SelabGateInputGrad') && tiles(fusedKernels) === 1, fusedKernels.join(', '));
    assert.ok(!tapeKernels.includes('SelabGateInputGrad') && tiles(tapeKernels) === 2, tapeKernels.join(', '));
    tf.setBackend('cpu');
  });
}

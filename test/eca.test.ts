import { test } from 'node:test';
import assert from 'node:assert/strict';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { EfficientChannelAttention, ecaBlock, ecaKernelSize, ecaParamCount } from '../src/attention/efficient-channel-attention.js';
import { macsPerImage } from '../src/models/summary.js';

await tf.setBackend('cpu');

// 1×2×2×4 input; per-channel mean over H×W = [(1+3+0+4)/4, (2+2+0+0)/4, (3+1+0+4)/4, (4+0+0+0)/4]
// = [2, 1, 2, 1].
const X = [
  [[1, 2, 3, 4], [3, 2, 1, 0]],
  [[0, 0, 0, 0], [4, 0, 4, 0]],
];
// k = 3, deliberately asymmetric so a flipped kernel (convolution instead of cross-correlation)
// or an off-by-one shift would fail.
const W = [1, -1, 0.5];

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

function ecaWithKnownKernel(kernel: number[] = W): EfficientChannelAttention {
  const layer = new EfficientChannelAttention({ kernelSize: kernel.length });
  layer.build([null, 2, 2, 4]);
  layer.setWeights([tf.tensor3d(kernel.map((v) => [[v]]))]);
  return layer;
}

test('adaptive kernel size follows t = int(|(log2 C + b) / gamma|), k = t if odd else t + 1', () => {
  // gamma = 2, b = 1:
  //   C = 16:   log2 = 4,  (4 + 1) / 2 = 2.5 -> t = 2 (even) -> k = 3
  //   C = 64:   log2 = 6,  (6 + 1) / 2 = 3.5 -> t = 3 (odd)  -> k = 3
  //   C = 256:  log2 = 8,  (8 + 1) / 2 = 4.5 -> t = 4 (even) -> k = 5
  //   C = 512:  log2 = 9,  (9 + 1) / 2 = 5   -> t = 5 (odd)  -> k = 5
  //   C = 2048: log2 = 11, (11 + 1) / 2 = 6  -> t = 6 (even) -> k = 7
  // (ResNet-50's stages, C = 256, 512, 1024, 2048, get 5, 5, 5, 7.)
  assert.equal(ecaKernelSize(16), 3);
  assert.equal(ecaKernelSize(64), 3);
  assert.equal(ecaKernelSize(256), 5);
  assert.equal(ecaKernelSize(512), 5);
  assert.equal(ecaKernelSize(2048), 7);
  //   C = 1024: (10 + 1) / 2 = 5.5 -> 5;  C = 1: (0 + 1) / 2 = 0.5 -> t = 0 -> k = 1;
  //   C = 3: (1.585 + 1) / 2 = 1.29 -> 1.
  assert.equal(ecaKernelSize(1024), 5);
  assert.equal(ecaKernelSize(1), 1);
  assert.equal(ecaKernelSize(3), 1);
  // Other gamma / b: C = 16, gamma = 1, b = 0: 4 -> 5;  C = 64, gamma = 1, b = 2: 8 -> 9;
  // C = 2, gamma = 2, b = -5: |(1 - 5) / 2| = 2 -> 3 (the absolute value of the formula).
  assert.equal(ecaKernelSize(16, 1, 0), 5);
  assert.equal(ecaKernelSize(64, 1, 2), 9);
  assert.equal(ecaKernelSize(2, 2, -5), 3);
});

test('forward pass on a fixed input matches the hand computation', () => {
  // pooled s = [2, 1, 2, 1], zero-padded to [0, 2, 1, 2, 1, 0];
  // y[c] = W[0]·s[c-1] + W[1]·s[c] + W[2]·s[c+1] with W = [1, -1, 0.5]:
  //   y0 = 1·0 - 1·2 + 0.5·1 = -1.5
  //   y1 = 1·2 - 1·1 + 0.5·2 =  2
  //   y2 = 1·1 - 1·2 + 0.5·1 = -0.5
  //   y3 = 1·2 - 1·1 + 0.5·0 =  1
  // out[h, w, c] = X[h, w, c] · sigmoid(y[c]).
  const gate = [-1.5, 2, -0.5, 1].map(sigmoid);
  const out = (ecaWithKnownKernel().apply(tf.tensor4d([X])) as tf.Tensor).arraySync() as number[][][][];
  assert.deepEqual([out.length, out[0]!.length, out[0]![0]!.length, out[0]![0]![0]!.length], [1, 2, 2, 4]);
  for (let h = 0; h < 2; h++) {
    for (let w = 0; w < 2; w++) {
      for (let c = 0; c < 4; c++) {
        const expected = X[h]![w]![c]! * gate[c]!;
        const actual = out[0]![h]![w]![c]!;
        assert.ok(Math.abs(actual - expected) < 1e-6, `[${h},${w},${c}]: ${actual} vs ${expected}`);
      }
    }
  }
});

test('images in a batch do not mix, and k = 1 is a per-channel gate sigmoid(w·s)', () => {
  const layer = ecaWithKnownKernel();
  const x2 = X.map((row) => row.map((px) => [...px].reverse()));
  const both = (layer.apply(tf.tensor4d([X, x2])) as tf.Tensor).arraySync() as number[][][][];
  const first = (layer.apply(tf.tensor4d([X])) as tf.Tensor).arraySync() as number[][][][];
  const second = (layer.apply(tf.tensor4d([x2])) as tf.Tensor).arraySync() as number[][][][];
  assert.deepEqual(both, [first[0], second[0]]);

  // k = 1, w = 2: gate = sigmoid(2·[2, 1, 2, 1]).
  const out = (ecaWithKnownKernel([2]).apply(tf.tensor4d([X])) as tf.Tensor).arraySync() as number[][][][];
  const gate = [4, 2, 4, 2].map(sigmoid);
  for (let c = 0; c < 4; c++) assert.ok(Math.abs(out[0]![1]![1]![c]! - X[1]![1]![c]! * gate[c]!) < 1e-6);
});

test('gradients w.r.t. the kernel and the input match central finite differences', () => {
  const layer = ecaWithKnownKernel();
  const input = tf.tensor4d([X]);
  // A fixed, non-uniform readout so every output element has its own weight in the loss.
  const R = tf.tensor4d([[[[0.3, -0.7, 1.1, 0.2], [-0.4, 0.9, 0.5, -1.2]], [[0.8, 0.1, -0.6, 0.7], [1.3, -0.2, 0.4, 0.6]]]]);
  const loss = (x: tf.Tensor) => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, R)) as tf.Scalar;

  const kernelVar = layer.trainableWeights[0]!.read() as tf.Variable;
  const { grads } = tf.variableGrads(() => loss(input), [kernelVar]);
  const analytic = Array.from(grads[kernelVar.name]!.dataSync());
  assert.equal(analytic.length, 3);

  const eps = 1e-2;
  for (let j = 0; j < 3; j++) {
    const at = (d: number) => {
      const w = [...W];
      w[j]! += d;
      layer.setWeights([tf.tensor3d(w.map((v) => [[v]]))]);
      return loss(input).dataSync()[0]!;
    };
    const fd = (at(eps) - at(-eps)) / (2 * eps);
    assert.ok(Math.abs(analytic[j]! - fd) < 1e-3, `kernel[${j}]: analytic ${analytic[j]} vs finite difference ${fd}`);
    assert.ok(Math.abs(analytic[j]!) > 1e-3, `kernel[${j}]: gradient should not vanish here`);
  }
  layer.setWeights([tf.tensor3d(W.map((v) => [[v]]))]);

  const dx = tf.grad(loss)(input).arraySync() as number[][][][];
  const x0 = X.map((row) => row.map((px) => [...px]));
  for (const [h, w, c] of [[0, 0, 0], [0, 1, 3], [1, 0, 2], [1, 1, 1]] as const) {
    const at = (d: number) => {
      const x = x0.map((row) => row.map((px) => [...px]));
      x[h]![w]![c]! += d;
      return loss(tf.tensor4d([x])).dataSync()[0]!;
    };
    const fd = (at(eps) - at(-eps)) / (2 * eps);
    const g = dx[0]![h]![w]![c]!;
    assert.ok(Math.abs(g - fd) < 1e-3, `input[${h},${w},${c}]: analytic ${g} vs finite difference ${fd}`);
  }
});

test('a model with an ECA block trains: loss falls and the kernel moves', async () => {
  const x = tfl.input({ shape: [2, 2, 4] });
  const model = tfl.model({ inputs: x, outputs: ecaBlock(x, { kernelSize: 3, name: 'eca' }) });
  model.getLayer('eca').setWeights([tf.tensor3d(W.map((v) => [[v]]))]);
  model.compile({ optimizer: tf.train.sgd(0.5), loss: 'meanSquaredError' });
  const input = tf.tensor4d([X]);
  const target = tf.mul(input, tf.tensor4d([[[[0.9, 0.1, 0.9, 0.1]]]]));
  const before = Array.from(model.getLayer('eca').getWeights()[0]!.dataSync());
  const firstLoss = (model.evaluate(input, target) as tf.Scalar).dataSync()[0]!;
  for (let i = 0; i < 20; i++) await model.trainOnBatch(input, target);
  const lastLoss = (model.evaluate(input, target) as tf.Scalar).dataSync()[0]!;
  const after = Array.from(model.getLayer('eca').getWeights()[0]!.dataSync());
  assert.ok(lastLoss < firstLoss * 0.9, `loss ${firstLoss} -> ${lastLoss}`);
  assert.notDeepEqual(after, before);
});

test('parameters: one kernel [k, 1, 1], count = ecaParamCount = k; MACs = C·k', () => {
  for (const [channels, k] of [[16, 3], [64, 3], [256, 5], [2048, 7]] as const) {
    const x = tfl.input({ shape: [1, 1, channels] });
    const model = tfl.model({ inputs: x, outputs: ecaBlock(x, { name: 'eca' }) });
    const layer = model.getLayer('eca');
    assert.equal(model.countParams(), k);
    assert.equal(ecaParamCount(channels), k);
    assert.equal(layer.countParams(), ecaParamCount(channels));
    assert.deepEqual(layer.weights.map((w) => w.shape), [[k, 1, 1]]);
    assert.match(layer.weights[0]!.originalName, /eca\/conv\/kernel$/);
    assert.equal(macsPerImage(model), channels * k);
  }
  assert.equal(ecaParamCount(64, { kernelSize: 9 }), 9);
  assert.equal(ecaParamCount(16, { gamma: 1, beta: 0 }), 5);

  // 1×1 conv 8 -> 16 on 4×4: 4·4·16·8 = 2048 MACs, then ECA on 16 channels (k = 3): 48.
  const x = tfl.input({ shape: [4, 4, 8] });
  const conv = tfl.layers.conv2d({ filters: 16, kernelSize: 1 }).apply(x) as tfl.SymbolicTensor;
  assert.equal(macsPerImage(tfl.model({ inputs: x, outputs: ecaBlock(conv) })), 2048 + 48);
  assert.equal(macsPerImage(tfl.model({ inputs: x, outputs: ecaBlock(conv, { kernelSize: 5 }) })), 2048 + 80);
});

test('kernel initialiser is Keras Conv1D\'s glorotUniform: limit sqrt(6 / (k + k))', () => {
  // fan_in = fan_out = k for a [k, 1, 1] kernel, so |w| <= sqrt(3 / k); with 301 draws the
  // largest is within 20% of the limit (a [k]-shaped kernel would use sqrt(k) fans, limit 0.42).
  const k = 301;
  const layer = new EfficientChannelAttention({ kernelSize: k });
  layer.build([null, 1, 1, 8]);
  const w = Array.from(layer.getWeights()[0]!.dataSync()).map(Math.abs);
  const limit = Math.sqrt(3 / k);
  const max = Math.max(...w);
  assert.ok(max <= limit + 1e-7 && max > 0.8 * limit, `max |w| ${max}, limit ${limit}`);
});

test('save/load round trip through memory handlers: same config, weights and predictions', async () => {
  const x = tfl.input({ shape: [4, 4, 8] });
  let y = tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv1' }).apply(x) as tfl.SymbolicTensor;
  y = ecaBlock(y, { name: 'eca_adaptive' }); // C = 8: (3 + 1) / 2 = 2 -> k = 3
  y = tfl.layers.conv2d({ filters: 16, kernelSize: 1, name: 'conv2' }).apply(y) as tfl.SymbolicTensor;
  y = ecaBlock(y, { kernelSize: 5, name: 'eca_fixed' });
  y = ecaBlock(y, { gamma: 1, beta: 2, name: 'eca_custom' }); // C = 16: (4 + 2) / 1 = 6 -> k = 7
  y = tfl.layers.globalAveragePooling2d({}).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.dense({ units: 3, name: 'head' }).apply(y) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: x, outputs: y });

  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    saved = artifacts;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  assert.ok(saved);
  // Through JSON text, as a file would carry it.
  const topology = JSON.parse(JSON.stringify(saved.modelTopology)) as object;
  const loaded = await tfl.loadLayersModel(tf.io.fromMemory({ ...saved, modelTopology: topology }));

  const expected = {
    eca_adaptive: { kernelSize: null, gamma: 2, beta: 1, k: 3 },
    eca_fixed: { kernelSize: 5, gamma: 2, beta: 1, k: 5 },
    eca_custom: { kernelSize: null, gamma: 1, beta: 2, k: 7 },
  };
  for (const [name, e] of Object.entries(expected)) {
    const a = model.getLayer(name);
    const b = loaded.getLayer(name);
    assert.ok(b instanceof EfficientChannelAttention, `${name} loads as EfficientChannelAttention`);
    assert.deepEqual(b.getConfig(), a.getConfig());
    assert.equal(b.kernelSize, e.kernelSize);
    assert.equal(b.gamma, e.gamma);
    assert.equal(b.beta, e.beta);
    assert.deepEqual(b.weights.map((w) => w.shape), [[e.k, 1, 1]]);
    assert.deepEqual(Array.from(b.getWeights()[0]!.dataSync()), Array.from(a.getWeights()[0]!.dataSync()));
  }
  assert.deepEqual(loaded.toJSON(null, false), model.toJSON(null, false));
  assert.equal(loaded.countParams(), model.countParams());

  const input = tf.randomUniform([2, 4, 4, 8], 0, 1, 'float32', 7);
  const a = (model.predict(input) as tf.Tensor).dataSync();
  const b = (loaded.predict(input) as tf.Tensor).dataSync();
  assert.deepEqual(Array.from(b), Array.from(a));
});

test('bad options and inputs give clear errors', () => {
  for (const kernelSize of [4, 0, -3, 2.5, Number.NaN]) {
    assert.throws(() => new EfficientChannelAttention({ kernelSize }), /EfficientChannelAttention: kernelSize must be a positive odd integer/);
  }
  assert.throws(() => new EfficientChannelAttention({ kernelSize: '3' as never }), /kernelSize must be a positive odd integer/);
  assert.throws(() => new EfficientChannelAttention({ gamma: 0 }), /EfficientChannelAttention: gamma must be a positive number, got 0/);
  assert.throws(() => new EfficientChannelAttention({ gamma: -2 }), /gamma must be a positive number/);
  assert.throws(() => new EfficientChannelAttention({ gamma: Number.NaN }), /gamma must be a positive number/);
  assert.throws(() => new EfficientChannelAttention({ beta: Number.POSITIVE_INFINITY }), /beta must be a finite number/);
  assert.throws(() => ecaKernelSize(0), /ecaKernelSize: channels must be a positive integer, got 0/);
  assert.throws(() => ecaKernelSize(12.5), /channels must be a positive integer/);
  assert.throws(() => ecaKernelSize(16, 0), /ecaKernelSize: gamma must be a positive number/);
  assert.throws(() => ecaParamCount(16, { kernelSize: 2 }), /ecaParamCount: kernelSize must be a positive odd integer/);
  assert.throws(() => ecaParamCount(-1), /ecaParamCount: channels must be a positive integer/);
  assert.throws(() => ecaBlock(tfl.input({ shape: [10] })), /ecaBlock: expects an NHWC tensor/);
  assert.throws(() => new EfficientChannelAttention({}).build([null, 10]), /expects an NHWC input/);
});

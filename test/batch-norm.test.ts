// selab's BatchNorm (src/models/batch-norm.ts): in training mode on onednn one kernel forward
// and one backward, with the values, gradients and moving statistics of tfjs-layers'
// BatchNormalization on cpu; serialised as that layer; unchanged in inference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { registerOneDnnBackend } from '../src/backend/onednn/backend.js';
import { BatchNorm } from '../src/models/batch-norm.js';
import { relativeError } from './relative-error.js';

const available = registerOneDnnBackend();
const skip = available ? false : 'the onednn addon is not built';

function random(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((hi - lo) * s) / 2 ** 32;
  }
  return out;
}

const SHAPE = [3, 5, 7, 6];
const ARGS = { momentum: 0.9, epsilon: 1e-3 };

/**
 * y = BN(x)·w summed, so that dy differs per element; returns y, the gradients for x, gamma and
 * beta, and the moving statistics after the step, with gamma and beta set to non-trivial values.
 */
function step(backend: string, layer: tfl.layers.Layer, training: boolean) {
  tf.setBackend(backend);
  const x = tf.tensor(random(tf.util.sizeFromShape(SHAPE), 1, -2, 3), SHAPE);
  const w = tf.tensor(random(tf.util.sizeFromShape(SHAPE), 2), SHAPE);
  layer.build(SHAPE);
  layer.setWeights([tf.tensor(random(6, 3, 0.5, 1.5)), tf.tensor(random(6, 4)), tf.tensor(random(6, 5)), tf.tensor(random(6, 6, 0.5, 2))]);
  const [gamma, beta] = layer.trainableWeights.map((v) => v.read() as tf.Variable);
  const kernels = new Set<string>();
  const f = (xs: tf.Tensor) => tf.sum(tf.mul(layer.apply(xs, { training }) as tf.Tensor, w));
  const y = (layer.apply(x, { training: false }) as tf.Tensor).dataSync().slice();
  const { value, grads } = tf.variableGrads(() => f(x) as tf.Scalar, [gamma!, beta!]);
  const dx = tf.grad(f)(x);
  return { y, loss: value.dataSync()[0]!, dGamma: grads[gamma!.name]!.dataSync().slice(), dBeta: grads[beta!.name]!.dataSync().slice(), dx: dx.dataSync().slice(), moving: layer.getWeights().slice(2).map((t) => t.dataSync().slice()), kernels };
}

test('training on onednn: values, gradients and moving statistics of tfjs-layers BatchNormalization on cpu', { skip }, async () => {
  const want = step('cpu', tfl.layers.batchNormalization(ARGS), true);
  const got = step('onednn', new BatchNorm(ARGS), true);
  assert.ok(Math.abs(got.loss - want.loss) <= 1e-5 * Math.abs(want.loss), `loss ${got.loss} vs ${want.loss}`);
  for (const key of ['dGamma', 'dBeta', 'dx'] as const) {
    const err = relativeError(got[key], want[key]);
    assert.ok(err <= 1e-5, `${key}: relative error ${err}`);
  }
  // Two training-mode applications (variableGrads, then grad): the moving averages moved twice.
  got.moving.forEach((m, k) => assert.ok(relativeError(m, want.moving[k]!) <= 1e-6, `moving statistic ${k}`));
  tf.setBackend('onednn');
  const layer = new BatchNorm(ARGS);
  const x = tf.tensor(random(tf.util.sizeFromShape(SHAPE), 1), SHAPE);
  const { kernelNames } = await tf.profile(() => tf.grad((xs: tf.Tensor) => tf.sum(layer.apply(xs, { training: true }) as tf.Tensor))(x));
  assert.ok(kernelNames.includes('SelabBatchNormTrain') && kernelNames.includes('SelabBatchNormTrainGrad'), kernelNames.join(', '));
  // No tf.moments (Mean, Square) and no kernel-by-kernel gradient of it (SquaredDifference's, Mean's).
  assert.ok(!['Mean', 'Square', 'SquaredDifference', 'SelabEltwiseGrad'].some((k) => kernelNames.includes(k)), kernelNames.join(', '));
  // The moving averages in one kernel, not tfjs-layers' Sub, Multiply, Sub for each.
  assert.ok(kernelNames.includes('SelabMovingAverages') && !kernelNames.includes('Sub'), kernelNames.join(', '));
});

test('the moving-average kernel on onednn equals tfjs-layers arithmetic on cpu bit for bit', { skip }, () => {
  const n = 1000;
  // Moving statistics and batch statistics of every magnitude, so that a fused multiply-add or
  // another order of the float32 operations would show in the last bits.
  const inputs = [random(n, 7, -1e3, 1e3), random(n, 8, 1e-6, 50), random(n, 9, -1e3, 1e3), random(n, 10, 1e-6, 50)];
  for (const momentum of [0.99, 0.9, 0.1]) {
    const decay = 1 - momentum;
    tf.setBackend('cpu');
    const want = [0, 1].map((k) => {
      const orig = tf.tensor(inputs[k]!);
      return tf.sub(orig, tf.mul(tf.sub(orig, tf.tensor(inputs[k + 2]!)), decay)).dataSync();
    });
    tf.setBackend('onednn');
    const [movingMean, movingVariance, mean, variance] = inputs.map((v) => tf.tensor(v));
    const got = tf.engine().runKernel('SelabMovingAverages', { movingMean: movingMean!, movingVariance: movingVariance!, mean: mean!, variance: variance! }, { decay }) as tf.Tensor[];
    assert.deepEqual(got.map((t) => t.dataSync()), want, `momentum ${momentum}`);
  }
});

test('inference and the cpu backend: tfjs-layers BatchNormalization unchanged', () => {
  const want = step('cpu', tfl.layers.batchNormalization(ARGS), false);
  const got = step('cpu', new BatchNorm(ARGS), false);
  assert.deepEqual(got.y, want.y);
  assert.deepEqual(got.dx, want.dx);
  const wantTrain = step('cpu', tfl.layers.batchNormalization(ARGS), true);
  const gotTrain = step('cpu', new BatchNorm(ARGS), true);
  assert.deepEqual(gotTrain.dx, wantTrain.dx);
  assert.deepEqual(gotTrain.moving, wantTrain.moving);
});

test('a memory-flat training step, and a model that saves as Keras BatchNormalization', async () => {
  tf.setBackend(available ? 'onednn' : 'cpu');
  const input = tfl.input({ shape: [4, 4, 3] });
  const model = tfl.model({ inputs: input, outputs: new BatchNorm({ name: 'bn' }).apply(input) as tfl.SymbolicTensor });
  const x = tf.tensor(random(2 * 4 * 4 * 3, 9), [2, 4, 4, 3]);
  const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
  const stepOnce = () => {
    const { value, grads } = tf.variableGrads(() => tf.sum(model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
    tf.dispose([value, ...Object.values(grads)]);
  };
  stepOnce();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) stepOnce();
  assert.equal(tf.memory().numTensors, before);
  const json = model.toJSON(null, false) as { config: { layers: { class_name: string }[] } };
  assert.equal(json.config.layers[1]!.class_name, 'BatchNormalization');
  const loaded = await tfl.models.modelFromJSON({ modelTopology: model.toJSON(null, false) as tf.io.ModelJSON['modelTopology'] });
  assert.ok(!(loaded.getLayer('bn') instanceof BatchNorm), 'loading needs no selab class');
});

test('training statistics on onednn keep two-pass accuracy where the mean is far from zero and the first row is an outlier', { skip }, async () => {
  const { BATCH_NORM_TRAIN } = await import('../src/ops/kernel-names.js');
  // 1M elements or more: above the addon's threshold for using every thread, so the threads' partial
  // statistics are merged too. A single-pass sum of squares shifted by the first row loses
  // about 3 of float32's 7 digits of the variance here (checked: relative error 2e-3). 123
  // channels = blocks of 64, 32, 16 and 8 channels and three single ones, over rows that leave
  // each thread a partial last tile.
  for (const [rows, C] of [[131072, 8], [8531, 123]] as const) {
    const x = random(rows * C, 7, 999.5, 1000.5);
    for (let c = 0; c < C; c++) x[c] = 1100 + c;
    const want = { mean: new Float64Array(C), variance: new Float64Array(C) };
    for (let i = 0; i < x.length; i++) want.mean[i % C]! += x[i]! / rows;
    for (let i = 0; i < x.length; i++) want.variance[i % C]! += (x[i]! - want.mean[i % C]!) ** 2 / rows;
    tf.setBackend('onednn');
    const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAIN, { x: tf.tensor(x, [1, rows, 1, C]) }, { varianceEpsilon: 1e-3 }) as tf.Tensor[];
    assert.ok(relativeError(mean!.dataSync(), want.mean) <= 1e-6, `${C} channels, mean: relative error ${relativeError(mean!.dataSync(), want.mean)}`);
    assert.ok(relativeError(variance!.dataSync(), want.variance) <= 1e-5, `${C} channels, variance: relative error ${relativeError(variance!.dataSync(), want.variance)}`);
    tf.dispose([y!, mean!, variance!]);
  }
});

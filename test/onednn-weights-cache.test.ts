// The reordered convolution weights the onednn backend keeps between inference calls
// (native/src/conv.cc, HeldWeights): results equal the cpu backend's, a changed weight or folded
// BatchNorm is never served stale, and released weights are dropped.
//
// Error metric: max|onednn − cpu| / max(1, max|cpu|), at most 1e-4 (test/relative-error.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { addonLoadError, loadAddon } from '../src/backend/onednn/addon.js';
import { ONEDNN_BACKEND, registerOneDnnBackend } from '../src/backend/onednn/backend.js';
import '../src/backend/onednn/kernels/conv-op.js';
import { BatchNorm } from '../src/models/batch-norm.js';
import { mulberry32 } from '../src/util/random.js';
import { relativeError } from './relative-error.js';

const TOLERANCE = 1e-4;
const available = registerOneDnnBackend();
const skip = available ? false : `the onednn addon is not built (${addonLoadError()?.message.split('\n')[0]}); build it with \`node native/build.mjs\``;

const next = mulberry32(99);
function random(n: number, lo = -0.5, hi = 0.5): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * next());
}

/** Three convolutions large enough for a blocked weight layout, the last two of one geometry; BatchNorm folded into the first. */
function build(): tfl.LayersModel {
  const input = tfl.input({ shape: [8, 8, 32] });
  let x = tfl.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same', useBias: false, name: 'c1' }).apply(input) as tfl.SymbolicTensor;
  x = new BatchNorm({ name: 'c1_bn' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 64, kernelSize: 1, activation: 'relu', name: 'c2' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 64, kernelSize: 1, name: 'c3' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor });
}

/** Random values for each weight of `layer` (a moving variance positive). */
function randomValues(layer: tfl.LayersModel | tfl.layers.Layer, varianceMax = 2): Float32Array[] {
  return layer.weights.map((w) => {
    const n = tf.util.sizeFromShape(w.shape as number[]);
    return /moving_variance/.test(w.name) ? random(n, 0.5, varianceMax) : random(n);
  });
}

describe('onednn: convolution weights kept between inference calls', { skip }, () => {
  // Two copies of one model, each staying on its backend: moving a tensor between backends
  // releases its storage, which would drop the kept weights and hide a stale one.
  const models = { [ONEDNN_BACKEND]: build(), cpu: build() };
  const data = random(4 * 8 * 8 * 32, -1, 1);
  const predict = async (backend: keyof typeof models) => {
    await tf.setBackend(backend);
    return tf.tidy(() => (models[backend].predict(tf.tensor(data, [4, 8, 8, 32])) as tf.Tensor).dataSync().slice() as Float32Array);
  };
  /** The same values into both copies (of one layer, or of the whole model). */
  const assign = async (values: Float32Array[], layer?: string) => {
    for (const backend of [ONEDNN_BACKEND, 'cpu'] as const) {
      await tf.setBackend(backend);
      const target = layer ? models[backend].getLayer(layer) : models[backend];
      const tensors = values.map((v, i) => tf.tensor(v, target.weights[i]!.shape as number[]));
      target.setWeights(tensors);
      tf.dispose(tensors);
    }
  };
  const agree = async (what: string) => {
    const expected = await predict('cpu');
    const actual = await predict(ONEDNN_BACKEND);
    assert.ok(relativeError(actual, expected, 1) <= TOLERANCE, `${what}: error ${relativeError(actual, expected, 1)}`);
  };
  const held = () => loadAddon()!.heldWeights();

  it('equal cpu on every call, and follow every change of a weight or of a folded BatchNorm', async () => {
    const model = models[ONEDNN_BACKEND];
    await assign(randomValues(model));
    const before = held();
    for (let i = 0; i < 3; i++) await agree(`call ${i}`);
    assert.equal(held() - before, 3, 'one kept copy per convolution');
    // A new kernel for c3 only: c1 and c2 keep theirs, c3's old copy is dropped with its tensor.
    await assign(randomValues(model.getLayer('c3')), 'c3');
    await agree('after a new c3 kernel');
    assert.equal(held() - before, 3);
    // New moving statistics of c1's BatchNorm change the folded weights of an unchanged kernel.
    await assign(randomValues(model.getLayer('c1_bn'), 4), 'c1_bn');
    await agree('after new BatchNorm statistics');
  });

  it('keeps nothing while a gradient tape records, and drops what it kept when the weights are released', async () => {
    const model = models[ONEDNN_BACKEND];
    await tf.setBackend(ONEDNN_BACKEND);
    const start = held();
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const grads = tf.variableGrads(() => tf.sum(model.apply(tf.tensor(data, [4, 8, 8, 32]), { training: true }) as tf.Tensor), vars);
    tf.dispose([grads.value, ...Object.values(grads.grads)]);
    assert.equal(held(), start, 'a training pass kept weights');
    await assign(randomValues(model));
    assert.equal(held(), start - 3, 'the released weights were not dropped');
    await predict(ONEDNN_BACKEND);
    assert.equal(held(), start);
  });
});

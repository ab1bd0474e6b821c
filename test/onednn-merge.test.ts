// The layer merges of src/backend/onednn/layers.ts against the stock layers on the cpu backend:
// Conv → BatchNorm → ReLU/ReLU6 folded into one convolution for inference, ZeroPadding2D taken
// over by the next convolution (inference and training), and no merge where a merged-away result
// is needed (another consumer, a model output, a layer shared with another model).
//
// Error metric: max|onednn − cpu| / max(1, max|cpu|), at most 1e-4 (test/relative-error.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { addonLoadError } from '../src/backend/onednn/addon.js';
import { ONEDNN_BACKEND, registerOneDnnBackend } from '../src/backend/onednn/backend.js';
import { BatchNorm } from '../src/models/batch-norm.js';
import { ReLU6 } from '../src/models/relu6.js';
import { SqueezeExcitation } from '../src/attention/squeeze-excitation.js';
import { profileKernels } from '../src/bench/profile.js';
import { relativeError } from './relative-error.js';

const TOLERANCE = 1e-4;
const available = registerOneDnnBackend();
const skip = available ? false : `the onednn addon is not built (${addonLoadError()?.message.split('\n')[0]}); build it with \`node native/build.mjs\``;

let seed = 4242;
function random(n: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    out[i] = lo + (hi - lo) * (seed / 2 ** 32);
  }
  return out;
}

/** conv(bias) → BN → ReLU → pad (0,1) → depthwise stride 2 → BN → ReLU6 → conv 1x1 → BN → GAP → dense. */
function build(): tfl.LayersModel {
  const input = tfl.input({ shape: [9, 9, 3] });
  let x = tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', name: 'c1' }).apply(input) as tfl.SymbolicTensor;
  x = new BatchNorm({ name: 'c1_bn' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ name: 'c1_relu' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]], name: 'pad' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'valid', useBias: false, name: 'dw' }).apply(x) as tfl.SymbolicTensor;
  x = new BatchNorm({ axis: -1, epsilon: 1e-3, name: 'dw_bn' }).apply(x) as tfl.SymbolicTensor;
  x = new ReLU6({ name: 'dw_relu' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 12, kernelSize: 1, useBias: false, name: 'pw' }).apply(x) as tfl.SymbolicTensor;
  x = new BatchNorm({ name: 'pw_bn' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 5, name: 'dense' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

/** Random weights everywhere, BatchNorm statistics included (the moving variance positive). */
function randomize(model: tfl.LayersModel): void {
  for (const w of model.weights) {
    const shape = w.shape as number[];
    const n = tf.util.sizeFromShape(shape);
    const values = /moving_variance/.test(w.name) ? random(n, 0.5, 2) : /gamma/.test(w.name) ? random(n, 0.5, 1.5) : random(n, -0.5, 0.5);
    w.write(tf.tensor(values, shape));
  }
}

const X = random(4 * 9 * 9 * 3, -1, 1);
const xs = () => tf.tensor(X, [4, 9, 9, 3]);

async function on<T>(backend: string, fn: () => T): Promise<T> {
  await tf.setBackend(backend);
  return fn();
}

function predictValues(model: tfl.LayersModel): Float32Array {
  return tf.tidy(() => (model.predict(xs()) as tf.Tensor).dataSync().slice() as Float32Array);
}

describe('onednn layer merges', { skip }, () => {
  const model = build();
  randomize(model);

  it('inference: conv+BN+ReLU, depthwise+BN+ReLU6 and the padding run as three convolutions, as cpu computes them', async () => {
    const expected = await on('cpu', () => predictValues(model));
    await tf.setBackend(ONEDNN_BACKEND);
    let actual: Float32Array | undefined;
    const profile = profileKernels(ONEDNN_BACKEND, () => (actual = predictValues(model)));
    const ran = new Set(profile.kernels.map((k) => k.kernel));
    for (const gone of ['FusedBatchNorm', 'Relu', 'Relu6', 'ClipByValue', 'PadV2']) assert.ok(!ran.has(gone), `${gone} still ran`);
    assert.ok(relativeError(actual!, expected, 1) <= TOLERANCE, `error ${relativeError(actual!, expected, 1)}`);
    // apply() in inference mode and evaluate's path merge the same way.
    const viaApply = tf.tidy(() => (model.apply(xs(), { training: false }) as tf.Tensor).dataSync().slice());
    assert.ok(relativeError(viaApply, expected, 1) <= TOLERANCE);
  });

  it('SELAB_ONEDNN_MERGE=off runs every layer and gives the same result', async () => {
    const merged = await on(ONEDNN_BACKEND, () => predictValues(model));
    process.env['SELAB_ONEDNN_MERGE'] = 'off';
    try {
      let plain: Float32Array | undefined;
      const profile = profileKernels(ONEDNN_BACKEND, () => (plain = predictValues(model)));
      assert.ok(profile.kernels.some((k) => k.kernel === 'FusedBatchNorm'));
      assert.ok(relativeError(plain!, merged, 1) <= TOLERANCE);
    } finally {
      delete process.env['SELAB_ONEDNN_MERGE'];
    }
  });

  it('a model whose output is a merged-away result (layers shared with the full model) computes it', async () => {
    for (const name of ['c1_bn', 'c1_relu', 'pad', 'dw_bn']) {
      const inner = tfl.model({ inputs: model.inputs, outputs: model.getLayer(name).output as tfl.SymbolicTensor });
      const expected = await on('cpu', () => predictValues(inner));
      const actual = await on(ONEDNN_BACKEND, () => predictValues(inner));
      assert.deepEqual(actual.length, expected.length, name);
      assert.ok(relativeError(actual, expected, 1) <= TOLERANCE, `${name}: error ${relativeError(actual, expected, 1)}`);
    }
    // The full model still merges afterwards.
    const expected = await on('cpu', () => predictValues(model));
    assert.ok(relativeError(await on(ONEDNN_BACKEND, () => predictValues(model)), expected, 1) <= TOLERANCE);
  });

  it('inference: SE → BatchNorm → ReLU6 and Add → BatchNorm → ReLU run as one pass each, as cpu computes them', async () => {
    const input = tfl.input({ shape: [6, 6, 16] });
    const c = tfl.layers.conv2d({ filters: 16, kernelSize: 1, useBias: false }).apply(input) as tfl.SymbolicTensor;
    let x = new SqueezeExcitation({ ratio: 4 }).apply(c) as tfl.SymbolicTensor;
    x = new BatchNorm({ epsilon: 1e-3 }).apply(x) as tfl.SymbolicTensor;
    x = new ReLU6().apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.add().apply([x, input]) as tfl.SymbolicTensor;
    x = new BatchNorm().apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
    const out = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
    const m = tfl.model({ inputs: input, outputs: out });
    randomize(m);
    const data = tf.tensor(random(3 * 6 * 6 * 16, -1, 1), [3, 6, 6, 16]);
    const values = () => tf.tidy(() => (m.predict(data) as tf.Tensor).dataSync().slice() as Float32Array);
    const expected = await on('cpu', values);
    await tf.setBackend(ONEDNN_BACKEND);
    let actual: Float32Array | undefined;
    const profile = profileKernels(ONEDNN_BACKEND, () => (actual = values()));
    const calls = (name: string) => profile.kernels.find((k) => k.kernel === name)?.calls ?? 0;
    // The SE block's product takes in its BatchNorm and ReLU6 (inside its Multiply); the other pair is a SelabScaleShift.
    assert.equal(calls('SelabScaleShift'), 1);
    for (const gone of ['FusedBatchNorm', 'Relu6']) assert.equal(calls(gone), 0, `${gone} still ran`);
    assert.equal(calls('Relu'), 1, "only the SE block's own bottleneck ReLU runs");
    assert.ok(relativeError(actual!, expected, 1) <= TOLERANCE, `error ${relativeError(actual!, expected, 1)}`);
    data.dispose();
    m.dispose();
  });

  it('training: the gradients with the padding merged equal cpu', async () => {
    const grads = () =>
      tf.tidy(() => {
        const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
        const { grads: g } = tf.variableGrads(() => tf.sum(tf.square(model.apply(xs(), { training: true }) as tf.Tensor)), vars);
        return vars.map((v) => g[v.name]!.dataSync().slice() as Float32Array);
      });
    // Training mode moves the BatchNorm averages; both backends start from the same weights.
    const saved = model.getWeights().map((w) => tf.keep(w.clone()));
    const expected = await on('cpu', grads);
    model.setWeights(saved);
    await tf.setBackend(ONEDNN_BACKEND);
    let actual: Float32Array[] = [];
    const profile = profileKernels(ONEDNN_BACKEND, () => (actual = grads()));
    model.setWeights(saved);
    tf.dispose(saved);
    assert.ok(!profile.kernels.some((k) => k.kernel === 'PadV2'), 'the padding was not merged in training');
    actual.forEach((a, i) => assert.ok(relativeError(a, expected[i]!, 1) <= 1e-3, `${model.trainableWeights[i]!.name}: error ${relativeError(a, expected[i]!, 1)}`));
  });
});

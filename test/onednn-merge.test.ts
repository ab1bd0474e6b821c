// The layer merges of src/backend/onednn/layers.ts against the stock layers on the cpu backend:
// Conv → BatchNorm → ReLU/ReLU6 folded into one convolution for inference, BatchNorm → ReLU/ReLU6
// as BatchNorm kernels with the activation inside for training, ZeroPadding2D taken over by the
// next convolution (inference and training), and no merge where a merged-away result is needed
// (another consumer, a model output, a layer shared with another model).
//
// Error metric: max|onednn − cpu| / max(1, max|cpu|), at most 1e-4 (test/relative-error.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { addonLoadError } from '../src/backend/onednn/addon.js';
import { ONEDNN_BACKEND, registerOneDnnBackend } from '../src/backend/onednn/backend.js';
import { BatchNorm, withBatchNormGroups } from '../src/models/batch-norm.js';
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

  /** The loss, every trainable weight's gradient and the BatchNorm moving statistics after one training-mode pass. */
  function trainingPass(m: tfl.LayersModel, data: () => tf.Tensor): Float32Array[] {
    return tf.tidy(() => {
      const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads: g } = tf.variableGrads(() => tf.sum(tf.square(m.apply(data(), { training: true }) as tf.Tensor)), vars);
      const moving = m.weights.filter((w) => /moving/.test(w.name)).map((w) => w.read().dataSync().slice() as Float32Array);
      return [value.dataSync().slice() as Float32Array, ...vars.map((v) => g[v.name]!.dataSync().slice() as Float32Array), ...moving];
    });
  }

  /** trainingPass on each backend (or setting) in turn, from the same weights; restores them. */
  async function trainingPasses(m: tfl.LayersModel, data: () => tf.Tensor, runs: (() => Promise<unknown>)[]): Promise<Float32Array[][]> {
    // Training mode moves the BatchNorm averages; every run starts from the same weights.
    const saved = m.getWeights().map((w) => tf.keep(w.clone()));
    const out: Float32Array[][] = [];
    for (const setUp of runs) {
      await setUp();
      out.push(trainingPass(m, data));
      m.setWeights(saved);
    }
    tf.dispose(saved);
    return out;
  }

  const names = (m: tfl.LayersModel) => ['loss', ...m.trainableWeights.map((w) => w.name), ...m.weights.filter((w) => /moving/.test(w.name)).map((w) => w.name)];

  it('training: the padding merged and the activations inside the BatchNorms, loss, gradients and moving statistics equal cpu', async () => {
    const [expected] = await trainingPasses(model, xs, [() => tf.setBackend('cpu')]);
    let actual: Float32Array[] = [];
    await tf.setBackend(ONEDNN_BACKEND);
    const saved = model.getWeights().map((w) => tf.keep(w.clone()));
    const profile = profileKernels(ONEDNN_BACKEND, () => (actual = trainingPass(model, xs)));
    model.setWeights(saved);
    tf.dispose(saved);
    const calls = (name: string) => profile.kernels.find((k) => k.kernel === name)?.calls ?? 0;
    assert.equal(calls('PadV2'), 0, 'the padding was not merged in training');
    for (const gone of ['Relu', 'Relu6']) assert.equal(calls(gone), 0, `${gone} still ran`);
    assert.equal(calls('SelabEltwiseGrad'), 1, "only the loss's square has an elementwise gradient");
    assert.equal(calls('SelabBatchNormTrain'), 3);
    assert.equal(calls('SelabBatchNormTrainGrad'), 3);
    names(model).forEach((name, i) => {
      const err = relativeError(actual[i]!, expected![i]!, 1);
      assert.ok(err <= 1e-3, `${name}: error ${err}`);
    });
  });

  it('training: the merged step equals the unmerged one (SELAB_ONEDNN_MERGE=off) on onednn', async () => {
    const [merged, plain] = await trainingPasses(model, xs, [
      () => tf.setBackend(ONEDNN_BACKEND),
      async () => {
        process.env['SELAB_ONEDNN_MERGE'] = 'off';
      },
    ]);
    delete process.env['SELAB_ONEDNN_MERGE'];
    names(model).forEach((name, i) => {
      const err = relativeError(merged![i]!, plain![i]!, 1);
      assert.ok(err <= 1e-5, `${name}: error ${err}`);
    });
  });

  it('training: a stock tfjs-layers BatchNormalization keeps its ReLU, and BatchNorm groups apply theirs', async () => {
    const input = tfl.input({ shape: [5, 5, 6] });
    let x = tfl.layers.batchNormalization({ name: 'stock_bn' }).apply(input) as tfl.SymbolicTensor;
    x = tfl.layers.reLU({ name: 'stock_relu' }).apply(x) as tfl.SymbolicTensor;
    x = new BatchNorm({ name: 'selab_bn' }).apply(x) as tfl.SymbolicTensor;
    x = new ReLU6({ name: 'selab_relu6' }).apply(x) as tfl.SymbolicTensor;
    const m = tfl.model({ inputs: input, outputs: x });
    randomize(m);
    // A scale of 4 spreads the normalised values past 6, where ReLU6 clips and its gradient stops.
    m.getLayer('selab_bn').weights.find((w) => /gamma/.test(w.name))!.write(tf.fill([6], 4));
    const values = random(4 * 5 * 5 * 6, -8, 8);
    const data = () => tf.tensor(values, [4, 5, 5, 6]);
    const [expected, actual] = await trainingPasses(m, data, [() => tf.setBackend('cpu'), () => tf.setBackend(ONEDNN_BACKEND)]);
    names(m).forEach((name, i) => assert.ok(relativeError(actual![i]!, expected![i]!, 1) <= 1e-4, `${name}: error ${relativeError(actual![i]!, expected![i]!, 1)}`));
    // Groups of 2 images: each group's kernel applies the ReLU6, and the layer applies it again to the joined groups.
    const groups = { size: 2, movingAverages: 'every' } as const;
    const saved = m.getWeights().map((w) => tf.keep(w.clone()));
    const groupedPass = async (backend: string) => {
      await tf.setBackend(backend);
      const out = withBatchNormGroups(groups, () => trainingPass(m, data));
      m.setWeights(saved);
      return out;
    };
    const [cpuGroups, onednnGroups] = [await groupedPass('cpu'), await groupedPass(ONEDNN_BACKEND)];
    tf.dispose(saved);
    names(m).forEach((name, i) => assert.ok(relativeError(onednnGroups[i]!, cpuGroups[i]!, 1) <= 1e-4, `groups, ${name}: error ${relativeError(onednnGroups[i]!, cpuGroups[i]!, 1)}`));
    m.dispose();
  });
});

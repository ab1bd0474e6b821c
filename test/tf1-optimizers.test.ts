// adam-tf1 and rmsprop-tf1 (src/engine/tf1-optimizers.ts): TensorFlow 1's update rules, written
// out here by hand in float32 (Math.fround after every operation, in TF1's order) on fixed
// numbers; the fused onednn kernels against the cpu backend bit for bit; and checkpoints that
// resume bit for bit.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { registerOneDnnBackend } from '../src/backend/onednn/backend.js';
import { findCheckpoint, loadCheckpoint, saveCheckpoint } from '../src/engine/checkpoint.js';
import { makeOptimizer, type OptimizerPreset } from '../src/engine/optimizers.js';
import { adamTf1ByHand, rmsPropTf1ByHand } from './tf1-rules.js';

const available = registerOneDnnBackend();
const skipOnednn = available ? false : 'the onednn addon is not built';
const f = Math.fround;

let dir: string;
before(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'selab-tf1-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Weights and per-step gradients: fixed numbers of several signs and magnitudes. */
const W0 = [0.5, -1.25, 3e-3, 2, -0.0625];
const GRADS = [
  [0.2, -0.4, 1e-4, 3, -0.01],
  [0.1, 0.3, -2e-4, 2.5, 0.02],
  [-0.05, -0.2, 5e-5, 1, 0.5],
  [0.3, 0.01, 0, -1.5, -0.25],
  [0.25, -0.6, 1e-3, 0.5, 0.125],
];

/** The optimizer's weights after each of the given gradients, on the current backend. */
function trajectory(preset: OptimizerPreset, w0: number[], grads: number[][]): number[][] {
  const optimizer = makeOptimizer(preset);
  const w = tf.variable(tf.tensor1d(w0));
  const out: number[][] = [];
  for (const g of grads) {
    tf.tidy(() => optimizer.applyGradients({ [w.name]: tf.tensor1d(g) }));
    out.push(Array.from(w.dataSync()));
  }
  optimizer.dispose();
  w.dispose();
  return out;
}

describe('adam-tf1 follows TF1 Adam written out by hand', () => {
  it('five steps at lr 1e-3, bit for bit, on cpu', () => {
    assert.deepEqual(trajectory({ name: 'adam-tf1', lr: 1e-3 }, W0, GRADS), adamTf1ByHand(W0, GRADS, 1e-3));
  });

  it('the first step moves each weight by lr·sign(g) (ε-hat: 1e-8 next to |g|·sqrt(1 − β2))', () => {
    const [first] = trajectory({ name: 'adam-tf1', lr: 1e-3 }, W0, GRADS.slice(0, 1));
    // alpha = lr·sqrt(0.001)/0.1, m = 0.1·g, sqrt(v) = sqrt(0.001)·|g|: a step of lr·g/|g|.
    first!.forEach((w, i) => {
      const g = GRADS[0]![i]!;
      if (g !== 0) assert.ok(Math.abs(W0[i]! - w - 1e-3 * Math.sign(g)) <= 1e-5, `weight ${i}: a step of ${W0[i]! - w}`);
    });
  });

  it("differs from selab's adam (Keras ε 1e-7 added after the bias correction)", () => {
    const keras = trajectory({ name: 'adam', lr: 1e-3 }, W0, GRADS);
    assert.notDeepEqual(keras, adamTf1ByHand(W0, GRADS, 1e-3));
  });
});

describe('rmsprop-tf1 follows TF1 RMSProp written out by hand', () => {
  it('five steps at lr 1e-5 from a mean square of one, bit for bit, on cpu', () => {
    assert.deepEqual(trajectory({ name: 'rmsprop-tf1', lr: 1e-5 }, W0, GRADS), rmsPropTf1ByHand(W0, GRADS, 1e-5));
  });

  it('the first step, where the slot starts at one: w − lr·g/sqrt(0.9 + 0.1·g²)', () => {
    const [first] = trajectory({ name: 'rmsprop-tf1', lr: 1e-5 }, W0, GRADS.slice(0, 1));
    first!.forEach((w, i) => {
      const g = GRADS[0]![i]!;
      const want = W0[i]! - (1e-5 * g) / Math.sqrt(0.9 + 0.1 * g * g + 1e-10);
      assert.ok(Math.abs(w - want) <= 1e-7 * Math.max(1, Math.abs(want)), `weight ${i}: ${w} vs ${want}`);
    });
    // 0.5 − 1e-5·0.2/sqrt(0.904) = 0.49999789646…
    assert.equal(first![0], f(0.5 - (1e-5 * 0.2) / Math.sqrt(0.904)));
  });

  it("differs from selab's rmsprop, whose mean square starts at zero (a first step of lr/sqrt(0.1) ≈ 3.16·lr)", () => {
    const [first] = trajectory({ name: 'rmsprop', lr: 1e-5 }, W0, GRADS.slice(0, 1));
    assert.ok(Math.abs(W0[3]! - first![3]!) > 3e-5, `Keras-style first step ${W0[3]! - first![3]!}`);
    const [tf1] = rmsPropTf1ByHand(W0, GRADS.slice(0, 1), 1e-5);
    assert.ok(Math.abs(W0[0]! - tf1![0]!) < 2.2e-6, `TF1 first step ${W0[0]! - tf1![0]!}`);
  });
});

describe('the fused kernels on onednn equal the cpu backend bit for bit', { skip: skipOnednn }, () => {
  function random(n: number, seed: number): Float32Array {
    const out = new Float32Array(n);
    let s = seed;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      out[i] = (s / 2 ** 32) * 2 - 1;
    }
    return out;
  }
  for (const [preset, kernelName] of [[{ name: 'adam-tf1', lr: 1e-3 }, 'SelabAdamTf1Update'], [{ name: 'rmsprop-tf1', lr: 1e-3 }, 'SelabRmsPropTf1Update']] as const) {
    it(`${preset.name}: ${kernelName}, four steps on 3 weight tensors`, async () => {
      const shapes = [[3, 3, 8, 16], [16], [5, 7, 3]];
      const run = async (backend: string) => {
        await tf.setBackend(backend);
        const optimizer = makeOptimizer(preset);
        const vars = shapes.map((shape, k) => tf.variable(tf.tensor(random(tf.util.sizeFromShape(shape), 3 + k), shape)));
        const kernels = new Set<string>();
        for (let step = 0; step < 4; step++) {
          const grads = Object.fromEntries(vars.map((v, k) => [v.name, tf.tensor(random(tf.util.sizeFromShape(shapes[k]!), 100 * step + k), shapes[k]!)]));
          const profile = await tf.profile(() => optimizer.applyGradients(grads));
          profile.kernelNames.forEach((n) => kernels.add(n));
          tf.dispose(Object.values(grads));
        }
        const weights = vars.map((v) => Array.from(v.dataSync()));
        const state = (await optimizer.getWeights()).map((w) => Array.from(w.tensor.dataSync()));
        tf.dispose(vars);
        optimizer.dispose();
        return { weights, state, kernels };
      };
      const want = await run('cpu');
      const got = await run('onednn');
      await tf.setBackend('cpu');
      assert.ok(got.kernels.has(kernelName) && !got.kernels.has('Sqrt'), `onednn ran ${[...got.kernels].join(', ')}`);
      assert.ok(!want.kernels.has(kernelName));
      assert.deepEqual(got.weights, want.weights);
      assert.deepEqual(got.state, want.state);
    });
  }
});

describe('checkpoints of adam-tf1 and rmsprop-tf1 resume bit for bit', () => {
  function smallModel(): tfl.LayersModel {
    return tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [4, 4, 2], filters: 3, kernelSize: 3, padding: 'same' }),
        tfl.layers.batchNormalization(),
        tfl.layers.reLU(),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 5, activation: 'softmax' }),
      ],
    });
  }
  function trainStep(model: tfl.LayersModel, optimizer: tf.Optimizer, step: number): void {
    tf.tidy(() => {
      const xs = tf.randomUniform([6, 4, 4, 2], -1, 1, 'float32', 1000 + step);
      const ys = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, step % 5], 'int32'), 5);
      optimizer.minimize(() => tf.losses.softmaxCrossEntropy(ys, model.apply(xs, { training: true }) as tf.Tensor) as tf.Scalar);
    });
  }
  const backends = available ? ['cpu', 'onednn'] : ['cpu'];
  for (const backend of backends) {
    for (const preset of [{ name: 'adam-tf1', lr: 0.01 }, { name: 'rmsprop-tf1', lr: 0.01 }] as const) {
      for (const at of [0, 3, 9]) {
        it(`${preset.name} on ${backend}, checkpoint after ${at} of 12 steps`, async () => {
          await tf.setBackend(backend);
          const model = smallModel();
          const optimizer = makeOptimizer(preset);
          for (let s = 0; s < at; s++) trainStep(model, optimizer, s);
          const runDir = join(dir, `${backend}-${preset.name}-${at}`);
          await saveCheckpoint(runDir, model, optimizer, { epoch: 1, rng: { seed: 1, nextEpoch: 2 }, rows: [] });
          const resumed = smallModel();
          const resumedOptimizer = makeOptimizer(preset);
          await loadCheckpoint((await findCheckpoint(runDir))!, resumed, resumedOptimizer);
          for (let s = at; s < 12; s++) {
            trainStep(model, optimizer, s);
            trainStep(resumed, resumedOptimizer, s);
          }
          model.weights.forEach((w, i) => {
            assert.deepEqual(Array.from(resumed.weights[i]!.read().dataSync()), Array.from(w.read().dataSync()), `${w.originalName} after the resume`);
          });
          assert.equal(resumedOptimizer.iterations, optimizer.iterations);
          await tf.setBackend('cpu');
        });
      }
    }
  }
});

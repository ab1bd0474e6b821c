// --protocol reference against --protocol keras: one test per row of what the reference
// experiment did (its TF1 optimizers, its steps per epoch, its validation, its BatchNorm groups,
// its logged metrics). Each row's check is a function of the protocol that must hold under
// 'reference' and must not hold under 'keras'.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BatchIterator } from '../src/data/batches.js';
import { epochOrder } from '../src/data/prepare.js';
import type { Callback } from '../src/engine/callbacks.js';
import { categoricalCrossentropy, trainEpoch, type Batch } from '../src/engine/loop.js';
import { makeOptimizer, type OptimizerName } from '../src/engine/optimizers.js';
import { referenceValidationWindows, replicaView, validationSeed } from '../src/engine/protocol.js';
import { runTraining } from '../src/engine/runner.js';
import { casePreset, getCase } from '../src/experiments/cases.js';
import { BatchNorm } from '../src/models/batch-norm.js';
import { resolveConfig, type Protocol } from '../src/runs/config.js';
import { readHistory, readRunFile, type HistoryRow } from '../src/runs/files.js';
import { adamTf1ByHand, rmsPropTf1ByHand } from './tf1-rules.js';
import { generatedSplit, tinyRequest } from './train-helpers.js';

let dir: string;
before(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'selab-protocol-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A row's check holds under the reference protocol and fails under keras. */
async function holdsOnlyUnderReference(check: (protocol: Protocol) => unknown): Promise<void> {
  await check('reference');
  await assert.rejects(async () => check('keras'), assert.AssertionError, 'the keras protocol must not pass this check');
}

const W0 = [0.5, -1.25, 3e-3, 2, -0.0625];
const GRADS = [
  [0.2, -0.4, 1e-4, 3, -0.01],
  [0.1, 0.3, -2e-4, 2.5, 0.02],
  [-0.05, -0.2, 5e-5, 1, 0.5],
];

/** The weights after each gradient, with the optimizer a case's preset under `protocol` names. */
function caseTrajectory(caseId: number, protocol: Protocol): number[][] {
  const config = casePreset(getCase(caseId), protocol);
  const optimizer = makeOptimizer({ name: config.optimizer as OptimizerName, lr: config.lr });
  const w = tf.variable(tf.tensor1d(W0));
  const out = GRADS.map((g) => {
    tf.tidy(() => optimizer.applyGradients({ [w.name]: tf.tensor1d(g) }));
    return Array.from(w.dataSync());
  });
  optimizer.dispose();
  w.dispose();
  return out;
}

/** A BatchNorm straight on the input (so its batch statistics are the images'), then a small head. */
function bnFirstModel(size = 8): tfl.LayersModel {
  const input = tfl.input({ shape: [size, size, 3] });
  let x = new BatchNorm({ name: 'bn', momentum: 0.9 }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'conv' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 10, activation: 'softmax', name: 'predictions' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

/** Images `indices` of a generated split as the pipeline makes them (pixel/255) and their one-hot labels. */
function imagesOf(split: ReturnType<typeof generatedSplit>, indices: ArrayLike<number>): Batch {
  const per = split.height * split.width * 3;
  const xs = new Float32Array(indices.length * per);
  const ys = new Float32Array(indices.length * 10);
  Array.from(indices).forEach((idx, k) => {
    for (let p = 0; p < per; p++) xs[k * per + p] = split.images[idx * per + p]! / 255;
    ys[k * 10 + split.labels[idx]!] = 1;
  });
  return { xs: tf.tensor4d(xs, [indices.length, split.height, split.width, 3]), ys: tf.tensor2d(ys, [indices.length, 10]) };
}

describe('each row of the reference experiment: holds under --protocol reference, not under keras', () => {
  it('scratch optimizer: tf.train.AdamOptimizer() (lr 1e-3, β 0.9/0.999, ε-hat 1e-8) for case 1', async () => {
    await holdsOnlyUnderReference((protocol) => assert.deepEqual(caseTrajectory(1, protocol), adamTf1ByHand(W0, GRADS, 1e-3)));
  });

  it('transfer optimizer: tf.train.RMSPropOptimizer(1e-5), mean square from one, ε 1e-10, for case 6', async () => {
    await holdsOnlyUnderReference((protocol) => assert.deepEqual(caseTrajectory(6, protocol), rmsPropTf1ByHand(W0, GRADS, 1e-5)));
  });

  it('steps per epoch: floor(N / batch) whole batches from a new permutation each epoch, the remainder unused', async () => {
    await holdsOnlyUnderReference(async (protocol) => {
      const steps: number[] = [];
      const record: Callback = { onStep: (info) => void steps.push(info.images) };
      const run = await runTraining(tinyRequest(join(dir, `steps-${protocol}`), { protocol, validation: protocol === 'reference' ? 'reference' : 'full', epochs: 1, batchSize: 32, microBatch: 16 }, { callbacks: [record] }));
      // 200 training images, batch 32: 6 whole steps (192 images), the last 8 unused.
      assert.deepEqual(steps, [32, 64, 96, 128, 160, 192]);
      assert.equal(run.status, 'completed');
    });
    // Which 192: a new permutation each epoch, so the 8 left out change.
    const iterator = new BatchIterator(generatedSplit(200, 1), { batchSize: 16, seed: 7, windows: { size: 32, use: 32 }, prefetch: false });
    const unused = (epoch: number) => { const used = new Set(iterator.order(epoch)); return [...Array(200).keys()].filter((i) => !used.has(i)); };
    assert.equal(iterator.perEpoch, 192);
    assert.equal(unused(1).length, 8);
    assert.notDeepEqual(unused(1), unused(2));
    await iterator.close();
  });

  it('validation: batch/8 images of each of floor(test / batch) batches of a new permutation each epoch (val_*), the whole test split beside it (test_*)', async () => {
    const test = generatedSplit(100, 2);
    await holdsOnlyUnderReference(async (protocol) => {
      const expected: { val: { loss: number; acc: number }; test: { loss: number; acc: number }; indices: number[] }[] = [];
      // At each epoch's end (before the next trains), evaluate the subset the reference would have drawn, by hand.
      const check: Callback = {
        onEpochEnd: (row, ctx) => {
          const order = epochOrder(100, validationSeed(7), row.epoch);
          const indices: number[] = [];
          for (let w = 0; w < Math.floor(100 / 32); w++) indices.push(...order.subarray(w * 32, w * 32 + 4));
          const measure = (idx: ArrayLike<number>) => tf.tidy(() => {
            const { xs, ys } = imagesOf(test, idx);
            const probs = ctx.model.apply(xs, { training: false }) as tf.Tensor;
            const acc = tf.sum(tf.cast(tf.equal(tf.argMax(probs, -1), tf.argMax(ys, -1)), 'float32')).dataSync()[0]! / idx.length;
            return { loss: categoricalCrossentropy(ys, probs).dataSync()[0]!, acc };
          });
          expected.push({ val: measure(indices), test: measure([...Array(100).keys()]), indices });
        },
      };
      const out = join(dir, `validation-${protocol}`);
      await runTraining(tinyRequest(out, { protocol, validation: protocol === 'reference' ? 'reference' : 'full', epochs: 2, batchSize: 32, microBatch: 16 }, { callbacks: [check], test, buildModel: async () => bnFirstModel() }));
      const rows: HistoryRow[] = (await readHistory(join(out, 'tiny'))).rows;
      rows.forEach((row, k) => {
        const want = expected[k]!;
        assert.equal(row.val_acc, want.val.acc, `epoch ${row.epoch} val_acc over the 12 images of its permutation`);
        assert.ok(Math.abs(row.val_loss - want.val.loss) < 1e-5, `epoch ${row.epoch} val_loss`);
        assert.equal(row.test_acc, want.test.acc, `epoch ${row.epoch} test_acc over all 100`);
      });
      assert.notDeepEqual(expected[0]!.indices, expected[1]!.indices, 'a different subset every epoch');
    });
    const iterator = new BatchIterator(test, { batchSize: 16, seed: validationSeed(7), windows: referenceValidationWindows(32), prefetch: false });
    assert.equal(iterator.perEpoch, 12);
    await iterator.close();
  });

  it('BatchNorm statistics: per group of batch/8 images (one replica\'s share), moving averages from the step\'s first group', async () => {
    const train = generatedSplit(64, 3);
    await holdsOnlyUnderReference(async (protocol) => {
      const out = join(dir, `bn-${protocol}`);
      let before: number[] = [];
      let after: number[] = [];
      const movingMean = (model: tfl.LayersModel) => Array.from(model.getLayer('bn').getWeights()[2]!.dataSync());
      const watch: Callback = { onTrainBegin: (ctx) => void (before = movingMean(ctx.model)), onEpochEnd: (_row, ctx) => void (after = movingMean(ctx.model)) };
      // One step of 64 images as two micro-batches of 32: the reference's share is 8, so 4 groups per micro-batch.
      await runTraining(tinyRequest(out, { protocol, validation: protocol === 'reference' ? 'reference' : 'full', epochs: 1, batchSize: 64, microBatch: 32 }, { callbacks: [watch], train, test: generatedSplit(64, 4), buildModel: async () => bnFirstModel() }));
      // The step's first 8 images in the epoch's order: replica 0's group, its statistics the images' own.
      const first = Array.from(epochOrder(64, 7, 1).subarray(0, 8));
      const mean = tf.tidy(() => Array.from(tf.mean(imagesOf(train, first).xs, [0, 1, 2]).dataSync()));
      const want = before.map((m, c) => Math.fround(m - Math.fround(Math.fround(m - mean[c]!) * Math.fround(1 - 0.9))));
      after.forEach((m, c) => assert.ok(Math.abs(m - want[c]!) <= 1e-7, `moving mean ${c}: ${m}, one update by the first group gives ${want[c]}`));
      const run = await readRunFile(join(out, 'tiny'));
      assert.equal(run.batchNormGroup, 8);
      assert.match(run.batchNormStatistics, /^per group of 8 images, one replica's share/);
    });
  });

  it('BatchNorm groups below the replica\'s share: run.json says so and records the group used', async () => {
    const out = join(dir, 'bn-small');
    // Batch 64 (a share of 8) in micro-batches of 4: groups of 4.
    await runTraining(tinyRequest(out, { protocol: 'reference', validation: 'reference', epochs: 1, batchSize: 64, microBatch: 4 }, { train: generatedSplit(64, 3), test: generatedSplit(64, 4), buildModel: async () => bnFirstModel() }));
    const run = await readRunFile(join(out, 'tiny'));
    assert.equal(run.batchNormGroup, 4);
    assert.match(run.batchNormStatistics, /per group of 4 images, NOT the reference's 8/);
  });

  it('metrics: the epoch\'s loss and accuracy are Keras\' mean over steps of what replica 0 logged (its share: the first batch/8 images of each step)', async () => {
    await holdsOnlyUnderReference(async (protocol) => {
      const train = generatedSplit(96, 5);
      const model = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [8, 8, 3] }), tfl.layers.dense({ units: 10, activation: 'softmax' })] });
      const optimizer = makeOptimizer({ name: 'adam-tf1', lr: 0.01 });
      const config = { protocol, batchSize: 32, microBatch: 16 };
      const replicas = replicaView(config);
      const order = epochOrder(96, 1, 1);
      const shardLosses: number[] = [];
      const shardCorrect: number[] = [];
      async function* batches(): AsyncGenerator<Batch> {
        for (let step = 0; step < 3; step++) {
          // Replica 0's share of this step, with the weights the step starts from.
          tf.tidy(() => {
            const { xs, ys } = imagesOf(train, order.subarray(step * 32, step * 32 + 4));
            const probs = model.apply(xs, { training: true }) as tf.Tensor;
            shardLosses.push(categoricalCrossentropy(ys, probs).dataSync()[0]!);
            shardCorrect.push(tf.sum(tf.cast(tf.equal(tf.argMax(probs, -1), tf.argMax(ys, -1)), 'float32')).dataSync()[0]!);
          });
          for (const half of [0, 16]) yield imagesOf(train, order.subarray(step * 32 + half, step * 32 + half + 16));
        }
      }
      const got = await trainEpoch({ model, optimizer, batches: batches(), images: 96, batchSize: 32, ...(replicas ? { replicas } : {}) });
      const loss = shardLosses.reduce((a, b) => a + b, 0) / 3;
      const acc = shardCorrect.reduce((a, b) => a + b, 0) / 12;
      assert.ok(Math.abs(got.loss - loss) < 1e-6, `epoch loss ${got.loss}, mean of replica 0's ${loss}`);
      assert.equal(got.acc, acc);
      assert.equal(got.images, 96);
      optimizer.dispose();
      model.dispose();
    });
  });
});

describe('configuration', () => {
  it('the cases default to the reference protocol and its validation; --protocol keras gives today\'s Keras training', () => {
    const ref = casePreset(getCase(6));
    assert.deepEqual([ref.protocol, ref.validation, ref.optimizer, ref.lr], ['reference', 'reference', 'rmsprop-tf1', 1e-5]);
    const keras = casePreset(getCase(6), 'keras');
    assert.deepEqual([keras.protocol, keras.validation, keras.optimizer], ['keras', 'full', 'rmsprop']);
    assert.equal(casePreset(getCase(1)).optimizer, 'adam-tf1');
    assert.throws(() => resolveConfig(keras, { validation: 'reference' }), /--validation reference needs --protocol reference/);
    assert.throws(() => resolveConfig(ref, { batchSize: 100 }), /multiple of 8/);
    assert.throws(() => resolveConfig(ref, { testLimit: 512 }), /--test-limit 512: --protocol reference uses whole batches of 1024/);
    assert.equal(resolveConfig(ref, { validation: 'full' }).validation, 'full');
  });
});

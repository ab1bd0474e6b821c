import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findCheckpoint, loadCheckpoint, saveCheckpoint } from '../src/engine/checkpoint.js';
import { trainEpoch, type Batch } from '../src/engine/loop.js';
import { ACTIVATION_FACTOR, activationBytesPerImage, chooseMicroBatch, MAX_AUTO_MICRO_BATCH } from '../src/engine/microbatch.js';
import { makeOptimizer, setLearningRate } from '../src/engine/optimizers.js';
import { parseOverrides } from '../src/cli/options.js';
import { casePreset, getCase } from '../src/experiments/cases.js';
import { CIFAR10_NORMALIZE } from '../src/experiments/presets.js';
import { resolveConfig } from '../src/runs/config.js';
import { silentProgress } from '../src/engine/progress.js';
import { parseCaseList } from '../src/experiments/ranges.js';
import { readHistory, readRunFile, type HistoryRow } from '../src/runs/files.js';
import { RunError, runTraining } from '../src/engine/runner.js';
import { generatedSplit, tinyModel, tinyRequest } from './train-helpers.js';

let dir: string;
before(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'selab-train-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const comparable = (rows: HistoryRow[]) => rows.map(({ seconds: _s, imagesPerSecond: _i, ...r }) => r);

describe('runTraining', () => {
  it('--resume of a completed run trains nothing and leaves run.json as it was', async () => {
    const out = join(dir, 'complete');
    await runTraining(tinyRequest(out, { epochs: 1 }));
    const before = await readFile(join(out, 'tiny', 'run.json'), 'utf8');
    const again = await runTraining(tinyRequest(out, { epochs: 1 }, { resume: true }));
    assert.deepEqual(again.resumes, []);
    assert.equal(await readFile(join(out, 'tiny', 'run.json'), 'utf8'), before);
  });

  it('trains 3 epochs: one history row per epoch, training loss falls, run.json completed', async () => {
    const out = join(dir, 'e2e');
    const run = await runTraining(tinyRequest(out));
    const { rows } = await readHistory(join(out, 'tiny'));
    assert.deepEqual(rows.map((r) => r.epoch), [1, 2, 3]);
    assert.ok(rows[2]!.loss < rows[0]!.loss, `loss should fall: ${rows.map((r) => r.loss).join(', ')}`);
    for (const r of rows) {
      assert.ok(r.acc >= 0 && r.acc <= 1 && r.val_acc >= 0 && r.val_acc <= 1);
      assert.equal(r.lr, 0.01);
      assert.ok(r.seconds > 0 && r.imagesPerSecond > 0);
    }
    const saved = await readRunFile(join(out, 'tiny'));
    assert.deepEqual(saved, run);
    assert.equal(saved.status, 'completed');
    assert.equal(saved.epochsCompleted, 3);
    // The keras protocol validates on the whole test split: val_* and test_* are the same figures.
    assert.deepEqual(saved.final, { epoch: 3, val_acc: rows[2]!.val_acc, val_loss: rows[2]!.val_loss, test_acc: rows[2]!.val_acc, test_loss: rows[2]!.val_loss });
    const best = rows.reduce((b, r) => (r.val_acc > b.val_acc ? r : b));
    assert.deepEqual(saved.best, { epoch: best.epoch, val_acc: best.val_acc, test_acc: best.val_acc });
    assert.equal(saved.config.microBatch, 16);
    assert.match(saved.batchNormStatistics, /per micro-batch of 16 images/);
    assert.equal(saved.params, tinyModel().countParams());
    assert.ok(existsSync(join(out, 'tiny', 'checkpoint', 'state.json')));
  });

  it('resumes without gap or duplicate: 1 epoch + resume to 3 gives the rows of an uninterrupted run', async () => {
    const whole = await runTraining(tinyRequest(join(dir, 'whole')));
    const out = join(dir, 'split');
    await runTraining(tinyRequest(out, { epochs: 1 }));
    const resumed = await runTraining(tinyRequest(out, { epochs: 3 }, { resume: true }));
    const a = (await readHistory(join(dir, 'whole', 'tiny'))).rows;
    const b = (await readHistory(join(out, 'tiny'))).rows;
    assert.deepEqual(b.map((r) => r.epoch), [1, 2, 3]);
    // Same seed, same init, same shuffles, optimizer moments restored: the same numbers.
    const close = (x: number, y: number) => Math.abs(x - y) <= 1e-5 * Math.max(1, Math.abs(x));
    comparable(a).forEach((r, i) => {
      const s = comparable(b)[i]!;
      for (const k of Object.keys(r) as (keyof typeof r)[]) assert.ok(close(r[k], s[k]), `epoch ${i + 1} ${k}: ${r[k]} vs ${s[k]}`);
    });
    assert.equal(resumed.resumes.length, 1);
    assert.equal(resumed.resumes[0]!.fromEpoch, 1);
    assert.equal(resumed.startedAt, (await readRunFile(out + '/tiny')).startedAt);
    assert.equal(whole.status, 'completed');
  });

  it('refuses to overwrite a run without --resume, and to resume with a different batch size', async () => {
    const out = join(dir, 'e2e');
    await assert.rejects(runTraining(tinyRequest(out)), /already holds a run.*--resume/);
    await assert.rejects(runTraining(tinyRequest(out, { batchSize: 64 }, { resume: true })), /different configuration: --batch-size 64 \(the run has 32\)/);
  });

  it('stops on a non-finite loss with a clear message and keeps the last good checkpoint', async () => {
    const out = join(dir, 'nan');
    // A layer that turns its input into NaN from epoch 2 on (switched by the progress sink).
    let poison = false;
    class Poison extends tfl.layers.Layer {
      static readonly className = 'Poison';
      override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
        const x = Array.isArray(inputs) ? inputs[0]! : inputs;
        return poison ? tf.mul(x, NaN) : tf.clone(x);
      }
    }
    const buildModel = async () => {
      const input = tfl.input({ shape: [8, 8, 3] });
      const x = new Poison({}).apply(input) as tfl.SymbolicTensor;
      const body = tinyModel();
      return tfl.model({ inputs: input, outputs: body.apply(x) as tfl.SymbolicTensor });
    };
    const progress = { ...silentProgress, startEpoch: (label: string) => void (poison = / epoch 2\//.test(label)) };
    await assert.rejects(runTraining(tinyRequest(out, {}, { buildModel, progress })), (e: unknown) => {
      assert.ok(e instanceof RunError);
      assert.match(e.message, /epoch 2: the training loss became NaN at step 1; training stopped, the checkpoint of epoch 1 is kept/);
      return true;
    });
    const saved = await readRunFile(join(out, 'tiny'));
    assert.equal(saved.status, 'failed');
    assert.match(saved.error ?? '', /loss became NaN/);
    assert.equal(saved.epochsCompleted, 1);
    assert.deepEqual((await readHistory(join(out, 'tiny'))).rows.map((r) => r.epoch), [1]);
    const state = JSON.parse(await readFile(join(out, 'tiny', 'checkpoint', 'state.json'), 'utf8'));
    assert.equal(state.epoch, 1);
  });
});

describe('checkpoints', () => {
  it('round-trips weights, BN statistics and Adam moments/iterations', async () => {
    const model = tinyModel();
    const opt = makeOptimizer('adam');
    const xs = tf.randomUniform([4, 8, 8, 3]);
    const ys = tf.oneHot(tf.tensor1d([1, 2, 3, 4], 'int32'), 10);
    const batches: Batch[] = [{ xs: xs.clone(), ys: ys.clone() }];
    await trainEpoch({ model, optimizer: opt, batches, images: 4, batchSize: 4 });
    const runDir = join(dir, 'ckpt');
    await saveCheckpoint(runDir, model, opt, { epoch: 1, rng: { seed: 3, nextEpoch: 2 }, rows: [] });

    const model2 = tinyModel();
    const opt2 = makeOptimizer('adam');
    const state = await loadCheckpoint((await findCheckpoint(runDir))!, model2, opt2);
    assert.equal(state.epoch, 1);
    assert.equal(state.optimizerIterations, 1);
    model.weights.forEach((w, i) => assert.deepEqual(Array.from(w.read().dataSync()), Array.from(model2.weights[i]!.read().dataSync()), w.name));
    // The next step from both must be identical (moments and iteration count restored).
    await trainEpoch({ model, optimizer: opt, batches: [{ xs: xs.clone(), ys: ys.clone() }], images: 4, batchSize: 4 });
    await trainEpoch({ model: model2, optimizer: opt2, batches: [{ xs: xs.clone(), ys: ys.clone() }], images: 4, batchSize: 4 });
    model.weights.forEach((w, i) => assert.deepEqual(Array.from(w.read().dataSync()), Array.from(model2.weights[i]!.read().dataSync()), w.name));
  });

  it('a crash between the two renames of a save leaves checkpoint.old, which is picked up', async () => {
    const runDir = join(dir, 'ckpt');
    await rename(join(runDir, 'checkpoint'), join(runDir, 'checkpoint.old'));
    // A half-written temporary from a dead writer (pid 2^22 + 1 does not exist here).
    await rm(join(runDir, '.checkpoint.selab-tmp-4194305-abcd'), { recursive: true, force: true });
    const found = await findCheckpoint(runDir);
    assert.equal(found, join(runDir, 'checkpoint'));
    assert.deepEqual((await readdir(runDir)).sort(), ['checkpoint']);
  });
});

describe('gradient accumulation', () => {
  it('one step over 2 micro-batches of 4 equals one step over the batch of 8 (no BN)', async () => {
    const xs = tf.randomUniform([8, 8, 8, 3], 0, 1, 'float32', 5);
    const ys = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'), 10);
    const a = tinyModel(8, false);
    const b = tinyModel(8, false);
    b.setWeights(a.getWeights());
    const sgd = () => makeOptimizer({ name: 'sgd-momentum', lr: 0.5, momentum: 0 });
    await trainEpoch({ model: a, optimizer: sgd(), batches: [{ xs: xs.clone(), ys: ys.clone() }], images: 8, batchSize: 8 });
    const halves: Batch[] = [0, 4].map((o) => ({ xs: tf.slice(xs, [o, 0, 0, 0], [4, -1, -1, -1]), ys: tf.slice(ys, [o, 0], [4, -1]) }));
    await trainEpoch({ model: b, optimizer: sgd(), batches: halves, images: 8, batchSize: 8 });
    a.weights.forEach((w, i) => {
      const x = w.read().dataSync();
      const y = b.weights[i]!.read().dataSync();
      x.forEach((v, j) => assert.ok(Math.abs(v - y[j]!) < 1e-5, `${w.name}[${j}]: ${v} vs ${y[j]}`));
    });
  });

  it('updates BatchNorm moving statistics in training mode and keeps the tensor count flat', async () => {
    const model = tinyModel();
    const opt = makeOptimizer('adam');
    const bn = model.getLayer('bn') as tfl.layers.Layer;
    const before = Array.from(bn.getWeights()[2]!.dataSync());
    const batch = (): Batch[] => [0, 1].map(() => tf.tidy(() => ({ xs: tf.randomUniform([4, 8, 8, 3], 0.5, 1), ys: tf.oneHot(tf.tensor1d([1, 2, 3, 4], 'int32'), 10) })));
    await trainEpoch({ model, optimizer: opt, batches: batch(), images: 8, batchSize: 8 });
    const counts: number[] = [];
    for (let e = 0; e < 3; e++) {
      await trainEpoch({ model, optimizer: opt, batches: batch(), images: 8, batchSize: 8 });
      counts.push(tf.memory().numTensors);
    }
    assert.notDeepEqual(Array.from(bn.getWeights()[2]!.dataSync()), before, 'moving_mean should move');
    assert.equal(counts[0], counts[2], `tensor count grew: ${counts.join(', ')}`);
  });
});

describe('micro-batch choice', () => {
  it('takes the largest divisor of the batch, up to 128, that fits the budget', () => {
    const model = tinyModel();
    const perImage = activationBytesPerImage(model);
    // conv, bn, relu: 8·8·4 each; gap: 4; dense: 10 → 782 floats.
    assert.equal(perImage, (3 * 8 * 8 * 4 + 4 + 10) * 4);
    assert.equal(chooseMicroBatch(model, 1024, 1e12), MAX_AUTO_MICRO_BATCH);
    assert.equal(chooseMicroBatch(model, 1024, 1e12, 1024), 1024);
    assert.equal(chooseMicroBatch(model, 1024, perImage * ACTIVATION_FACTOR * 300, 1024), 256);
    assert.equal(chooseMicroBatch(model, 1000, perImage * ACTIVATION_FACTOR * 300, 1000), 250);
    assert.equal(chooseMicroBatch(model, 1024, perImage * ACTIVATION_FACTOR * 100), 64);
    assert.equal(chooseMicroBatch(model, 1024, 1), 1);
  });
});

describe('parseCaseList', () => {
  const known = [1, 2, 3, 4, 5, 6, 7];
  it('reads lists and ranges', () => {
    assert.deepEqual(parseCaseList('1-7', known), [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(parseCaseList('1,2,5-7', known), [1, 2, 5, 6, 7]);
    assert.deepEqual(parseCaseList('3, 1,3', known), [1, 3]);
  });
  it('rejects bad ranges and unknown cases', () => {
    assert.throws(() => parseCaseList('3-1', known), /--cases "3-1": range 3-1 runs backwards/);
    assert.throws(() => parseCaseList('1-x', known), /"1-x" is not a case number or range/);
    assert.throws(() => parseCaseList('1,,2', known), /"" is not a case number/);
    assert.throws(() => parseCaseList('8', known), /unknown case 8; known cases: 1, 2, 3, 4, 5, 6, 7/);
  });
});

describe('weight decay, lr schedule and normalisation', () => {
  it('weight decay changes one SGD step by exactly lr·wd·w on kernels, and not on BN gamma/beta or biases', async () => {
    const xs = tf.randomUniform([4, 8, 8, 3], 0, 1, 'float32', 11);
    const ys = tf.oneHot(tf.tensor1d([0, 1, 2, 3], 'int32'), 10);
    const a = tinyModel();
    const b = tinyModel();
    b.setWeights(a.getWeights());
    const w0 = a.trainableWeights.map((w) => Array.from(w.read().dataSync()));
    // Made with lr 1 and set to 0.1 as the schedule does: the step must use 0.1. First momentum step: v = g.
    const sgd = () => {
      const o = makeOptimizer({ name: 'sgd-momentum', lr: 1, momentum: 0.9 });
      setLearningRate(o, 0.1);
      return o;
    };
    const lr = 0.1;
    const wd = 0.05;
    await trainEpoch({ model: a, optimizer: sgd(), batches: [{ xs: xs.clone(), ys: ys.clone() }], images: 4, batchSize: 4 });
    await trainEpoch({ model: b, optimizer: sgd(), batches: [{ xs: xs.clone(), ys: ys.clone() }], images: 4, batchSize: 4, weightDecay: wd });
    const decayed: string[] = [];
    a.trainableWeights.forEach((w, i) => {
      const x = w.read().dataSync();
      const y = b.trainableWeights[i]!.read().dataSync();
      const kernel = w.originalName.endsWith('kernel');
      if (kernel) decayed.push(w.originalName);
      x.forEach((v, j) => {
        const expected = kernel ? -lr * wd * w0[i]![j]! : 0;
        assert.ok(Math.abs(y[j]! - v - expected) < 1e-6, `${w.originalName}[${j}]: with wd − without = ${y[j]! - v}, expected ${expected}`);
      });
    });
    assert.deepEqual(decayed, ['conv/kernel', 'predictions/kernel']);
    assert.ok(a.trainableWeights.some((w) => w.originalName === 'bn/gamma') && a.trainableWeights.some((w) => w.originalName === 'bn/beta'));
    tf.dispose([xs, ys]);
    a.dispose();
    b.dispose();
  });

  it('step lr schedule: history rows show the lr of each epoch, recorded in run.json, and it survives --resume', async () => {
    const schedule = { optimizer: 'sgd-momentum', lr: 0.1, momentum: 0.9, lrDecayEpochs: [1, 2], lrDecayFactor: 0.5, weightDecay: 1e-3 };
    await runTraining(tinyRequest(join(dir, 'sched-whole'), schedule));
    const whole = (await readHistory(join(dir, 'sched-whole', 'tiny'))).rows;
    assert.deepEqual(whole.map((r) => r.lr), [0.1, 0.05, 0.025]);
    const out = join(dir, 'sched-split');
    await runTraining(tinyRequest(out, { ...schedule, epochs: 2 }));
    const resumed = await runTraining(tinyRequest(out, schedule, { resume: true }));
    const split = (await readHistory(join(out, 'tiny'))).rows;
    assert.deepEqual(split.map((r) => r.lr), [0.1, 0.05, 0.025]);
    comparable(whole).forEach((r, i) => assert.ok(Math.abs(r.val_loss - split[i]!.val_loss) <= 1e-5 * Math.max(1, r.val_loss), `epoch ${i + 1}`));
    assert.deepEqual([resumed.config.lrDecayEpochs, resumed.config.lrDecayFactor, resumed.config.weightDecay], [[1, 2], 0.5, 1e-3]);
    // Weight decay is part of the run; changing it on --resume is refused like any other setting.
    await assert.rejects(runTraining(tinyRequest(out, { ...schedule, epochs: 4, weightDecay: 0 }, { resume: true })), /--weight-decay 0 \(the run has 0\.001\)/);
  });

  it('--normalize reaches the batches: a generated dataset at the CIFAR-10 means gives inputs of mean ≈ 0', async () => {
    const o = parseOverrides({ normalize: true, weightDecay: '1e-4', lrDecayEpochs: '3,2' });
    const config = resolveConfig(casePreset(getCase(1)), o);
    assert.deepEqual([config.normalize, config.weightDecay, config.lrDecayEpochs], [CIFAR10_NORMALIZE, 1e-4, [2, 3]]);
    // On --resume the saved configuration is the base: the flags need not be repeated.
    const again = resolveConfig({ ...config, microBatch: 32 }, parseOverrides({}));
    assert.deepEqual([again.normalize, again.weightDecay, again.lrDecayEpochs], [CIFAR10_NORMALIZE, 1e-4, [2, 3]]);
    assert.throws(() => parseOverrides({ weightDecay: 'x' }), /--weight-decay "x": expected a number ≥ 0/);

    // Every pixel at round(255·mean_c): after normalisation each channel is within 0.01 of 0.
    const split = generatedSplit(40, 3);
    for (let p = 0; p < split.images.length; p++) split.images[p] = Math.round(255 * CIFAR10_NORMALIZE.mean[p % 3]!);
    const means: number[][] = [];
    class Probe extends tfl.layers.Layer {
      static readonly className = 'Probe';
      override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
        const x = Array.isArray(inputs) ? inputs[0]! : inputs;
        means.push(Array.from(tf.tidy(() => tf.mean(x, [0, 1, 2])).dataSync()));
        return tf.clone(x);
      }
    }
    const buildModel = async () => {
      const input = tfl.input({ shape: [8, 8, 3] });
      const x = new Probe({}).apply(input) as tfl.SymbolicTensor;
      return tfl.model({ inputs: input, outputs: tinyModel().apply(x) as tfl.SymbolicTensor });
    };
    const run = await runTraining(tinyRequest(join(dir, 'norm'), { epochs: 1, normalize: CIFAR10_NORMALIZE }, { buildModel, train: split, test: split }));
    assert.deepEqual(run.config.normalize, CIFAR10_NORMALIZE);
    assert.ok(means.length > 0);
    for (const m of means) for (const v of m) assert.ok(Math.abs(v) < 0.01, `channel mean ${v}`);
  });
});

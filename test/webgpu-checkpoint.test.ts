// Checkpoints across backends: a run trained on webgpu and checkpointed resumes on onednn (cpu
// without the addon) with every weight and optimizer slot bit for bit as saved, trains on there as
// webgpu itself would have, and its checkpoint resumes on webgpu again, bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { registerOneDnnBackend } from '../src/backend/onednn/backend.js';
import { loadCheckpoint, saveCheckpoint } from '../src/engine/checkpoint.js';
import { makeOptimizer } from '../src/engine/optimizers.js';
import { readAll, skipWithoutWebGpu } from './webgpu.js';

const skip = await skipWithoutWebGpu();
const other = registerOneDnnBackend() ? 'onednn' : 'cpu';

/** conv → BN → ReLU → depthwise conv → global pool → dense: weights, BN statistics and Adam's slots. */
function model(): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [6, 6, 3], filters: 4, kernelSize: 3, padding: 'same' }),
      tfl.layers.batchNormalization(),
      tfl.layers.reLU(),
      tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same' }),
      tfl.layers.globalAveragePooling2d({}),
      tfl.layers.dense({ units: 5, activation: 'softmax' }),
    ],
  });
}

/** One Adam step on a batch that depends only on `step`; returns the loss. */
async function trainStep(m: tfl.LayersModel, optimizer: tf.Optimizer, step: number): Promise<number> {
  const loss = tf.tidy(() => {
    const xs = tf.randomUniform([6, 6, 6, 3], -1, 1, 'float32', 1000 + step);
    const ys = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, step % 5], 'int32'), 5);
    return optimizer.minimize(() => tf.losses.softmaxCrossEntropy(ys, m.apply(xs, { training: true }) as tf.Tensor) as tf.Scalar, true)!;
  });
  const [value] = await loss.data();
  loss.dispose();
  return value!;
}

interface State {
  weights: Float32Array[];
  slots: Float32Array[];
  iterations: number;
}

async function state(m: tfl.LayersModel, optimizer: tf.Optimizer): Promise<State> {
  const slots = await optimizer.getWeights();
  const values = await readAll(slots.map((w) => w.tensor));
  slots.find((w) => w.name === 'iter')?.tensor.dispose();
  return { weights: await readAll(m.weights.map((w) => w.read())), slots: values, iterations: optimizer.iterations };
}

function assertBitwise(got: State, want: State, what: string): void {
  assert.equal(got.iterations, want.iterations, `${what}: iterations`);
  for (const [kind, g, w] of [['weight', got.weights, want.weights], ['optimizer slot', got.slots, want.slots]] as const) {
    assert.equal(g.length, w.length, `${what}: ${kind} count`);
    w.forEach((values, k) => assert.ok(Buffer.from(g[k]!.buffer).equals(Buffer.from(values.buffer)), `${what}: ${kind} ${k} differs from the checkpoint`));
  }
}

/** Builds a fresh model and Adam on `backend` and restores the checkpoint in `dir` into them. */
async function restoreOn(backend: string, dir: string): Promise<{ m: tfl.LayersModel; optimizer: tf.Optimizer }> {
  await tf.setBackend(backend);
  const m = model();
  const optimizer = makeOptimizer('adam');
  await loadCheckpoint(dir, m, optimizer);
  return { m, optimizer };
}

test(`a checkpoint from webgpu resumes on ${other} bit for bit, trains on as webgpu does, and its own checkpoint resumes on webgpu`, { skip, timeout: 600_000 }, async () => {
  const root = await mkdtemp(join(tmpdir(), 'selab-webgpu-ckpt-'));
  const run = { epoch: 1, rng: { seed: 1, nextEpoch: 2 }, rows: [] };
  try {
    await tf.setBackend('webgpu');
    const gpu = model();
    const gpuOpt = makeOptimizer('adam');
    for (let step = 0; step < 3; step++) await trainStep(gpu, gpuOpt, step);
    await saveCheckpoint(join(root, 'a'), gpu, gpuOpt, run);
    const saved = await state(gpu, gpuOpt);

    const resumed = await restoreOn(other, join(root, 'a', 'checkpoint'));
    assertBitwise(await state(resumed.m, resumed.optimizer), saved, `restored on ${other}`);
    // Two more steps on each backend: the losses agree (weights are not compared: a conv bias in
    // front of BatchNorm has a gradient of pure rounding noise, whose sign Adam turns into ±lr).
    for (let step = 3; step < 5; step++) {
      const there = await trainStep(resumed.m, resumed.optimizer, step);
      await tf.setBackend('webgpu');
      const here = await trainStep(gpu, gpuOpt, step);
      await tf.setBackend(other);
      assert.ok(Math.abs(there - here) <= 1e-4 * Math.abs(here), `step ${step}: loss ${there} on ${other}, ${here} on webgpu`);
    }
    await saveCheckpoint(join(root, 'b'), resumed.m, resumed.optimizer, { ...run, epoch: 2, rng: { seed: 1, nextEpoch: 3 } });
    const savedThere = await state(resumed.m, resumed.optimizer);

    const back = await restoreOn('webgpu', join(root, 'b', 'checkpoint'));
    assertBitwise(await state(back.m, back.optimizer), savedThere, 'restored on webgpu');
    assert.ok(Number.isFinite(await trainStep(back.m, back.optimizer, 5)));
    for (const x of [gpu, resumed.m, back.m]) x.dispose();
    for (const o of [gpuOpt, resumed.optimizer, back.optimizer]) o.dispose();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

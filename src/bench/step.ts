// One training step and one inference pass, as the experiment runner takes them
// (src/train/loop.ts): forward in training mode, categorical cross-entropy, tf.variableGrads,
// optimizer.applyGradients. Every tensor a step creates is disposed before it returns.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { categoricalCrossentropy } from '../engine/loop.js';

export type TrainStep = (xs: tf.Tensor, ys: tf.Tensor) => number;

export function makeTrainStep(model: tfl.LayersModel, optimizer: tf.Optimizer): TrainStep {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  return (xs, ys) => {
    const { value, grads } = tf.variableGrads(() => categoricalCrossentropy(ys, model.apply(xs, { training: true }) as tf.Tensor), vars);
    optimizer.applyGradients(grads);
    const loss = value.dataSync()[0]!;
    tf.dispose([value, ...Object.values(grads)]);
    return loss;
  };
}

/**
 * The same step, reading the loss back asynchronously (`await data()`): the read waits for the
 * device to finish the step, and it is the only read a GPU backend offers (webgpu has no
 * dataSync in Node).
 */
export function makeAsyncTrainStep(model: tfl.LayersModel, optimizer: tf.Optimizer): (xs: tf.Tensor, ys: tf.Tensor) => Promise<number> {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  return async (xs, ys) => {
    const { value, grads } = tf.variableGrads(() => categoricalCrossentropy(ys, model.apply(xs, { training: true }) as tf.Tensor), vars);
    optimizer.applyGradients(grads);
    tf.dispose(Object.values(grads));
    try {
      return (await value.data())[0]!;
    } finally {
      value.dispose();
    }
  };
}

/**
 * Forward pass in inference mode over the whole batch at once, as the PyTorch peer does
 * (predict's default would split it into chunks of 32); reading the result back forces any
 * lazy backend to finish.
 */
export function inferStep(model: tfl.LayersModel, xs: tf.Tensor): void {
  const probs = model.predict(xs, { batchSize: xs.shape[0] }) as tf.Tensor;
  probs.dataSync();
  probs.dispose();
}

/** inferStep reading the result back asynchronously (see makeAsyncTrainStep). */
export async function inferStepAsync(model: tfl.LayersModel, xs: tf.Tensor): Promise<void> {
  const probs = model.predict(xs, { batchSize: xs.shape[0] }) as tf.Tensor;
  try {
    await probs.data();
  } finally {
    probs.dispose();
  }
}

/** A random batch (uniform pixels in [0, 1), one-hot labels) from a seeded generator. */
export function randomBatch(batch: number, inputShape: readonly number[], classes: number, seed = 1): { xs: tf.Tensor; ys: tf.Tensor } {
  return tf.tidy(() => {
    const xs = tf.randomUniform([batch, ...inputShape], 0, 1, 'float32', seed);
    const labels = tf.randomUniform([batch], 0, classes, 'int32', seed + 1);
    return { xs, ys: tf.cast(tf.oneHot(labels, classes), 'float32') };
  });
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Median wall time in seconds of `steps` calls after `warmup` untimed ones. */
export function timeMedian(fn: () => void, warmup: number, steps: number): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

/** timeMedian of an asynchronous step. */
export async function timeMedianAsync(fn: () => Promise<unknown>, warmup: number, steps: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

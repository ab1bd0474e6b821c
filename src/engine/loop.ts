// One epoch of training with gradient accumulation, and one pass of validation.
//
// A step sees `batchSize` images as `batchSize / microBatch` micro-batches. Each micro-batch runs
// forward and backward in its own scope, and its gradients, weighted by its share of the step,
// are summed; the optimizer then applies the sum once, so a step's update equals one taken on
// the whole batch — except for BatchNorm, whose batch statistics (and moving-average updates)
// come from each micro-batch, or, with `replicas`, from each group inside it.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { withBatchNormGroups } from '../models/batch-norm.js';

export interface Batch {
  xs: tf.Tensor;
  ys: tf.Tensor;
}

export type Batches = Iterable<Batch> | AsyncIterable<Batch>;

export interface StepInfo {
  step: number;
  steps: number;
  /** Mean training loss and accuracy over the epoch so far. */
  loss: number;
  /** This step's loss. */
  stepLoss: number;
  acc: number;
  images: number;
  seconds: number;
}

export interface EpochMetrics {
  loss: number;
  acc: number;
  images: number;
  seconds: number;
}

/** Keras' categorical cross-entropy on probabilities: mean over the batch of −Σ y·log(clip(p)). */
export function categoricalCrossentropy(ys: tf.Tensor, probs: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const eps = 1e-7;
    const p = tf.clipByValue(tf.div(probs, tf.sum(probs, -1, true)), eps, 1 - eps);
    return tf.neg(tf.mean(tf.sum(tf.mul(ys, tf.log(p)), -1))) as tf.Scalar;
  });
}

function correctCount(ys: tf.Tensor, probs: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(probs, -1), tf.argMax(ys, -1)), 'float32')) as tf.Scalar);
}

export function stepCount(images: number, batchSize: number): number {
  return Math.ceil(images / batchSize);
}

export interface TrainEpochOptions {
  model: tfl.LayersModel;
  optimizer: tf.Optimizer;
  /** Micro-batches in order; each step is the next `batchSize` images, so microBatch must divide batchSize. */
  batches: Batches;
  images: number;
  batchSize: number;
  /** After every step; a callback that throws ends the epoch with its error. */
  onStep?: (info: StepInfo) => void;
  /**
   * Checked after every step, once the event loop has had its turn (so that a SIGINT handler can
   * run); an aborted signal ends the epoch with an AbortError.
   */
  signal?: AbortSignal;
  /** L2 weight decay on the decayed weights (see decaysWeight), added to their gradients as in PyTorch's SGD (default 0). */
  weightDecay?: number;
  /**
   * The reference protocol's view of a step as the TPU replicas took it (see ReplicaView). Without
   * it BatchNorm takes statistics over each whole micro-batch and every micro-batch moves the
   * moving averages, and the epoch's loss and accuracy cover every image.
   */
  replicas?: ReplicaView;
}

/**
 * A step as TF1's keras_to_tpu_model ran it on 8 cores: each replica took its share of the batch
 * (`shard` images), normalised BatchNorm over its own share, and moved its own copy of the moving
 * averages; the model read back, and the metrics Keras logged, were replica 0's.
 */
export interface ReplicaView {
  /** BatchNorm statistics per group of this many images (the shard, or less when memory forces a smaller micro-batch); must divide the micro-batch. */
  group: number;
  /** Images of replica 0's share: the step's loss and accuracy are those of its first `shard` images. */
  shard: number;
}

/**
 * Weight decay applies to conv and dense kernels (conv, depthwise, SE reduce/expand kernels) but
 * not to biases or BatchNorm gamma/beta, the usual choice for CIFAR ResNets: decaying BN's scale
 * only rescales what the next BN undoes.
 */
export function decaysWeight(originalName: string): boolean {
  return /kernel$/.test(originalName);
}

export async function trainEpoch(opts: TrainEpochOptions): Promise<EpochMetrics> {
  const { model, optimizer, images, batchSize } = opts;
  const steps = stepCount(images, batchSize);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const weightDecay = opts.weightDecay ?? 0;
  const decayed = model.trainableWeights.map((w) => weightDecay > 0 && decaysWeight(w.originalName));
  const start = performance.now();
  let step = 0;
  let stepSize = Math.min(batchSize, images);
  let stepSeen = 0;
  let seen = 0;
  let lossSum = 0;
  let correct = 0;
  // Images the epoch's loss and accuracy cover: all of them, or replica 0's shares.
  let metricSeen = 0;
  let accum: (tf.Tensor | null)[] = vars.map(() => null);
  let stepLoss: tf.Tensor = tf.scalar(0);
  let stepCorrect: tf.Tensor = tf.scalar(0);
  const replicas = opts.replicas;
  // With replicas: the loss sum and correct count of replica 0's share, and the images they cover.
  let shardLoss: tf.Tensor = tf.scalar(0);
  let shardCorrect: tf.Tensor = tf.scalar(0);
  let shardSeen = 0;

  for await (const { xs, ys } of opts.batches) {
    const n = xs.shape[0]!;
    const share = n / stepSize;
    // Images of this micro-batch inside replica 0's share of the step.
    const inShard = replicas ? Math.max(0, Math.min(n, replicas.shard - stepSeen)) : 0;
    let mbCorrect: tf.Scalar | undefined;
    let mbShard: [tf.Scalar, tf.Scalar] | undefined;
    const forward = () =>
      tf.variableGrads(() => {
        const probs = model.apply(xs, { training: true }) as tf.Tensor;
        mbCorrect = tf.keep(correctCount(ys, probs));
        if (inShard > 0) {
          const [y0, p0] = [tf.slice(ys, 0, inShard), tf.slice(probs, 0, inShard)];
          mbShard = [tf.keep(tf.mul(categoricalCrossentropy(y0, p0), inShard) as tf.Scalar), tf.keep(correctCount(y0, p0))];
        }
        return tf.mul(categoricalCrossentropy(ys, probs), share) as tf.Scalar;
      }, vars);
    // Replica 0 moved its moving averages once per step, by its own statistics: the step's first group.
    const { value, grads } = replicas ? withBatchNormGroups({ size: replicas.group, movingAverages: stepSeen === 0 ? 'first' : 'none' }, forward) : forward();
    xs.dispose();
    ys.dispose();
    if (mbShard) {
      const [l, c] = [tf.add(shardLoss, mbShard[0]), tf.add(shardCorrect, mbShard[1])];
      tf.dispose([shardLoss, shardCorrect, ...mbShard]);
      [shardLoss, shardCorrect] = [l, c];
      shardSeen += inShard;
    }
    accum = vars.map((v, i) => {
      const g = grads[v.name];
      const prev = accum[i];
      if (!g) throw new Error(`no gradient for ${v.name}: the variable does not take part in the loss`);
      if (!prev) return g;
      const sum = tf.add(prev, g);
      prev.dispose();
      g.dispose();
      return sum;
    });
    const l = tf.add(stepLoss, value);
    const c = tf.add(stepCorrect, mbCorrect!);
    tf.dispose([stepLoss, stepCorrect, value, mbCorrect!]);
    stepLoss = l;
    stepCorrect = c;
    stepSeen += n;
    // A turn of the event loop after every micro-batch lets Ctrl-C (and timers) run mid-step.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (stepSeen < stepSize) continue;
    if (stepSeen > stepSize) throw new Error(`micro-batches straddle a step (${stepSeen} images in a step of ${stepSize})`);

    step++;
    const loss = (await stepLoss.data())[0]!;
    // grad += wd·w on the whole step's gradient, before the optimizer sees it (PyTorch SGD's weight_decay).
    accum = accum.map((g, i) => {
      if (!decayed[i]) return g;
      const sum = tf.tidy(() => tf.add(g!, tf.mul(vars[i]!, weightDecay)));
      g!.dispose();
      return sum;
    });
    optimizer.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: accum[i]! })));
    tf.dispose(accum.filter((g): g is tf.Tensor => g !== null));
    accum = vars.map(() => null);
    if (replicas) {
      // Keras logged replica 0's mean over its share; the epoch's figure is the mean over steps.
      lossSum += (await shardLoss.data())[0]!;
      correct += (await shardCorrect.data())[0]!;
      metricSeen += shardSeen;
      tf.dispose([shardLoss, shardCorrect]);
      [shardLoss, shardCorrect, shardSeen] = [tf.scalar(0), tf.scalar(0), 0];
    } else {
      lossSum += loss * stepSeen;
      correct += (await stepCorrect.data())[0]!;
      metricSeen += stepSeen;
    }
    seen += stepSeen;
    tf.dispose([stepLoss, stepCorrect]);
    stepLoss = tf.scalar(0);
    stepCorrect = tf.scalar(0);
    stepSeen = 0;
    stepSize = Math.min(batchSize, images - seen);
    // The loss of this step alone, so that a non-finite one is seen at the step it happens.
    try {
      opts.onStep?.({ step, steps, loss: lossSum / metricSeen, stepLoss: loss, acc: correct / metricSeen, images: seen, seconds: (performance.now() - start) / 1000 });
    } catch (e) {
      tf.dispose([stepLoss, stepCorrect, shardLoss, shardCorrect]);
      throw e;
    }
    if (opts.signal?.aborted) {
      tf.dispose([stepLoss, stepCorrect, shardLoss, shardCorrect]);
      throw new DOMException(`stopped after step ${step}`, 'AbortError');
    }
  }
  tf.dispose([stepLoss, stepCorrect, shardLoss, shardCorrect, ...accum.filter((g): g is tf.Tensor => g !== null)]);
  if (seen !== images) throw new Error(`the epoch produced ${seen + stepSeen} training images, expected ${images}`);
  return { loss: lossSum / metricSeen, acc: correct / metricSeen, images: seen, seconds: (performance.now() - start) / 1000 };
}

/** Test-split loss and accuracy with the model in inference mode (BN uses its moving statistics). */
export async function evaluate(model: tfl.LayersModel, batches: Batches): Promise<{ loss: number; acc: number; images: number }> {
  let lossSum = 0;
  let correct = 0;
  let images = 0;
  for await (const { xs, ys } of batches) {
    const n = xs.shape[0]!;
    const [l, c] = tf.tidy(() => {
      const probs = model.apply(xs, { training: false }) as tf.Tensor;
      return [tf.mul(categoricalCrossentropy(ys, probs), n), correctCount(ys, probs)];
    });
    xs.dispose();
    ys.dispose();
    lossSum += (await l.data())[0]!;
    correct += (await c.data())[0]!;
    tf.dispose([l, c]);
    images += n;
  }
  if (images === 0) throw new Error('the test split is empty');
  return { loss: lossSum / images, acc: correct / images, images };
}

// selab's WGSL kernels on webgpu against the cpu backend: each fused optimizer update over a grid
// of shapes (one element, less and more than a workgroup, ranks 1–4, many workgroups) against
// its optimizer's arithmetic (tfjs-core's or TF1's) in standard ops on cpu; each fused optimizer over three steps against
// tfjs-core's optimizer on cpu, checking that webgpu ran the fused kernel; the two convolution
// filter gradients over grids of shapes, strides and paddings against the cpu backend's kernels.
// On SwiftShader (CI) these shaders are small and compile in seconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-layers' bundle registers tfjs-core's gradients, which the optimizer tests' minimize needs.
import '@tensorflow/tfjs-layers';
import { ADAM_TF1_UPDATE, ADAM_UPDATE, MOMENTUM_UPDATE, RMSPROP_TF1_UPDATE, RMSPROP_UPDATE } from '../src/ops/kernel-names.js';
import { tf1AdamScalars } from '../src/engine/tf1-optimizers.js';
import { makeOptimizer } from '../src/engine/optimizers.js';
import { relativeError } from './relative-error.js';
import { readAll, skipWithoutWebGpu } from './webgpu.js';

const skip = await skipWithoutWebGpu();

/** WGSL's sqrt and division are within a few ulps, not correctly rounded. */
const MAX_REL = 1e-5;

const SHAPES = [[1], [5], [64], [65], [3, 5], [7, 11, 13], [3, 3, 16, 32], [300, 301]];

function random(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + (hi - lo) * (s / 2 ** 32);
  }
  return out;
}

interface KernelCase {
  name: string;
  inputs: string[];
  /** Range of each input's values (second moments and mean squares are non-negative). */
  ranges: [number, number][];
  attrs: Record<string, number>;
  /** The optimizer's arithmetic (tfjs-core's or TF1's) on the same inputs, in standard ops. */
  reference: (x: Record<string, tf.Tensor>) => tf.Tensor[];
}

const ADAM = { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, oneMinusAccBeta1: Math.fround(1 - Math.fround(0.9 * 0.9)), oneMinusAccBeta2: Math.fround(1 - Math.fround(0.999 * 0.999)) };
const RMS = { lr: 0.001, decay: 0.9, momentum: 0.5, epsilon: 1e-7 };
const MOM = { lr: 0.01, momentum: 0.9 };
const ADAM_TF1 = tf1AdamScalars(0.001, 0.9, 0.999, 1e-8, 3);
const RMS_TF1 = { lr: Math.fround(1e-5), oneMinusDecay: Math.fround(1 - Math.fround(0.9)), momentum: 0, epsilon: Math.fround(1e-10) };

const CASES: KernelCase[] = [
  {
    name: ADAM_UPDATE,
    inputs: ['value', 'm', 'v', 'gradient'],
    ranges: [[-1, 1], [-0.1, 0.1], [0, 0.01], [-1, 1]],
    attrs: ADAM,
    reference: ({ value, m, v, gradient }) => {
      const newM = tf.add(tf.mul(m!, ADAM.beta1), tf.mul(gradient!, 1 - ADAM.beta1));
      const newV = tf.add(tf.mul(v!, ADAM.beta2), tf.mul(tf.square(gradient!), 1 - ADAM.beta2));
      const mHat = tf.div(newM, ADAM.oneMinusAccBeta1);
      const vHat = tf.div(newV, ADAM.oneMinusAccBeta2);
      return [tf.add(tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), ADAM.epsilon)), -ADAM.lr), value!), newM, newV];
    },
  },
  {
    name: RMSPROP_UPDATE,
    inputs: ['value', 'ms', 'mom', 'gradient'],
    ranges: [[-1, 1], [0, 0.01], [-0.01, 0.01], [-1, 1]],
    attrs: RMS,
    reference: ({ value, ms, mom, gradient }) => {
      const newMs = tf.add(tf.mul(ms!, RMS.decay), tf.mul(tf.square(gradient!), 1 - RMS.decay));
      const newMom = tf.add(tf.mul(mom!, RMS.momentum), tf.div(tf.mul(gradient!, RMS.lr), tf.sqrt(tf.add(newMs, RMS.epsilon))));
      return [tf.sub(value!, newMom), newMs, newMom];
    },
  },
  {
    name: ADAM_TF1_UPDATE,
    inputs: ['value', 'm', 'v', 'gradient'],
    ranges: [[-1, 1], [-0.1, 0.1], [0, 0.01], [-1, 1]],
    attrs: ADAM_TF1 as unknown as Record<string, number>,
    reference: ({ value, m, v, gradient }) => {
      const newM = tf.add(m!, tf.mul(tf.sub(gradient!, m!), ADAM_TF1.oneMinusBeta1));
      const newV = tf.add(v!, tf.mul(tf.sub(tf.square(gradient!), v!), ADAM_TF1.oneMinusBeta2));
      return [tf.sub(value!, tf.div(tf.mul(newM, ADAM_TF1.alpha), tf.add(tf.sqrt(newV), ADAM_TF1.epsilon))), newM, newV];
    },
  },
  {
    name: RMSPROP_TF1_UPDATE,
    inputs: ['value', 'ms', 'mom', 'gradient'],
    ranges: [[-1, 1], [0.5, 1], [-0.01, 0.01], [-1, 1]],
    attrs: RMS_TF1,
    reference: ({ value, ms, mom, gradient }) => {
      const newMs = tf.add(ms!, tf.mul(tf.sub(tf.square(gradient!), ms!), RMS_TF1.oneMinusDecay));
      const newMom = tf.add(tf.mul(mom!, RMS_TF1.momentum), tf.div(tf.mul(gradient!, RMS_TF1.lr), tf.sqrt(tf.add(newMs, RMS_TF1.epsilon))));
      return [tf.sub(value!, newMom), newMs, newMom];
    },
  },
  {
    name: MOMENTUM_UPDATE,
    inputs: ['value', 'acc', 'gradient'],
    ranges: [[-1, 1], [-0.1, 0.1], [-1, 1]],
    attrs: MOM,
    reference: ({ value, acc, gradient }) => {
      const newAcc = tf.add(tf.mul(MOM.momentum, acc!), gradient!);
      return [tf.add(tf.mul(newAcc, -MOM.lr), value!), newAcc];
    },
  },
];

async function runOn(backend: string, c: KernelCase, shape: number[], fn: (x: Record<string, tf.Tensor>) => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const n = tf.util.sizeFromShape(shape);
  const inputs = Object.fromEntries(c.inputs.map((name, k) => [name, tf.tensor(random(n, 100 * k + n, ...c.ranges[k]!), shape)]));
  const outputs = fn(inputs);
  for (const o of outputs) assert.deepEqual(o.shape, shape);
  const values = await readAll(outputs);
  tf.dispose([...Object.values(inputs), ...outputs]);
  return values;
}

for (const c of CASES) {
  test(`${c.name} in WGSL equals its optimizer's float32 arithmetic in standard ops on cpu, shapes ${SHAPES.map((s) => s.join('×')).join(', ')}`, { skip, timeout: 300_000 }, async () => {
    for (const shape of SHAPES) {
      const want = await runOn('cpu', c, shape, (x) => tf.tidy(() => c.reference(x)));
      const before = tf.memory().numTensors;
      const got = await runOn('webgpu', c, shape, (x) => tf.engine().runKernel(c.name, x as tf.NamedTensorMap, c.attrs) as tf.Tensor[]);
      assert.equal(tf.memory().numTensors, before, 'every output disposed');
      assert.equal(got.length, want.length);
      want.forEach((w, k) => {
        const err = relativeError(got[k]!, w);
        assert.ok(err <= MAX_REL, `${c.name} output ${k} at shape [${shape.join(',')}]: relative error ${err}`);
      });
    }
  });
}

/**
 * Three steps of a quadratic loss with the fused optimizer on webgpu and tfjs-core's on cpu: the
 * weights and optimizer state agree, and webgpu ran the fused kernel.
 */
async function compareOptimizers(reference: tf.Optimizer, fused: tf.Optimizer, kernelName: string): Promise<void> {
  const shapes = [[3, 3, 16, 32], [32], [4, 4, 8, 8, 2]];
  const run = async (backend: string, optimizer: tf.Optimizer) => {
    await tf.setBackend(backend);
    const vars = shapes.map((shape, k) => tf.variable(tf.tensor(random(tf.util.sizeFromShape(shape), 11 + k, 0, 1), shape)));
    const targets = shapes.map((shape, k) => tf.tensor(random(tf.util.sizeFromShape(shape), 21 + k, 0, 1), shape));
    const kernels = new Set<string>();
    for (let step = 0; step < 3; step++) {
      const profile = await tf.profile(() => {
        optimizer.minimize(() => tf.addN(vars.map((v, k) => tf.sum(tf.squaredDifference(v, targets[k]!)))) as tf.Scalar);
      });
      profile.kernelNames.forEach((name) => kernels.add(name));
    }
    const out = await readAll(vars);
    const weights = await optimizer.getWeights();
    const state = await readAll(weights.map((w) => w.tensor));
    tf.dispose([...vars, ...targets]);
    optimizer.dispose();
    return { out, state, kernels };
  };
  const want = await run('cpu', reference);
  const got = await run('webgpu', fused);
  assert.ok(got.kernels.has(kernelName), `webgpu ran ${[...got.kernels].join(', ')}`);
  want.out.forEach((w, k) => assert.ok(relativeError(got.out[k]!, w) <= MAX_REL, `variable ${k}: relative error ${relativeError(got.out[k]!, w)}`));
  assert.equal(got.state.length, want.state.length);
  want.state.forEach((w, k) => assert.ok(relativeError(got.state[k]!, w) <= MAX_REL, `optimizer weight ${k}: relative error ${relativeError(got.state[k]!, w)}`));
  assert.equal(got.state[0]![0], 3, 'iterations');
}

test("the fused Adam on webgpu equals tfjs-core's Adam on cpu over three steps", { skip, timeout: 300_000 }, async () => {
  await compareOptimizers(tf.train.adam(0.01, 0.9, 0.999, 1e-7), makeOptimizer({ name: 'adam', lr: 0.01 }), ADAM_UPDATE);
});

test("the fused RMSProp on webgpu equals tfjs-core's RMSProp on cpu over three steps", { skip, timeout: 300_000 }, async () => {
  await compareOptimizers(tf.train.rmsprop(0.01, 0.9, 0, 1e-7, false), makeOptimizer({ name: 'rmsprop', lr: 0.01 }), RMSPROP_UPDATE);
});

test("TF1's Adam and RMSProp on webgpu (fused) equal their standard-op form on cpu over three steps", { skip, timeout: 300_000 }, async () => {
  await compareOptimizers(makeOptimizer('adam-tf1'), makeOptimizer('adam-tf1'), ADAM_TF1_UPDATE);
  await compareOptimizers(makeOptimizer({ name: 'rmsprop-tf1', lr: 1e-3 }), makeOptimizer({ name: 'rmsprop-tf1', lr: 1e-3 }), RMSPROP_TF1_UPDATE);
});

test("the fused momentum SGD on webgpu equals tfjs-core's on cpu over three steps", { skip, timeout: 300_000 }, async () => {
  await compareOptimizers(tf.train.momentum(0.01, 0.9, false), makeOptimizer({ name: 'sgd-momentum', lr: 0.01, momentum: 0.9 }), MOMENTUM_UPDATE);
});

interface ConvCase {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: number;
  pad: 'same' | 'valid';
}

/** The filter gradient from `name` on `backend` for random x and dy. */
async function filterGradient(backend: string, name: string, c: ConvCase, depthwise: boolean): Promise<Float32Array> {
  await tf.setBackend(backend);
  const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad, undefined, depthwise);
  const x = tf.tensor(random(tf.util.sizeFromShape(c.x), 3), c.x);
  const dy = tf.tensor(random(tf.util.sizeFromShape(info.outShape), 4), info.outShape);
  const attrs = depthwise
    ? { strides: c.strides, dilations: 1, pad: c.pad, filterShape: c.filter }
    : { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape: c.filter };
  const before = tf.memory().numTensors;
  const dw = tf.engine().runKernel(name, { x, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  assert.deepEqual(dw.shape, c.filter);
  const [values] = await readAll([dw]);
  tf.dispose([x, dy, dw]);
  assert.equal(tf.memory().numTensors, before - 2, 'no tensor left behind');
  return values!;
}

/** Sums of up to a few thousand products in another order. */
const CONV_MAX_REL = 1e-4;

const CONV_CASES: ConvCase[] = [
  { x: [2, 8, 8, 3], filter: [3, 3, 3, 4], strides: 1, pad: 'same' },
  { x: [2, 9, 9, 5], filter: [3, 3, 5, 6], strides: 2, pad: 'same' },
  { x: [1, 8, 8, 4], filter: [3, 3, 4, 8], strides: 2, pad: 'valid' },
  { x: [3, 5, 5, 2], filter: [5, 5, 2, 3], strides: 1, pad: 'same' },
  { x: [2, 6, 6, 8], filter: [1, 1, 8, 16], strides: 1, pad: 'valid' },
  { x: [2, 7, 7, 4], filter: [1, 1, 4, 4], strides: 2, pad: 'same' },
  { x: [4, 16, 16, 16], filter: [3, 3, 16, 32], strides: 1, pad: 'same' },
];

test(`Conv2DBackpropFilter on webgpu (im2col + matmul) equals the cpu backend's, ${CONV_CASES.length} shapes, in one and in several chunks`, { skip, timeout: 300_000 }, async () => {
  const { convTuning } = await import('../src/backend/webgpu/kernels/conv.js');
  const limit = convTuning.maxPatchElements;
  try {
    for (const chunked of [false, true]) {
      // Patches of about 1.5 images at a time: chunks of one image, the last one shorter.
      for (const c of CONV_CASES) {
        const [, h, w] = c.x;
        convTuning.maxPatchElements = chunked ? Math.ceil(1.5 * h * w * c.filter[0] * c.filter[1] * c.filter[2]) : limit;
        const want = await filterGradient('cpu', tf.Conv2DBackpropFilter, c, false);
        const got = await filterGradient('webgpu', tf.Conv2DBackpropFilter, c, false);
        const err = relativeError(got, want);
        assert.ok(err <= CONV_MAX_REL, `x [${c.x}], filter [${c.filter}], stride ${c.strides}, ${c.pad}${chunked ? ', chunked' : ''}: relative error ${err}`);
      }
    }
  } finally {
    convTuning.maxPatchElements = limit;
  }
});

const DEPTHWISE_CASES: ConvCase[] = [
  { x: [2, 8, 8, 4], filter: [3, 3, 4, 1], strides: 1, pad: 'same' },
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 2], strides: 2, pad: 'same' },
  { x: [1, 16, 16, 8], filter: [3, 3, 8, 1], strides: 2, pad: 'valid' },
  { x: [1, 2, 2, 1], filter: [3, 3, 1, 1], strides: 1, pad: 'same' },
  { x: [8, 32, 32, 16], filter: [3, 3, 16, 1], strides: 1, pad: 'same' },
];

test(`DepthwiseConv2dNativeBackpropFilter on webgpu (sliced sums) equals the cpu backend's, ${DEPTHWISE_CASES.length} shapes`, { skip, timeout: 300_000 }, async () => {
  for (const c of DEPTHWISE_CASES) {
    const want = await filterGradient('cpu', tf.DepthwiseConv2dNativeBackpropFilter, c, true);
    const got = await filterGradient('webgpu', tf.DepthwiseConv2dNativeBackpropFilter, c, true);
    const err = relativeError(got, want);
    assert.ok(err <= CONV_MAX_REL, `x [${c.x}], filter [${c.filter}], stride ${c.strides}, ${c.pad}: relative error ${err}`);
  }
});

/** x, dy, scale and offset for a channels-last BatchNorm of `shape`. */
function bnInputs(shape: number[]): Record<'x' | 'dy' | 'scale' | 'offset', tf.Tensor> {
  const n = tf.util.sizeFromShape(shape);
  const c = shape.at(-1)!;
  return {
    x: tf.tensor(random(n, 31, -2, 3), shape),
    dy: tf.tensor(random(n, 32), shape),
    scale: tf.tensor(random(c, 33, 0.5, 1.5), [c]),
    offset: tf.tensor(random(c, 34), [c]),
  };
}

const BN_EPS = 1e-3;
const BN_SHAPES = [[2, 4, 4, 3], [1, 1, 2, 5], [3, 7, 7, 8], [64, 10], [2, 16, 16, 32], [8, 32, 32, 16]];

test(`SelabBatchNormTrain and its gradient on webgpu equal BatchNorm from moments in standard ops on cpu, shapes ${BN_SHAPES.map((s) => s.join('×')).join(', ')}`, { skip, timeout: 300_000 }, async () => {
  const { BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD } = await import('../src/ops/kernel-names.js');
  for (const shape of BN_SHAPES) {
    const axes = shape.slice(0, -1).map((_, k) => k);
    await tf.setBackend('cpu');
    const ref = bnInputs(shape);
    // y = batchNorm(x) with the batch's moments, and its gradients for the upstream dy, as tfjs-layers differentiates them.
    const forward = (x: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor) => {
      const { mean, variance } = tf.moments(x, axes);
      return { y: tf.batchNorm(x, mean, variance, offset, scale, BN_EPS), mean, variance };
    };
    const wantOut = tf.tidy(() => Object.values(forward(ref.x, ref.scale, ref.offset)));
    const wantGrads = tf.tidy(() => tf.grads((x: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => tf.sum(tf.mul(forward(x, s, o).y, ref.dy)))([ref.x, ref.scale, ref.offset]));
    const want = await readAll([...wantOut, ...wantGrads]);
    tf.dispose([...Object.values(ref), ...wantOut, ...wantGrads]);

    await tf.setBackend('webgpu');
    const gpu = bnInputs(shape);
    const before = tf.memory().numTensors;
    const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAIN, { x: gpu.x, scale: gpu.scale, offset: gpu.offset }, { varianceEpsilon: BN_EPS }) as tf.Tensor[];
    const [dx, dScale, dOffset] = tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD, { x: gpu.x, dy: gpu.dy, mean: mean!, variance: variance!, scale: gpu.scale }, { varianceEpsilon: BN_EPS }) as tf.Tensor[];
    assert.deepEqual([y!.shape, mean!.shape, dx!.shape, dScale!.shape, dOffset!.shape], [shape, [shape.at(-1)], shape, [shape.at(-1)], [shape.at(-1)]]);
    const got = await readAll([y!, mean!, variance!, dx!, dScale!, dOffset!]);
    tf.dispose([y!, mean!, variance!, dx!, dScale!, dOffset!]);
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
    tf.dispose(Object.values(gpu));
    ['y', 'mean', 'variance', 'dx', 'dScale', 'dOffset'].forEach((name, k) => {
      const err = relativeError(got[k]!, want[k]!, 1e-2);
      assert.ok(err <= CONV_MAX_REL, `${name} at shape [${shape}]: relative error ${err}`);
    });
  }
});

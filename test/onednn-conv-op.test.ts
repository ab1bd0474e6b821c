// Differential tests of SelabConv2D (src/backend/onednn/kernels/conv-op.ts), the kernel behind
// tfjs-layers' Conv2D and DepthwiseConv2D on onednn: its output and its gradients (x, filter,
// bias) against tfjs's unfused ops (conv2d / depthwiseConv2d, add, relu / relu6) on the cpu
// backend, with direct and Winograd convolutions; and that the layers take it.
//
// Error metric: max|onednn − cpu| / max(1, max|cpu|), at most 1e-4 (test/relative-error.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { addonLoadError, loadAddon } from '../src/backend/onednn/addon.js';
import { ONEDNN_BACKEND, registerOneDnnBackend } from '../src/backend/onednn/backend.js';
import { conv2dOp, CONV2D, type Conv2DAttrs } from '../src/backend/onednn/kernels/conv-op.js';
import { profileKernels } from '../src/bench/profile.js';
import { relativeError } from './relative-error.js';

const TOLERANCE = 1e-4;
const available = registerOneDnnBackend();
const skip = available ? false : `the onednn addon is not built (${addonLoadError()?.message.split('\n')[0]}); build it with \`node native/build.mjs\``;

let seed = 777;
function random(n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    out[i] = (seed / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}

/** Counts calls of the native convolution entry points. */
const calls: Record<string, number> = {};
if (available) {
  const addon = loadAddon() as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const name of ['convForward', 'convBackwardData', 'convBackwardWeights']) {
    const original = addon[name]!;
    calls[name] = 0;
    addon[name] = (...args: unknown[]) => {
      const ok = original(...args);
      assert.equal(ok, true, `oneDNN rejected ${name}`);
      calls[name]!++;
      return ok;
    };
  }
}

interface Case {
  name: string;
  x: number[];
  /** Output channels, or the depth multiplier when depthwise. */
  out: number;
  k: number;
  strides: [number, number];
  pad: Conv2DAttrs['pad'];
  depthwise?: boolean;
  bias?: boolean;
  activation?: Conv2DAttrs['activation'];
}

const CASES: Case[] = [
  { name: 'dense 3x3 same, bias, linear', x: [2, 7, 7, 5], out: 6, k: 3, strides: [1, 1], pad: 'same', bias: true },
  { name: 'dense 3x3 stride 2 valid, relu', x: [2, 9, 9, 4], out: 8, k: 3, strides: [2, 2], pad: 'valid', bias: true, activation: 'relu' },
  { name: 'dense 1x1, no bias, relu6', x: [2, 5, 5, 16], out: 24, k: 1, strides: [1, 1], pad: 'valid', activation: 'relu6' },
  { name: 'dense explicit pad', x: [1, 8, 7, 3], out: 4, k: 3, strides: [2, 1], pad: [[0, 0], [0, 1], [1, 2], [0, 0]], bias: true },
  // Large enough for the Winograd path (3x3 stride 1, >= 32 channels each side).
  { name: 'dense 3x3 64->64 (Winograd)', x: [4, 12, 12, 64], out: 64, k: 3, strides: [1, 1], pad: 'same', bias: true, activation: 'relu' },
  { name: 'dense 3x3 32->48 (Winograd)', x: [3, 10, 9, 32], out: 48, k: 3, strides: [1, 1], pad: 'same' },
  { name: 'depthwise 3x3 same, relu6', x: [2, 8, 8, 16], out: 1, k: 3, strides: [1, 1], pad: 'same', depthwise: true, activation: 'relu6' },
  { name: 'depthwise stride 2, explicit (0,1) pad, bias', x: [2, 8, 8, 12], out: 1, k: 3, strides: [2, 2], pad: [[0, 0], [0, 1], [0, 1], [0, 0]], depthwise: true, bias: true },
  { name: 'depthwise multiplier 2, valid', x: [1, 7, 7, 6], out: 2, k: 3, strides: [1, 1], pad: 'valid', depthwise: true, bias: true, activation: 'relu' },
];

interface Data {
  x: Float32Array;
  filter: Float32Array;
  bias: Float32Array | null;
  dy: Float32Array;
  filterShape: number[];
  outShape: number[];
}

function data(c: Case): Data {
  const filterShape = [c.k, c.k, c.x[3]!, c.out];
  const info = tf.backend_util.computeConv2DInfo(
    c.x as [number, number, number, number], filterShape as [number, number, number, number], c.strides, 1,
    Array.isArray(c.pad) ? (c.pad as unknown as tf.backend_util.ExplicitPadding) : c.pad, undefined, !!c.depthwise,
  );
  const fanIn = c.k * c.k * (c.depthwise ? 1 : c.x[3]!);
  return {
    x: random(tf.util.sizeFromShape(c.x), 3),
    filter: random(tf.util.sizeFromShape(filterShape), 2 / Math.sqrt(fanIn)),
    bias: c.bias ? random(filterShape[3]! * (c.depthwise ? c.x[3]! : 1)) : null,
    dy: random(tf.util.sizeFromShape(info.outShape)),
    filterShape,
    outShape: info.outShape,
  };
}

function attrs(c: Case): Conv2DAttrs {
  return { strides: c.strides, pad: c.pad, dilations: [1, 1], depthwise: !!c.depthwise, activation: c.activation ?? 'linear' };
}

/** y, and the gradients of sum(y * dy) with respect to x, filter and bias. */
function run(c: Case, d: Data, f: (x: tf.Tensor, filter: tf.Tensor, bias: tf.Tensor | null) => tf.Tensor): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor(d.x, c.x);
    const filter = tf.tensor(d.filter, d.filterShape);
    const bias = d.bias ? tf.tensor1d(d.bias) : null;
    const dy = tf.tensor(d.dy, d.outShape);
    const y = f(x, filter, bias);
    const args = bias ? [x, filter, bias] : [x, filter];
    const grads = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(a[0]!, a[1]!, a[2] ?? null), dy)))(args);
    return [y, ...grads].map((t) => t.dataSync().slice() as Float32Array);
  });
}

/** tfjs's own ops, unfused, as the cpu reference. */
function reference(c: Case) {
  return (x: tf.Tensor, filter: tf.Tensor, bias: tf.Tensor | null): tf.Tensor => {
    const pad = Array.isArray(c.pad) ? (c.pad as unknown as tf.backend_util.ExplicitPadding) : c.pad;
    let y = c.depthwise
      ? tf.depthwiseConv2d(x as tf.Tensor4D, filter as tf.Tensor4D, c.strides, pad as 'same')
      : tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, c.strides, pad as 'same');
    if (bias) y = tf.add(y, bias);
    if (c.activation === 'relu') y = tf.relu(y);
    if (c.activation === 'relu6') y = tf.relu6(y);
    return y;
  };
}

async function compare(c: Case, winograd: 'on' | 'off'): Promise<void> {
  const d = data(c);
  await tf.setBackend('cpu');
  const expected = run(c, d, reference(c));
  await tf.setBackend(ONEDNN_BACKEND);
  loadAddon()!.setConvWinograd(winograd);
  try {
    const before = { ...calls };
    const actual = run(c, d, (x, filter, bias) => conv2dOp(x, filter, bias, attrs(c)));
    assert.ok(calls['convForward']! > before['convForward']!, 'the forward pass did not run natively');
    assert.ok(calls['convBackwardData']! > before['convBackwardData']! && calls['convBackwardWeights']! > before['convBackwardWeights']!, 'the gradients did not run natively');
    const names = ['y', 'dx', 'dFilter', 'dBias'];
    actual.forEach((a, i) => {
      const err = relativeError(a, expected[i]!, 1);
      assert.ok(err <= TOLERANCE, `${names[i]}: relative error ${err} > ${TOLERANCE}`);
    });
  } finally {
    loadAddon()!.setConvWinograd('auto');
  }
}

describe('SelabConv2D matches tfjs ops on cpu', { skip }, () => {
  for (const c of CASES) {
    it(`${c.name}, direct`, () => compare(c, 'off'));
    if (!c.depthwise && c.k === 3 && c.strides[0] === 1) it(`${c.name}, Winograd`, () => compare(c, 'on'));
  }
});

describe('SelabConv2D gradients', { skip }, () => {
  it('computes no dx for an input that is not differentiated (the first layer)', async () => {
    await tf.setBackend(ONEDNN_BACKEND);
    const c = CASES[4]!;
    const d = data(c);
    const before = { ...calls };
    tf.tidy(() => {
      const x = tf.tensor(d.x, c.x);
      const filter = tf.variable(tf.tensor(d.filter, d.filterShape));
      const bias = tf.variable(tf.tensor1d(d.bias!));
      const { grads } = tf.variableGrads(() => tf.sum(conv2dOp(x, filter, bias, attrs(c))), [filter, bias]);
      assert.deepEqual(Object.keys(grads).length, 2);
      filter.dispose();
      bias.dispose();
    });
    assert.equal(calls['convBackwardData']! - before['convBackwardData']!, 0);
    assert.equal(calls['convBackwardWeights']! - before['convBackwardWeights']!, 1);
  });

  it('leaks no tensor when only some inputs are differentiated', async () => {
    await tf.setBackend(ONEDNN_BACKEND);
    const c = CASES[0]!;
    const d = data(c);
    const x = tf.tensor(d.x, c.x);
    const filter = tf.tensor(d.filter, d.filterShape);
    const bias = tf.tensor1d(d.bias!);
    const before = tf.memory().numTensors;
    const all = [x, filter, bias];
    for (const wrt of [[0], [1], [2], [0, 2], [1, 2], [0, 1, 2]]) {
      // tf.grads differentiates with respect to its arguments only; the others are closed over.
      const f = (...a: tf.Tensor[]) => {
        const args = [...all];
        wrt.forEach((k, i) => (args[k] = a[i]!));
        return tf.sum(conv2dOp(args[0]!, args[1]!, args[2]!, attrs(c)));
      };
      tf.dispose(tf.grads(f)(wrt.map((k) => all[k]!)));
    }
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, filter, bias]);
  });
});

describe('tfjs-layers convolutions on onednn', { skip }, () => {
  it('Conv2D and DepthwiseConv2D run SelabConv2D, with the layer output of the stock path', async () => {
    const input = tfl.input({ shape: [10, 10, 8] });
    let h = tfl.layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(input) as tfl.SymbolicTensor;
    h = tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'valid' }).apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.conv2d({ filters: 4, kernelSize: 1, useBias: false }).apply(h) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: h });
    const xs = random(2 * 10 * 10 * 8);
    await tf.setBackend('cpu');
    const expected = tf.tidy(() => (model.predict(tf.tensor(xs, [2, 10, 10, 8])) as tf.Tensor).dataSync().slice());
    await tf.setBackend(ONEDNN_BACKEND);
    let actual: Float32Array | undefined;
    const profile = profileKernels(ONEDNN_BACKEND, () => {
      actual = tf.tidy(() => (model.predict(tf.tensor(xs, [2, 10, 10, 8])) as tf.Tensor).dataSync().slice() as Float32Array);
    });
    assert.equal(profile.kernels.find((k) => k.kernel === CONV2D)?.calls, 3);
    assert.ok(relativeError(actual!, expected as Float32Array, 1) <= TOLERANCE);
    model.dispose();
  });
});

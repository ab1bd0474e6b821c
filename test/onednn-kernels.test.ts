// Differential tests: every native convolution, pooling and matmul kernel of the `onednn`
// backend against the `cpu` backend's kernel on the same random inputs.
//
// Error metric: max|onednn − cpu| / max(1, max|cpu|) over the output, at most 1e-4.
// (Relative to the output's scale with an absolute floor of 1e-4 for outputs below 1.)
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { addonLoadError, loadAddon } from '../src/backend/onednn/addon.js';
import { ONEDNN_BACKEND, registerOneDnnBackend } from '../src/backend/onednn/backend.js';
import { pooledBytes } from '../src/backend/onednn/memory.js';
import { relativeError } from './relative-error.js';

const TOLERANCE = 1e-4;
const available = registerOneDnnBackend();
const skip = available
  ? false
  : `the onednn addon is not built (${addonLoadError()?.message.split('\n')[0]}); build it with \`node native/build.mjs\``;

type Shape = number[];
interface Input {
  shape: Shape;
  values: Float32Array;
}

let seed = 12345;
function random(): number {
  // mulberry32: deterministic inputs make a failure reproducible.
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

function randomInput(shape: Shape, levels?: number): Input {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) {
    // `levels` draws from a few values (many ties) to pin down which max gets the gradient.
    values[i] = levels ? Math.floor(random() * levels) : random() * 2 - 1;
  }
  return { shape, values };
}

/** Counts native calls and rejections (false), to prove a case did not fall back to cpu. */
const nativeCalls = { count: 0, rejected: 0 };
const NATIVE_FUNCTIONS = ['convForward', 'convBackwardData', 'convBackwardWeights', 'poolForward', 'avgPoolBackward', 'maxPoolBackward', 'matmul'] as const;
if (available) {
  const addon = loadAddon() as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const name of NATIVE_FUNCTIONS) {
    const original = addon[name]!;
    addon[name] = (...args: unknown[]) => {
      const result = original(...args);
      nativeCalls.count++;
      if (result !== true) nativeCalls.rejected++;
      return result;
    };
  }
}

async function runKernel(backend: string, kernelName: string, inputs: Record<string, Input>, attrs: object): Promise<{ shape: Shape; values: Float32Array }> {
  await tf.setBackend(backend);
  const tensors: Record<string, tf.Tensor> = {};
  for (const [key, input] of Object.entries(inputs)) tensors[key] = tf.tensor(input.values, input.shape);
  const out = tf.engine().runKernel(kernelName, tensors as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as tf.Tensor;
  const result = { shape: out.shape, values: out.dataSync() as Float32Array };
  tf.dispose([out, ...Object.values(tensors)]);
  return result;
}


/**
 * Leaves a NaN-filled buffer of `elements` floats in the backend's recycled storage, so the
 * next output of that size starts as garbage and must be written in full.
 */
async function poisonRecycledStorage(elements: number): Promise<void> {
  await tf.setBackend(ONEDNN_BACKEND);
  const before = pooledBytes();
  tf.fill([elements], NaN).dispose();
  assert.ok(pooledBytes() >= before + elements * 4, 'the disposed buffer was not recycled');
}

async function check(kernelName: string, inputs: Record<string, Input>, attrs: object, poison = false): Promise<void> {
  const expected = await runKernel('cpu', kernelName, inputs, attrs);
  if (poison) await poisonRecycledStorage(expected.values.length);
  const pooled = pooledBytes();
  const before = { ...nativeCalls };
  const actual = await runKernel(ONEDNN_BACKEND, kernelName, inputs, attrs);
  if (poison) assert.ok(pooledBytes() < pooled, `${kernelName} did not take its output from recycled storage`);
  assert.equal(nativeCalls.count - before.count, 1, `${kernelName} did not run natively`);
  assert.equal(nativeCalls.rejected, before.rejected, `oneDNN rejected ${kernelName} ${JSON.stringify(attrs)}`);
  assert.deepEqual(actual.shape, expected.shape);
  const err = relativeError(actual.values, expected.values, 1);
  assert.ok(Number.isFinite(err) && err <= TOLERANCE, `${kernelName}: relative error ${err} > ${TOLERANCE}`);
}

type Pair = [number, number];
interface ConvCase {
  n: number;
  h: number;
  w: number;
  c: number;
  out: number; // output channels, or the depth multiplier for depthwise cases
  k: Pair;
  s: Pair;
  pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
  d?: Pair;
  round?: 'ceil' | 'floor' | 'round';
}

const describeCase = (c: ConvCase): string =>
  `n${c.n} ${c.h}x${c.w}x${c.c}→${c.out} k${c.k.join('x')} s${c.s.join(',')} ${JSON.stringify(c.pad)}` +
  `${c.d ? ` d${c.d.join(',')}` : ''}${c.round ? ` ${c.round}` : ''}`;

const CONV_CASES: ConvCase[] = [
  { n: 1, h: 7, w: 7, c: 3, out: 8, k: [3, 3], s: [1, 1], pad: 'same' },
  { n: 2, h: 9, w: 9, c: 5, out: 6, k: [3, 3], s: [2, 2], pad: 'valid' },
  { n: 3, h: 8, w: 8, c: 16, out: 16, k: [3, 3], s: [2, 2], pad: 'same' },
  { n: 2, h: 11, w: 10, c: 4, out: 7, k: [3, 3], s: [1, 1], pad: 'same', d: [2, 2] },
  { n: 1, h: 9, w: 7, c: 5, out: 3, k: [3, 2], s: [1, 1], pad: 'valid', d: [2, 3] },
  // 1x1 stride 1: the backward passes as matrix products (native/src/conv.cc, UseGemm), on one
  // thread and on two; the 512→32 case keeps the primitive for its data gradient (N·H·W < C·O).
  { n: 1, h: 5, w: 5, c: 512, out: 32, k: [1, 1], s: [1, 1], pad: 'valid' },
  { n: 2, h: 16, w: 16, c: 16, out: 24, k: [1, 1], s: [1, 1], pad: 'same' },
  { n: 4, h: 32, w: 32, c: 64, out: 64, k: [1, 1], s: [1, 1], pad: 'valid' },
  { n: 2, h: 6, w: 6, c: 64, out: 512, k: [3, 3], s: [1, 1], pad: 'same' },
  { n: 2, h: 7, w: 6, c: 6, out: 5, k: [3, 2], s: [2, 1], pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  { n: 1, h: 9, w: 9, c: 8, out: 4, k: [5, 5], s: [2, 2], pad: 1 },
  { n: 1, h: 8, w: 8, c: 4, out: 4, k: [3, 3], s: [2, 2], pad: 0, round: 'ceil' },
];

const DEPTHWISE_CASES: ConvCase[] = [
  { n: 1, h: 7, w: 7, c: 3, out: 1, k: [3, 3], s: [1, 1], pad: 'same' },
  { n: 2, h: 9, w: 9, c: 8, out: 2, k: [3, 3], s: [2, 2], pad: 'valid' },
  { n: 2, h: 10, w: 10, c: 32, out: 1, k: [3, 3], s: [2, 2], pad: 'same' },
  { n: 1, h: 9, w: 9, c: 6, out: 2, k: [3, 3], s: [1, 1], pad: 'same', d: [2, 2] },
  { n: 2, h: 5, w: 5, c: 512, out: 1, k: [3, 3], s: [1, 1], pad: 'same' },
  { n: 1, h: 6, w: 7, c: 17, out: 2, k: [3, 5], s: [1, 2], pad: [[0, 0], [2, 0], [1, 2], [0, 0]] },
];

function convShapes(c: ConvCase, depthwise: boolean) {
  const xShape = [c.n, c.h, c.w, c.c];
  const filterShape = [c.k[0], c.k[1], c.c, c.out];
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    c.s,
    c.d ?? 1,
    c.pad,
    c.round,
    depthwise,
  );
  return { xShape, filterShape, dyShape: info.outShape };
}

const convAttrs = (c: ConvCase) => ({ strides: c.s, pad: c.pad, dataFormat: 'NHWC', dilations: c.d ?? 1, dimRoundingMode: c.round });

describe('onednn convolutions match cpu', { skip }, () => {
  for (const c of CONV_CASES) {
    const { xShape, filterShape, dyShape } = convShapes(c, false);
    it(`Conv2D ${describeCase(c)}`, () => check(tf.Conv2D, { x: randomInput(xShape), filter: randomInput(filterShape) }, convAttrs(c)));
    // tfjs defines convolution gradients for dilation 1 only.
    if (c.d) continue;
    it(`Conv2DBackpropInput ${describeCase(c)}`, () =>
      check(tf.Conv2DBackpropInput, { dy: randomInput(dyShape), filter: randomInput(filterShape) }, { ...convAttrs(c), inputShape: xShape }));
    it(`Conv2DBackpropFilter ${describeCase(c)}`, () =>
      check(tf.Conv2DBackpropFilter, { x: randomInput(xShape), dy: randomInput(dyShape) }, { ...convAttrs(c), filterShape }));
  }
  // relu6 gets the 16-channel case, whose outputs reach past 6, so its upper clip is exercised.
  for (const [i, activation] of ['linear', 'relu', 'relu6', 'leakyrelu', 'sigmoid', 'elu'].entries()) {
    const c = CONV_CASES[i % 4]!;
    const { xShape, filterShape } = convShapes(c, false);
    it(`FusedConv2D bias+${activation} ${describeCase(c)}`, () =>
      check(
        tf.FusedConv2D,
        { x: randomInput(xShape), filter: randomInput(filterShape), bias: randomInput([c.out]) },
        { ...convAttrs(c), activation, leakyreluAlpha: 0.1 },
      ));
  }
  it('FusedConv2D without bias', () => {
    const c = CONV_CASES[2]!;
    const { xShape, filterShape } = convShapes(c, false);
    return check(tf.FusedConv2D, { x: randomInput(xShape), filter: randomInput(filterShape) }, { ...convAttrs(c), activation: 'relu' });
  });

  for (const c of DEPTHWISE_CASES) {
    const { xShape, filterShape, dyShape } = convShapes(c, true);
    it(`DepthwiseConv2dNative ${describeCase(c)}`, () =>
      check(tf.DepthwiseConv2dNative, { x: randomInput(xShape), filter: randomInput(filterShape) }, convAttrs(c)));
    it(`FusedDepthwiseConv2D bias+relu6 ${describeCase(c)}`, () =>
      check(
        tf.FusedDepthwiseConv2D,
        { x: randomInput(xShape), filter: randomInput(filterShape), bias: randomInput([c.c * c.out]) },
        { ...convAttrs(c), activation: 'relu6' },
      ));
    if (c.d) continue;
    it(`DepthwiseConv2dNativeBackpropInput ${describeCase(c)}`, () =>
      check(
        tf.DepthwiseConv2dNativeBackpropInput,
        { dy: randomInput(dyShape), filter: randomInput(filterShape) },
        { ...convAttrs(c), inputShape: xShape },
      ));
    it(`DepthwiseConv2dNativeBackpropFilter ${describeCase(c)}`, () =>
      check(tf.DepthwiseConv2dNativeBackpropFilter, { x: randomInput(xShape), dy: randomInput(dyShape) }, { ...convAttrs(c), filterShape }));
  }
});

interface PoolCase {
  n: number;
  h: number;
  w: number;
  c: number;
  k: Pair;
  s: Pair;
  pad: 'same' | 'valid' | number;
  round?: 'ceil' | 'floor' | 'round';
}

const POOL_CASES: PoolCase[] = [
  { n: 1, h: 7, w: 7, c: 3, k: [2, 2], s: [2, 2], pad: 'valid' },
  { n: 2, h: 9, w: 9, c: 8, k: [3, 3], s: [2, 2], pad: 'same' },
  { n: 2, h: 8, w: 8, c: 16, k: [3, 3], s: [1, 1], pad: 'same' },
  { n: 1, h: 5, w: 5, c: 512, k: [2, 2], s: [2, 2], pad: 'same' },
  { n: 3, h: 6, w: 7, c: 5, k: [3, 2], s: [1, 2], pad: 'valid' },
  { n: 1, h: 8, w: 8, c: 4, k: [3, 3], s: [2, 2], pad: 0, round: 'ceil' },
];

describe('onednn pooling matches cpu', { skip }, () => {
  for (const c of POOL_CASES) {
    const name = `n${c.n} ${c.h}x${c.w}x${c.c} k${c.k.join('x')} s${c.s.join(',')} ${c.pad}${c.round ? ` ${c.round}` : ''}`;
    const xShape = [c.n, c.h, c.w, c.c];
    const attrs = { filterSize: c.k, strides: c.s, pad: c.pad, dimRoundingMode: c.round };
    const info = tf.backend_util.computePool2DInfo(xShape as [number, number, number, number], c.k, c.s, 1, c.pad, c.round);
    it(`MaxPool ${name}`, () => check(tf.MaxPool, { x: randomInput(xShape) }, attrs));
    it(`AvgPool ${name}`, () => check(tf.AvgPool, { x: randomInput(xShape) }, attrs));
    // With 'ceil' rounding past the padding AvgPoolGrad deliberately runs the cpu kernel (pool.ts).
    if (!c.round) {
      it(`AvgPoolGrad ${name}`, () => check(tf.AvgPoolGrad, { dy: randomInput(info.outShape), input: randomInput(xShape) }, attrs));
    }
    it(`MaxPoolGrad ${name} (tied maxima)`, async () => {
      const x = randomInput(xShape, 3);
      const y = await runKernel('cpu', tf.MaxPool, { x }, attrs);
      await check(tf.MaxPoolGrad, { dy: randomInput(info.outShape), input: x, output: y }, attrs);
    });
  }
});

interface MatMulCase {
  a: Shape;
  b: Shape;
  transposeA: boolean;
  transposeB: boolean;
}

function matMulCases(): MatMulCase[] {
  const cases: MatMulCase[] = [];
  for (const transposeA of [false, true]) {
    for (const transposeB of [false, true]) {
      const [m, k, n] = [7, 5, 9];
      cases.push({ a: transposeA ? [3, k, m] : [3, m, k], b: transposeB ? [3, n, k] : [3, k, n], transposeA, transposeB });
    }
  }
  cases.push(
    { a: [1, 3, 5], b: [1, 5, 4], transposeA: false, transposeB: false },
    { a: [1, 6, 4], b: [3, 4, 5], transposeA: false, transposeB: false },
    { a: [3, 6, 4], b: [1, 5, 4], transposeA: false, transposeB: true },
    { a: [2, 3, 4, 5], b: [2, 3, 5, 6], transposeA: false, transposeB: false },
    { a: [1, 64, 512], b: [1, 10, 512], transposeA: false, transposeB: true },
    { a: [1, 512, 33], b: [1, 512, 10], transposeA: true, transposeB: false },
  );
  return cases;
}

describe('onednn matmul matches cpu', { skip }, () => {
  for (const c of matMulCases()) {
    const name = `${JSON.stringify(c.a)}${c.transposeA ? 'ᵀ' : ''} × ${JSON.stringify(c.b)}${c.transposeB ? 'ᵀ' : ''}`;
    const attrs = { transposeA: c.transposeA, transposeB: c.transposeB };
    it(`BatchMatMul ${name}`, () => check(tf.BatchMatMul, { a: randomInput(c.a), b: randomInput(c.b) }, attrs));
  }
  for (const activation of ['linear', 'relu', 'relu6', 'leakyrelu', 'sigmoid', 'elu']) {
    for (const transposeB of [false, true]) {
      const a = [1, 16, 40];
      const b = transposeB ? [1, 10, 40] : [1, 40, 10];
      it(`_FusedMatMul bias+${activation}${transposeB ? ' transposeB' : ''}`, () =>
        check(
          tf._FusedMatMul,
          { a: randomInput(a), b: randomInput(b), bias: randomInput([10]) },
          { transposeA: false, transposeB, activation, leakyreluAlpha: 0.1 },
        ));
    }
  }
});

// Outputs of more than 4 KiB come from recycled storage (src/backend/onednn/memory.ts) with
// stale contents; every kernel must write all of its output.
describe('onednn kernels overwrite recycled output storage', { skip }, () => {
  const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1 };
  const pool = { filterSize: 2, strides: 2, pad: 'valid' };
  const cases: [string, Record<string, Shape>, object][] = [
    [tf.Conv2D, { x: [4, 32, 32, 8], filter: [3, 3, 8, 64] }, attrs],
    [tf.Conv2DBackpropInput, { dy: [4, 32, 32, 8], filter: [3, 3, 64, 8] }, { ...attrs, inputShape: [4, 32, 32, 64] }],
    [tf.Conv2DBackpropFilter, { x: [1, 4, 4, 256], dy: [1, 4, 4, 128] }, { ...attrs, filterShape: [3, 3, 256, 128] }],
    [tf.DepthwiseConv2dNative, { x: [4, 32, 32, 64], filter: [3, 3, 64, 1] }, attrs],
    [tf.DepthwiseConv2dNativeBackpropInput, { dy: [4, 32, 32, 64], filter: [3, 3, 64, 1] }, { ...attrs, inputShape: [4, 32, 32, 64] }],
    [tf.MaxPool, { x: [4, 64, 64, 64] }, pool],
    [tf.AvgPoolGrad, { dy: [4, 16, 16, 64], input: [4, 32, 32, 64] }, pool],
    [tf.BatchMatMul, { a: [1, 512, 8], b: [1, 8, 512] }, { transposeA: false, transposeB: false }],
  ];
  for (const [kernelName, shapes, kernelAttrs] of cases) {
    it(kernelName, () => {
      const inputs: Record<string, Input> = {};
      for (const [key, shape] of Object.entries(shapes)) inputs[key] = randomInput(shape);
      return check(kernelName, inputs, kernelAttrs, true);
    });
  }
  it(tf.MaxPoolGrad, async () => {
    const x = randomInput([4, 32, 32, 64]);
    const y = await runKernel('cpu', tf.MaxPool, { x }, pool);
    await check(tf.MaxPoolGrad, { dy: randomInput(y.shape), input: x, output: y }, pool, true);
  });
});

// Differential tests of the native elementwise, reduction, transpose, tile and batch-norm
// kernels (and their fused gradients) against the cpu backend on random inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { profileKernels } from '../src/bench/profile.js';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { registerOneDnnBackend } from '../src/backend/onednn/backend.js';
import { allocFloat32, pooledBytes } from '../src/backend/onednn/memory.js';
import { loadAddon } from '../src/backend/onednn/addon.js';
import { broadcastPlan } from '../src/backend/onednn/kernels/eltwise.js';
import { skipWithoutNative } from './native.js';

const available = registerOneDnnBackend();
const skip = skipWithoutNative(available);

const MAX_REL = 1e-4;

/** Deterministic uniform values in [lo, hi). */
function random(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = lo + ((s >>> 0) / 2 ** 32) * (hi - lo);
  }
  return out;
}

function input(shape: number[], seed: number, lo = -1, hi = 1): { shape: number[]; values: Float32Array } {
  return { shape, values: random(tf.util.sizeFromShape(shape), seed, lo, hi) };
}

type Inputs = { shape: number[]; values: Float32Array }[];

/** Runs fn on fresh tensors on `backend`; returns every output's shape and values. */
function runOn(backend: string, inputs: Inputs, fn: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[]): { shape: number[]; values: Float32Array }[] {
  tf.setBackend(backend);
  return tf.tidy(() => {
    const xs = inputs.map((i) => tf.tensor(i.values.slice(), i.shape));
    const out = fn(...xs);
    return (Array.isArray(out) ? out : [out]).map((t) => ({ shape: t.shape, values: Float32Array.from(t.dataSync()) }));
  });
}

/** max |a − b| / max |b|, NaN where the two disagree on NaN. */
function relError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(a[i]!) !== Number.isNaN(b[i]!)) return NaN;
    if (Number.isNaN(b[i]!)) continue;
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

function compare(label: string, inputs: Inputs, fn: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[]): void {
  const want = runOn('cpu', inputs, fn);
  const got = runOn('onednn', inputs, fn);
  assert.equal(got.length, want.length, label);
  want.forEach((w, k) => {
    assert.deepEqual(got[k]!.shape, w.shape, `${label} output ${k} shape`);
    const err = relError(got[k]!.values, w.values);
    assert.ok(err <= MAX_REL, `${label} output ${k}: relative error ${err} > ${MAX_REL}`);
  });
}

const SHAPES: number[][] = [[1], [7], [3, 5], [2, 5, 7, 3], [4, 9, 9, 64], [1, 33, 17, 5], [2, 16, 16, 512]];

test('broadcastPlan collapses NHWC broadcasts to few dimensions', () => {
  assert.deepEqual(broadcastPlan([2, 4, 4, 8], [2, 4, 4, 8], [8]), { dims: [32, 8], aStrides: [8, 1], bStrides: [0, 1] });
  assert.deepEqual(broadcastPlan([2, 4, 4, 8], [2, 4, 4, 8], [2, 1, 1, 8]), { dims: [2, 16, 8], aStrides: [128, 8, 1], bStrides: [8, 0, 1] });
  assert.deepEqual(broadcastPlan([2, 3], [2, 3], [2, 3]), { dims: [6], aStrides: [1], bStrides: [1] });
  assert.deepEqual(broadcastPlan([2, 3], [], [2, 3]), { dims: [6], aStrides: [0], bStrides: [1] });
});

test('binary ops with broadcasting match the cpu backend', { skip }, () => {
  const pairs: [number[], number[]][] = [
    [[2, 5, 7, 3], [2, 5, 7, 3]], // same shape
    [[4, 9, 9, 64], [64]], // channel vector
    [[64], [4, 9, 9, 64]], // channel vector on the left
    [[4, 9, 9, 64], []], // scalar
    [[], [3, 5]],
    [[2, 16, 16, 512], [2, 1, 1, 512]], // SE gate
    [[5, 1], [1, 7]], // outer product
    [[3, 1, 4], [2, 1, 5, 1]], // both sides broadcast
    [[1, 33, 17, 5], [33, 1, 5]],
  ];
  const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ['add', tf.add], ['sub', tf.sub], ['mul', tf.mul], ['div', tf.div],
    ['maximum', tf.maximum], ['minimum', tf.minimum], ['squaredDifference', tf.squaredDifference],
  ];
  pairs.forEach(([sa, sb], k) => {
    for (const [name, op] of ops) {
      // Divisors kept away from zero so the relative error stays meaningful.
      const b = name === 'div' ? input(sb, 100 + k, 0.5, 2) : input(sb, 100 + k);
      compare(`${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`, [input(sa, k + 1), b], op);
    }
  });
});

test('binary ops on int32 fall back to the cpu kernels', { skip }, () => {
  tf.setBackend('onednn');
  const r = tf.tidy(() => tf.add(tf.tensor([1, 2, 3], [3], 'int32'), tf.tensor([10], [1], 'int32')));
  assert.equal(r.dtype, 'int32');
  assert.deepEqual(Array.from(r.dataSync()), [11, 12, 13]);
  r.dispose();
});

test('unary ops match the cpu backend', { skip }, () => {
  const ops: [string, (x: tf.Tensor) => tf.Tensor, number, number][] = [
    ['relu', tf.relu, -1, 1], ['relu6', tf.relu6, -8, 8], ['step', (x) => tf.step(x, 0.3), -1, 1],
    ['sigmoid', tf.sigmoid, -8, 8], ['sqrt', tf.sqrt, 0, 4], ['rsqrt', tf.rsqrt, 0.1, 4],
    ['square', tf.square, -3, 3], ['neg', tf.neg, -1, 1], ['exp', tf.exp, -5, 5], ['log', tf.log, 0.01, 10],
    ['abs', tf.abs, -1, 1], ['tanh', tf.tanh, -3, 3], ['reciprocal', tf.reciprocal, 0.5, 3],
    ['leakyRelu', (x) => tf.leakyRelu(x, 0.1), -1, 1], ['clipByValue', (x) => tf.clipByValue(x, -0.3, 0.6), -1, 1],
  ];
  SHAPES.forEach((shape, k) => {
    for (const [name, op, lo, hi] of ops) compare(`${name} ${JSON.stringify(shape)}`, [input(shape, 7 + k, lo, hi)], op);
  });
});

test('NaN propagates through relu, maximum and step as on the cpu backend', { skip }, () => {
  const x = { shape: [4], values: new Float32Array([NaN, -1, 2, 0]) };
  compare('relu NaN', [x], tf.relu);
  compare('step NaN', [x], (t) => tf.step(t, 0.5));
  compare('maximum NaN', [x, { shape: [4], values: new Float32Array([0, NaN, 1, 0]) }], tf.maximum);
});

test('sum, mean, max and min over axes match the cpu backend', { skip }, () => {
  const cases: [number[], number | number[] | undefined, boolean][] = [
    [[4, 9, 9, 64], [0, 1, 2], false], // all but the channel axis (batch-norm statistics)
    [[2, 16, 16, 512], [1, 2], true], // spatial axes (SE squeeze)
    [[2, 5, 7, 3], 3, false], // last axis
    [[2, 5, 7, 3], -1, true],
    [[2, 5, 7, 3], 0, false],
    [[2, 5, 7, 3], undefined, false], // everything
    [[2, 5, 7, 3], [0, 2], false], // not contiguous: cpu fallback
    [[1, 33, 17, 5], [1, 2, 3], false],
    [[100003], 0, false],
  ];
  cases.forEach(([shape, axis, keepDims], k) => {
    const x = [input(shape, 40 + k)];
    const label = `${JSON.stringify(shape)} axis ${JSON.stringify(axis)} keepDims ${keepDims}`;
    compare(`sum ${label}`, x, (t) => tf.sum(t, axis, keepDims));
    compare(`mean ${label}`, x, (t) => tf.mean(t, axis, keepDims));
    compare(`max ${label}`, x, (t) => tf.max(t, axis, keepDims));
    compare(`min ${label}`, x, (t) => tf.min(t, axis, keepDims));
  });
});

test('transpose and tile match the cpu backend', { skip }, () => {
  const perms: [number[], number[]][] = [
    [[2, 5, 7, 3], [0, 3, 1, 2]], [[2, 5, 7, 3], [3, 1, 2, 0]], [[4, 9, 9, 64], [1, 2, 0, 3]],
    [[3, 5], [1, 0]], [[2, 3, 4, 5, 6], [4, 0, 3, 1, 2]],
  ];
  perms.forEach(([shape, perm], k) => compare(`transpose ${JSON.stringify(shape)} ${JSON.stringify(perm)}`, [input(shape, 60 + k)], (t) => tf.transpose(t, perm)));
  const tiles: [number[], number[]][] = [[[1, 1, 1, 64], [4, 9, 9, 1]], [[2, 3], [3, 2]], [[5], [4]], [[2, 5, 7, 3], [1, 2, 1, 3]]];
  tiles.forEach(([shape, reps], k) => compare(`tile ${JSON.stringify(shape)} ${JSON.stringify(reps)}`, [input(shape, 70 + k)], (t) => tf.tile(t, reps)));
});

test('slice and pad match the cpu backend', { skip }, () => {
  const slices: [number[], number[], number[]][] = [
    [[2, 17, 17, 8], [0, 0, 0, 0], [2, 16, 16, 8]], // ZeroPadding2D's gradient
    [[2, 5, 7, 3], [1, 2, 3, 1], [1, 3, -1, 2]],
    [[9, 4], [3, 0], [4, 4]],
    [[100], [7], [50]],
    [[4, 6, 6, 3], [0, 0, 0, 0], [4, 6, 6, 3]], // model.predict's one batch: shares storage
  ];
  slices.forEach(([shape, begin, size], k) => compare(`slice ${JSON.stringify([shape, begin, size])}`, [input(shape, 130 + k)], (t) => tf.slice(t, begin, size)));
  const pads: [number[], [number, number][], number][] = [
    [[2, 16, 16, 8], [[0, 0], [0, 1], [0, 1], [0, 0]], 0], // ZeroPadding2D ((0,1),(0,1))
    [[2, 5, 7, 3], [[1, 2], [0, 3], [2, 0], [1, 1]], 1.5],
    [[7], [[3, 4]], -2],
  ];
  pads.forEach(([shape, paddings, value], k) => compare(`pad ${JSON.stringify([shape, paddings])}`, [input(shape, 140 + k)], (t) => tf.pad(t, paddings, value)));
});

test('a whole-tensor slice shares storage and outlives its input', { skip }, () => {
  tf.setBackend('onednn');
  const before = tf.memory().numDataBuffers;
  const x = tf.tensor(input([4, 6, 6, 3], 150).values, [4, 6, 6, 3]);
  const want = Array.from(x.dataSync());
  const y = tf.slice(x, [0, 0, 0, 0], [4, 6, 6, 3]);
  assert.equal(tf.memory().numDataBuffers, before + 1, 'no second copy');
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), want);
  y.dispose();
  assert.equal(tf.memory().numDataBuffers, before, 'storage freed with the last tensor');
});

test('cast, fill, zerosLike, onesLike and addN match the cpu backend', { skip }, () => {
  const x = [input([4, 9, 9, 64], 80, -50, 50)];
  compare('cast to int32 and back', x, (t) => tf.cast(tf.cast(t, 'int32'), 'float32'));
  compare('fill', [], () => tf.fill([3, 300, 700], 2.5));
  compare('zerosLike', x, (t) => tf.zerosLike(t));
  compare('onesLike', x, (t) => tf.onesLike(t));
  compare('addN', [input([2, 5, 7, 3], 81), input([2, 5, 7, 3], 82), input([2, 5, 7, 3], 83)], (a, b, c) => tf.addN([a!, b!, c!]));
});

test('batch norm forward and its gradient match the cpu backend', { skip }, () => {
  for (const [k, shape] of [[4, 9, 9, 64], [2, 5, 7, 3], [1, 33, 17, 5]].entries()) {
    const c = shape[3]!;
    const inputs = [input(shape, 90 + k, -2, 3), input([c], 91 + k), input([c], 92 + k, 0.1, 2), input([c], 93 + k), input([c], 94 + k, 0.5, 1.5)];
    compare(`batchNorm ${JSON.stringify(shape)}`, inputs, (x, m, v, o, s) => tf.batchNorm(x!, m!, v!, o!, s!, 1e-3));
    compare(`batchNorm without offset/scale ${JSON.stringify(shape)}`, inputs, (x, m, v) => tf.batchNorm(x!, m!, v!, undefined, undefined, 1e-3));
    const dy = input(shape, 95 + k);
    compare(`batchNorm gradient ${JSON.stringify(shape)}`, [...inputs, dy], (x, m, v, o, s, d) =>
      tf.grads((a: tf.Tensor, b: tf.Tensor, cc: tf.Tensor, e: tf.Tensor, f: tf.Tensor) => tf.batchNorm(a, b, cc, e, f, 1e-3))([x!, m!, v!, o!, s!], d),
    );
    // The batch-norm training path of tfjs-layers: moments, then batchNorm, differentiated through both.
    compare(`moments + batchNorm gradient ${JSON.stringify(shape)}`, [inputs[0]!, inputs[3]!, inputs[4]!, dy], (x, o, s, d) =>
      tf.grads((a: tf.Tensor, e: tf.Tensor, f: tf.Tensor) => {
        const { mean, variance } = tf.moments(a, [0, 1, 2]);
        return tf.batchNorm(a, mean, variance, e, f, 1e-3);
      })([x!, o!, s!], d),
    );
  }
});

test('fused gradients of relu, relu6, clipByValue, square, sigmoid, sum and mean match the cpu backend', { skip }, () => {
  const shape = [4, 9, 9, 64];
  const x = input(shape, 120, -8, 8);
  const dy = input(shape, 121);
  const grad = (f: (t: tf.Tensor) => tf.Tensor) => (t: tf.Tensor, d: tf.Tensor) => tf.grad(f)(t, d);
  compare('relu grad', [x, dy], grad(tf.relu));
  compare('relu6 grad', [x, dy], grad(tf.relu6));
  compare('square grad', [x, dy], grad(tf.square));
  compare('sigmoid grad', [x, dy], grad(tf.sigmoid));
  compare('clipByValue grad', [x, dy], grad((t) => tf.clipByValue(t, 0, 6)));
  compare('sum grad', [x, input([4, 1, 1, 64], 122)], (t, d) => tf.grad((a: tf.Tensor) => tf.sum(a, [1, 2], true))(t, d));
  compare('mean grad', [x, input([64], 123)], (t, d) => tf.grad((a: tf.Tensor) => tf.mean(a, [0, 1, 2]))(t, d));
});

test("Multiply's gradient for a broadcast operand (SelabMulReduce) matches the cpu backend", { skip }, () => {
  const cases: [number[], number[]][] = [
    [[4, 9, 9, 64], [4, 1, 1, 64]], // an SE gate
    [[4, 9, 9, 64], [64]],
    [[2, 5, 7, 3], [2, 5, 7, 1]],
    [[3, 300], [3, 1]],
    [[2, 16, 16, 512], [2, 1, 1, 512]],
  ];
  cases.forEach(([full, small], k) => {
    const inputs = [input(full, 130 + k), input(small, 140 + k), input(full, 150 + k)];
    compare(`mul grads ${JSON.stringify(full)} x ${JSON.stringify(small)}`, inputs, (a, b, d) => tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.mul(p, q))([a!, b!], d));
    compare(`mul grads ${JSON.stringify(small)} x ${JSON.stringify(full)}`, [inputs[1]!, inputs[0]!, inputs[2]!], (b, a, d) => tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.mul(p, q))([b!, a!], d));
  });
  tf.setBackend('onednn');
  const profile = profileKernels('onednn', () =>
    tf.dispose(tf.tidy(() => tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.mul(p, q))([tf.ones([2, 3, 3, 4]), tf.ones([2, 1, 1, 4])], tf.ones([2, 3, 3, 4])))),
  );
  assert.equal(profile.kernels.find((k) => k.kernel === 'SelabMulReduce')?.calls, 1);
});

test('disposed kernel outputs are recycled; storage read by dataSync never is', { skip }, () => {
  tf.setBackend('onednn');
  const n = 1 << 20; // 4 MiB
  const a = tf.fill([n], 1);
  const b = tf.add(a, a);
  const before = pooledBytes();
  b.dispose();
  assert.equal(pooledBytes(), before + 4 * n, 'a kernel output nobody read goes back to the pool');
  const reused = allocFloat32(n);
  assert.equal(pooledBytes(), before, 'and is handed out again');
  assert.equal(reused.length, n);
  const c = tf.add(a, a);
  const seen = c.dataSync();
  c.dispose();
  assert.equal(pooledBytes(), before, 'storage that left through dataSync is left to the GC');
  assert.equal(seen[0], 2);
  const user = new Float32Array(n).fill(3);
  tf.tensor(user).dispose();
  assert.equal(pooledBytes(), before, "a caller's array given to tf.tensor is never recycled");
  a.dispose();
});

test('kernel outputs from 4 KiB up are pooled and 64-byte aligned; smaller ones are neither', { skip }, () => {
  tf.setBackend('onednn');
  const addon = loadAddon()!;
  // 1 KiB, just under and at a page, 64 KiB, 1 MiB + 4 bytes (odd sizes too).
  for (const n of [256, 1023, 1024, 16384, 262145]) {
    const a = tf.fill([n], 1);
    const outputs = [0, 1, 2, 3].map(() => tf.add(a, a));
    const aligned = outputs.map((t) => addon.isAligned(tf.backend().readSync(t.dataId) as Float32Array));
    const before = pooledBytes();
    tf.dispose(outputs);
    if (n * 4 >= 4096) {
      assert.deepEqual(aligned, [true, true, true, true], `outputs of ${n} floats`);
      assert.equal(pooledBytes(), before, 'storage read through readSync is not pooled');
      const fresh = tf.add(a, a);
      const fromPool = [0, 1].map(() => allocFloat32(n));
      assert.ok(fromPool.every((f) => addon.isAligned(f) && f.length === n), `pooled storage of ${n} floats`);
      fresh.dispose();
      assert.equal(pooledBytes(), before + 4 * n, `a disposed output of ${n} floats goes to the pool`);
    } else {
      assert.equal(pooledBytes(), before, `${n} floats stay with V8`);
    }
    a.dispose();
  }
});

test('a request of another size takes the smallest free buffer up to twice as large, and computes the same', { skip }, () => {
  tf.setBackend('onednn');
  const backend = tf.backend() as unknown as { data: { get(id: object): { values: Float32Array } } };
  // 12 MB and 0.7 of it: no other test here leaves a buffer of 8.4 to 12 MB in the pool.
  const n = 3_000_017;
  const part = Math.floor(n * 0.7);
  const a = tf.fill([n], 1);
  const b = tf.add(a, a);
  const storage = backend.data.get(b.dataId).values.buffer;
  b.dispose();
  const before = pooledBytes();
  const tooSmall = allocFloat32(Math.floor(n / 2) - 1024);
  assert.notEqual(tooSmall.buffer, storage, 'a buffer over twice the request is left for its own size');
  const view = allocFloat32(part);
  assert.equal(view.buffer, storage, 'the partial request reuses the larger buffer');
  assert.equal(view.length, part);
  assert.equal(view.byteOffset, 0);
  assert.ok(loadAddon()!.isAligned(view));
  assert.ok(pooledBytes() <= before - 4 * n, 'the whole buffer left the pool');

  // A kernel writing into such a view, and one reading it, agree with the cpu backend.
  const values = input([part], 7).values;
  const x = tf.tensor1d(values);
  const zeros = tf.fill([n], 0);
  tf.dispose(tf.add(zeros, zeros)); // frees a buffer of n floats again for the next output to view
  const y = tf.mul(x, x);
  assert.equal((backend.data.get(y.dataId).values.buffer as ArrayBuffer).byteLength, 4 * n, 'the output views an n-float buffer');
  const z = tf.sum(tf.sqrt(y));
  const want = runOn('cpu', [{ shape: [part], values }], (t) => tf.sum(tf.sqrt(tf.mul(t!, t!))))[0]!.values[0]!;
  tf.setBackend('onednn');
  assert.ok(Math.abs(z.dataSync()[0]! - want) <= 1e-3 * Math.abs(want), `sum ${z.dataSync()[0]} against ${want}`);
  assert.equal(y.dataSync().length, part);
  tf.dispose([a, x, zeros, y, z]);
});

// Batch preparation and the batch iterator: upsampling against hand-computed arrays, seeded
// shuffling, augmentation, limit/remainder handling, prefetch worker vs synchronous path.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BatchIterator, CIFAR10_MEAN, CIFAR10_STD, type BatchOptions } from '../src/data/batches.js';
import type { Split } from '../src/data/format.js';
import { epochOrder, fillBatch, makeLut, type PrepSpec } from '../src/data/prepare.js';

before(async () => {
  await tf.setBackend('cpu');
});

/** A 2×2 RGB image: pixel (r, c) has channels [10·(2r+c)+1, +2, +3]. */
const tiny = new Uint8Array([1, 2, 3, 11, 12, 13, 21, 22, 23, 31, 32, 33]);
function tinySpec(k: number): PrepSpec {
  return { height: 2, width: 2, channels: 3, numClasses: 4, upsample: k, lut: makeLut(3), augment: false, seed: 0 };
}

describe('fillBatch', () => {
  test('×1: /255 and one-hot', () => {
    const { xs, ys } = fillBatch(tiny, new Uint8Array([2]), tinySpec(1), new Uint32Array([0]), 0, 0);
    assert.deepEqual([...xs], [...tiny].map((v) => Math.fround(v / 255)));
    assert.deepEqual([...ys], [0, 0, 1, 0]);
  });

  test('×2 repeats each pixel twice along both axes (numpy repeat)', () => {
    const { xs } = fillBatch(tiny, new Uint8Array([0]), tinySpec(2), new Uint32Array([0]), 0, 0);
    const p = (v: number) => [v + 1, v + 2, v + 3];
    // Rows of the 4×4 output, written out by hand: a a b b / a a b b / c c d d / c c d d.
    const expected = [
      ...p(0), ...p(0), ...p(10), ...p(10),
      ...p(0), ...p(0), ...p(10), ...p(10),
      ...p(20), ...p(20), ...p(30), ...p(30),
      ...p(20), ...p(20), ...p(30), ...p(30),
    ];
    assert.deepEqual([...xs].map((v) => Math.round(v * 255)), expected);
  });

  test('×4: 8×8 output, each source pixel a 4×4 block', () => {
    const { xs } = fillBatch(tiny, new Uint8Array([0]), tinySpec(4), new Uint32Array([0]), 0, 0);
    assert.equal(xs.length, 8 * 8 * 3);
    const at = (y: number, x: number) => [0, 1, 2].map((c) => Math.round(xs[(y * 8 + x) * 3 + c]! * 255));
    assert.deepEqual(at(0, 0), [1, 2, 3]);
    assert.deepEqual(at(3, 3), [1, 2, 3]);
    assert.deepEqual(at(0, 4), [11, 12, 13]);
    assert.deepEqual(at(3, 7), [11, 12, 13]);
    assert.deepEqual(at(4, 0), [21, 22, 23]);
    assert.deepEqual(at(7, 3), [21, 22, 23]);
    assert.deepEqual(at(4, 4), [31, 32, 33]);
    assert.deepEqual(at(7, 7), [31, 32, 33]);
  });

  test('per-channel normalisation: (v/255 − mean) / std', () => {
    const norm = { mean: [0.5, 0.25, 0], std: [0.5, 2, 1] };
    const { xs } = fillBatch(tiny, new Uint8Array([0]), { ...tinySpec(1), lut: makeLut(3, norm) }, new Uint32Array([0]), 0, 0);
    assert.ok(Math.abs(xs[0]! - (1 / 255 - 0.5) / 0.5) < 1e-6);
    assert.ok(Math.abs(xs[4]! - (12 / 255 - 0.25) / 2) < 1e-6);
    assert.ok(Math.abs(xs[11]! - 33 / 255) < 1e-6);
  });

  test('writes into given buffers and clears stale one-hot entries', () => {
    const out = { xs: new Float32Array(24).fill(7), ys: new Float32Array(8).fill(1) };
    const r = fillBatch(tiny, new Uint8Array([3]), tinySpec(1), new Uint32Array([0]), 0, 0, out);
    assert.equal(r.xs.buffer, out.xs.buffer);
    assert.equal(r.xs.length, 12);
    assert.deepEqual([...r.ys], [0, 0, 0, 1]);
  });
});

describe('epochOrder', () => {
  test('every index exactly once, same (seed, epoch) → same order, otherwise different', () => {
    const a = epochOrder(1000, 7, 3);
    assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
    assert.deepEqual(epochOrder(1000, 7, 3), a);
    assert.notDeepEqual(epochOrder(1000, 7, 4), a);
    assert.notDeepEqual(epochOrder(1000, 8, 3), a);
    assert.notDeepEqual([...a], Array.from({ length: 1000 }, (_, i) => i));
    assert.deepEqual([...epochOrder(5, 7, 3, false)], [0, 1, 2, 3, 4]);
  });
});

/** A split whose image n encodes n: pixel (0,0) R = n & 255, G = n >> 8; label n % 10; the rest varies. */
function indexedSplit(count: number, h = 32, w = 32): Split {
  const images = new Uint8Array(count * h * w * 3);
  const labels = new Uint8Array(count);
  for (let n = 0; n < count; n++) {
    const o = n * h * w * 3;
    for (let i = 3; i < h * w * 3; i++) images[o + i] = (i * 13 + n) & 255;
    images[o] = n & 255;
    images[o + 1] = n >> 8;
    images[o + 2] = 255;
    labels[n] = n % 10;
  }
  return { images, labels, count, height: h, width: w, channels: 3 };
}

interface Seen {
  indices: number[];
  sizes: number[];
  xs: Float32Array[];
  ys: Float32Array[];
}

/** The batches of an epoch; `decode` reads each image's index back (only valid without augmentation). */
async function collect(it: BatchIterator, epoch: number, fromStep = 0, decode = true): Promise<Seen> {
  const seen: Seen = { indices: [], sizes: [], xs: [], ys: [] };
  for await (const b of it.epoch(epoch, fromStep)) {
    const xs = b.xs.dataSync() as Float32Array;
    const ys = b.ys.dataSync() as Float32Array;
    const [, h, w] = b.xs.shape;
    for (let i = 0; i < b.size && decode; i++) {
      const o = i * h * w * 3;
      const n = Math.round(xs[o]! * 255) + 256 * Math.round(xs[o + 1]! * 255);
      seen.indices.push(n);
      assert.equal(ys[i * 10 + (n % 10)], 1, `one-hot label of image ${n}`);
    }
    seen.sizes.push(b.size);
    seen.xs.push(xs.slice());
    seen.ys.push(ys.slice());
    b.xs.dispose();
    b.ys.dispose();
  }
  return seen;
}

describe('BatchIterator', () => {
  const split = indexedSplit(300);
  const open: BatchIterator[] = [];
  function make(options: BatchOptions): BatchIterator {
    const it = new BatchIterator(split, options);
    open.push(it);
    return it;
  }
  after(async () => {
    for (const it of open) await it.close();
  });

  test('each epoch covers every index once; the last partial batch is kept', async () => {
    const it = make({ batchSize: 64, seed: 5 });
    assert.equal(it.stepsPerEpoch, 5);
    const e1 = await collect(it, 1);
    assert.ok(it.usingWorker, 'batches came from the prefetch worker');
    assert.deepEqual(e1.sizes, [64, 64, 64, 64, 44]);
    assert.deepEqual([...e1.indices].sort((a, b) => a - b), Array.from({ length: 300 }, (_, i) => i));
    assert.deepEqual(e1.indices, [...it.order(1)]);
    const e2 = await collect(it, 2);
    assert.notDeepEqual(e2.indices, e1.indices);
    assert.deepEqual([...e2.indices].sort((a, b) => a - b), Array.from({ length: 300 }, (_, i) => i));
  });

  test('same seed → same batches, with or without the prefetch worker; resuming mid-epoch continues exactly', async () => {
    const a = await collect(make({ batchSize: 64, seed: 9, upsample: 2, augment: true }), 4, 0, false);
    const b = await collect(make({ batchSize: 64, seed: 9, upsample: 2, augment: true, prefetch: false }), 4, 0, false);
    assert.equal(a.xs.length, 5);
    assert.deepEqual(b.xs, a.xs);
    assert.deepEqual(b.ys, a.ys);
    const c = await collect(make({ batchSize: 64, seed: 9, upsample: 2, augment: true }), 4, 3, false);
    assert.deepEqual(c.xs, a.xs.slice(3));
    const other = await collect(make({ batchSize: 64, seed: 10, upsample: 2, augment: true, prefetch: false }), 4, 0, false);
    assert.notDeepEqual(other.ys, a.ys);
  });

  test('limit takes the first N images before shuffling; dropRemainder drops the partial batch', async () => {
    const it = make({ batchSize: 32, seed: 1, limit: 100, dropRemainder: true, prefetch: false });
    assert.equal(it.stepsPerEpoch, 3);
    const s = await collect(it, 1);
    assert.deepEqual(s.sizes, [32, 32, 32]);
    assert.ok(s.indices.every((n) => n < 100));
    assert.equal(new Set(s.indices).size, 96);
    assert.equal(make({ batchSize: 32, limit: 1000 }).count, 300);
  });

  test('shuffle: false keeps the split order', async () => {
    const s = await collect(make({ batchSize: 128, shuffle: false, prefetch: false }), 1);
    assert.deepEqual(s.indices, Array.from({ length: 300 }, (_, i) => i));
  });

  test('shapes: [B, 32k, 32k, 3] float32 and [B, 10]', async () => {
    const it = make({ batchSize: 8, upsample: 4, limit: 8, normalize: { mean: CIFAR10_MEAN, std: CIFAR10_STD }, prefetch: false });
    for await (const b of it.epoch(0)) {
      assert.deepEqual(b.xs.shape, [8, 128, 128, 3]);
      assert.equal(b.xs.dtype, 'float32');
      assert.deepEqual(b.ys.shape, [8, 10]);
      tf.dispose([b.xs, b.ys]);
    }
  });

  test('augmentation: each image is its 4-px zero-padded copy cropped and maybe flipped; seeded', async () => {
    const small = indexedSplit(64, 32, 32);
    const it = new BatchIterator(small, { batchSize: 64, seed: 3, augment: true, shuffle: false, prefetch: false });
    open.push(it);
    const { xs } = it.prepare(0, 0);
    const flips = new Set<boolean>();
    const shifts = new Set<string>();
    for (let n = 0; n < 64; n++) {
      const out = xs.subarray(n * 3072, (n + 1) * 3072);
      let match: [number, number, boolean] | undefined;
      for (let dy = -4; dy <= 4 && !match; dy++) {
        for (let dx = -4; dx <= 4 && !match; dx++) {
          for (const flip of [false, true]) {
            let ok = true;
            for (let y = 0; y < 32 && ok; y++) {
              for (let x = 0; x < 32 && ok; x++) {
                const sy = y + dy;
                const sx = (flip ? 31 - x : x) + dx;
                for (let c = 0; c < 3; c++) {
                  const src = sy >= 0 && sy < 32 && sx >= 0 && sx < 32 ? small.images[n * 3072 + (sy * 32 + sx) * 3 + c]! : 0;
                  if (Math.round(out[(y * 32 + x) * 3 + c]! * 255) !== src) ok = false;
                }
              }
            }
            if (ok) {
              match = [dy, dx, flip];
              break;
            }
          }
        }
      }
      assert.ok(match, `image ${n} is a padded crop (flipped or not) of its source`);
      flips.add(match[2]);
      shifts.add(`${match[0]},${match[1]}`);
    }
    assert.deepEqual([...flips].sort(), [false, true]);
    assert.ok(shifts.size > 10, `${shifts.size} distinct crops in 64 images`);
    assert.deepEqual(it.prepare(0, 0).xs, xs);
    assert.notDeepEqual(it.prepare(1, 0).xs, xs);
  });

  test('recycled buffers never overwrite data a live tensor still uses', async () => {
    const it = make({ batchSize: 50, seed: 2 });
    const gen = it.epoch(0);
    const first = (await gen.next()).value!;
    const kept = tf.reshape(first.xs, [-1]);
    const expected = (kept.dataSync() as Float32Array).slice();
    tf.dispose([first.xs, first.ys]);
    for (let i = 0; i < 4; i++) {
      const b = (await gen.next()).value!;
      tf.dispose([b.xs, b.ys]);
    }
    assert.deepEqual(kept.dataSync(), expected);
    kept.dispose();
    await gen.return(undefined);
  });

  test('no tensors leak across an epoch when batches are disposed', async () => {
    const it = make({ batchSize: 40, seed: 2, prefetch: false });
    const before = tf.memory().numTensors;
    for await (const b of it.epoch(0)) tf.dispose([b.xs, b.ys]);
    assert.equal(tf.memory().numTensors, before);
  });

  test('bad options are named', () => {
    assert.throws(() => make({ batchSize: 0 }), /batchSize must be an integer ≥ 1, got 0/);
    assert.throws(() => make({ batchSize: 8, upsample: 1.5 }), /upsample must be an integer ≥ 1, got 1.5/);
    assert.throws(() => make({ batchSize: 8, normalize: { mean: [0.5], std: [1] } }), /normalize needs 3 means and 3 positive stds/);
  });
});

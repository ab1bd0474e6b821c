// The batch iterator: seeded per-epoch order, float32 NHWC batches with optional upsampling,
// normalisation and augmentation, prepared one batch ahead in a worker thread while the caller
// trains (a synchronous fallback prepares on the calling thread).
import * as tf from '@tensorflow/tfjs-core';
import { Worker } from 'node:worker_threads';
import type { Split } from './format.js';
import type { WorkerInit, WorkerReply, WorkerRequest } from './prefetch-worker.js';
import { epochOrder, fillBatch, makeLut, type PrepSpec, type PreparedArrays } from './prepare.js';

/** CIFAR-10 train-split channel statistics (of pixel/255), for `normalize`. */
export const CIFAR10_MEAN = [0.4914, 0.4822, 0.4465] as const;
export const CIFAR10_STD = [0.247, 0.2435, 0.2616] as const;

export interface BatchOptions {
  batchSize: number;
  /** Seeds the per-epoch order and the augmentation (default 0). The order is a pure function of (seed, epoch). */
  seed?: number;
  /** Shuffle each epoch (default true); false keeps the split's order, e.g. for evaluation. */
  shuffle?: boolean;
  /** Integer nearest-neighbour upsampling factor (default 1). */
  upsample?: number;
  /** Per-channel mean/std of pixel/255 (e.g. CIFAR10_MEAN/STD); default: pixels are only divided by 255. */
  normalize?: { mean: readonly number[]; std: readonly number[] };
  /** 4-px zero pad + random crop + random horizontal flip (default false). */
  augment?: boolean;
  /** Use only the split's first `limit` images (before shuffling, so quick runs see a fixed subset). */
  limit?: number;
  /** Drop the last batch when smaller than batchSize (default false). */
  dropRemainder?: boolean;
  /**
   * Use only part of each epoch's order: cut into whole windows of `size` images (a partial window
   * at the end is left out that epoch), of each window the first `use` images. With shuffling the
   * images left out change every epoch. E.g. { size: 1024, use: 1024 }: only whole batches of
   * 1024; { size: 1024, use: 128 }: the first eighth of each. Default: every image.
   */
  windows?: { size: number; use: number };
  numClasses?: number;
  /** Prepare the next batch in a worker thread while the current one is used (default true). */
  prefetch?: boolean;
}

export interface Batch {
  /** float32 [size, height·k, width·k, channels]. */
  xs: tf.Tensor4D;
  /** float32 one-hot [size, numClasses]. */
  ys: tf.Tensor2D;
  size: number;
  epoch: number;
  step: number;
}

/** A batch handed out whose buffers may come back once the caller has disposed its tensors. */
interface Outstanding {
  arrays: PreparedArrays;
  xs: tf.Tensor;
  ys: tf.Tensor;
  backend: tf.KernelBackend;
}

/** Buffers in flight: one batch training, one being prepared, one spare. */
const POOL_SIZE = 3;
/** Batches watched for disposal; a caller holding more simply gets fresh buffers. */
const MAX_OUTSTANDING = 8;

function checkInt(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`batches: ${name} must be an integer ≥ ${min}, got ${v}`);
}

/** Prepares batches in a worker thread; a worker failure switches it off and the caller falls back. */
class Prefetcher {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (a: PreparedArrays) => void; reject: (e: Error) => void }>();

  constructor(init: WorkerInit) {
    let worker: Worker;
    if (import.meta.url.endsWith('.ts')) {
      // Running from sources under tsx: a worker does not inherit tsx's loader hooks (Node 20),
      // so the worker registers them itself before importing the .ts entry.
      const api = import.meta.resolve('tsx/esm/api');
      const entry = new URL('./prefetch-worker.ts', import.meta.url).href;
      const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
      worker = new Worker(boot, { eval: true, workerData: init });
    } else {
      worker = new Worker(new URL('./prefetch-worker.js', import.meta.url), { workerData: init });
    }
    worker.unref();
    worker.on('message', (reply: WorkerReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if ('error' in reply) p.reject(new Error(`batch prefetch worker: ${reply.error}`));
      else p.resolve(reply.batch);
    });
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => this.fail(new Error(`batch prefetch worker exited with code ${code}`)));
    this.worker = worker;
  }

  get alive(): boolean {
    return this.worker !== undefined;
  }

  private fail(err: Error): void {
    this.worker = undefined;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** Sends `out` (when given) to the worker: its buffers are unusable here until the reply. */
  request(epoch: number, step: number, indices: Uint32Array, out: PreparedArrays | undefined): Promise<PreparedArrays> {
    const worker = this.worker;
    if (!worker) return Promise.reject(new Error('batch prefetch worker is not running'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Keep the process alive only while a batch is on its way.
      worker.ref();
      const transfer = out ? [out.xs.buffer as ArrayBuffer, out.ys.buffer as ArrayBuffer] : [];
      worker.postMessage({ id, epoch, step, indices, out } satisfies WorkerRequest, transfer);
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }
}

/**
 * Iterates one split in batches. `epoch(e)` yields that epoch's batches as tensors the caller
 * disposes; the order and augmentation depend only on (seed, epoch, step), so a run resumed at
 * `epoch(e, fromStep)` continues exactly. Call `close()` when done (it stops the worker).
 */
export class BatchIterator {
  /** Images the epochs draw from (the split's count, or `limit`). */
  readonly count: number;
  /** Images each epoch yields: `count`, or fewer with `windows`. */
  readonly perEpoch: number;
  readonly batchSize: number;
  readonly stepsPerEpoch: number;
  /** [height·k, width·k, channels]. */
  readonly imageShape: [number, number, number];
  readonly spec: PrepSpec;
  private readonly shuffle: boolean;
  private readonly dropRemainder: boolean;
  private readonly windows: { size: number; use: number } | undefined;
  private wantPrefetch: boolean;
  private prefetcher: Prefetcher | undefined;
  /**
   * Output buffers are recycled: first-touching fresh memory costs more than filling it (on this
   * machine ~1 s per 50 MB against ~10 ms for reused memory). `free` holds full-size pairs ready
   * for reuse; `outstanding` the batches handed out, reclaimed once their tensors are disposed.
   */
  private readonly free: PreparedArrays[] = [];
  private outstanding: Outstanding[] = [];

  constructor(
    private readonly split: Split,
    options: BatchOptions,
  ) {
    const { batchSize, seed = 0, upsample = 1, limit, numClasses = 10, normalize } = options;
    checkInt('batchSize', batchSize, 1);
    checkInt('seed', seed, 0);
    checkInt('upsample', upsample, 1);
    checkInt('numClasses', numClasses, 1);
    if (limit !== undefined) checkInt('limit', limit, 1);
    if (split.channels !== 3) throw new RangeError(`batches: expected RGB images (3 channels), got ${split.channels}`);
    if (normalize) {
      const { mean, std } = normalize;
      if (mean.length !== split.channels || std.length !== split.channels || std.some((s) => !(s > 0))) {
        throw new RangeError(`batches: normalize needs ${split.channels} means and ${split.channels} positive stds, got mean [${mean.join(', ')}], std [${std.join(', ')}]`);
      }
    }
    this.count = Math.min(limit ?? split.count, split.count);
    this.batchSize = batchSize;
    this.shuffle = options.shuffle ?? true;
    this.dropRemainder = options.dropRemainder ?? false;
    this.wantPrefetch = options.prefetch ?? true;
    this.windows = options.windows;
    if (this.windows) {
      const { size, use } = this.windows;
      checkInt('windows.size', size, 1);
      checkInt('windows.use', use, 1);
      if (use > size) throw new RangeError(`batches: windows.use ${use} is more than windows.size ${size}`);
      if (this.count < size) throw new RangeError(`batches: ${this.count} images hold no whole window of ${size}`);
    }
    this.perEpoch = this.windows ? Math.floor(this.count / this.windows.size) * this.windows.use : this.count;
    this.stepsPerEpoch = this.dropRemainder ? Math.floor(this.perEpoch / batchSize) : Math.ceil(this.perEpoch / batchSize);
    this.imageShape = [split.height * upsample, split.width * upsample, split.channels];
    this.spec = {
      height: split.height,
      width: split.width,
      channels: split.channels,
      numClasses,
      upsample,
      lut: makeLut(split.channels, normalize),
      augment: options.augment ?? false,
      seed,
    };
  }

  /** True once batches are being prepared in the worker thread (false before the first batch, without prefetch, or after a fallback). */
  get usingWorker(): boolean {
    return this.prefetcher?.alive ?? false;
  }

  /** The epoch's images in order (indices into the split): `perEpoch` of them. */
  order(epoch: number): Uint32Array {
    const full = epochOrder(this.count, this.spec.seed, epoch, this.shuffle);
    if (!this.windows) return full;
    const { size, use } = this.windows;
    const picked = new Uint32Array(this.perEpoch);
    for (let w = 0; w < this.perEpoch / use; w++) picked.set(full.subarray(w * size, w * size + use), w * use);
    return picked;
  }

  /** Indices of batch `step` within an epoch order. */
  batchIndices(order: Uint32Array, step: number): Uint32Array {
    return order.subarray(step * this.batchSize, Math.min((step + 1) * this.batchSize, order.length));
  }

  /** Batch `step` of `epoch` as fresh typed arrays, prepared on the calling thread. */
  prepare(epoch: number, step: number, order = this.order(epoch)): PreparedArrays {
    return fillBatch(this.split.images, this.split.labels, this.spec, this.batchIndices(order, step), epoch, step);
  }

  /** A full-size buffer pair, recycled from a disposed batch when possible. */
  private fullBuffers(): PreparedArrays {
    const full = this.batchSize * this.imageShape[0] * this.imageShape[1] * this.imageShape[2];
    const labels = this.batchSize * this.spec.numClasses;
    const current = tf.engine().backend;
    this.outstanding = this.outstanding.filter((o) => {
      if (!o.xs.isDisposed || !o.ys.isDisposed) return true;
      // Cpu-style backends keep the array itself as the tensor's storage: reuse it only once no
      // tensor (a reshape shares storage) references it any more.
      const unreferenced = o.backend === current && current.refCount(o.xs.dataId) === 0 && current.refCount(o.ys.dataId) === 0;
      if (unreferenced && o.arrays.xs.buffer.byteLength === full * 4 && this.free.length < POOL_SIZE) {
        this.free.push({ xs: new Float32Array(o.arrays.xs.buffer, 0, full), ys: new Float32Array(o.arrays.ys.buffer, 0, labels) });
      }
      return false;
    });
    return this.free.pop() ?? { xs: new Float32Array(full), ys: new Float32Array(labels) };
  }

  private async prepareAhead(epoch: number, step: number, order: Uint32Array): Promise<PreparedArrays> {
    const indices = this.batchIndices(order, step);
    if (this.wantPrefetch && !this.prefetcher) {
      try {
        this.prefetcher = new Prefetcher({ images: this.split.images, labels: this.split.labels, spec: this.spec });
      } catch {
        this.wantPrefetch = false;
      }
    }
    if (this.prefetcher?.alive) {
      try {
        // slice(): the indices are copied into the message anyway; this keeps the epoch order intact.
        return await this.prefetcher.request(epoch, step, indices.slice(), this.fullBuffers());
      } catch {
        // The worker could not start or died (e.g. no worker support): prepare here instead.
        // Buffers sent to a dead worker are lost; fresh ones are allocated below.
      }
    }
    return fillBatch(this.split.images, this.split.labels, this.spec, indices, epoch, step, this.fullBuffers());
  }

  private toBatch(arrays: PreparedArrays, epoch: number, step: number): Batch {
    const size = arrays.ys.length / this.spec.numClasses;
    // The tensors take the arrays without a copy; fullBuffers() reclaims them after disposal.
    const xs = tf.tensor4d(arrays.xs, [size, ...this.imageShape]);
    const ys = tf.tensor2d(arrays.ys, [size, this.spec.numClasses]);
    this.outstanding.push({ arrays, xs, ys, backend: tf.engine().backend });
    if (this.outstanding.length > MAX_OUTSTANDING) this.outstanding.shift();
    return { xs, ys, size, epoch, step };
  }

  /** Yields the batches of `epoch` from `fromStep` on, preparing each next batch while the current one is used. */
  async *epoch(epoch: number, fromStep = 0): AsyncGenerator<Batch> {
    checkInt('fromStep', fromStep, 0);
    const order = this.order(epoch);
    let ahead = fromStep < this.stepsPerEpoch ? this.prepareAhead(epoch, fromStep, order) : undefined;
    for (let step = fromStep; step < this.stepsPerEpoch; step++) {
      const arrays = await ahead!;
      ahead = step + 1 < this.stepsPerEpoch ? this.prepareAhead(epoch, step + 1, order) : undefined;
      yield this.toBatch(arrays, epoch, step);
    }
  }

  async close(): Promise<void> {
    await this.prefetcher?.close();
    this.prefetcher = undefined;
    this.free.length = 0;
    this.outstanding = [];
  }
}

export function batches(split: Split, options: BatchOptions): BatchIterator {
  return new BatchIterator(split, options);
}

// Recycles the storage of disposed tensors.
//
// A fresh Float32Array of more than a page is newly mapped memory, and on this kind of VM first
// touching it costs about 15 times the elementwise kernel that fills it (≈0.5 s per 32 MiB
// under load). A training step allocates gigabytes and V8 only frees them at its next GC, so
// the backend returns each disposed tensor's ArrayBuffer to a size-keyed free list and
// kernels take their outputs from it.
//
// A buffer is recycled only when nothing outside the backend can still see it: every tensor
// entry viewing it has been disposed, and it never left through readSync/read
// (dataSync/data/array return the storage itself on the cpu backend) nor came in through
// write/move (tf.tensor(userArray) keeps the caller's array as storage).
import { totalmem } from 'node:os';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { BackendValues, DataId, DataType, TensorInfo } from '@tensorflow/tfjs-core';
import { loadAddon } from './addon.js';

/**
 * Buffers under a page come from V8's heap cheaply; a larger fresh one is memory that faults
 * in on first touch, page by page (here a new 64 KiB Float32Array costs 29 µs and 800 KiB 240
 * µs), so MobileNet + SE's hundreds of small weights, gradients and optimizer states per step are
 * pooled too (one training step 10–30 ms faster than with a 1 MiB floor).
 */
const MIN_BYTES = 4096;

/**
 * The pool must hold a whole step's worth of activations and gradients, or every step faults
 * the excess in again: plain10+SE at batch 128 trains at 9.5 img/s with a 2 GiB cap and 74
 * with 8 GiB. Default: a third of the machine's memory, at most 8 GiB.
 */
function poolCapBytes(): number {
  const raw = process.env.SELAB_POOL_MB;
  const mb = raw === undefined || raw === '' ? Math.min(8192, totalmem() / 3 / 2 ** 20) : Number(raw);
  if (!Number.isFinite(mb) || mb < 0) throw new Error(`selab: SELAB_POOL_MB must be a non-negative number, got "${raw}"`);
  return mb * 2 ** 20;
}

/**
 * A request with no free buffer of its exact size takes the smallest free one up to this many
 * times larger, viewing its start. An epoch's last, partial batch (80 of 128 on CIFAR-10's
 * 50,000 images) then reuses the full batch's storage instead of faulting in a step's worth of
 * new memory: MobileNet's first step at batch 80 after steps at 128 took 8.5 s with exact sizes
 * only, 0.7 s with this. Bounded so that a small tensor never pins a much larger buffer (the
 * test split's last batch of 16 takes new storage).
 */
const MAX_SLACK = 2;

const free = new Map<number, ArrayBuffer[]>();
/** The keys of `free`, ascending (a list may be empty), for the best-fit search. */
const sizes: number[] = [];
let freeBytes = 0;
let capBytes: number | undefined;
/** Live tensor entries whose values view each buffer. */
const owners = new WeakMap<ArrayBufferLike, number>();
/** Buffers that JavaScript outside the backend may hold. */
const exposed = new WeakSet<ArrayBufferLike>();

function bufferOf(values: BackendValues | null | undefined): ArrayBufferLike | undefined {
  return values != null && ArrayBuffer.isView(values) ? values.buffer : undefined;
}

function expose(values: BackendValues | null | undefined): void {
  const buf = bufferOf(values);
  if (buf) exposed.add(buf);
}

function recycle(buf: ArrayBufferLike): void {
  capBytes ??= poolCapBytes();
  if (!(buf instanceof ArrayBuffer) || buf.byteLength < MIN_BYTES || exposed.has(buf) || freeBytes + buf.byteLength > capBytes) return;
  const list = free.get(buf.byteLength);
  if (list) list.push(buf);
  else {
    free.set(buf.byteLength, [buf]);
    sizes.splice(firstAtLeast(buf.byteLength), 0, buf.byteLength);
  }
  freeBytes += buf.byteLength;
}

/** Index of the first entry of `sizes` ≥ bytes. */
function firstAtLeast(bytes: number): number {
  let lo = 0;
  let hi = sizes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sizes[mid]! < bytes) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The smallest free buffer of `bytes` to MAX_SLACK·bytes, taken off its list. */
function takeFree(bytes: number): ArrayBuffer | undefined {
  for (let i = firstAtLeast(bytes); i < sizes.length && sizes[i]! <= bytes * MAX_SLACK; i++) {
    const buf = free.get(sizes[i]!)!.pop();
    if (buf) {
      freeBytes -= buf.byteLength;
      return buf;
    }
  }
  return undefined;
}

/** A Float32Array of n elements whose contents are unspecified: the caller overwrites all of it. */
export function allocFloat32(n: number): Float32Array {
  const bytes = n * 4;
  if (bytes < MIN_BYTES) return new Float32Array(n);
  const buf = takeFree(bytes);
  if (buf) return new Float32Array(buf, 0, n);
  // Cache-line aligned storage for the native kernels (native/src/malloc.cc).
  const aligned = loadAddon()?.alignedBuffer(bytes);
  return aligned ? new Float32Array(aligned) : new Float32Array(n);
}

const releaseListeners: ((dataId: DataId) => void)[] = [];

/** Calls `listener` with each storage the backend releases: caches keyed by a tensor's storage drop their entry. */
export function onRelease(listener: (dataId: DataId) => void): void {
  releaseListeners.push(listener);
}

/** Bytes held for reuse (for tests and the leak check). */
export function pooledBytes(): number {
  return freeBytes;
}

/** The cpu backend with tensor storage recycled as described above. */
export class RecyclingCpuBackend extends MathBackendCPU {
  /** > 0 while a kernel's output is being stored (makeTensorInfo → write). */
  private kernelWrites = 0;

  override makeTensorInfo(shape: number[], dtype: DataType, values?: BackendValues | string[]): TensorInfo {
    this.kernelWrites++;
    try {
      return super.makeTensorInfo(shape, dtype, values);
    } finally {
      this.kernelWrites--;
    }
  }

  override write(values: BackendValues, shape: number[], dtype: DataType): DataId {
    const dataId = super.write(values, shape, dtype);
    const buf = bufferOf(values);
    if (buf) {
      owners.set(buf, (owners.get(buf) ?? 0) + 1);
      if (this.kernelWrites === 0) exposed.add(buf);
    }
    return dataId;
  }

  override move(dataId: DataId, values: BackendValues, shape: number[], dtype: DataType, refCount: number): void {
    super.move(dataId, values, shape, dtype, refCount);
    const buf = bufferOf(values);
    if (buf) {
      owners.set(buf, (owners.get(buf) ?? 0) + 1);
      exposed.add(buf);
    }
  }

  override readSync(dataId: DataId): BackendValues {
    expose(this.data.get(dataId)?.values);
    return super.readSync(dataId);
  }

  override read(dataId: DataId): Promise<BackendValues> {
    expose(this.data.get(dataId)?.values);
    return super.read(dataId);
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const buf = bufferOf(this.data.get(dataId)?.values);
    const had = this.data.has(dataId);
    const disposed = super.disposeData(dataId, force);
    if (had && disposed) for (const listener of releaseListeners) listener(dataId);
    if (buf && had && disposed) {
      const left = (owners.get(buf) ?? 1) - 1;
      if (left > 0) owners.set(buf, left);
      else {
        owners.delete(buf);
        recycle(buf);
      }
    }
    return disposed;
  }
}

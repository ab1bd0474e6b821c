import * as tf from '@tensorflow/tfjs-core';
import { loadAddon } from './addon.js';
import { RecyclingCpuBackend } from './memory.js';
import { nativeKernels } from './kernels/index.js';
import { installLayerPaths } from './layers.js';

export const ONEDNN_BACKEND = 'onednn';

/**
 * Shares the cpu backend's tensor storage (plain TypedArrays), so every cpu kernel runs
 * unchanged on it and native kernels read and write the same arrays without copies.
 * Disposed tensors' storage is recycled (memory.ts).
 */
export class OneDnnBackend extends RecyclingCpuBackend {
  constructor() {
    super();
    // The cpu backend greets its first tensor with "install tfjs-node to speed things up";
    // on onednn that advice is wrong (this is the fast native path), so skip the greeting.
    (this as unknown as { firstUse: boolean }).firstUse = false;
    if (process.env.SELAB_MALLOC !== 'default') loadAddon()!.keepFreedMemory();
  }
}

let registered = false;

/** Registers the `onednn` backend; false when the native addon cannot be loaded. */
export function registerOneDnnBackend(): boolean {
  if (registered) return true;
  if (!loadAddon()) return false;
  tf.registerBackend(ONEDNN_BACKEND, () => new OneDnnBackend(), 3);
  const native = new Set(nativeKernels.map((k) => k.kernelName));
  for (const kernel of tf.getKernelsForBackend('cpu')) {
    if (!native.has(kernel.kernelName)) tf.registerKernel({ ...kernel, backendName: ONEDNN_BACKEND });
  }
  for (const kernel of nativeKernels) tf.registerKernel({ ...kernel, backendName: ONEDNN_BACKEND });
  installLayerPaths();
  registered = true;
  return true;
}

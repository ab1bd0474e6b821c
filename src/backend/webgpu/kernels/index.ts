import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc } from '@tensorflow/tfjs-core';
import { batchNormKernels } from './batchnorm.js';
import { convKernels } from './conv.js';
import { optimizerKernels } from './optimizer.js';

let registered = false;

/**
 * Registers selab's kernels for webgpu (once, after tfjs-backend-webgpu has registered its own):
 * the fused optimizer updates, BatchNorm's training step, and the convolution filter gradients in
 * place of the package's.
 */
export function registerWebGpuKernels(): void {
  if (registered) return;
  registered = true;
  const originals = new Map<string, KernelFunc>();
  const original = (name: string): KernelFunc => {
    const config = tf.getKernel(name, 'webgpu');
    if (!config) throw new Error(`selab: tfjs-backend-webgpu has no ${name} kernel`);
    originals.set(name, config.kernelFunc);
    return config.kernelFunc;
  };
  const replacements = convKernels(original);
  for (const k of [...optimizerKernels, ...batchNormKernels, ...replacements]) {
    if (originals.has(k.kernelName)) tf.unregisterKernel(k.kernelName, 'webgpu');
    tf.registerKernel(k);
  }
}

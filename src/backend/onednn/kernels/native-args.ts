import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { loadAddon, type OneDnnAddon } from '../addon.js';

/** Backend name repeated here so kernel modules need not import backend.ts (which imports them). */
export const BACKEND = 'onednn';

/** Whether a gradient tape is recording (inside tf.grads / variableGrads). */
export const recording = (): boolean => (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0;

export function addon(): OneDnnAddon {
  const a = loadAddon();
  if (!a) throw new Error('selab: the onednn kernels ran without the native addon loaded');
  return a;
}

/** The tensor's storage when it is a plain float32 array the native code can read in place. */
export function f32(backend: MathBackendCPU, t: TensorInfo): Float32Array | undefined {
  if (t.dtype !== 'float32') return undefined;
  const values = backend.data.get(t.dataId).values;
  return values instanceof Float32Array ? values : undefined;
}

export function i32(backend: MathBackendCPU, t: TensorInfo): Int32Array | undefined {
  if (t.dtype !== 'int32') return undefined;
  const values = backend.data.get(t.dataId).values;
  return values instanceof Int32Array ? values : undefined;
}

/**
 * The cpu backend's implementation of a kernel, for the dtypes and layouts the native code
 * does not cover (int32 arithmetic, non-contiguous reduction axes, …). Looked up lazily:
 * the cpu kernels are registered when '@tensorflow/tfjs-backend-cpu' is imported.
 */
export function cpuFallback(kernelName: string): KernelFunc {
  let fn: KernelFunc | undefined;
  return (args) => {
    if (!fn) {
      const kernel = tf.getKernel(kernelName, 'cpu');
      if (!kernel) throw new Error(`selab onednn: no cpu kernel ${kernelName} to fall back to`);
      fn = kernel.kernelFunc;
    }
    return fn(args);
  };
}

export function kernel(kernelName: string, kernelFunc: KernelFunc): KernelConfig {
  return { kernelName, backendName: BACKEND, kernelFunc };
}

import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { loadAddon, type OneDnnAddon } from '../addon.js';
import { allocFloat32 } from '../memory.js';

export type NativeRun = (backend: MathBackendCPU, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap) => TensorInfo | undefined;

export function nativeAddon(): OneDnnAddon {
  const addon = loadAddon();
  if (!addon) throw new Error('selab: an onednn kernel ran without the native addon loaded');
  return addon;
}

/** The tensor's float32 storage, read in place by the native code; undefined for other dtypes. */
export function floats(backend: MathBackendCPU, t: TensorInfo): Float32Array | undefined {
  if (t.dtype !== 'float32') return undefined;
  const values = backend.data.get(t.dataId).values;
  return values instanceof Float32Array ? values : undefined;
}

/**
 * A native kernel whose `run` returns undefined for calls it does not cover (another dtype,
 * NCHW, prelu, a shape oneDNN rejects); those run the cpu backend's kernel, looked up on
 * first use because the cpu kernels register when tfjs-backend-cpu is imported.
 */
export function withFallback(kernelName: string, run: NativeRun): KernelConfig {
  let fallback: KernelFunc | undefined;
  const kernelFunc: KernelFunc = (args) => {
    const result = run(args.backend as MathBackendCPU, args.inputs as Record<string, TensorInfo>, args.attrs ?? {});
    if (result) return result;
    fallback ??= tf.getKernel(kernelName, 'cpu')?.kernelFunc;
    if (!fallback) throw new Error(`selab onednn: no cpu kernel ${kernelName} to fall back to`);
    return fallback(args);
  };
  return { kernelName, backendName: 'onednn', kernelFunc };
}

/**
 * Runs a native kernel into recycled output storage (memory.ts); undefined when oneDNN
 * refused the configuration, so the caller falls back.
 */
export function nativeOutput(backend: MathBackendCPU, shape: number[], run: (out: Float32Array) => boolean): TensorInfo | undefined {
  const out = allocFloat32(tf.util.sizeFromShape(shape));
  return run(out) ? backend.makeTensorInfo(shape, 'float32', out) : undefined;
}

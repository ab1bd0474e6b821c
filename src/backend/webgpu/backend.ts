// The `webgpu` backend: TensorFlow.js' own WebGPU backend (@tensorflow/tfjs-backend-webgpu, an
// optional package) on Dawn, plus selab's kernels in WGSL (kernels/): the fused optimizer
// updates, and faster convolution filter gradients than the package's. The fused BatchNorm
// training step (SelabBatchNormTrain/Grad) has no webgpu kernel: BatchNorm runs tfjs-layers'
// standard ops there.
import * as tf from '@tensorflow/tfjs-core';
import { describeAdapter, probeWebGpu, type AdapterReport } from './dawn.js';
import { registerWebGpuKernels } from './kernels/index.js';

export const WEBGPU_BACKEND = 'webgpu';

export type WebGpuRegistration = { ok: true; adapter: AdapterReport } | { ok: false; reason: string };

let registration: Promise<WebGpuRegistration> | undefined;

/** A variable specifier keeps the package optional for typechecking (and out of bundles). */
const PACKAGE = '@tensorflow/tfjs-backend-webgpu';
let loadPackage: () => Promise<unknown> = () => import(PACKAGE);

/**
 * How to load @tensorflow/tfjs-backend-webgpu, for a bundle that carries it inside (its loader
 * imports it by name so that the bundler includes it); before the first selectBackend.
 */
export function setWebGpuPackageLoader(loader: () => Promise<unknown>): void {
  loadPackage = loader;
}

async function register(): Promise<WebGpuRegistration> {
  const probe = await probeWebGpu();
  if (!probe.ok) return probe;
  // The package registers its backend factory when imported; navigator.gpu must exist by then.
  try {
    await loadPackage();
  } catch (e) {
    const message = (e as Error).message;
    return {
      ok: false,
      reason: /Cannot find (module|package)|ERR_MODULE_NOT_FOUND/.test(message)
        ? 'the optional package @tensorflow/tfjs-backend-webgpu is not installed: run `npm install --include=optional`'
        : `@tensorflow/tfjs-backend-webgpu failed to load: ${message.split('\n')[0]}`,
    };
  }
  if (!tf.findBackendFactory(WEBGPU_BACKEND)) return { ok: false, reason: '@tensorflow/tfjs-backend-webgpu did not register its backend (no navigator.gpu)' };
  registerWebGpuKernels();
  return probe;
}

/**
 * Makes the `webgpu` backend available (not active): loads Dawn, checks for an adapter, loads
 * tfjs-backend-webgpu and registers selab's kernels. Once per process; says why not, in one line.
 */
export function registerWebGpuBackend(): Promise<WebGpuRegistration> {
  registration ??= register();
  return registration;
}

let active: AdapterReport | undefined;

/** Sets the `webgpu` backend; returns the adapter it runs on. */
export async function setWebGpuBackend(): Promise<AdapterReport> {
  const r = await registerWebGpuBackend();
  if (!r.ok) throw new Error(r.reason);
  if (!(await tf.setBackend(WEBGPU_BACKEND))) throw new Error(`tfjs could not initialise the webgpu backend on ${describeAdapter(r.adapter)}`);
  active = r.adapter;
  return r.adapter;
}

/** The adapter of the webgpu backend once set, e.g. for a run's metadata. */
export function webgpuAdapter(): AdapterReport | undefined {
  return active;
}

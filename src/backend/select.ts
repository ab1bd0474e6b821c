import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { createRequire } from 'node:module';
import { dirname, sep } from 'node:path';
import { ADDON_PATH, addonLoadError, loadAddon } from './onednn/addon.js';
import { ONEDNN_BACKEND, registerOneDnnBackend } from './onednn/backend.js';
import { registerWasmTrainingKernels } from './wasm-kernels.js';
import { describeAdapter, mayHaveHardwareVulkan, probeWebGpu } from './webgpu/dawn.js';
import { setWebGpuBackend } from './webgpu/backend.js';

export const BACKEND_NAMES = ['auto', 'webgpu', 'onednn', 'wasm', 'cpu', 'tensorflow'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

const REBUILD = '`node native/build.mjs` (or `npm rebuild selab`)';

/** Shared libraries the addon links and the Debian package that provides each. */
const APT_PACKAGES: Record<string, string> = {
  'libdnnl.so': 'libdnnl-dev',
  'libgomp.so': 'libgomp1',
  'libstdc++.so': 'libstdc++6',
};

/** Explains, in one line, why the native addon did not load and how to fix it. */
export function describeAddonProblem(err: Error): string {
  const missingLib = /(lib[\w+.-]+?\.so)(\.[\d.]+)?: cannot open shared object file/.exec(err.message);
  if (missingLib) {
    const pkg = APT_PACKAGES[missingLib[1]!] ?? 'libdnnl-dev';
    return (
      `the native oneDNN backend needs ${missingLib[1]}${missingLib[2] ?? ''}, which is not installed: ` +
      `run \`apt-get install -y ${pkg}\`, then rebuild it with ${REBUILD}`
    );
  }
  if (/Cannot find module|ENOENT/.test(err.message)) {
    return (
      `the native oneDNN backend was not built (${ADDON_PATH} is missing): ` +
      `run \`apt-get install -y libdnnl-dev g++ make\`, then ${REBUILD}`
    );
  }
  return `the native oneDNN backend failed to load (${err.message.split('\n')[0]}): rebuild it with ${REBUILD}`;
}

let warned = false;

function warnOnce(message: string): void {
  if (warned) return;
  warned = true;
  console.warn(`selab: ${message}; falling back to a slower backend.`);
}

/**
 * SELAB_THREADS wins; otherwise OpenMP's own OMP_NUM_THREADS (read when the addon loads);
 * otherwise OpenMP uses every core.
 */
export function applyThreadSetting(): void {
  const raw = process.env.SELAB_THREADS;
  if (raw === undefined || raw === '') return;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`selab: SELAB_THREADS must be a positive integer, got "${raw}"`);
  loadAddon()?.setThreads(n);
}

async function tryTensorflow(): Promise<boolean> {
  // A variable specifier keeps tfjs-node an optional, undeclared package.
  const specifier = '@tensorflow/tfjs-node';
  try {
    await import(specifier);
  } catch {
    return false;
  }
  return tf.setBackend('tensorflow');
}

/**
 * Idle OpenMP threads sleep instead of spinning unless OMP_WAIT_POLICY says otherwise. With
 * other jobs on the machine a spinning thread burns the CPU share its sibling needs: a
 * plain10 training step ran 1.8× faster with 'passive' at load average 15 on 2 cores
 * (docs/backend.md). libgomp reads the variable when the addon loads, hence before it.
 */
function defaultOpenMpWaitPolicy(): void {
  process.env.OMP_WAIT_POLICY ||= 'passive';
}

async function tryOneDnn(explicit: boolean): Promise<boolean> {
  defaultOpenMpWaitPolicy();
  if (!registerOneDnnBackend()) {
    const message = describeAddonProblem(addonLoadError() ?? new Error('unknown error'));
    if (explicit) throw new Error(`selab: --backend onednn: ${message}`);
    warnOnce(message);
    return false;
  }
  applyThreadSetting();
  return tf.setBackend(ONEDNN_BACKEND);
}

/** Folder of tfjs-backend-wasm's .wasm binaries, as a file path prefix (Node reads them from disk). */
export function wasmBinaryFolder(): string {
  return dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm')) + sep;
}

/**
 * `auto` takes webgpu only on a hardware GPU: a software adapter (SwiftShader, lavapipe) or a
 * fallback one trains far slower than onednn. Where no hardware Vulkan driver is installed it
 * does not even load Dawn (which would print warnings of its own); where one is but webgpu cannot
 * use it, it says why in one line.
 */
async function tryWebGpuAuto(): Promise<boolean> {
  if (!mayHaveHardwareVulkan()) return false;
  const probe = await probeWebGpu();
  if (!probe.ok) {
    console.warn(`selab: a Vulkan driver is installed but the webgpu backend cannot use it: ${probe.reason}; using a CPU backend.`);
    return false;
  }
  if (probe.adapter.software) return false;
  try {
    await setWebGpuBackend();
    return true;
  } catch (e) {
    console.warn(`selab: the webgpu backend failed on ${describeAdapter(probe.adapter)}: ${(e as Error).message.split('\n')[0]}; using a CPU backend.`);
    return false;
  }
}

async function tryWasm(): Promise<boolean> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  wasm.setWasmPaths(wasmBinaryFolder());
  registerWasmTrainingKernels();
  return tf.setBackend('wasm');
}

/**
 * Makes `name` the active tfjs backend and returns the backend actually set. `auto` takes
 * the first that works of tensorflow (tfjs-node, when installed), webgpu (on a hardware GPU),
 * onednn, wasm, cpu; an explicit name that cannot be set is an error. `webgpu` on a software
 * adapter (SwiftShader in the tests) is allowed when asked for by name.
 */
export async function selectBackend(name: BackendName = 'auto'): Promise<string> {
  switch (name) {
    case 'tensorflow':
      if (!(await tryTensorflow())) {
        throw new Error('selab: --backend tensorflow needs @tensorflow/tfjs-node, which is not installed or failed to load');
      }
      break;
    case 'webgpu':
      try {
        await setWebGpuBackend();
      } catch (e) {
        throw new Error(`selab: --backend webgpu: ${(e as Error).message}`, { cause: e });
      }
      break;
    case 'onednn':
      await tryOneDnn(true);
      break;
    case 'wasm':
      if (!(await tryWasm())) throw new Error('selab: --backend wasm: the wasm backend failed to initialise');
      break;
    case 'cpu':
      await tf.setBackend('cpu');
      break;
    case 'auto':
      if (!(await tryTensorflow()) && !(await tryWebGpuAuto()) && !(await tryOneDnn(false)) && !(await tryWasm().catch(() => false))) {
        await tf.setBackend('cpu');
      }
      break;
    default:
      throw new Error(`selab: unknown backend "${String(name)}"; expected one of ${BACKEND_NAMES.join(', ')}`);
  }
  await tf.ready();
  return tf.getBackend();
}

// Whether the tests that need the webgpu backend run: they need the optional packages (`webgpu`,
// @tensorflow/tfjs-backend-webgpu) and an adapter, which on a machine without a GPU is SwiftShader's
// CPU Vulkan from Debian's chromium package (VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json,
// XDG_RUNTIME_DIR=/tmp; .ci/run sets both). Without them the tests are skipped with the reason,
// except under SELAB_REQUIRE_WEBGPU=1 (CI), where a missing one fails the run.
import * as tf from '@tensorflow/tfjs-core';
import { existsSync } from 'node:fs';
import { registerWebGpuBackend } from '../src/backend/webgpu/backend.js';

/** Where Debian's chromium-common installs SwiftShader's Vulkan driver manifest. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** Registers webgpu (not active); false when it runs, else why not. */
export async function skipWithoutWebGpu(): Promise<false | string> {
  const r = await registerWebGpuBackend();
  if (r.ok) return false;
  const hint = existsSync(SWIFTSHADER_ICD) && !process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES
    ? ` (for SwiftShader here: VK_ICD_FILENAMES=${SWIFTSHADER_ICD} XDG_RUNTIME_DIR=/tmp)`
    : '';
  const why = `no webgpu backend: ${r.reason}${hint}`;
  if (process.env.SELAB_REQUIRE_WEBGPU === '1') throw new Error(`SELAB_REQUIRE_WEBGPU=1 but ${why}`);
  return why;
}

/** The values of every tensor, read asynchronously (webgpu has no synchronous read in Node). */
export async function readAll(tensors: readonly tf.Tensor[]): Promise<Float32Array[]> {
  return Promise.all(tensors.map(async (t) => Float32Array.from(await t.data())));
}

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../../util/paths.js';

/**
 * The functions exported by native/ (selab_onednn.node). Each kernel module declares the
 * native entry points it uses by extending this interface through declaration merging.
 */
export interface OneDnnAddon {
  info(): { dnnl: string; cpuRuntime: string; threads: number };
  setThreads(n: number): void;
  keepFreedMemory(): boolean;
  /** `bytes` of 64-byte aligned memory, contents unspecified; null when out of memory. */
  alignedBuffer(bytes: number): ArrayBuffer | null;
  isAligned(array: Float32Array): boolean;
}

export const ADDON_PATH = join(packageRoot(), 'native', 'build', 'Release', 'selab_onednn.node');

let cached: { addon?: OneDnnAddon; error?: Error } | undefined;

/** Loads the addon once; returns undefined (and remembers why) when it is missing or broken. */
export function loadAddon(): OneDnnAddon | undefined {
  if (!cached) {
    try {
      cached = { addon: createRequire(import.meta.url)(ADDON_PATH) as OneDnnAddon };
    } catch (err) {
      cached = { error: err as Error };
    }
  }
  return cached.addon;
}

export function addonLoadError(): Error | undefined {
  loadAddon();
  return cached?.error;
}

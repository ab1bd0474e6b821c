// What run.json records about where and with what a run was trained: package versions, the git
// commit of the checkout, and how BatchNorm takes its statistics.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { loadAddon } from '../backend/onednn/addon.js';
import { packageRoot } from '../util/paths.js';

let cachedVersions: Record<string, string> | undefined;

export function versions(backend: string): Record<string, string> {
  if (!cachedVersions) {
    const require = createRequire(import.meta.url);
    const pkg = require(join(packageRoot(), 'package.json')) as { version: string };
    cachedVersions = { selab: pkg.version, tfjs: tf.version_core, node: process.version };
  }
  const dnnl = backend === 'onednn' ? loadAddon()?.info() : undefined;
  return { ...cachedVersions, backend, ...(dnnl ? { dnnl: dnnl.dnnl, threads: String(dnnl.threads) } : {}) };
}

/** The native thread count on onednn; null where the backend has none to set. */
export function nativeThreads(backend: string): number | null {
  return backend === 'onednn' ? (loadAddon()?.info().threads ?? null) : null;
}

export function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: packageRoot(), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || null;
  } catch {
    return null;
  }
}

export function describeBatchNorm(model: tfl.LayersModel, batchSize: number, microBatch: number): string {
  const hasBN = model.layers.some(function bn(l): boolean {
    const nested = l as tfl.LayersModel;
    return l.getClassName() === 'BatchNormalization' || (Array.isArray(nested.layers) && nested.layers.some(bn));
  });
  if (!hasBN) return 'none (the model has no BatchNormalization)';
  return microBatch === batchSize
    ? `per batch of ${batchSize} images`
    : `per micro-batch of ${microBatch} images (gradients accumulated over ${batchSize / microBatch} micro-batches per step of ${batchSize})`;
}

// What run.json records about where and with what a run was trained: package versions, the git
// commit of the checkout, and how BatchNorm takes its statistics.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { loadAddon } from '../backend/onednn/addon.js';
import { webgpuAdapter } from '../backend/webgpu/backend.js';
import { describeAdapter } from '../backend/webgpu/dawn.js';
import { REFERENCE_REPLICAS } from '../runs/config.js';
import { packageRoot } from '../util/paths.js';
import type { ReplicaView } from './loop.js';

let cachedVersions: Record<string, string> | undefined;

export function versions(backend: string): Record<string, string> {
  if (!cachedVersions) {
    const require = createRequire(import.meta.url);
    const pkg = require(join(packageRoot(), 'package.json')) as { version: string };
    cachedVersions = { selab: pkg.version, tfjs: tf.version_core, node: process.version };
  }
  const dnnl = backend === 'onednn' ? loadAddon()?.info() : undefined;
  const gpu = backend === 'webgpu' ? webgpuAdapter() : undefined;
  return { ...cachedVersions, backend, ...(dnnl ? { dnnl: dnnl.dnnl, threads: String(dnnl.threads) } : {}), ...(gpu ? { gpu: describeAdapter(gpu) } : {}) };
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

export function hasBatchNorm(model: tfl.LayersModel): boolean {
  return model.layers.some(function bn(l): boolean {
    const nested = l as tfl.LayersModel;
    return l.getClassName() === 'BatchNormalization' || (Array.isArray(nested.layers) && nested.layers.some(bn));
  });
}

/**
 * How BatchNorm takes its statistics in this run, in words, and the group size it uses (null
 * without BatchNorm): the micro-batch, or under the reference protocol the replica's share.
 */
export function describeBatchNorm(model: tfl.LayersModel, batchSize: number, microBatch: number, replicas: ReplicaView | null = null): { text: string; group: number | null } {
  if (!hasBatchNorm(model)) return { text: 'none (the model has no BatchNormalization)', group: null };
  const accumulated = `gradients accumulated over ${batchSize / microBatch} micro-batches per step of ${batchSize}`;
  if (!replicas) {
    return {
      text: microBatch === batchSize ? `per batch of ${batchSize} images` : `per micro-batch of ${microBatch} images (${accumulated})`,
      group: microBatch,
    };
  }
  const { group, shard } = replicas;
  const moving = `moving averages from the first group of each step, as the reference's replica 0 kept them`;
  if (group === shard) {
    return { text: `per group of ${group} images, one replica's share of the batch as on the reference's ${REFERENCE_REPLICAS} TPU cores (${microBatch / group} per micro-batch of ${microBatch}; ${accumulated}); ${moving}`, group };
  }
  return {
    text: `per group of ${group} images, NOT the reference's ${shard}: the micro-batch of ${microBatch} that memory allows holds less than one replica's share (${accumulated}); ${moving}`,
    group,
  };
}

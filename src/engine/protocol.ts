// What --protocol reference changes in an epoch, derived from the configuration: how a step is
// seen as the reference's 8 TPU replicas took it (BatchNorm groups, the metrics Keras logged),
// which training images an epoch uses, and the reference's validation subset.
import { REFERENCE_REPLICAS, type TrainConfig } from '../runs/config.js';
import { deriveSeed } from '../util/random.js';
import type { ReplicaView } from './loop.js';

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * Under 'reference': each replica's share of the batch (128 of 1024), and the BatchNorm group,
 * which is that share unless the micro-batch holds less (then the largest size that divides both).
 * Null under 'keras'.
 */
export function replicaView(config: Pick<TrainConfig, 'protocol' | 'batchSize'> & { microBatch: number }): ReplicaView | null {
  if (config.protocol !== 'reference') return null;
  const shard = config.batchSize / REFERENCE_REPLICAS;
  return { shard, group: gcd(config.microBatch, shard) };
}

/**
 * The reference's validation each epoch: `fit_generator(validation_steps = 10000 // 1024)` drew 9
 * batches of 1024 from a new permutation of the test set, and Keras logged replica 0's metrics of
 * each, i.e. the first 128 images of each batch. As BatchIterator windows.
 */
export function referenceValidationWindows(batchSize: number): { size: number; use: number } {
  return { size: batchSize, use: batchSize / REFERENCE_REPLICAS };
}

/** The seed of the validation subset's per-epoch permutation: its own stream, apart from the training order's. */
export function validationSeed(seed: number): number {
  return deriveSeed(seed, 0x7a11d);
}

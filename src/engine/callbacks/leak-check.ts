// With SELAB_DEBUG set, fails a run whose live tensor count grows from one epoch to the next: the
// optimizer creates its slots in the first epoch, and after that the count must stay put.
import * as tf from '@tensorflow/tfjs-core';
import type { Callback } from '../callbacks.js';

export function leakCheck(enabled = Boolean(process.env.SELAB_DEBUG)): Callback {
  let previous: number | null = null;
  return {
    onEpochEnd(row) {
      if (!enabled) return;
      const tensors = tf.memory().numTensors;
      if (previous !== null && tensors > previous) {
        throw new Error(`tensor leak: ${tensors - previous} more live tensors after epoch ${row.epoch} than after the one before`);
      }
      previous = tensors;
    },
  };
}

// Choosing the micro-batch: the largest divisor of the batch, up to 128 images, whose training
// step fits a memory budget. A step's memory is dominated by the activations the backward pass
// keeps, which scale linearly with the micro-batch, so the estimate is (bytes of every layer
// output per image) × a factor measured on this codebase's models (see docs/training.md).
import type * as tfl from '@tensorflow/tfjs-layers';
import { totalmem } from 'node:os';

/**
 * A training step's memory per image ÷ the float32 bytes of all layer outputs per image. Measured
 * as the growth of the process's peak RSS from a micro-batch of 64 to one of 128 on `onednn`, for
 * each of the seven cases: 0.5-1.6 (plain10) to 2.9 (plain10+SE) (docs/benchmarks.md, "Peak
 * memory per case"); 3 is above every one. The rest of the process
 * (code, weights, optimizer state, the data set: 0.9-1.7 GB) does not grow with the micro-batch
 * and is outside the budget.
 */
export const ACTIVATION_FACTOR = 3;

/**
 * The largest micro-batch chosen without --micro-batch: the reference trained each step of 1024 as
 * 8 TPU replicas of 128, so 128 keeps BatchNorm's statistics per 128 images under either protocol;
 * a larger one would only take more memory.
 */
export const MAX_AUTO_MICRO_BATCH = 128;

function outputElements(shape: tfl.Shape | tfl.Shape[]): number {
  const shapes = (Array.isArray(shape[0]) ? shape : [shape]) as tfl.Shape[];
  let n = 0;
  for (const s of shapes) n += s.slice(1).reduce((a: number, b) => a * (b ?? 1), 1);
  return n;
}

/** float32 bytes of every layer's output for one image (nested models included, inputs not). */
export function activationBytesPerImage(model: tfl.LayersModel): number {
  let n = 0;
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    const nested = layer as tfl.LayersModel;
    if (Array.isArray(nested.layers)) n += activationBytesPerImage(nested) / 4;
    else n += outputElements(layer.outputShape);
  }
  return n * 4;
}

/** wasm memory is capped at 4 GB and never shrinks; keep a step well inside it. */
const WASM_BUDGET = 2 * 2 ** 30;

/**
 * Default budget for a step's activations: half the machine's memory (at most 2 GiB on wasm). On
 * 24 GiB that lets MobileNet+SE, the largest case, train in micro-batches of 128 (5.8 GB peak RSS).
 */
export function defaultMemoryBudget(backend = ''): number {
  const half = Math.floor(totalmem() / 2);
  return backend === 'wasm' ? Math.min(half, WASM_BUDGET) : half;
}

export function estimateStepBytes(model: tfl.LayersModel, microBatch: number): number {
  return activationBytesPerImage(model) * ACTIVATION_FACTOR * microBatch;
}

/** The largest divisor of batchSize, at most `max`, whose estimated step memory fits budgetBytes (at least 1). */
export function chooseMicroBatch(model: tfl.LayersModel, batchSize: number, budgetBytes = defaultMemoryBudget(), max = MAX_AUTO_MICRO_BATCH): number {
  const perImage = activationBytesPerImage(model) * ACTIVATION_FACTOR;
  const fit = Math.max(1, Math.floor(budgetBytes / perImage));
  for (let m = Math.min(batchSize, fit, max); m > 1; m--) if (batchSize % m === 0) return m;
  return 1;
}

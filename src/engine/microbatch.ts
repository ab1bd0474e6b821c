// Choosing the micro-batch: the largest divisor of the batch whose training step fits a memory
// budget. A step's memory is dominated by the activations the backward pass keeps, which scale
// linearly with the micro-batch, so the estimate is (bytes of every layer output per image) ×
// a factor measured on this codebase's models (see docs/training.md).
import type * as tfl from '@tensorflow/tfjs-layers';
import { totalmem } from 'node:os';

/**
 * Peak tensor bytes of a training step ÷ the float32 bytes of all layer outputs, both per image.
 * BatchNorm in training mode, ReLU and SE keep several same-sized intermediates per layer output,
 * and the gradients of one layer coexist with the next layer's saved activations.
 */
export const ACTIVATION_FACTOR = 8;

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

/** Default budget for a step's activations: a quarter of the machine's memory (less on wasm). */
export function defaultMemoryBudget(backend = ''): number {
  const quarter = Math.floor(totalmem() / 4);
  return backend === 'wasm' ? Math.min(quarter, WASM_BUDGET) : quarter;
}

export function estimateStepBytes(model: tfl.LayersModel, microBatch: number): number {
  return activationBytesPerImage(model) * ACTIVATION_FACTOR * microBatch;
}

/** The largest divisor of batchSize whose estimated step memory fits budgetBytes (at least 1). */
export function chooseMicroBatch(model: tfl.LayersModel, batchSize: number, budgetBytes = defaultMemoryBudget()): number {
  const perImage = activationBytesPerImage(model) * ACTIVATION_FACTOR;
  const fit = Math.max(1, Math.floor(budgetBytes / perImage));
  for (let m = Math.min(batchSize, fit); m > 1; m--) if (batchSize % m === 0) return m;
  return 1;
}

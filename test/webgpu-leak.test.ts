// 100 training steps on webgpu through the runner's own loop (trainEpoch: two micro-batches per
// step, gradient accumulation, the fused WGSL Adam) leave as many tensors and as many bytes of GPU
// buffers in use as after the first epoch, and the buffer pool does not grow either.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { trainEpoch, type Batch } from '../src/engine/loop.js';
import { makeOptimizer } from '../src/engine/optimizers.js';
import { skipWithoutWebGpu } from './webgpu.js';

const skip = await skipWithoutWebGpu();

/** conv → BN → ReLU6 → depthwise conv → BN → ReLU → global pool → dense: both conv gradients of kernels/conv.ts. */
function model(): tfl.LayersModel {
  const input = tfl.input({ shape: [8, 8, 3] });
  let x = tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ maxValue: 6 }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 10, activation: 'softmax' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

function* batches(steps: number, microBatch: number, perStep: number): Generator<Batch> {
  for (let i = 0; i < steps * perStep; i++) {
    yield tf.tidy(() => ({
      xs: tf.randomUniform([microBatch, 8, 8, 3], 0, 1, 'float32', i),
      ys: tf.cast(tf.oneHot(tf.tensor1d(Array.from({ length: microBatch }, (_, k) => (i + k) % 10), 'int32'), 10), 'float32'),
    }));
  }
}

test('100 training steps on webgpu: no growth of live tensors, GPU bytes in use or the buffer pool', { skip, timeout: 600_000 }, async () => {
  await tf.setBackend('webgpu');
  const m = model();
  const optimizer = makeOptimizer('adam');
  const epoch = (steps: number) => trainEpoch({ model: m, optimizer, batches: batches(steps, 2, 2), images: steps * 4, batchSize: 4 });
  // The first steps create the optimizer's slots and fill the buffer pool.
  await epoch(5);
  const before = tf.memory() as tf.MemoryInfo & { numBytesInGPU: number; numBytesAllocatedInGPU: number };
  const result = await epoch(100);
  assert.ok(Number.isFinite(result.loss), `loss ${result.loss}`);
  const after = tf.memory() as typeof before;
  assert.ok(tf.engine().backendNames().includes('webgpu') && tf.getBackend() === 'webgpu');
  assert.equal(after.numTensors, before.numTensors, 'live tensors');
  assert.equal(after.numBytesInGPU, before.numBytesInGPU, 'bytes of GPU buffers in use');
  assert.ok(after.numBytesAllocatedInGPU <= before.numBytesAllocatedInGPU, `GPU buffers allocated: ${before.numBytesAllocatedInGPU} → ${after.numBytesAllocatedInGPU} bytes`);
  optimizer.dispose();
  m.dispose();
});

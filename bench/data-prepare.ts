// Batch preparation cost vs a training step: `node --import tsx bench/data-prepare.ts [--data PATH] [--step-ms 5400] [--batches 4]`.
// For k = 1, 2, 4 at batch size 1024 (normalised, no augmentation; `--augment` to add it):
//  - sync:    ms per batch prepared on the main thread (steady state, recycled buffers);
//  - waited:  ms the main thread waits per batch with the worker prefetch on, while a simulated
//             training step (a busy main thread for --step-ms) runs between batches.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { BatchIterator, CIFAR10_MEAN, CIFAR10_STD } from '../src/data/batches.js';
import { loadCifar10 } from '../src/data/cifar.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/datasets/cifar-10-binary.tar.gz' },
    'step-ms': { type: 'string', default: '5400' },
    batches: { type: 'string', default: '4' },
    augment: { type: 'boolean', default: false },
  },
});
const stepMs = Number(values['step-ms']);
const nBatches = Number(values.batches);
const batchSize = 1024;

await tf.setBackend('cpu');
const { train } = await loadCifar10({ data: values.data, verify: false });

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timeEpoch(it: BatchIterator, simulatedStepMs: number): Promise<number[]> {
  const waits: number[] = [];
  const gen = it.epoch(1);
  for (;;) {
    const t = performance.now();
    const r = await gen.next();
    if (r.done) break;
    waits.push(performance.now() - t);
    busy(simulatedStepMs);
    r.value.xs.dispose();
    r.value.ys.dispose();
  }
  return waits;
}

console.log(`batch size ${batchSize}, simulated step ${stepMs} ms, ${nBatches} batches, augment ${values.augment}`);
console.log('k | output MB | sync ms/batch (median, steady) | waited ms/batch with prefetch (median of batches 2..) | sync / step');
for (const k of [1, 2, 4]) {
  const common = { batchSize, upsample: k, seed: 1, normalize: { mean: CIFAR10_MEAN, std: CIFAR10_STD }, augment: values.augment, limit: batchSize * nBatches };
  const sync = new BatchIterator(train, { ...common, prefetch: false });
  // The first batches touch fresh memory; the steady state reuses it.
  const syncMs = median((await timeEpoch(sync, 0)).slice(2));
  await sync.close();
  const pre = new BatchIterator(train, common);
  const waited = median((await timeEpoch(pre, stepMs)).slice(1));
  await pre.close();
  const mb = (batchSize * 32 * k * 32 * k * 3 * 4) / 1e6;
  console.log(`${k} | ${mb.toFixed(0)} | ${syncMs.toFixed(0)} | ${waited.toFixed(1)} | ${((100 * syncMs) / stepMs).toFixed(1)} %`);
}

// Batch preparation cost vs a training step:
//   node --import tsx bench/data-prepare.ts [--data PATH] [--batch-size 1024] [--batches 4] [--step-ms 5400] [--augment] [--real onednn|wasm|cpu]
// For k = 1, 2, 4 (normalised; `--augment` adds pad/crop/flip):
//  - sync:   ms per batch prepared on the main thread (median, steady state: recycled buffers);
//  - waited: ms the main thread waits per batch with the worker prefetch on, while a simulated
//            training step (the main thread busy for --step-ms) runs between batches.
// `--real B` also times real plain10 training steps (Adam, k = 1) at the same batch size on backend B.
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { selectBackend, type BackendName } from '../src/backend/select.js';
import { BatchIterator, CIFAR10_MEAN, CIFAR10_STD } from '../src/data/batches.js';
import { loadCifar10 } from '../src/data/cifar.js';
import { plain10 } from '../src/models/plain10.js';
import { categoricalCrossentropy } from '../src/engine/loop.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/datasets/cifar-10-binary.tar.gz' },
    'batch-size': { type: 'string', default: '1024' },
    'step-ms': { type: 'string', default: '5400' },
    batches: { type: 'string', default: '4' },
    augment: { type: 'boolean', default: false },
    real: { type: 'string' },
  },
});
const stepMs = Number(values['step-ms']);
const nBatches = Number(values.batches);
const batchSize = Number(values['batch-size']);

await selectBackend((values.real ?? 'cpu') as BackendName);
const { train } = await loadCifar10({ data: values.data, verify: false });

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Main-thread ms per batch (waiting + tensor creation), with `between` run after each batch. */
async function timeEpoch(it: BatchIterator, between: (xs: tf.Tensor4D, ys: tf.Tensor2D) => void): Promise<number[]> {
  const waits: number[] = [];
  const gen = it.epoch(1);
  for (;;) {
    const t = performance.now();
    const r = await gen.next();
    if (r.done) break;
    waits.push(performance.now() - t);
    between(r.value.xs, r.value.ys);
    tf.dispose([r.value.xs, r.value.ys]);
  }
  return waits;
}

console.log(`backend ${tf.getBackend()}, batch size ${batchSize}, ${nBatches} batches, augment ${values.augment}, simulated step ${stepMs} ms`);
console.log('k | batch MB | sync ms/batch | waited ms/batch (prefetch) | sync / simulated step');
const syncK1: number[] = [];
for (const k of [1, 2, 4]) {
  const common = { batchSize, upsample: k, seed: 1, normalize: { mean: CIFAR10_MEAN, std: CIFAR10_STD }, augment: values.augment, limit: batchSize * nBatches };
  const sync = new BatchIterator(train, { ...common, prefetch: false });
  // The first two batches touch fresh memory; later ones reuse it.
  const syncMs = median((await timeEpoch(sync, () => {})).slice(2));
  await sync.close();
  if (k === 1) syncK1.push(syncMs);
  const pre = new BatchIterator(train, common);
  const waited = median((await timeEpoch(pre, () => busy(stepMs))).slice(1));
  await pre.close();
  const mb = (batchSize * 32 * k * 32 * k * 3 * 4) / 1e6;
  console.log(`${k} | ${mb.toFixed(0)} | ${syncMs.toFixed(1)} | ${waited.toFixed(1)} | ${((100 * syncMs) / stepMs).toFixed(2)} %`);
}

if (values.real) {
  const model = plain10();
  const opt = tf.train.adam(1e-3);
  const it = new BatchIterator(train, { batchSize, seed: 1, normalize: { mean: CIFAR10_MEAN, std: CIFAR10_STD }, limit: batchSize * nBatches });
  const steps: number[] = [];
  const waits = await timeEpoch(it, (xs, ys) => {
    const t = performance.now();
    const loss = opt.minimize(() => categoricalCrossentropy(ys, model.apply(xs, { training: true }) as tf.Tensor), true);
    loss?.dataSync();
    loss?.dispose();
    steps.push(performance.now() - t);
  });
  await it.close();
  const step = median(steps.slice(1));
  console.log(`real plain10 step on ${tf.getBackend()} at batch ${batchSize}: ${step.toFixed(0)} ms (${((batchSize * 1000) / step).toFixed(1)} img/s); ` +
    `sync k=1 prep ${syncK1[0]!.toFixed(1)} ms = ${((100 * syncK1[0]!) / step).toFixed(2)} % of it; waited with prefetch ${median(waits.slice(1)).toFixed(1)} ms`);
}

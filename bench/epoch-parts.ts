// An epoch's time against the bench's, part by part, in one process on onednn: the bench's
// training step (median), the training loop's steady steps on the real training split
// (median, prepared by the worker as in `selab train`), the loop's mean step including its
// first, one validation pass over the real test split, and the bench's inference step.
//   node --import tsx bench/epoch-parts.ts [model=plain10] [batch=128] [steps=25] [rounds=3] [data]
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/backend/select.js';
import { benchModel } from '../src/bench/run.js';
import { inferStepAsync, makeAsyncTrainStep, median, randomBatch, timeMedianAsync } from '../src/bench/step.js';
import { BatchIterator } from '../src/data/batches.js';
import { loadCifar10 } from '../src/data/cifar.js';
import { evaluate, trainEpoch } from '../src/engine/loop.js';
import { makeOptimizer } from '../src/engine/optimizers.js';
import { buildCaseModel, getCase } from '../src/experiments/cases.js';

const [name = 'plain10', batchArg = '128', stepsArg = '25', roundsArg = '3', data = '../shared/datasets/cifar-10-binary.tar.gz'] = process.argv.slice(2);
const [batch, steps, rounds] = [Number(batchArg), Number(stepsArg), Number(roundsArg)];
if (!Number.isInteger(steps) || steps < 3) throw new Error(`steps: expected an integer of at least 3 (the loop's median leaves out its first two steps), got "${stepsArg}"`);
await selectBackend('onednn');
const referenceCase = getCase(benchModel(name).caseId);
const model = await buildCaseModel(referenceCase);
const shape = model.inputs[0]!.shape.slice(1) as number[];
const { upsample } = referenceCase;
const { train, test } = await loadCifar10({ data, verify: false, quiet: true });
const optimizer = makeOptimizer('adam');
const benchStep = makeAsyncTrainStep(model, optimizer);
const probe = randomBatch(batch, shape, 10);
const images = batch * steps;
const trainData = new BatchIterator(train, { batchSize: batch, upsample, seed: 1, limit: images });
const testData = new BatchIterator(test, { batchSize: batch, upsample, shuffle: false });

const rows: Record<string, number[]> = { 'bench step, median ms': [], 'loop step 3 on, median ms': [], 'loop, mean ms per step': [], 'validation pass, s': [], 'bench inference, img/s': [] };
const record = (key: string, value: number) => rows[key]!.push(value);
for (let round = 1; round <= rounds; round++) {
  record('bench step, median ms', (await timeMedianAsync(() => benchStep(probe.xs, probe.ys), 2, steps)) * 1000);
  const times: number[] = [];
  let last = performance.now();
  const epoch = await trainEpoch({ model, optimizer, batches: trainData.epoch(round), images, batchSize: batch, onStep: () => { times.push(performance.now() - last); last = performance.now(); } });
  record('loop step 3 on, median ms', median(times.slice(2)));
  record('loop, mean ms per step', (epoch.seconds * 1000) / steps);
  const t0 = performance.now();
  await evaluate(model, testData.epoch(0));
  record('validation pass, s', (performance.now() - t0) / 1000);
  record('bench inference, img/s', batch / (await timeMedianAsync(() => inferStepAsync(model, probe.xs), 2, 8)));
  console.log(`round ${round}: ${Object.entries(rows).map(([k, v]) => `${k} ${v.at(-1)!.toFixed(1)}`).join(', ')}`);
}
console.log(`${name}, batch ${batch}, ${steps} steps a round, medians over ${rounds} rounds:`);
for (const [k, v] of Object.entries(rows)) console.log(`  ${k}: ${median(v).toFixed(1)}`);
await Promise.all([trainData.close(), testData.close()]);
tf.dispose([probe.xs, probe.ys]);

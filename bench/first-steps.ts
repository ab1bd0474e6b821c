// What a new batch shape costs: the first training steps of a bench model on onednn at `batch`,
// then the first two at `partial` (an epoch's last batch), each with the minor page faults it
// took. The first step faults in every activation buffer; a partial batch should run in the
// full batch's storage (src/backend/onednn/memory.ts).
//   node --import tsx bench/first-steps.ts [model] [batch] [partial]
import { selectBackend } from '../src/backend/select.js';
import { benchModel } from '../src/bench/run.js';
import { makeAsyncTrainStep, median, randomBatch } from '../src/bench/step.js';
import { makeOptimizer } from '../src/engine/optimizers.js';
import { buildCaseModel } from '../src/experiments/cases.js';

const [name = 'mobilenet', batchArg = '128', partialArg = '80'] = process.argv.slice(2);
await selectBackend('onednn');
const model = await buildCaseModel(benchModel(name).caseId);
const shape = model.inputs[0]!.shape.slice(1) as number[];
const full = randomBatch(Number(batchArg), shape, 10);
const partial = randomBatch(Number(partialArg), shape, 10);
const step = makeAsyncTrainStep(model, makeOptimizer('adam'));

async function timed(batch: typeof full): Promise<{ ms: number; faults: number }> {
  const faults = process.resourceUsage().minorPageFault;
  const t0 = performance.now();
  await step(batch.xs, batch.ys);
  return { ms: performance.now() - t0, faults: process.resourceUsage().minorPageFault - faults };
}

const show = (label: string, r: { ms: number; faults: number }) => console.log(`${label}: ${r.ms.toFixed(0)} ms, ${r.faults} minor faults`);
show(`${name} batch ${batchArg}, step 1`, await timed(full));
const later: number[] = [];
for (let i = 0; i < 6; i++) later.push((await timed(full)).ms);
console.log(`${name} batch ${batchArg}, steps 2-7: median ${median(later).toFixed(0)} ms`);
show(`batch ${partialArg}, first step`, await timed(partial));
show(`batch ${partialArg}, second step`, await timed(partial));

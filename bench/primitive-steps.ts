// Training steps of a bench model on onednn, for bench/onednn_primitives.py: `steps` untimed
// steps, a marker line, then `steps` more, so that ONEDNN_VERBOSE's lines after the marker are
// the steady state.
//   node --import tsx bench/primitive-steps.ts <model> <batch> <steps>
import { selectBackend } from '../src/backend/select.js';
import { benchModel } from '../src/bench/run.js';
import { makeAsyncTrainStep, randomBatch } from '../src/bench/step.js';
import { makeOptimizer } from '../src/engine/optimizers.js';
import { buildCaseModel } from '../src/experiments/cases.js';

const [name = 'mobilenet', batchArg, stepsArg] = process.argv.slice(2);
const spec = benchModel(name);
const steps = Number(stepsArg ?? 6);
await selectBackend('onednn');
const model = await buildCaseModel(spec.caseId);
const { xs, ys } = randomBatch(Number(batchArg ?? spec.batch), model.inputs[0]!.shape.slice(1) as number[], 10);
const step = makeAsyncTrainStep(model, makeOptimizer('adam'));
for (let i = 0; i < steps; i++) await step(xs, ys);
console.log('selab-primitives: timed steps follow');
for (let i = 0; i < steps; i++) await step(xs, ys);

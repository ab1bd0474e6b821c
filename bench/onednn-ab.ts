// A/B of native-backend settings within one process: the settings alternate step by step, so
// load drift on a shared machine hits both alike. Reports the median wall and CPU time per step.
//   node --import tsx bench/onednn-ab.ts --models plain10 --phases train --steps 6 --ab winograd=off,auto
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { selectBackend } from '../src/backend/select.js';
import { loadAddon } from '../src/backend/onednn/addon.js';
import { benchModel } from '../src/bench/run.js';
import { inferStep, makeTrainStep, median, randomBatch } from '../src/bench/step.js';
import { buildCaseModel } from '../src/experiments/cases.js';
import { makeOptimizer } from '../src/engine/optimizers.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'plain10' },
    phases: { type: 'string', default: 'train' },
    batch: { type: 'string' },
    steps: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '1' },
    ab: { type: 'string', default: 'winograd=off,auto' },
  },
});
await selectBackend('onednn');
const addon = loadAddon() as unknown as Record<string, (v: string) => void>;
const [setting, list] = values.ab.split('=') as [string, string];
const options = list.split(',');
const apply: Record<string, (v: string) => void> = {
  winograd: (v) => addon['setConvWinograd']!(v),
  pointwise: (v) => addon['setConvPointwise']!(v),
  parallelMin: (v) => (addon['setParallelMin'] as unknown as (n: number) => void)(Number(v)),
  env: (v) => {
    const [k, val] = v.split(':') as [string, string];
    process.env[k] = val;
  },
};
const set = apply[setting];
if (!set) throw new Error(`unknown --ab setting ${setting}`);

for (const name of values.models.split(',')) {
  const spec = benchModel(name);
  const batch = values.batch ? Number(values.batch) : spec.batch;
  const model = await buildCaseModel(spec.caseId);
  const { xs, ys } = randomBatch(batch, model.inputs[0]!.shape.slice(1) as number[], 10);
  const optimizer = makeOptimizer('adam');
  for (const phase of values.phases.split(',')) {
    const fn = phase === 'train' ? ((step) => () => void step(xs, ys))(makeTrainStep(model, optimizer)) : () => inferStep(model, xs);
    const wall = new Map<string, number[]>(options.map((o) => [o, []]));
    const cpu = new Map<string, number[]>(options.map((o) => [o, []]));
    for (const o of options) {
      set(o);
      for (let i = 0; i < Number(values.warmup); i++) fn();
    }
    for (let i = 0; i < Number(values.steps); i++) {
      for (const o of options) {
        set(o);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        fn();
        wall.get(o)!.push(performance.now() - t0);
        const c = process.cpuUsage(c0);
        cpu.get(o)!.push((c.user + c.system) / 1000);
      }
    }
    for (const o of options) {
      const w = median(wall.get(o)!);
      const c = median(cpu.get(o)!);
      console.log(`${name} ${phase} b${batch} ${setting}=${o}: wall ${w.toFixed(0)} ms (${((batch / w) * 1000).toFixed(1)} img/s), cpu ${c.toFixed(0)} ms (${((batch / c) * 1000).toFixed(1)} img/cpu-s)`);
    }
  }
  tf.dispose([xs, ys]);
  optimizer.dispose();
  model.dispose();
}

// Per-kernel self time of training steps and inference passes of the bench models on one
// backend, averaged over several steps after warm-up (selab bench --profile profiles one
// training step only).
//   node --import tsx bench/onednn-profile.ts [--models plain10,mobilenet] [--phases train,infer]
//     [--batch N] [--steps 3] [--warmup 2] [--backend onednn]
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { selectBackend, type BackendName } from '../src/backend/select.js';
import { BENCH_MODELS, benchModel } from '../src/bench/run.js';
import { formatProfile, profileKernels, type KernelProfile } from '../src/bench/profile.js';
import { inferStep, makeTrainStep, randomBatch } from '../src/bench/step.js';
import { buildCaseModel } from '../src/experiments/cases.js';
import { makeOptimizer } from '../src/engine/optimizers.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: BENCH_MODELS.map((m) => m.name).join(',') },
    phases: { type: 'string', default: 'train,infer' },
    batch: { type: 'string' },
    steps: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '2' },
    backend: { type: 'string', default: 'onednn' },
  },
});
const backend = await selectBackend(values.backend as BackendName);
const steps = Number(values.steps);
const warmup = Number(values.warmup);

function merge(profiles: KernelProfile[]): KernelProfile {
  const by = new Map<string, { kernel: string; calls: number; ms: number }>();
  for (const p of profiles) {
    for (const k of p.kernels) {
      const s = by.get(k.kernel) ?? { kernel: k.kernel, calls: 0, ms: 0 };
      s.calls += k.calls / profiles.length;
      s.ms += k.ms / profiles.length;
      by.set(k.kernel, s);
    }
  }
  const kernels = [...by.values()].sort((a, b) => b.ms - a.ms);
  const totalMs = profiles.reduce((s, p) => s + p.totalMs, 0) / profiles.length;
  return { totalMs, kernelMs: kernels.reduce((s, k) => s + k.ms, 0), kernels };
}

for (const name of values.models.split(',')) {
  const spec = benchModel(name);
  const batch = values.batch ? Number(values.batch) : spec.batch;
  const model = await buildCaseModel(spec.caseId);
  const { xs, ys } = randomBatch(batch, model.inputs[0]!.shape.slice(1) as number[], 10);
  const optimizer = makeOptimizer('adam');
  for (const phase of values.phases.split(',')) {
    const fn = phase === 'train' ? ((step) => () => void step(xs, ys))(makeTrainStep(model, optimizer)) : () => inferStep(model, xs);
    for (let i = 0; i < warmup; i++) fn();
    const profiles: KernelProfile[] = [];
    for (let i = 0; i < steps; i++) profiles.push(profileKernels(backend, fn));
    const p = merge(profiles);
    console.log(`\n${name} ${phase} batch ${batch} on ${backend}, mean of ${steps} steps: ${((batch / p.totalMs) * 1000).toFixed(1)} img/s`);
    console.log(formatProfile(p, 0.003));
  }
  tf.dispose([xs, ys]);
  optimizer.dispose();
  model.dispose();
}

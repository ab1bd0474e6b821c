// Where a onednn training step spends its time outside the native kernels: each phase (forward
// with the loss, gradient, optimizer) split into the time inside the addon's functions and the
// rest (tfjs' engine and tape, tfjs-layers, selab's JavaScript around the kernels, garbage
// collection), the JavaScript time of the layers' own `call` by class, and the tfjs kernels the
// engine runs per step. Medians over the timed steps.
//   node --import tsx bench/step-outside.ts [model=mobilenet] [steps=10]
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/backend/select.js';
import { loadAddon } from '../src/backend/onednn/addon.js';
import { benchModel } from '../src/bench/run.js';
import { median, randomBatch } from '../src/bench/step.js';
import { categoricalCrossentropy } from '../src/engine/loop.js';
import { makeOptimizer } from '../src/engine/optimizers.js';
import { buildCaseModel } from '../src/experiments/cases.js';

const [name = 'mobilenet', stepsArg = '10'] = process.argv.slice(2);
const spec = benchModel(name);
const steps = Number(stepsArg);
if (!(Number.isInteger(steps) && steps >= 3)) throw new Error(`bench/step-outside.ts: steps must be an integer ≥ 3, got "${stepsArg}"`);
await selectBackend('onednn');

let native = 0;
const addon = loadAddon() as unknown as Record<string, unknown>;
for (const [key, fn] of Object.entries(addon)) {
  if (typeof fn !== 'function') continue;
  addon[key] = function timed(this: unknown, ...args: unknown[]) {
    const t0 = performance.now();
    try {
      return (fn as (...a: unknown[]) => unknown).apply(this, args);
    } finally {
      native += performance.now() - t0;
    }
  };
}

const model = await buildCaseModel(spec.caseId);
const callJs = new Map<string, number>();
for (const layer of model.layers) {
  const call = layer.call.bind(layer);
  const className = layer.getClassName();
  layer.call = (inputs, kwargs) => {
    const t0 = performance.now();
    const n0 = native;
    try {
      return call(inputs, kwargs);
    } finally {
      callJs.set(className, (callJs.get(className) ?? 0) + performance.now() - t0 - (native - n0));
    }
  };
}

const engine = tf.engine() as unknown as { runKernelFunc(params: { kernelName?: string }): unknown };
const kernels = new Map<string, number>();
const runKernelFunc = engine.runKernelFunc.bind(engine);
engine.runKernelFunc = (params) => {
  const kernelName = params.kernelName ?? '(custom gradient)';
  kernels.set(kernelName, (kernels.get(kernelName) ?? 0) + 1);
  return runKernelFunc(params);
};

const { xs, ys } = randomBatch(spec.batch, model.inputs[0]!.shape.slice(1) as number[], 10);
const optimizer = makeOptimizer('adam');
const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
const rows: number[][] = [];
const calls: Map<string, number>[] = [];
for (let i = 0; i < 4 + steps; i++) {
  native = 0;
  callJs.clear();
  kernels.clear();
  const t0 = performance.now();
  let t1 = 0;
  let n1 = 0;
  const { value, grads } = tf.variableGrads(() => {
    const loss = categoricalCrossentropy(ys, model.apply(xs, { training: true }) as tf.Tensor);
    t1 = performance.now();
    n1 = native;
    return loss;
  }, vars);
  const t2 = performance.now();
  const n2 = native;
  optimizer.applyGradients(grads);
  tf.dispose(Object.values(grads));
  await value.data();
  value.dispose();
  const t3 = performance.now();
  if (i < 4) continue;
  rows.push([t1 - t0, n1, t2 - t1, n2 - n1, t3 - t2, native - n2, t3 - t0, native]);
  calls.push(new Map(callJs));
}

console.log(`${name}, batch ${spec.batch}, ${steps} steps after 4: median ms (inside the addon / outside)`);
const phases = ['forward and loss', 'gradient', 'optimizer', 'whole step'];
phases.forEach((phase, k) => {
  const wall = median(rows.map((r) => r[2 * k]!));
  const inside = median(rows.map((r) => r[2 * k + 1]!));
  const outside = median(rows.map((r) => r[2 * k]! - r[2 * k + 1]!));
  console.log(`  ${phase.padEnd(17)} ${wall.toFixed(1).padStart(6)}  (${inside.toFixed(1)} / ${outside.toFixed(1)}, outside ${((100 * outside) / wall).toFixed(0)} %)`);
});
const classes = [...new Set(calls.flatMap((c) => [...c.keys()]))];
console.log(`  layers' call, outside the addon: ${classes.map((c) => `${c} ${median(calls.map((m) => m.get(c) ?? 0)).toFixed(1)}`).join(', ')}`);
const total = [...kernels.values()].reduce((a, b) => a + b, 0);
const top = [...kernels].sort((a, b) => b[1] - a[1]).slice(0, 8);
console.log(`  tfjs kernels per step: ${total} (${top.map(([k, n]) => `${k} ${n}`).join(', ')}, …)`);

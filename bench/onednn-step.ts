// Wall time of plain10 training steps (model.trainOnBatch) on one backend, for A/B runs of
// environment settings such as OMP_WAIT_POLICY or SELAB_THREADS.
//   node --import tsx bench/onednn-step.ts [backend=onednn] [batch=128] [steps=3]
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type BackendName } from '../src/backend/select.js';
import { plain10 } from '../src/models/plain10.js';

const backend = await selectBackend((process.argv[2] ?? 'onednn') as BackendName);
const batch = Number(process.argv[3] ?? 128);
const steps = Number(process.argv[4] ?? 3);
const model = plain10();
model.compile({ optimizer: tf.train.sgd(0.01), loss: 'categoricalCrossentropy' });
const xs = tf.randomNormal([batch, 32, 32, 3]);
const ys = tf.cast(tf.oneHot(tf.randomUniform([batch], 0, 10, 'int32') as tf.Tensor1D, 10), 'float32');
for (let i = 0; i < 2; i++) await model.trainOnBatch(xs, ys);
const times: number[] = [];
for (let i = 0; i < steps; i++) {
  const t = performance.now();
  await model.trainOnBatch(xs, ys);
  times.push(performance.now() - t);
}
const median = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
console.log(
  `${backend} batch ${batch} OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY ?? '(unset)'}: step ms ${times.map((t) => t.toFixed(0)).join(' ')}, ${((batch / median) * 1000).toFixed(1)} img/s`,
);

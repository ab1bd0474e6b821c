// Machine-dependent: resident memory depends on the allocator, the kernel and the load (npm run check:perf).
// 200 training steps on onednn: the tensor count and the process's resident memory stay flat.
// "Flat": after 20 warm-up steps (optimizer slots created, recycled buffers in the pool, V8 and
// oneDNN caches filled) the tensor count never changes, and RSS at the end is within
// RSS_SLACK_MB of RSS after warm-up (both measured after a full GC).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { registerOneDnnBackend } from '../../src/backend/onednn/backend.js';
import { addonLoadError } from '../../src/backend/onednn/addon.js';
import { se } from '../../src/attention/index.js';
import { plain10 } from '../../src/models/plain10.js';
import { makeTrainStep, randomBatch } from '../../src/bench/step.js';

const available = registerOneDnnBackend();
const skip = available ? false : `the onednn addon is not built (${addonLoadError()?.message.split('\n')[0]}); run node native/build.mjs`;

const STEPS = 200;
const WARMUP = 20;
const RSS_SLACK_MB = 40;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function rssMb(): number {
  gc();
  return process.memoryUsage().rss / 2 ** 20;
}

test(`tensor count and RSS stay flat over ${STEPS} training steps (plain10+SE, 8×8, batch 4, Adam)`, { skip, timeout: 900_000 }, async () => {
  await tf.setBackend('onednn');
  const model = plain10({ attention: se(), inputShape: [8, 8, 3] });
  const optimizer = tf.train.adam(1e-3);
  const step = makeTrainStep(model, optimizer);
  const { xs, ys } = randomBatch(4, [8, 8, 3], 10);
  let tensorsAfterWarmup = 0;
  let rssAfterWarmup = 0;
  for (let i = 1; i <= STEPS; i++) {
    const loss = step(xs, ys);
    assert.ok(Number.isFinite(loss), `step ${i}: loss ${loss}`);
    // Let finalizers and the event loop run, as between a runner's steps.
    await new Promise((resolve) => setImmediate(resolve));
    if (i === WARMUP) {
      tensorsAfterWarmup = tf.memory().numTensors;
      rssAfterWarmup = rssMb();
    } else if (i > WARMUP) {
      assert.equal(tf.memory().numTensors, tensorsAfterWarmup, `tensor count changed at step ${i}`);
    }
  }
  const growth = rssMb() - rssAfterWarmup;
  tf.dispose([xs, ys]);
  optimizer.dispose();
  model.dispose();
  assert.ok(growth < RSS_SLACK_MB, `RSS grew by ${growth.toFixed(1)} MB between step ${WARMUP} and step ${STEPS}`);
});

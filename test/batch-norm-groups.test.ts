// BatchNorm groups (withBatchNormGroups in src/models/batch-norm.ts): a training-mode batch of 256
// taken as groups of 128 must give exactly what two separate passes of 128 give — outputs,
// gradients, and the moving averages of two updates in order (or of the first group only) — on
// cpu and on onednn; outside the scope nothing changes, and nothing reaches the saved config.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { registerOneDnnBackend } from '../src/backend/onednn/backend.js';
import { BatchNorm, withBatchNormGroups } from '../src/models/batch-norm.js';

const available = registerOneDnnBackend();
const backends = available ? ['cpu', 'onednn'] : ['cpu'];

function random(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((hi - lo) * s) / 2 ** 32;
  }
  return out;
}

const GROUP = 128;
const SHAPE = [2 * GROUP, 3, 3, 4];
const PER_GROUP = [GROUP, 3, 3, 4];

/** A BatchNorm with non-trivial gamma, beta and moving statistics. */
function layer(): BatchNorm {
  const bn = new BatchNorm({ momentum: 0.9, epsilon: 1e-3 });
  bn.build(PER_GROUP);
  bn.setWeights([tf.tensor(random(4, 3, 0.5, 1.5)), tf.tensor(random(4, 4)), tf.tensor(random(4, 5)), tf.tensor(random(4, 6, 0.5, 2))]);
  return bn;
}

/**
 * One training-mode pass of sum(bn(x)·w) under tf.variableGrads: the output, the loss, the
 * gradients for x and gamma, and the moving statistics afterwards.
 */
function pass(bn: BatchNorm, x: tf.Tensor, w: tf.Tensor) {
  const [gamma] = bn.trainableWeights.map((v) => v.read() as tf.Variable);
  const xv = tf.variable(x);
  let y: tf.Tensor | undefined;
  const { value, grads } = tf.variableGrads(() => {
    y = tf.keep(bn.apply(xv, { training: true }) as tf.Tensor);
    return tf.sum(tf.mul(y, w)) as tf.Scalar;
  }, [gamma!, xv]);
  const out = {
    y: Array.from(y!.dataSync()),
    loss: value.dataSync()[0]!,
    dx: Array.from(grads[xv.name]!.dataSync()),
    dGamma: Float32Array.from(grads[gamma!.name]!.dataSync()),
    moving: bn.getWeights().slice(2).map((t) => Array.from(t.dataSync())),
  };
  tf.dispose([y!, value, xv, ...Object.values(grads)]);
  return out;
}

const moving = (bn: BatchNorm) => bn.getWeights().slice(2).map((t) => Array.from(t.dataSync()));

describe('a batch of 256 as BatchNorm groups of 128', () => {
  for (const backend of backends) {
    it(`${backend}: outputs, gradients and two moving-average updates equal two separate passes of 128`, async () => {
      await tf.setBackend(backend);
      const x = tf.tensor(random(tf.util.sizeFromShape(SHAPE), 1, -2, 3), SHAPE);
      const w = tf.tensor(random(tf.util.sizeFromShape(SHAPE), 2), SHAPE);
      const got = withBatchNormGroups({ size: GROUP, movingAverages: 'every' }, () => pass(layer(), x, w));
      const separate = layer();
      const halves = [0, 1].map((k) => pass(separate, tf.slice(x, k * GROUP, GROUP), tf.slice(w, k * GROUP, GROUP)));
      assert.deepEqual(got.y, [...halves[0]!.y, ...halves[1]!.y], 'outputs: each group normalised with its own statistics');
      assert.deepEqual(got.dx, [...halves[0]!.dx, ...halves[1]!.dx], 'dx');
      const dGamma = halves[0]!.dGamma.map((g, c) => g + halves[1]!.dGamma[c]!);
      assert.deepEqual(Array.from(got.dGamma), Array.from(dGamma), 'dGamma: the sum over the groups');
      assert.ok(Math.abs(got.loss - (halves[0]!.loss + halves[1]!.loss)) <= 1e-5 * Math.abs(got.loss), 'loss');
      assert.deepEqual(got.moving, halves[1]!.moving, 'moving averages: group 1, then group 2');
      tf.dispose([x, w]);
    });

    it(`${backend}: 'first' moves the averages by the first group only, 'none' not at all; outside the scope the whole batch is one group`, async () => {
      await tf.setBackend(backend);
      const x = tf.tensor(random(tf.util.sizeFromShape(SHAPE), 7, -2, 3), SHAPE);
      const firstOnly = layer();
      const y = withBatchNormGroups({ size: GROUP, movingAverages: 'first' }, () => Array.from((firstOnly.apply(x, { training: true }) as tf.Tensor).dataSync()));
      const reference = layer();
      reference.apply(tf.slice(x, 0, GROUP), { training: true });
      assert.deepEqual(moving(firstOnly), moving(reference));
      const every = withBatchNormGroups({ size: GROUP, movingAverages: 'every' }, () => Array.from((layer().apply(x, { training: true }) as tf.Tensor).dataSync()));
      assert.deepEqual(y, every, 'which groups update the averages does not change the output');

      const none = layer();
      const before = moving(none);
      withBatchNormGroups({ size: GROUP, movingAverages: 'none' }, () => none.apply(x, { training: true }));
      assert.deepEqual(moving(none), before);

      const whole = layer();
      const yWhole = Array.from((whole.apply(x, { training: true }) as tf.Tensor).dataSync());
      const yGrouped = withBatchNormGroups({ size: GROUP, movingAverages: 'every' }, () => Array.from((layer().apply(x, { training: true }) as tf.Tensor).dataSync()));
      assert.notDeepEqual(yWhole, yGrouped, 'statistics of 256 images are not those of two groups of 128');
      const yOneGroup = withBatchNormGroups({ size: 2 * GROUP, movingAverages: 'every' }, () => Array.from((layer().apply(x, { training: true }) as tf.Tensor).dataSync()));
      assert.deepEqual(yOneGroup, yWhole, 'a group as large as the batch is the ungrouped layer');
      assert.throws(() => withBatchNormGroups({ size: 96, movingAverages: 'every' }, () => layer().apply(x, { training: true })), /does not split into groups of 96/);
      x.dispose();
    });
  }

  it('the setting never reaches the saved config, and inference ignores it', async () => {
    await tf.setBackend('cpu');
    const input = tfl.input({ shape: [3, 3, 4] });
    const model = tfl.model({ inputs: input, outputs: new BatchNorm({ name: 'bn' }).apply(input) as tfl.SymbolicTensor });
    const before = JSON.stringify(model.toJSON(null, false));
    const x = tf.tensor(random(tf.util.sizeFromShape(SHAPE), 9), SHAPE);
    const inference = Array.from((model.predict(x) as tf.Tensor).dataSync());
    withBatchNormGroups({ size: GROUP, movingAverages: 'first' }, () => {
      assert.deepEqual(Array.from((model.predict(x) as tf.Tensor).dataSync()), inference);
      model.apply(x, { training: true });
    });
    assert.equal(JSON.stringify(model.toJSON(null, false)), before);
    x.dispose();
  });
});

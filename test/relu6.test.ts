// MobileNet's ReLU6 as one kernel (src/models/relu6.ts): the same values and gradients as
// tfjs-layers' ReLU({maxValue: 6}), serialised as that layer, and one kernel instead of two.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { ReLU6 } from '../src/models/relu6.js';
import { mobilenetV1 } from '../src/models/mobilenet.js';

tf.setBackend('cpu');

test('values and gradients equal tfjs-layers ReLU(maxValue 6), at the kinks and for NaN', () => {
  const x = tf.tensor1d([-2, -0, 0, 1e-7, 0.5, 5.9999995, 6, 6.0000005, 7, NaN]);
  const stock = tfl.layers.reLU({ maxValue: 6 });
  const ours = new ReLU6();
  const valueAndGrad = (layer: tfl.layers.Layer) => {
    const { value, grad } = tf.valueAndGrad((t: tf.Tensor) => tf.sum(tf.mul(layer.apply(t) as tf.Tensor, tf.range(1, 11))))(x);
    return { y: Array.from((layer.apply(x) as tf.Tensor).dataSync()), value: value.dataSync()[0], dx: Array.from(grad.dataSync()) };
  };
  const want = valueAndGrad(stock);
  const got = valueAndGrad(ours);
  assert.deepEqual(got.y, [0, 0, 0, 1e-7, 0.5, 5.9999995, 6, 6, 6, NaN].map(Math.fround));
  assert.deepEqual(got.y, want.y);
  assert.deepEqual(got.dx, want.dx);
  assert.deepEqual(got.dx, [0, 0, 0, 4, 5, 6, 7, 0, 0, NaN]);
});

test('MobileNet saves its activations as Keras ReLU(max_value 6) and loads them as the stock layer', async () => {
  const model = mobilenetV1({ alpha: 0.25, inputShape: [32, 32, 3] });
  const json = model.toJSON(null, false) as { config: { layers: { class_name: string; name: string; config: Record<string, unknown> }[] } };
  const relus = json.config.layers.filter((l) => l.name.endsWith('_relu'));
  assert.equal(relus.length, 27);
  for (const l of relus) {
    assert.equal(l.class_name, 'ReLU');
    assert.equal(l.config['max_value'], 6);
  }
  const loaded = await tfl.models.modelFromJSON({ modelTopology: model.toJSON(null, false) as tf.io.ModelJSON['modelTopology'] });
  loaded.setWeights(model.getWeights());
  assert.equal(loaded.getLayer('conv1_relu').getClassName(), 'ReLU');
  assert.ok(!(loaded.getLayer('conv1_relu') instanceof ReLU6), 'loading needs no selab class');
  const x = tf.randomUniform([2, 32, 32, 3], 0, 1, 'float32', 5);
  const a = (model.predict(x) as tf.Tensor).dataSync();
  const b = (loaded.predict(x) as tf.Tensor).dataSync();
  assert.deepEqual(Array.from(b), Array.from(a));
});

test('one kernel per activation: Relu6, no Relu + ClipByValue', async () => {
  const model = mobilenetV1({ alpha: 0.25, inputShape: [32, 32, 3] });
  const x = tf.zeros([1, 32, 32, 3]);
  const { kernelNames } = await tf.profile(() => {
    (model.predict(x) as tf.Tensor).dispose();
  });
  assert.ok(kernelNames.includes('Relu6'));
  assert.ok(!kernelNames.includes('ClipByValue') && !kernelNames.includes('Relu'), kernelNames.join(', '));
});

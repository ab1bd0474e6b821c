import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { IMAGENET_BGR_MEANS, parsePreprocess, PREPROCESS_MODES, preprocessInPlace, preprocessTensor } from '../src/data/preprocess.js';

before(async () => {
  await tf.setBackend('cpu');
});

// Two pixels, RGB, as the batch iterator yields them (pixel / 255): (255, 0, 51) and (0, 127.5, 255).
const batch = () => Float32Array.from([1, 0, 0.2, 0, 0.5, 1]);

// By hand: caffe = BGR order of (255·x − mean), means B 103.939, G 116.779, R 123.68.
const CAFFE = [51 - 103.939, 0 - 116.779, 255 - 123.68, 255 - 103.939, 127.5 - 116.779, 0 - 123.68];
// tf = 255·x / 127.5 − 1.
const TF = [1, -1, -0.6, -1, 0, 1];

function close(actual: ArrayLike<number>, expected: number[], what: string): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i]! - expected[i]!) < 1e-4, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
}

test('modes on a [0, 1] batch, in place', () => {
  close(preprocessInPlace('scale', batch()), [1, 0, 0.2, 0, 0.5, 1], 'scale');
  close(preprocessInPlace('caffe', batch()), CAFFE, 'caffe');
  close(preprocessInPlace('tf', batch()), TF, 'tf');
  const xs = batch();
  assert.equal(preprocessInPlace('tf', xs), xs);
});

test('modes on raw 0..255 pixels', () => {
  const raw = () => batch().map((v) => v * 255);
  close(preprocessInPlace('scale', raw(), { pixelMax: 255 }), [1, 0, 0.2, 0, 0.5, 1], 'scale');
  close(preprocessInPlace('caffe', raw(), { pixelMax: 255 }), CAFFE, 'caffe');
  close(preprocessInPlace('tf', raw(), { pixelMax: 255 }), TF, 'tf');
});

test('the tensor version agrees and leaves its input alone', () => {
  const x = tf.tensor4d(batch(), [1, 1, 2, 3]);
  for (const [mode, expected] of [
    ['scale', [1, 0, 0.2, 0, 0.5, 1]],
    ['caffe', CAFFE],
    ['tf', TF],
  ] as const) {
    const before = tf.memory().numTensors;
    const y = preprocessTensor(mode, x);
    assert.deepEqual(y.shape, [1, 1, 2, 3]);
    close(y.dataSync(), [...expected], mode);
    y.dispose();
    assert.equal(tf.memory().numTensors, before, `${mode} leaks no tensors`);
  }
  close(x.dataSync(), [1, 0, 0.2, 0, 0.5, 1], 'input');
  x.dispose();
  assert.throws(() => preprocessTensor('caffe', tf.zeros([1, 2, 2, 1]) as tf.Tensor4D), /expected 3 channels/);
});

test('a mid-grey image under caffe is the grey level minus the ImageNet means, channels reversed', () => {
  const grey = new Float32Array(4 * 3).fill(0.5);
  preprocessInPlace('caffe', grey);
  for (let p = 0; p < 4; p++) close(grey.subarray(3 * p, 3 * p + 3), IMAGENET_BGR_MEANS.map((m) => 127.5 - m), `pixel ${p}`);
});

test('--preprocess parsing', () => {
  assert.deepEqual([...PREPROCESS_MODES], ['scale', 'caffe', 'tf']);
  for (const m of PREPROCESS_MODES) assert.equal(parsePreprocess(m), m);
  assert.throws(() => parsePreprocess('torch'), /--preprocess: unknown mode "torch" \(expected one of scale, caffe, tf\)/);
  assert.throws(() => preprocessInPlace('tf', new Float32Array(4)), /not a multiple of 3 channels/);
});

// The gradient kernels selab adds to (or replaces in) tfjs-backend-wasm (src/backend/wasm-kernels.ts) against
// the cpu backend: each kernel on its own, then a training step of a tiny conv + depthwise
// model. Error metric as in onednn-kernels.test.ts: max|wasm − cpu| / max(1, max|cpu|).
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { selectBackend } from '../src/backend/select.js';
import { relativeError } from './relative-error.js';

const TOLERANCE = 1e-4;

let seed = 7;
function randomValues(shape: number[]): Float32Array {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    values[i] = (seed / 2147483648) * 2 - 1;
  }
  return values;
}


async function onBoth<T>(fn: () => T, read: (r: T) => Float32Array[]): Promise<[Float32Array[], Float32Array[]]> {
  const results: Float32Array[][] = [];
  for (const backend of ['wasm', 'cpu']) {
    await tf.setBackend(backend);
    results.push(tf.tidy(() => read(fn()).map((a) => a.slice())));
  }
  return [results[0]!, results[1]!];
}

async function checkKernel(kernelName: string, inputs: Record<string, { shape: number[]; values: Float32Array }>, attrs: object) {
  const [wasm, cpu] = await onBoth(
    () => {
      const tensors: tf.NamedTensorMap = {};
      for (const [k, v] of Object.entries(inputs)) tensors[k] = tf.tensor(v.values, v.shape);
      return tf.engine().runKernel(kernelName, tensors, attrs as tf.NamedAttrMap) as tf.Tensor;
    },
    (t) => [t.dataSync() as Float32Array],
  );
  const err = relativeError(wasm[0]!, cpu[0]!, 1);
  assert.ok(err <= TOLERANCE, `${kernelName}: relative error ${err}`);
}

before(async () => {
  assert.equal(await selectBackend('wasm'), 'wasm');
});

describe('wasm gradient kernels match cpu', () => {
  const convCases: { x: number[]; f: number[]; strides: number | [number, number]; pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding }[] = [
    { x: [2, 7, 7, 3], f: [3, 3, 3, 4], strides: 1, pad: 'same' },
    { x: [2, 8, 8, 3], f: [3, 3, 3, 5], strides: 2, pad: 'same' },
    // valid + stride 2 on 8 rows leaves the last row unused: exercises the crop.
    { x: [1, 8, 9, 4], f: [3, 3, 4, 2], strides: 2, pad: 'valid' },
    { x: [1, 7, 6, 2], f: [3, 2, 2, 3], strides: [2, 1], pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
    { x: [1, 9, 9, 3], f: [5, 5, 3, 2], strides: 2, pad: 1 },
  ];
  for (const c of convCases) {
    const info = tf.backend_util.computeConv2DInfo(c.x as [number, number, number, number], c.f as [number, number, number, number], c.strides, 1, c.pad);
    it(`Conv2DBackpropInput x${JSON.stringify(c.x)} f${JSON.stringify(c.f)} s${JSON.stringify(c.strides)} ${JSON.stringify(c.pad)}`, () =>
      checkKernel(
        tf.Conv2DBackpropInput,
        { dy: { shape: info.outShape, values: randomValues(info.outShape) }, filter: { shape: c.f, values: randomValues(c.f) } },
        { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: c.x },
      ));
    it(`Conv2DBackpropFilter x${JSON.stringify(c.x)} f${JSON.stringify(c.f)} s${JSON.stringify(c.strides)} ${JSON.stringify(c.pad)}`, () =>
      checkKernel(
        tf.Conv2DBackpropFilter,
        { x: { shape: c.x, values: randomValues(c.x) }, dy: { shape: info.outShape, values: randomValues(info.outShape) } },
        { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape: c.f },
      ));
  }

  it('Conv2DBackpropInput runs as one XNNPACK forward convolution, not the stock scalar loop', async () => {
    await tf.setBackend('wasm');
    const conv = tf.getKernel(tf.Conv2D, 'wasm')!;
    const original = conv.kernelFunc;
    let calls = 0;
    conv.kernelFunc = (args) => {
      calls++;
      return original(args);
    };
    try {
      tf.tidy(() => tf.conv2dTranspose(tf.ones([1, 4, 4, 2]) as tf.Tensor4D, tf.ones([3, 3, 3, 2]) as tf.Tensor4D, [1, 8, 8, 3], 2, 'same'));
    } finally {
      conv.kernelFunc = original;
    }
    assert.equal(calls, 1);
  });

  for (const mult of [1, 2]) {
    for (const strides of [1, 2]) {
      const x = [2, 7, 7, 3];
      const f = [3, 3, 3, mult];
      const info = tf.backend_util.computeConv2DInfo(x as [number, number, number, number], f as [number, number, number, number], strides, 1, 'same', undefined, true);
      const attrs = { strides, pad: 'same', dilations: 1 };
      it(`DepthwiseConv2dNativeBackpropInput mult ${mult} stride ${strides}`, () =>
        checkKernel(
          tf.DepthwiseConv2dNativeBackpropInput,
          { dy: { shape: info.outShape, values: randomValues(info.outShape) }, filter: { shape: f, values: randomValues(f) } },
          { ...attrs, inputShape: x },
        ));
      it(`DepthwiseConv2dNativeBackpropFilter mult ${mult} stride ${strides}`, () =>
        checkKernel(
          tf.DepthwiseConv2dNativeBackpropFilter,
          { x: { shape: x, values: randomValues(x) }, dy: { shape: info.outShape, values: randomValues(info.outShape) } },
          { ...attrs, filterShape: f },
        ));
    }
  }
});

describe('wasm trains a conv + depthwise model like cpu', () => {
  it('one SGD step gives the same loss and weights', async () => {
    const x = randomValues([4, 8, 8, 3]);
    const y = new Float32Array(4 * 3);
    for (let i = 0; i < 4; i++) y[i * 3 + (i % 3)] = 1;
    let initial: Float32Array[] | undefined;
    const outcome: { loss: number; weights: Float32Array[] }[] = [];
    for (const backend of ['wasm', 'cpu']) {
      await tf.setBackend(backend);
      const input = tfl.input({ shape: [8, 8, 3] });
      let h = tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }).apply(input) as tfl.SymbolicTensor;
      h = tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same' }).apply(h) as tfl.SymbolicTensor;
      h = tfl.layers.globalAveragePooling2d({}).apply(h) as tfl.SymbolicTensor;
      const out = tfl.layers.dense({ units: 3, activation: 'softmax' }).apply(h) as tfl.SymbolicTensor;
      const model = tfl.model({ inputs: input, outputs: out });
      if (initial) model.setWeights(initial.map((v, i) => tf.tensor(v, model.getWeights()[i]!.shape)));
      else initial = model.getWeights().map((w) => (w.dataSync() as Float32Array).slice());
      model.compile({ optimizer: tf.train.sgd(0.5), loss: 'categoricalCrossentropy' });
      const xs = tf.tensor4d(x, [4, 8, 8, 3]);
      const ys = tf.tensor2d(y, [4, 3]);
      const loss = (await model.trainOnBatch(xs, ys)) as number;
      outcome.push({ loss, weights: model.getWeights().map((w) => (w.dataSync() as Float32Array).slice()) });
      tf.dispose([xs, ys]);
      model.dispose();
    }
    const [wasm, cpu] = outcome as [(typeof outcome)[0], (typeof outcome)[0]];
    assert.ok(Math.abs(wasm.loss - cpu.loss) <= 1e-4 * Math.max(1, Math.abs(cpu.loss)), `loss ${wasm.loss} vs ${cpu.loss}`);
    // The step moved every weight, so equal weights mean equal gradients.
    cpu.weights.forEach((w, i) => assert.ok(relativeError(w, initial![i]!, 1) > 1e-3, `weight ${i} did not move`));
    wasm.weights.forEach((w, i) => {
      const err = relativeError(w, cpu.weights[i]!, 1);
      assert.ok(err <= TOLERANCE, `weight ${i}: relative error ${err}`);
    });
  });
});

import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readKerasH5 } from '../src/models/keras-h5.js';
import { imagenetWeightsFile, mobilenetAlphaText, mobilenetWeightRows, resolveWeights, VGG16_NOTOP_MD5 } from '../src/models/weights.js';
import { applyWeights, WeightsMismatchError } from '../src/models/weights-load.js';
import { WeightsFileError } from '../src/models/weights-source.js';
import { fixtureFromModel, patterned, snapshot, writeKerasH5, type FixtureLayer } from './weights-fixtures.js';

let dir: string;
before(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'selab-weights-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Two Keras-named convolutions with a BatchNorm between them, like a VGG block with BN. */
function tinyModel(opts: { convBFilters?: number } = {}): tfl.LayersModel {
  const input = tfl.input({ shape: [6, 6, 3], name: 'input_1' });
  let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'block1_conv1' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: 'block1_bn' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: opts.convBFilters ?? 2, kernelSize: 1, padding: 'same', name: 'block1_conv2' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.maxPooling2d({ poolSize: 2, name: 'block1_pool' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: x, name: 'tiny' });
}

const quiet = { log: () => {} };

function tinyFixture(): FixtureLayer[] {
  const f = (k: number, j: number, name: string, shape: number[]) => ({ name, shape, values: patterned(k, j, shape) });
  return [
    { name: 'input_1', weights: [] },
    { name: 'block1_conv1', weights: [f(0, 0, 'block1_conv1/kernel:0', [3, 3, 3, 4]), f(0, 1, 'block1_conv1/bias:0', [4])] },
    {
      name: 'block1_bn',
      weights: [
        f(1, 0, 'block1_bn/gamma:0', [4]),
        f(1, 1, 'block1_bn/beta:0', [4]),
        f(1, 2, 'block1_bn/moving_mean:0', [4]),
        f(1, 3, 'block1_bn/moving_variance:0', [4]),
      ],
    },
    { name: 'block1_conv2', weights: [f(2, 0, 'block1_conv2/kernel:0', [1, 1, 4, 2]), f(2, 1, 'block1_conv2/bias:0', [2])] },
    { name: 'block1_pool', weights: [] },
  ];
}

function weightOf(model: tfl.LayersModel, layer: string, index: number): Float32Array {
  return model.getLayer(layer).getWeights()[index]!.dataSync() as Float32Array;
}

describe('Keras HDF5 weights', () => {
  test('every value lands in its layer and position', async () => {
    const path = join(dir, 'tiny.h5');
    await writeKerasH5(path, tinyFixture());
    const model = tinyModel();
    const load = await resolveWeights(path, quiet);
    assert.ok(load);
    await load(model);
    // kernel [3,3,3,4]: flat index of (row 1, col 2, in 0, out 3) = ((1·3+2)·3+0)·4+3 = 63
    assert.equal(weightOf(model, 'block1_conv1', 0)[63], Math.fround(63 / 1000));
    assert.deepEqual(Array.from(weightOf(model, 'block1_conv1', 1)), [100, 100.001, 100.002, 100.003].map(Math.fround));
    assert.deepEqual(Array.from(weightOf(model, 'block1_bn', 0)), [1000, 1000.001, 1000.002, 1000.003].map(Math.fround)); // gamma
    assert.deepEqual(Array.from(weightOf(model, 'block1_bn', 3)), [1300, 1300.001, 1300.002, 1300.003].map(Math.fround)); // moving_variance
    assert.deepEqual(Array.from(weightOf(model, 'block1_conv2', 0)), Array.from(patterned(2, 0, [1, 1, 4, 2])));
    // All of them, whole arrays.
    const fixture = tinyFixture().filter((l) => l.weights.length > 0);
    for (const layer of fixture) {
      layer.weights.forEach((w, j) => assert.deepEqual(weightOf(model, layer.name, j), w.values, `${layer.name} #${j}`));
    }
  });

  test('the forward pass uses the loaded values (BN moving statistics included)', async () => {
    const path = join(dir, 'forward.h5');
    const one = (name: string, shape: number[], v: number) => ({ name, shape, values: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v) });
    await writeKerasH5(path, [
      { name: 'block1_conv1', weights: [one('block1_conv1/kernel:0', [3, 3, 3, 4], 0), one('block1_conv1/bias:0', [4], 2)] },
      {
        name: 'block1_bn',
        weights: [one('block1_bn/gamma:0', [4], 3), one('block1_bn/beta:0', [4], 1), one('block1_bn/moving_mean:0', [4], 1), one('block1_bn/moving_variance:0', [4], 4 - 0.001)],
      },
      { name: 'block1_conv2', weights: [one('block1_conv2/kernel:0', [1, 1, 4, 2], 0.25), one('block1_conv2/bias:0', [2], -1)] },
    ]);
    const model = tinyModel();
    (await resolveWeights(path, quiet))!(model);
    // relu(0·x + 2) = 2; BN: 3·(2 − 1)/√4 + 1 = 2.5; conv2: 4 channels · 0.25 · 2.5 − 1 = 1.5
    const y = model.predict(tf.ones([1, 6, 6, 3])) as tf.Tensor;
    for (const v of y.dataSync()) assert.ok(Math.abs(v - 1.5) < 1e-5, `got ${v}`);
    y.dispose();
  });

  test('models loaded from one set do not share storage with it', async () => {
    const path = join(dir, 'shared.h5');
    await writeKerasH5(path, tinyFixture());
    const set = await readKerasH5(path);
    const a = tinyModel();
    applyWeights(a, set);
    set.layers.get('block1_conv1')![1]!.values[0] = -7;
    assert.equal(weightOf(a, 'block1_conv1', 1)[0], 100);
    const b = tinyModel();
    applyWeights(b, set);
    assert.equal(weightOf(b, 'block1_conv1', 1)[0], -7);
    assert.equal(weightOf(a, 'block1_conv1', 1)[0], 100);
  });

  test('BatchNorm tensors stored in another order are matched by name', async () => {
    const path = join(dir, 'reordered.h5');
    const layers = tinyFixture();
    const bn = layers[2]!;
    bn.weights = [bn.weights[2]!, bn.weights[3]!, bn.weights[0]!, bn.weights[1]!];
    await writeKerasH5(path, layers);
    const model = tinyModel();
    applyWeights(model, await readKerasH5(path));
    assert.equal(weightOf(model, 'block1_bn', 0)[0], 1000); // gamma
    assert.equal(weightOf(model, 'block1_bn', 2)[0], 1200); // moving_mean
  });

  test('Keras 1 names (block1_conv1_W_1:0, as in the VGG16 ImageNet file) are matched by position', async () => {
    const path = join(dir, 'keras1.h5');
    const layers = tinyFixture();
    for (const l of layers) l.weights.forEach((w, j) => (w.name = `${l.name}_${['W', 'b', 'c', 'd'][j]}_1:0`));
    await writeKerasH5(path, layers);
    const model = tinyModel();
    applyWeights(model, await readKerasH5(path));
    assert.equal(weightOf(model, 'block1_conv1', 1)[0], 100);
    assert.equal(weightOf(model, 'block1_bn', 3)[0], 1300);
  });

  test('a whole-model file (model_weights group) and chunked layer_names are read', async () => {
    for (const [name, opts] of [
      ['full.h5', { modelWeightsGroup: true }],
      ['chunked.h5', { chunkLayerNames: true }],
    ] as const) {
      const path = join(dir, name);
      await writeKerasH5(path, tinyFixture(), opts);
      const set = await readKerasH5(path);
      assert.deepEqual([...set.layers.keys()], ['block1_conv1', 'block1_bn', 'block1_conv2'], name);
      const model = tinyModel();
      assert.equal(applyWeights(model, set), 8);
      assert.equal(weightOf(model, 'block1_conv2', 1)[1], Math.fround(2100.001));
    }
  });

  test('real VGG16 and MobileNet layer names on a small input', async () => {
    // The layers of Keras' VGG16 block 1 and MobileNet's first block at 32×32, alpha 0.25.
    const input = tfl.input({ shape: [32, 32, 3] });
    let v = tfl.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same', activation: 'relu', name: 'block1_conv1' }).apply(input) as tfl.SymbolicTensor;
    v = tfl.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same', activation: 'relu', name: 'block1_conv2' }).apply(v) as tfl.SymbolicTensor;
    v = tfl.layers.maxPooling2d({ poolSize: 2, name: 'block1_pool' }).apply(v) as tfl.SymbolicTensor;
    const vgg = tfl.model({ inputs: input, outputs: v });
    let m = tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'conv1' }).apply(input) as tfl.SymbolicTensor;
    m = tfl.layers.batchNormalization({ name: 'conv1_bn' }).apply(m) as tfl.SymbolicTensor;
    m = tfl.layers.reLU({ maxValue: 6, name: 'conv1_relu' }).apply(m) as tfl.SymbolicTensor;
    m = tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, name: 'conv_dw_1' }).apply(m) as tfl.SymbolicTensor;
    m = tfl.layers.batchNormalization({ name: 'conv_dw_1_bn' }).apply(m) as tfl.SymbolicTensor;
    m = tfl.layers.conv2d({ filters: 16, kernelSize: 1, useBias: false, name: 'conv_pw_1' }).apply(m) as tfl.SymbolicTensor;
    const mobilenet = tfl.model({ inputs: input, outputs: m });
    for (const model of [vgg, mobilenet]) {
      const path = join(dir, `${model.layers[1]!.name}.h5`);
      const fixture = fixtureFromModel(model);
      await writeKerasH5(path, fixture);
      (await resolveWeights(path, quiet))!(model);
      for (const layer of fixture) layer.weights.forEach((w, j) => assert.deepEqual(weightOf(model, layer.name, j), w.values, `${layer.name} #${j}`));
    }
    assert.deepEqual(mobilenet.getLayer('conv_dw_1').getWeights()[0]!.shape, [3, 3, 8, 1]);
  });

  test('missing, unexpected and wrongly shaped tensors: one error listing all, model unchanged', async () => {
    const path = join(dir, 'mismatch.h5');
    const layers = tinyFixture().filter((l) => l.name !== 'block1_bn'); // missing block1_bn
    layers.push({ name: 'fc1', weights: [{ name: 'fc1/kernel:0', shape: [2, 5], values: patterned(9, 0, [2, 5]) }] }); // unexpected
    await writeKerasH5(path, layers);
    const model = tinyModel({ convBFilters: 3 }); // block1_conv2 kernel [1,1,4,3], bias [3]: wrong shape
    const before = snapshot(model);
    const load = await resolveWeights(path, quiet);
    await assert.rejects(
      async () => load!(model),
      (err: unknown) => {
        assert.ok(err instanceof WeightsMismatchError);
        assert.deepEqual(err.mismatch.missing, [
          'block1_bn/gamma [4]',
          'block1_bn/beta [4]',
          'block1_bn/moving_mean [4]',
          'block1_bn/moving_variance [4]',
        ]);
        assert.deepEqual(err.mismatch.unexpected, ['fc1/kernel:0 [2,5]']);
        assert.deepEqual(err.mismatch.wrongShape, [
          'block1_conv2/kernel: file [1,1,4,2] (block1_conv2/kernel:0), model [1,1,4,3]',
          'block1_conv2/bias: file [2] (block1_conv2/bias:0), model [3]',
        ]);
        assert.match(err.message, /mismatch\.h5 do not match the model; nothing was loaded/);
        assert.match(err.message, /missing from the file \(4\)/);
        assert.match(err.message, /unexpected in the file .*\(1\):\n {4}fc1\/kernel:0 \[2,5\]/);
        return true;
      },
    );
    // block1_conv1 matched, yet was not assigned either.
    assert.deepEqual(snapshot(model), before);
  });

  test('a layer with the wrong number of tensors is reported', async () => {
    const path = join(dir, 'count.h5');
    const layers = tinyFixture();
    layers[1]!.weights.pop(); // block1_conv1 without its bias
    await writeKerasH5(path, layers);
    const model = tinyModel();
    const before = snapshot(model);
    await assert.rejects(async () => applyWeights(model, await readKerasH5(path)), /block1_conv1: file has 1 tensor\(s\) \(block1_conv1\/kernel:0 \[3,3,3,4\]\), model has 2 \(kernel \[3,3,3,4\], bias \[4\]\)/);
    assert.deepEqual(snapshot(model), before);
  });

  test('truncated, non-HDF5, empty and missing files: clear errors', async () => {
    const good = join(dir, 'good.h5');
    await writeKerasH5(good, tinyFixture());
    const bytes = await readFile(good);
    const truncated = join(dir, 'truncated.h5');
    await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const text = join(dir, 'notes.h5');
    await writeFile(text, 'these are not weights\n');
    const empty = join(dir, 'empty.h5');
    await writeFile(empty, '');
    const cases: Array<[string, RegExp]> = [
      [truncated, new RegExp(`truncated\\.h5 is a truncated HDF5 file \\(${Math.floor(bytes.length / 2)} of ${bytes.length} bytes\\)`)],
      [text, /notes\.h5 is not an HDF5 file \(expected a Keras \.h5 weight file or a TensorFlow\.js model\.json\)/],
      [empty, /empty\.h5 is empty/],
      [join(dir, 'nope.h5'), /weights file .*nope\.h5 does not exist/],
      [join(dir, 'nope', 'model.json'), /weights file .*model\.json does not exist/],
    ];
    for (const [path, message] of cases) {
      await assert.rejects(resolveWeights(path, quiet), (err: unknown) => err instanceof WeightsFileError && message.test(err.message), path);
    }
  });

  test('HDF5 files that are not Keras weight files are refused', async () => {
    const { File } = await import('h5wasm/node');
    const keras3 = join(dir, 'model.weights.h5');
    let f = new File(keras3, 'w');
    f.create_group('layers').create_group('conv2d').create_group('vars').create_dataset({ name: '0', data: new Float32Array(4), shape: [4], dtype: '<f' });
    f.close();
    await assert.rejects(readKerasH5(keras3), /is a Keras 3 \.weights\.h5 file.*model\.save\('model\.h5'\)/);
    const other = join(dir, 'other.h5');
    f = new File(other, 'w');
    f.create_dataset({ name: 'x', data: new Float32Array(2), shape: [2], dtype: '<f' });
    f.close();
    await assert.rejects(readKerasH5(other), /other\.h5 is an HDF5 file but not a Keras weight file: no 'layer_names' attribute/);
  });
});

describe('TensorFlow.js layers weights', () => {
  /** Saves `model` as model.json + two shards (cut mid-tensor, as tfjs' 4 MB shards may be). */
  async function saveTfjs(model: tfl.LayersModel, folder: string): Promise<void> {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(folder, { recursive: true });
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        const data = new Uint8Array(artifacts.weightData as ArrayBuffer);
        const cut = 10; // inside the first kernel
        await writeFile(join(folder, 'group1-shard1of2.bin'), data.subarray(0, cut));
        await writeFile(join(folder, 'group1-shard2of2.bin'), data.subarray(cut));
        const json = { modelTopology: artifacts.modelTopology, format: 'layers-model', weightsManifest: [{ paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: artifacts.weightSpecs }] };
        await writeFile(join(folder, 'model.json'), JSON.stringify(json));
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
  }

  test('model.json + shards by file and by folder', async () => {
    const source = tinyModel();
    applyWeights(source, await (async () => {
      const p = join(dir, 'src.h5');
      await writeKerasH5(p, tinyFixture());
      return readKerasH5(p);
    })());
    const folder = join(dir, 'tfjs');
    await saveTfjs(source, folder);
    for (const spec of [join(folder, 'model.json'), folder]) {
      const target = tinyModel();
      (await resolveWeights(spec, quiet))!(target);
      assert.deepEqual(snapshot(target), snapshot(source), spec);
    }
  });

  test('a truncated shard and a missing shard are clear errors', async () => {
    const folder = join(dir, 'tfjs-bad');
    await saveTfjs(tinyModel(), folder);
    const shard = join(folder, 'group1-shard2of2.bin');
    const bytes = await readFile(shard);
    await writeFile(shard, bytes.subarray(0, bytes.length - 8));
    await assert.rejects(resolveWeights(folder, quiet), /hold \d+ bytes but the manifest describes \d+; a shard is truncated/);
    await rm(shard);
    await assert.rejects(resolveWeights(folder, quiet), /weight shard group1-shard2of2\.bin is missing/);
    await writeFile(join(folder, 'model.json'), '{"modelTopology": {}');
    await assert.rejects(resolveWeights(folder, quiet), /model\.json is not valid JSON/);
  });
});

describe('--weights resolution', () => {
  test('none gives no loader; imagenet needs a VGG16 or MobileNet', async () => {
    assert.equal(await resolveWeights('none'), undefined);
    await assert.rejects(resolveWeights('imagenet', quiet), /--weights imagenet: ImageNet weights exist for VGG16 and MobileNet \(cases 3–7\) only/);
    await assert.rejects(resolveWeights('ftp://example.org/w.h5', quiet), /--weights: unsupported URL scheme ftp:/);
  });

  test('ImageNet file names and URLs as in keras.applications', () => {
    const base = 'https://storage.googleapis.com/tensorflow/keras-applications/';
    const vgg = imagenetWeightsFile({ kind: 'vgg16' }, base);
    assert.equal(vgg.url, `${base}vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`);
    assert.deepEqual(vgg.expectedHash, { algorithm: 'md5', hex: VGG16_NOTOP_MD5 });
    assert.equal(VGG16_NOTOP_MD5, '6d6bbae143d832006294945121d1f1fc');
    const mob = imagenetWeightsFile({ kind: 'mobilenet', alpha: 1.0, inputShape: [128, 128, 3] }, base);
    assert.equal(mob.url, `${base}mobilenet/mobilenet_1_0_128_tf_no_top.h5`);
    assert.equal(mob.expectedHash, undefined);
    assert.equal(mob.warning, undefined);
    assert.deepEqual([0.25, 0.5, 0.75, 1].map(mobilenetAlphaText), ['2_5', '5_0', '7_5', '1_0']);
    assert.throws(() => mobilenetAlphaText(0.35), /alpha 0\.25, 0\.5, 0\.75 and 1\.0 only, not 0\.35/);
    for (const r of [128, 160, 192, 224]) assert.deepEqual(mobilenetWeightRows([r, r, 3]), { rows: r });
    const odd = mobilenetWeightRows([64, 64, 3]);
    assert.equal(odd.rows, 224);
    assert.match(odd.warning ?? '', /64×64 is non-square or not one of 128, 160, 192, 224; weights for input shape \(224, 224\)/);
    assert.equal(mobilenetWeightRows([128, 160, 3]).rows, 224);
    assert.equal(imagenetWeightsFile({ kind: 'mobilenet', alpha: 0.75, inputShape: [100, 100, 3] }, base).fileName, 'mobilenet_7_5_224_tf_no_top.h5');
  });
});

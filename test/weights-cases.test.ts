// Pretrained weights through the real builders and the graph rewrite of cases 3–7: every
// original Keras layer keeps its loaded values; inserted BatchNorm and SE layers start fresh.
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildCaseModel, caseImagenetArch, getCase, type ReferenceCase } from '../src/experiments/cases.js';
import { mobilenetV1 } from '../src/models/mobilenet.js';
import { vgg16 } from '../src/models/vgg16.js';
import { imagenetWeightsFile, resolveWeights } from '../src/models/weights.js';
import { fixtureFromModel, writeKerasH5, type FixtureLayer } from './weights-fixtures.js';

let dir: string;
before(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'selab-weights-cases-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const SMALL: [number, number, number] = [32, 32, 3];
const quiet = { log: () => {} };

function sameBytes(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

/** Checks every fixture tensor against the layer of that name in `model`. Returns the names checked. */
function assertKeeps(model: tfl.LayersModel, fixture: FixtureLayer[]): Set<string> {
  const names = new Set<string>();
  for (const layer of fixture) {
    const values = model.getLayer(layer.name).getWeights();
    assert.equal(values.length, layer.weights.length, layer.name);
    layer.weights.forEach((w, j) => {
      assert.deepEqual(values[j]!.shape, w.shape, `${layer.name} #${j} shape`);
      assert.ok(sameBytes(values[j]!.dataSync() as Float32Array, w.values), `${layer.name} #${j} keeps the loaded values`);
    });
    names.add(layer.name);
  }
  return names;
}

/** BatchNorm layers the rewrite added: gamma 1, beta 0, moving mean 0, moving variance 1. */
function assertFreshBatchNorm(model: tfl.LayersModel, name: string): void {
  const [gamma, beta, mean, variance] = model.getLayer(name).getWeights().map((t) => Array.from(t.dataSync()));
  assert.ok(gamma!.every((v) => v === 1) && beta!.every((v) => v === 0) && mean!.every((v) => v === 0) && variance!.every((v) => v === 1), `${name} is fresh`);
}

async function caseWithWeights(id: number, file: string): Promise<tfl.LayersModel> {
  const c: ReferenceCase = { ...getCase(id), inputShape: SMALL };
  const load = await resolveWeights(file, quiet);
  return buildCaseModel(c, { loadBaseWeights: load });
}

test('VGG16: cases 3, 4 (+BN) and 5 (+BN+SE) keep every pretrained tensor', async () => {
  // Named like the real ImageNet file (Keras 1 weight names, matched by position).
  const fixture = fixtureFromModel(vgg16({ inputShape: SMALL }), { keras1Names: true });
  assert.equal(fixture.length, 13);
  assert.deepEqual(fixture[0]!.weights.map((w) => w.name), ['block1_conv1_W_1:0', 'block1_conv1_b_1:0']);
  const file = join(dir, 'vgg16_notop.h5');
  await writeKerasH5(file, [{ name: 'input_1', weights: [] }, ...fixture]);

  const case3 = await caseWithWeights(3, file);
  assertKeeps(case3, fixture);

  const case5 = await caseWithWeights(5, file);
  const kept = assertKeeps(case5, fixture);
  assertFreshBatchNorm(case5, 'block1_conv1_bn');
  assertFreshBatchNorm(case5, 'block5_conv3_bn');
  // The SE blocks and the head are new layers: none of them was in the file.
  const added = case5.layers.filter((l) => l.weights.length > 0 && !kept.has(l.name)).map((l) => l.name);
  assert.ok(added.some((n) => n.startsWith('block3_conv2_se')), added.join(','));
  assert.ok(added.includes('predictions'));
  // The rewrite copied the convolution (its activation became linear): values equal, variables not shared.
  assert.equal(case5.getLayer('block1_conv1').getConfig().activation, 'linear');
  case3.dispose();
  case5.dispose();

  const case4 = await caseWithWeights(4, file);
  assertKeeps(case4, fixture);
  assertFreshBatchNorm(case4, 'block2_conv2_bn');
});

test('MobileNet: cases 6 and 7 (+SE) keep every pretrained tensor, BN statistics included', async () => {
  const fixture = fixtureFromModel(mobilenetV1({ inputShape: SMALL }));
  assert.equal(fixture.length, 1 + 1 + 13 * 4); // conv1, conv1_bn, then dw, dw_bn, pw, pw_bn per block
  const file = join(dir, imagenetWeightsFile(caseImagenetArch(getCase(6))!).fileName);
  assert.match(file, /mobilenet_1_0_128_tf_no_top\.h5$/);
  await writeKerasH5(file, fixture);
  for (const id of [6, 7]) {
    const model = await caseWithWeights(id, file);
    const kept = assertKeeps(model, fixture);
    const added = model.layers.filter((l) => l.weights.length > 0 && !kept.has(l.name)).map((l) => l.name);
    assert.deepEqual(added.filter((n) => !n.includes('_se')), ['predictions'], `case ${id}`);
    assert.equal(added.length > 1, id === 7, `case ${id} SE layers`);
  }
});

test('a file for another input width is refused before anything is built into the model', async () => {
  // MobileNet alpha 0.25 weights offered to the alpha-1 base of case 6.
  const fixture = fixtureFromModel(mobilenetV1({ inputShape: SMALL, alpha: 0.25 }));
  const file = join(dir, 'mobilenet_2_5.h5');
  await writeKerasH5(file, fixture);
  await assert.rejects(caseWithWeights(6, file), /do not match the model; nothing was loaded[\s\S]*wrong shape \(file vs model\) \(\d+\):\n {4}conv1\/kernel: file \[3,3,3,8\] \(conv1\/kernel:0\), model \[3,3,3,32\]/);
});

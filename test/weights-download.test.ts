import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { DownloadError } from '../src/util/download.js';
import { resolveWeights, VGG16_NOTOP_FILE, VGG16_NOTOP_MD5, WEIGHTS_URL_ENV, type ResolveWeightsOptions } from '../src/models/weights.js';
import { fixtureFromModel, snapshot, writeKerasH5 } from './weights-fixtures.js';

/** MobileNet's first block with Keras' layer names, alpha 0.25, on a 32×32 input. */
function miniMobileNet(): tfl.LayersModel {
  const input = tfl.input({ shape: [32, 32, 3], name: 'input_1' });
  let x = tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'conv1' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: 'conv1_bn' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, name: 'conv_dw_1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: 'conv_dw_1_bn' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 16, kernelSize: 1, useBias: false, name: 'conv_pw_1' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: x });
}

let dir: string;
let server: http.Server;
let base: string;
/** path → body served; '/cut/…' paths and those in `cut` announce the full length but stop half-way. */
const files = new Map<string, Buffer>();
const cut = new Set<string>();
const requests: string[] = [];
let mobileFile: Buffer;
let expected: Float32Array[];

before(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'selab-weights-dl-'));
  const source = miniMobileNet();
  const h5 = join(dir, 'mobile.h5');
  await writeKerasH5(h5, fixtureFromModel(source));
  mobileFile = await readFile(h5);
  const reference = miniMobileNet();
  const { applyWeights } = await import('../src/models/weights-load.js');
  const { readKerasH5 } = await import('../src/models/keras-h5.js');
  applyWeights(reference, await readKerasH5(h5));
  expected = snapshot(reference);

  server = http.createServer((req, res) => {
    const path = req.url ?? '';
    requests.push(path);
    const body = files.get(path.replace(/^\/cut/, ''));
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': body.length });
    if (path.startsWith('/cut/') || cut.has(path)) {
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
      return;
    }
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  files.clear();
  cut.clear();
  requests.length = 0;
});

const MOBILE_PATH = '/mobilenet/mobilenet_2_5_224_tf_no_top.h5';
const arch = { kind: 'mobilenet', alpha: 0.25, inputShape: [32, 32, 3] } as const;

function options(home: string, extra: Partial<ResolveWeightsOptions> = {}): ResolveWeightsOptions & { logs: string[]; progress: NonNullable<ResolveWeightsOptions['progress']>; seen: number[] } {
  const logs: string[] = [];
  const seen: number[] = [];
  return {
    home,
    baseUrl: base,
    logs,
    seen,
    log: (m) => logs.push(m),
    progress: () => ({ onProgress: (received) => seen.push(received), stop: () => {} }),
    ...extra,
  };
}

async function cacheEntries(home: string): Promise<string[]> {
  try {
    return (await readdir(join(home, 'weights'))).sort();
  } catch {
    return [];
  }
}

test('imagenet: downloaded once into SELAB_HOME/weights with progress, then loaded', async () => {
  const home = join(dir, 'home1');
  files.set(MOBILE_PATH, mobileFile);
  const opts = options(home, { arch });
  const load = await resolveWeights('imagenet', opts);
  assert.deepEqual(requests, [MOBILE_PATH]);
  assert.deepEqual(await cacheEntries(home), ['mobilenet_2_5_224_tf_no_top.h5']);
  assert.deepEqual(await readFile(join(home, 'weights', 'mobilenet_2_5_224_tf_no_top.h5')), mobileFile);
  assert.equal(opts.seen.at(-1), mobileFile.length);
  // 32×32 has no weights of its own: Keras' warning, and the 224 file.
  assert.match(opts.logs[0] ?? '', /^warning: input shape 32×32 is non-square or not one of 128, 160, 192, 224/);
  const model = miniMobileNet();
  await load!(model);
  assert.deepEqual(snapshot(model), expected);

  // Second time: from the cache, no request.
  const again = await resolveWeights('imagenet', options(home, { arch }));
  assert.deepEqual(requests, [MOBILE_PATH]);
  const model2 = miniMobileNet();
  await again!(model2);
  assert.deepEqual(snapshot(model2), expected);
});

test('the URL base can come from the environment', async () => {
  const home = join(dir, 'home-env');
  files.set(MOBILE_PATH, mobileFile);
  process.env[WEIGHTS_URL_ENV] = base;
  try {
    const opts = options(home, { arch });
    delete opts.baseUrl;
    await resolveWeights('imagenet', opts);
  } finally {
    delete process.env[WEIGHTS_URL_ENV];
  }
  assert.deepEqual(requests, [MOBILE_PATH]);
});

test('an interrupted download leaves nothing in the cache; the next attempt succeeds', async () => {
  const home = join(dir, 'home-cut');
  files.set(MOBILE_PATH, mobileFile);
  await assert.rejects(
    resolveWeights('imagenet', options(home, { arch, baseUrl: `${base}cut/` })),
    (err: unknown) => err instanceof DownloadError && err.kind === 'truncated' && /received \d+ of \d+ bytes/.test(err.message),
  );
  assert.deepEqual(await cacheEntries(home), []);
  await resolveWeights('imagenet', options(home, { arch }));
  assert.deepEqual(await cacheEntries(home), ['mobilenet_2_5_224_tf_no_top.h5']);
});

test('VGG16: a file whose MD5 is not the published one is refused and not kept', async () => {
  const home = join(dir, 'home-vgg');
  files.set(`/vgg16/${VGG16_NOTOP_FILE}`, mobileFile);
  const actual = createHash('md5').update(mobileFile).digest('hex');
  await assert.rejects(resolveWeights('imagenet', options(home, { arch: { kind: 'vgg16' } })), (err: unknown) => {
    assert.ok(err instanceof DownloadError);
    assert.equal(err.kind, 'hash');
    assert.ok(err.message.includes(`expected md5 ${VGG16_NOTOP_MD5}, got ${actual}`), err.message);
    return true;
  });
  assert.deepEqual(await cacheEntries(home), []);
  // A cached copy with the wrong sum is fetched again (and refused again), as keras' get_file does.
  await mkdir(join(home, 'weights'), { recursive: true });
  await writeFile(join(home, 'weights', VGG16_NOTOP_FILE), 'stale');
  const opts = options(home, { arch: { kind: 'vgg16' } });
  await assert.rejects(resolveWeights('imagenet', opts), /checksum mismatch/);
  assert.match(opts.logs[0] ?? '', /has md5 [0-9a-f]{32}, expected 6d6bbae143d832006294945121d1f1fc: downloading it again/);
  assert.equal(requests.length, 2);
});

test('an HTTP error names the URL', async () => {
  await assert.rejects(resolveWeights('imagenet', options(join(dir, 'home-404'), { arch })), /mobilenet_2_5_224_tf_no_top\.h5 failed: HTTP 404/);
});

test('--weights URL: an .h5 and a TensorFlow.js model.json with shards, cached once', async () => {
  const home = join(dir, 'home-url');
  files.set('/files/my.h5', mobileFile);
  const load = await resolveWeights(`${base}files/my.h5`, options(home));
  const model = miniMobileNet();
  await load!(model);
  assert.deepEqual(snapshot(model), expected);

  // The same weights as a tfjs layers model: model.json + one shard.
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      files.set('/tfjs/group1-shard1of1.bin', Buffer.from(artifacts.weightData as ArrayBuffer));
      files.set('/tfjs/model.json', Buffer.from(JSON.stringify({ modelTopology: artifacts.modelTopology, weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: artifacts.weightSpecs }] })));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  requests.length = 0;
  const fromJson = await resolveWeights(`${base}tfjs/model.json`, options(home));
  assert.deepEqual(requests, ['/tfjs/model.json', '/tfjs/group1-shard1of1.bin']);
  const model2 = miniMobileNet();
  await fromJson!(model2);
  assert.deepEqual(snapshot(model2), expected);
  await resolveWeights(`${base}tfjs/model.json`, options(home));
  await resolveWeights(`${base}files/my.h5`, options(home));
  assert.equal(requests.length, 2, 'served from the cache');

  // A shard cut off half-way: nothing of that model is kept, not even its model.json.
  files.set('/tfjs2/model.json', files.get('/tfjs/model.json')!);
  files.set('/tfjs2/group1-shard1of1.bin', files.get('/tfjs/group1-shard1of1.bin')!);
  cut.add('/tfjs2/group1-shard1of1.bin');
  const cached = (await readdir(join(home, 'weights', 'url'))).sort();
  assert.equal(cached.length, 2);
  await assert.rejects(resolveWeights(`${base}tfjs2/model.json`, options(home)), (err: unknown) => err instanceof DownloadError && err.kind === 'truncated');
  assert.deepEqual((await readdir(join(home, 'weights', 'url'))).sort(), cached);

  // Shard paths must stay beside model.json.
  const escaping = JSON.parse(files.get('/tfjs/model.json')!.toString()) as { weightsManifest: Array<{ paths: string[] }> };
  escaping.weightsManifest[0]!.paths = ['../files/my.h5'];
  files.set('/tfjs3/model.json', Buffer.from(JSON.stringify(escaping)));
  await assert.rejects(resolveWeights(`${base}tfjs3/model.json`, options(home)), /weight shard path "\.\.\/files\/my\.h5" must be a relative file name beside model\.json/);
  assert.deepEqual((await readdir(join(home, 'weights', 'url'))).sort(), cached);
});

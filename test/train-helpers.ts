// Shared by the train/runner tests and the resume test's child process: a tiny model and a
// generated, learnable dataset, so whole runs take seconds on the pure-JS cpu backend.
import * as tfl from '@tensorflow/tfjs-layers';
import type { Split } from '../src/data/format.js';
import type { RunRequest } from '../src/engine/runner.js';

/** Images whose mean brightness per channel encodes the label, plus seeded noise. */
export function generatedSplit(count: number, seed: number, size = 8): Split {
  const images = new Uint8Array(count * size * size * 3);
  const labels = new Uint8Array(count);
  let s = seed >>> 0;
  const rand = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  for (let i = 0; i < count; i++) {
    const label = i % 10;
    labels[i] = label;
    for (let p = 0; p < size * size; p++) {
      for (let c = 0; c < 3; c++) {
        const base = c === 0 ? label * 25 : c === 1 ? 250 - label * 25 : (label % 2) * 200;
        images[(i * size * size + p) * 3 + c] = Math.max(0, Math.min(255, Math.round(base + (rand() - 0.5) * 40)));
      }
    }
  }
  return { images, labels, count, height: size, width: size, channels: 3 };
}

/** conv(4) → BN → ReLU → global average pool → dense softmax: ~200 parameters. */
export function tinyModel(size = 8, batchNorm = true): tfl.LayersModel {
  const input = tfl.input({ shape: [size, size, 3] });
  let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'conv' }).apply(input) as tfl.SymbolicTensor;
  if (batchNorm) x = tfl.layers.batchNormalization({ name: 'bn' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ name: 'relu' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 10, activation: 'softmax', name: 'predictions' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out, name: 'tiny' });
}

export function tinyRequest(out: string, overrides: Partial<RunRequest['config']> = {}, extra: Partial<RunRequest> = {}): RunRequest {
  return {
    out,
    id: 'tiny',
    describe: { case: null, name: 'tiny', model: 'tiny', additions: [], se: false, attention: null, training: 'scratch', sweep: null },
    environment: { backend: 'cpu', data: 'generated', threads: null },
    config: {
      epochs: 3,
      batchSize: 32,
      microBatch: 16,
      optimizer: 'adam',
      lr: 0.01,
      momentum: null,
      upsample: 1,
      inputShape: [8, 8, 3],
      trainLimit: null,
      testLimit: null,
      seed: 7,
      weights: 'none',
      preprocess: 'scale',
      augment: false,
      normalize: null,
      weightDecay: 0,
      lrDecayEpochs: [],
      lrDecayFactor: 0.1,
      protocol: 'keras',
      validation: 'full',
      ...overrides,
    },
    buildModel: async () => tinyModel(),
    train: generatedSplit(200, 1),
    test: generatedSplit(60, 2),
    resume: false,
    ...extra,
  };
}

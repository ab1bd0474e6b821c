// Writes small weight files in the Keras HDF5 layout with h5wasm, for the weights tests.
import { File, ready } from 'h5wasm/node';
import type * as tfl from '@tensorflow/tfjs-layers';
import { h5wasmReady } from '../src/models/keras-h5.js';

export interface FixtureWeight {
  /** As listed in weight_names, e.g. `conv_a/kernel:0` (Keras 2) or `conv_a_W_1:0` (Keras 1). */
  name: string;
  shape: number[];
  values: Float32Array;
}
export interface FixtureLayer {
  name: string;
  weights: FixtureWeight[];
}

function fixedStrings(file: File | ReturnType<File['create_group']>, attr: string, values: string[]): void {
  if (values.length === 0) {
    // What Keras writes for a layer without weights: np.asarray([]) is an empty float64 array.
    file.create_attribute(attr, new Float64Array(0), [0], '<d');
    return;
  }
  const width = Math.max(...values.map((v) => v.length));
  file.create_attribute(attr, values, null, `S${width}`);
}

export interface WriteOptions {
  /** Put everything under /model_weights, as model.save('x.h5') does. */
  modelWeightsGroup?: boolean;
  /** Split layer_names into layer_names0, layer_names1, … as Keras does past 64 KiB. */
  chunkLayerNames?: boolean;
}

export async function writeKerasH5(path: string, layers: FixtureLayer[], options: WriteOptions = {}): Promise<void> {
  await ready;
  await h5wasmReady();
  const file = new File(path, 'w');
  try {
    const root = options.modelWeightsGroup ? file.create_group('model_weights') : file;
    file.create_attribute('keras_version', '2.13.1');
    file.create_attribute('backend', 'tensorflow');
    const names = layers.map((l) => l.name);
    if (options.chunkLayerNames) {
      const half = Math.ceil(names.length / 2);
      fixedStrings(root, 'layer_names0', names.slice(0, half));
      fixedStrings(root, 'layer_names1', names.slice(half));
    } else {
      fixedStrings(root, 'layer_names', names);
    }
    for (const layer of layers) {
      const group = root.create_group(layer.name);
      fixedStrings(group, 'weight_names', layer.weights.map((w) => w.name));
      for (const w of layer.weights) {
        const parts = w.name.split('/');
        let parent = group;
        for (const dir of parts.slice(0, -1)) parent = (parent.keys().includes(dir) ? parent.get(dir) : parent.create_group(dir)) as typeof group;
        parent.create_dataset({ name: parts.at(-1) as string, data: w.values, shape: w.shape, dtype: '<f' });
      }
    }
  } finally {
    file.close();
  }
}

/** Distinct, recognisable values: layer k's tensor j holds 1000·k + 100·j + i/1000 at flat index i. */
export function patterned(k: number, j: number, shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, (_, i) => 1000 * k + 100 * j + i / 1000);
}

/**
 * A file layer for every weighted layer of `model` with patterned values; Keras 2 weight names
 * (`conv/kernel:0`), or with `keras1Names` those of the VGG16 ImageNet file (`conv_W_1:0`, `conv_b_1:0`).
 */
export function fixtureFromModel(model: tfl.LayersModel, options: { keras1Names?: boolean } = {}): FixtureLayer[] {
  return model.layers
    .filter((l) => l.weights.length > 0)
    .map((layer, k) => ({
      name: layer.name,
      weights: layer.weights.map((w, j) => {
        const shape = w.shape as number[];
        const name = options.keras1Names ? `${layer.name}_${'Wb'[j]}_1:0` : `${layer.name}/${w.originalName.split('/').at(-1)}:0`;
        return { name, shape, values: patterned(k, j, shape) };
      }),
    }));
}

/** Flat copies of every weight of a model, to check it did not change. */
export function snapshot(model: tfl.LayersModel): Float32Array[] {
  return model.getWeights().map((t) => Float32Array.from(t.dataSync()));
}

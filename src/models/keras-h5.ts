// Reads Keras HDF5 weight files (tf.keras / Keras 2 `save_weights('x.h5')`, the Keras applications'
// ImageNet files, and the `model_weights` group of a whole-model `model.save('x.h5')`) with h5wasm.
//
// Layout: a group carrying the attribute `layer_names`; under it one group per layer carrying
// `weight_names`, each of which is a dataset path relative to that layer group
// (`block1_conv1/kernel:0`, or `block1_conv1_W_1:0` in Keras 1-era files such as the VGG16 one).
// Keras splits attributes over 64 KiB into `layer_names0`, `layer_names1`, …; both forms are read.
import { Dataset, File, Group, ready as h5ready } from 'h5wasm/node';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { WeightsFileError, type StoredTensor, type WeightSet } from './weights-source.js';

let ready: Promise<void> | undefined;

/** h5wasm's module, initialised once, with HDF5 errors thrown as JS errors instead of printed. */
export function h5wasmReady(): Promise<void> {
  ready ??= h5ready.then((module) => {
    module.activate_throwing_error_handler();
  });
  return ready;
}

/** The innermost HDF5 diagnostic (e.g. `truncated file: eof = 1000, … stored_eof = 2084`). */
function hdf5Reason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const causes = [...text.matchAll(/#\d+: .*? in [\w.]+\(\): (.*)/g)].map((m) => m[1]?.trim() ?? '');
  return causes.at(-1) ?? text.trim().split('\n').at(-1) ?? 'unknown HDF5 error';
}

function openError(path: string, err: unknown): WeightsFileError {
  const reason = hdf5Reason(err);
  if (/file signature not found/i.test(reason)) {
    return new WeightsFileError(`${path} is not an HDF5 file (expected a Keras .h5 weight file or a TensorFlow.js model.json)`);
  }
  if (/truncated file/i.test(reason)) {
    const m = /eof = (\d+).*stored_eof = (\d+)/.exec(reason);
    const sizes = m ? ` (${m[1]} of ${m[2]} bytes)` : '';
    return new WeightsFileError(`${path} is a truncated HDF5 file${sizes}; delete it and fetch it again`);
  }
  return new WeightsFileError(`${path}: cannot read as HDF5: ${reason}`);
}

function readStringList(obj: Group, name: string): string[] | undefined {
  const attrs = obj.attrs;
  const toList = (value: unknown): string[] => {
    if (value === null || value === undefined) return [];
    if (typeof value === 'string') return [value];
    // An empty list is stored by Keras as an empty float64 array.
    return Array.from(value as ArrayLike<unknown>, (v) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : String(v)).replace(/\0+$/, ''));
  };
  if (name in attrs) return toList(attrs[name]?.value);
  if (!(`${name}0` in attrs)) return undefined;
  const out: string[] = [];
  for (let i = 0; `${name}${i}` in attrs; i++) out.push(...toList(attrs[`${name}${i}`]?.value));
  return out;
}

function toFloat32(path: string, datasetPath: string, ds: Dataset): StoredTensor['values'] {
  const value = ds.value;
  if (value instanceof Float32Array) return value;
  if (value instanceof Float64Array) return Float32Array.from(value);
  throw new WeightsFileError(`${path}: dataset ${datasetPath} has dtype ${JSON.stringify(ds.dtype)}; expected float32 or float64`);
}

/** Reads every layer's tensors from a Keras HDF5 weight file. Throws WeightsFileError on any problem. */
export async function readKerasH5(path: string): Promise<WeightSet> {
  const full = resolve(path);
  let size: number;
  try {
    size = (await stat(full)).size;
  } catch {
    throw new WeightsFileError(`weights file ${path} does not exist`);
  }
  if (size === 0) throw new WeightsFileError(`${path} is empty (expected a Keras .h5 weight file)`);
  await h5wasmReady();

  let file: File;
  try {
    file = new File(full, 'r');
  } catch (err) {
    throw openError(path, err);
  }
  try {
    let root: Group = file;
    let layerNames = readStringList(root, 'layer_names');
    if (layerNames === undefined) {
      const modelWeights = file.get('model_weights');
      if (modelWeights instanceof Group) {
        root = modelWeights;
        layerNames = readStringList(root, 'layer_names');
      }
    }
    if (layerNames === undefined) {
      const keys = file.keys();
      if (keys.includes('layers') || keys.includes('_layer_checkpoint_dependencies')) {
        throw new WeightsFileError(
          `${path} is a Keras 3 .weights.h5 file, which stores weights by object path (layers/conv2d_1/vars/0) rather than by layer name; ` +
            `re-save it in the legacy layout with model.save('model.h5') or convert it with tensorflowjs_converter, then pass that file`,
        );
      }
      throw new WeightsFileError(`${path} is an HDF5 file but not a Keras weight file: no 'layer_names' attribute at / or /model_weights`);
    }

    const layers = new Map<string, StoredTensor[]>();
    for (const layerName of layerNames) {
      const group = root.get(layerName);
      if (!(group instanceof Group)) {
        throw new WeightsFileError(`${path}: layer '${layerName}' is listed in layer_names but has no group`);
      }
      const weightNames = readStringList(group, 'weight_names') ?? [];
      const tensors: StoredTensor[] = [];
      for (const weightName of weightNames) {
        const datasetPath = `${group.path}/${weightName}`.replace(/^\/+/, '/');
        const ds = group.get(weightName);
        if (!(ds instanceof Dataset)) {
          throw new WeightsFileError(`${path}: weight '${weightName}' of layer '${layerName}' is listed in weight_names but there is no dataset ${datasetPath}`);
        }
        let values: Float32Array;
        try {
          values = toFloat32(path, datasetPath, ds);
        } catch (err) {
          if (err instanceof WeightsFileError) throw err;
          throw new WeightsFileError(`${path}: cannot read dataset ${datasetPath}: ${hdf5Reason(err)}`);
        }
        tensors.push({ name: weightName, shape: [...(ds.shape ?? [])], values });
      }
      if (tensors.length > 0) layers.set(layerName, tensors);
    }
    return { source: path, format: 'keras-h5', layers };
  } finally {
    file.close();
  }
}

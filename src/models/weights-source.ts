// The in-memory form every weight-file reader produces: tensors grouped by Keras layer name, in the
// order the file lists them, so matching against a model does not depend on the file format.

export interface StoredTensor {
  /** The name as stored in the file (e.g. `block1_conv1/kernel:0`), for error messages. */
  name: string;
  shape: number[];
  values: Float32Array;
}

export interface WeightSet {
  /** Where the tensors came from (file path or URL), for error messages. */
  source: string;
  /** `keras-h5` or `tfjs-layers`. */
  format: string;
  /** Layer name → its tensors in file order. Layers without weights are left out. */
  layers: Map<string, StoredTensor[]>;
}

/** A weight file that cannot be read: missing, not in a supported format, truncated or malformed. */
export class WeightsFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WeightsFileError';
  }
}

/** `kernel` for `block1_conv1/kernel:0`, `block1_conv1/kernel` or `kernel:0`. */
export function baseWeightName(name: string): string {
  const last = name.slice(name.lastIndexOf('/') + 1);
  return last.replace(/:\d+$/, '');
}

export function formatShape(shape: readonly (number | null)[]): string {
  return `[${shape.join(',')}]`;
}

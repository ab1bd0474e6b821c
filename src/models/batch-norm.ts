// BatchNormalization whose training-mode forward and gradient each run as one kernel on a
// backend that registers them (onednn). tfjs-layers computes the batch statistics with
// tf.moments and differentiates them kernel by kernel: five kernels forward and about eight
// full-size ones backward per layer (Mean, Sub, Square, Mean, the normalisation; Tiles, Adds,
// Sums), where the closed-form gradient needs two passes over memory. Everything else — the
// inference path, the moving averages, the weights, the config — is tfjs-layers' own, and on
// other backends the layer is tfjs-layers' BatchNormalization unchanged.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD } from '../ops/kernel-names.js';

type BatchNormalizationArgs = NonNullable<Parameters<typeof tfl.layers.batchNormalization>[0]>;
type BatchNormalizationLayer = ReturnType<typeof tfl.layers.batchNormalization>;

// tfjs-layers exports the factory, not the class.
const BatchNormalization = Object.getPrototypeOf(tfl.layers.batchNormalization({})).constructor as new (args?: BatchNormalizationArgs) => BatchNormalizationLayer;

interface LayerVariable {
  read(): tf.Tensor;
  write(value: tf.Tensor): void;
}

/** tfjs-layers' BatchNormalization fields that are private in its typings. */
interface BatchNormState {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: LayerVariable;
  beta: LayerVariable;
  movingMean: LayerVariable;
  movingVariance: LayerVariable;
}

export class BatchNorm extends BatchNormalization {
  /** Serialised as tfjs-layers' (and Keras') own BatchNormalization; loading never needs this class. */
  static className = 'BatchNormalization';

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[] {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    const state = this as unknown as BatchNormState;
    const channelsLast = state.axis === -1 || state.axis === x.rank - 1;
    if (!kwargs['training'] || !channelsLast || !state.center || !state.scale || x.dtype !== 'float32' || !tf.getKernel(BATCH_NORM_TRAIN, tf.getBackend())) {
      return super.call(inputs, kwargs);
    }
    const attrs = { varianceEpsilon: state.epsilon };
    return tf.tidy(() => {
      let stats: tf.Tensor[] = [];
      const normalize = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
        const [xs, gamma, beta, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
        const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAIN, { x: xs, scale: gamma, offset: beta }, attrs) as tf.Tensor[];
        save([xs, mean!, variance!, gamma]);
        stats = [tf.keep(mean!), tf.keep(variance!)];
        return {
          value: y!,
          gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
            const [sx, sMean, sVariance, sGamma] = saved;
            return tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD, { x: sx!, dy, mean: sMean!, variance: sVariance!, scale: sGamma! }, attrs) as tf.Tensor[];
          },
        };
      });
      const y = normalize(x, state.gamma.read(), state.beta.read());
      // The moving averages exactly as tfjs-layers updates them.
      const decay = 1 - state.momentum;
      [state.movingMean, state.movingVariance].forEach((variable, k) => {
        tf.tidy(() => {
          const orig = variable.read();
          variable.write(tf.sub(orig, tf.mul(tf.sub(orig, stats[k]!), decay)));
        });
      });
      tf.dispose(stats);
      return y;
    });
  }
}

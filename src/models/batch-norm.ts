// BatchNormalization whose training-mode forward and gradient each run as one kernel on a
// backend that registers them (onednn). tfjs-layers computes the batch statistics with
// tf.moments and differentiates them kernel by kernel: five kernels forward and about eight
// full-size ones backward per layer (Mean, Sub, Square, Mean, the normalisation; Tiles, Adds,
// Sums), where the closed-form gradient needs two passes over memory. Everything else — the
// inference path, the moving averages, the weights, the config — is tfjs-layers' own, and on
// other backends the layer is tfjs-layers' BatchNormalization unchanged.
//
// Groups (withBatchNormGroups): inside that scope a training-mode batch is normalised as groups
// of a fixed size, each with its own statistics, as the reference's 8 TPU replicas each took
// BatchNorm statistics over their own 128 images; and only the groups the scope names update the
// moving averages. A run-time setting, not part of the layer: it never reaches the saved config,
// and outside the scope (the keras protocol, inference, other callers) nothing changes.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  BATCH_NORM_ACTIVATION_KWARG, BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD, MOVING_AVERAGES,
  type BatchNormActivation, type BatchNormTrainAttrs, type MovingAveragesAttrs,
} from '../ops/kernel-names.js';

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

/** How training-mode BatchNorm splits a batch; see withBatchNormGroups. */
export interface BatchNormGroups {
  /** Images per statistics group: a batch of n images is normalised as n / size groups (n must be a multiple). */
  size: number;
  /** Which groups update the moving averages, in order: every one, only the first, or none. */
  movingAverages: 'every' | 'first' | 'none';
}

let activeGroups: BatchNormGroups | null = null;

/**
 * Runs `fn` (a synchronous forward pass, e.g. inside tf.variableGrads) with every selab BatchNorm
 * in training mode taking its statistics per group of `groups.size` images, and updating its
 * moving averages as `groups.movingAverages` says.
 */
export function withBatchNormGroups<T>(groups: BatchNormGroups, fn: () => T): T {
  if (!(Number.isInteger(groups.size) && groups.size >= 1)) throw new Error(`BatchNorm groups: size must be an integer ≥ 1, got ${groups.size}`);
  const previous = activeGroups;
  activeGroups = groups;
  try {
    return fn();
  } finally {
    activeGroups = previous;
  }
}

export class BatchNorm extends BatchNormalization {
  /** Serialised as tfjs-layers' (and Keras') own BatchNormalization; loading never needs this class. */
  static className = 'BatchNormalization';

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[] {
    const groups = activeGroups;
    if (!kwargs['training'] || groups === null) return this.normalize(inputs, kwargs, true);
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    const n = x.shape[0]!;
    if (n % groups.size !== 0) throw new Error(`BatchNorm ${this.name}: a batch of ${n} images does not split into groups of ${groups.size}`);
    const count = n / groups.size;
    const updates = (i: number): boolean => groups.movingAverages === 'every' || (groups.movingAverages === 'first' && i === 0);
    if (count === 1) return this.normalize(x, kwargs, updates(0));
    return tf.tidy(() => {
      const parts = tf.split(x, count, 0);
      return tf.concat(parts.map((part, i) => this.normalize(part, kwargs, updates(i)) as tf.Tensor), 0);
    });
  }

  /** One batch (or group) normalised with its own statistics; `update`: move the moving averages by them. */
  private normalize(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>, update: boolean): tf.Tensor | tf.Tensor[] {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    const state = this as unknown as BatchNormState;
    const channelsLast = state.axis === -1 || state.axis === x.rank - 1;
    if (!kwargs['training'] || !channelsLast || !state.center || !state.scale || x.dtype !== 'float32' || !tf.getKernel(BATCH_NORM_TRAIN, tf.getBackend())) {
      if (update || !kwargs['training']) return super.call(inputs, kwargs);
      // tfjs-layers always moves the averages in training mode: put them back afterwards.
      const kept = [state.movingMean.read().clone(), state.movingVariance.read().clone()];
      const y = super.call(inputs, kwargs);
      state.movingMean.write(kept[0]!);
      state.movingVariance.write(kept[1]!);
      tf.dispose(kept);
      return y;
    }
    // A backend may ask for the next layer's activation inside the kernels (kernel-names.ts).
    const activation = kwargs[BATCH_NORM_ACTIVATION_KWARG] as BatchNormActivation | undefined;
    const attrs: BatchNormTrainAttrs = activation ? { varianceEpsilon: state.epsilon, activation } : { varianceEpsilon: state.epsilon };
    return tf.tidy(() => {
      let stats: tf.Tensor[] = [];
      const normalize = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
        const [xs, gamma, beta, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
        const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAIN, { x: xs, scale: gamma, offset: beta }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        save([xs, mean!, variance!, gamma, beta]);
        stats = [tf.keep(mean!), tf.keep(variance!)];
        return {
          value: y!,
          gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
            const [sx, sMean, sVariance, sGamma, sBeta] = saved;
            const inputs = { x: sx!, dy, mean: sMean!, variance: sVariance!, scale: sGamma!, offset: sBeta! };
            return tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
          },
        };
      });
      const y = normalize(x, state.gamma.read(), state.beta.read());
      if (update) this.updateMovingAverages(stats[0]!, stats[1]!);
      tf.dispose(stats);
      return y;
    });
  }

  /** The moving averages exactly as tfjs-layers updates them; in one kernel where the backend has it. */
  private updateMovingAverages(mean: tf.Tensor, variance: tf.Tensor): void {
    const state = this as unknown as BatchNormState;
    const decay = 1 - state.momentum;
    tf.tidy(() => {
      const moving = [state.movingMean, state.movingVariance];
      if (tf.getKernel(MOVING_AVERAGES, tf.getBackend())) {
        const inputs = { movingMean: moving[0]!.read(), movingVariance: moving[1]!.read(), mean, variance };
        const attrs: MovingAveragesAttrs = { decay };
        const updated = tf.engine().runKernel(MOVING_AVERAGES, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        moving.forEach((variable, k) => variable.write(updated[k]!));
        return;
      }
      [mean, variance].forEach((stat, k) => {
        const orig = moving[k]!.read();
        moving[k]!.write(tf.sub(orig, tf.mul(tf.sub(orig, stat), decay)));
      });
    });
  }
}

// Adam whose per-weight arithmetic runs as one kernel, `SelabAdamUpdate`, on a backend that
// registers it (onednn), instead of tfjs-core's dozen elementwise kernels per weight tensor;
// on any other backend it is tfjs-core's AdamOptimizer unchanged. The state (moments,
// accumulated β powers, iterations) is tfjs-core's own, so getWeights/setWeights, checkpoints
// and the serialised class name ('Adam') are unchanged too.
import * as tf from '@tensorflow/tfjs-core';

export const ADAM_UPDATE = 'SelabAdamUpdate';

/** Inputs value, m, v, gradient; outputs the new value, m and v. */
export interface AdamUpdateAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** 1 − β1^t and 1 − β2^t, as tfjs computes them in float32. */
  oneMinusAccBeta1: number;
  oneMinusAccBeta2: number;
}

interface Slot {
  originalName: string;
  variable: tf.Variable;
}

/** tfjs-core's AdamOptimizer fields that are private in its typings. */
interface AdamState {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: Slot[];
  accumulatedSecondMoment: Slot[];
}

export class FusedAdamOptimizer extends tf.AdamOptimizer {
  override applyGradients(variableGradients: Parameters<tf.AdamOptimizer['applyGradients']>[0]): void {
    if (!tf.getKernel(ADAM_UPDATE, tf.getBackend())) {
      super.applyGradients(variableGradients);
      return;
    }
    const state = this as unknown as AdamState;
    const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
    tf.tidy(() => {
      const [accBeta1] = state.accBeta1.dataSync();
      const [accBeta2] = state.accBeta2.dataSync();
      const attrs: AdamUpdateAttrs = {
        lr: this.learningRate,
        beta1: this.beta1,
        beta2: this.beta2,
        epsilon: this.epsilon,
        oneMinusAccBeta1: Math.fround(1 - accBeta1!),
        oneMinusAccBeta2: Math.fround(1 - accBeta2!),
      };
      names.forEach((name, i) => {
        const value = tf.engine().registeredVariables[name]!;
        state.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        state.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        const gradient = Array.isArray(variableGradients) ? variableGradients[i]!.tensor : variableGradients[name];
        if (gradient == null) return;
        const m = state.accumulatedFirstMoment[i]!.variable;
        const v = state.accumulatedSecondMoment[i]!.variable;
        const [newValue, newM, newV] = tf.engine().runKernel(ADAM_UPDATE, { value, m, v, gradient }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        m.assign(newM!);
        v.assign(newV!);
        value.assign(newValue!);
      });
      state.accBeta1.assign(tf.mul(state.accBeta1, this.beta1));
      state.accBeta2.assign(tf.mul(state.accBeta2, this.beta2));
    });
    this.incrementIterations();
  }
}

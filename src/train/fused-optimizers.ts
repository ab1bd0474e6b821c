// Adam, RMSProp and momentum SGD whose per-weight arithmetic runs as one kernel
// (`SelabAdamUpdate`, `SelabRmsPropUpdate`, `SelabMomentumUpdate`) on a backend that registers
// it (onednn), instead of tfjs-core's dozen (Adam), nine (RMSProp) or three (momentum)
// elementwise kernels per weight tensor; on any other backend they are tfjs-core's optimizers
// unchanged. The state (moments, accumulated β powers, iterations) is tfjs-core's own, so
// getWeights/setWeights, checkpoints and the serialised class names are unchanged too.
import * as tf from '@tensorflow/tfjs-core';

export const ADAM_UPDATE = 'SelabAdamUpdate';
export const RMSPROP_UPDATE = 'SelabRmsPropUpdate';
export const MOMENTUM_UPDATE = 'SelabMomentumUpdate';

/** Inputs value, acc (accumulation), gradient; outputs the new value and acc. */
export interface MomentumUpdateAttrs {
  lr: number;
  momentum: number;
}

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

/** Inputs value, ms (mean square), mom (moments), gradient; outputs the new value, ms and mom. */
export interface RmsPropUpdateAttrs {
  lr: number;
  decay: number;
  momentum: number;
  epsilon: number;
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

/** The value of a variable's optimizer slot, created as tfjs-core creates it on first use. */
function slot(slots: Slot[], i: number, name: string, suffix: string, value: tf.Variable): tf.Variable {
  slots[i] ??= { originalName: `${name}/${suffix}`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
  return slots[i].variable;
}

function namesOf(variableGradients: tf.NamedTensorMap | { name: string }[]): string[] {
  return Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
}

function gradientOf(variableGradients: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[], name: string, i: number): tf.Tensor | undefined {
  return Array.isArray(variableGradients) ? variableGradients[i]!.tensor : variableGradients[name];
}

export class FusedAdamOptimizer extends tf.AdamOptimizer {
  override applyGradients(variableGradients: Parameters<tf.AdamOptimizer['applyGradients']>[0]): void {
    if (!tf.getKernel(ADAM_UPDATE, tf.getBackend())) {
      super.applyGradients(variableGradients);
      return;
    }
    const state = this as unknown as AdamState;
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
      namesOf(variableGradients).forEach((name, i) => {
        const value = tf.engine().registeredVariables[name]!;
        const m = slot(state.accumulatedFirstMoment, i, name, 'm', value);
        const v = slot(state.accumulatedSecondMoment, i, name, 'v', value);
        const gradient = gradientOf(variableGradients, name, i);
        if (gradient == null) return;
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

/** tfjs-core's RMSPropOptimizer fields that are private in its typings. */
interface RmsPropState {
  centered: boolean;
  accumulatedMeanSquares: Slot[];
  accumulatedMoments: Slot[];
}

export class FusedRmsPropOptimizer extends tf.RMSPropOptimizer {
  override applyGradients(variableGradients: Parameters<tf.RMSPropOptimizer['applyGradients']>[0]): void {
    const state = this as unknown as RmsPropState;
    if (state.centered || !tf.getKernel(RMSPROP_UPDATE, tf.getBackend())) {
      super.applyGradients(variableGradients);
      return;
    }
    const attrs: RmsPropUpdateAttrs = { lr: this.learningRate, decay: this.decay, momentum: this.momentum, epsilon: this.epsilon };
    tf.tidy(() => {
      namesOf(variableGradients).forEach((name, i) => {
        const value = tf.engine().registeredVariables[name]!;
        const ms = slot(state.accumulatedMeanSquares, i, name, 'rms', value);
        const mom = slot(state.accumulatedMoments, i, name, 'momentum', value);
        const gradient = gradientOf(variableGradients, name, i);
        if (gradient == null) return;
        const [newValue, newMs, newMom] = tf.engine().runKernel(RMSPROP_UPDATE, { value, ms, mom, gradient }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        ms.assign(newMs!);
        mom.assign(newMom!);
        value.assign(newValue!);
      });
    });
    this.incrementIterations();
  }
}

/** tfjs-core's MomentumOptimizer fields that are private in its typings. */
interface MomentumState {
  momentum: number;
  useNesterov: boolean;
  accumulations: Slot[];
}

export class FusedMomentumOptimizer extends tf.MomentumOptimizer {
  override applyGradients(variableGradients: Parameters<tf.MomentumOptimizer['applyGradients']>[0]): void {
    const state = this as unknown as MomentumState;
    if (state.useNesterov || !tf.getKernel(MOMENTUM_UPDATE, tf.getBackend())) {
      super.applyGradients(variableGradients);
      return;
    }
    const attrs: MomentumUpdateAttrs = { lr: this.learningRate, momentum: state.momentum };
    tf.tidy(() => {
      namesOf(variableGradients).forEach((name, i) => {
        const value = tf.engine().registeredVariables[name]!;
        const acc = slot(state.accumulations, i, name, 'momentum', value);
        const gradient = gradientOf(variableGradients, name, i);
        if (gradient == null) return;
        const [newValue, newAcc] = tf.engine().runKernel(MOMENTUM_UPDATE, { value, acc, gradient }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        acc.assign(newAcc!);
        value.assign(newValue!);
      });
    });
    this.incrementIterations();
  }
}

// Adam, RMSProp and momentum SGD whose per-weight arithmetic runs as one kernel
// (`SelabAdamUpdate`, `SelabRmsPropUpdate`, `SelabMomentumUpdate`) on a backend that registers
// it (onednn), instead of tfjs-core's dozen (Adam), nine (RMSProp) or three (momentum)
// elementwise kernels per weight tensor; on any other backend they are tfjs-core's optimizers
// unchanged. The state (moments, accumulated β powers, iterations) is tfjs-core's own, so
// getWeights, checkpoints and the serialised class names are unchanged too; Adam's setWeights
// restores the β powers bit for bit (tfjs-core's approximates them).
import * as tf from '@tensorflow/tfjs-core';
import { ADAM_UPDATE, MOMENTUM_UPDATE, RMSPROP_UPDATE, type AdamUpdateAttrs, type MomentumUpdateAttrs, type RmsPropUpdateAttrs } from '../ops/kernel-names.js';

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

type VariableGradients = Parameters<tf.Optimizer['applyGradients']>[0];

/** One slot list of an optimizer: the list, the kernel's input name, tfjs-core's name suffix. */
type SlotSpec = [slots: Slot[], input: string, suffix: string];

/**
 * For every variable with a gradient: runs `kernelName` on { value, ...its slots, gradient } and
 * assigns the outputs [value, ...slots] back. Slots are created as tfjs-core creates them, on
 * first use, for every variable, with a gradient or not.
 */
function applyUpdates(variableGradients: VariableGradients, kernelName: string, attrs: object, specs: SlotSpec[]): void {
  const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
  tf.tidy(() => {
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name]!;
      const state = specs.map(([slots, input, suffix]) => {
        slots[i] ??= { originalName: `${name}/${suffix}`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        return [input, slots[i].variable] as const;
      });
      const gradient = Array.isArray(variableGradients) ? variableGradients[i]!.tensor : variableGradients[name];
      if (gradient == null) return;
      const [newValue, ...newState] = tf.engine().runKernel(kernelName, { value, ...Object.fromEntries(state), gradient }, attrs as tf.NamedAttrMap) as tf.Tensor[];
      state.forEach(([, variable], k) => variable.assign(newState[k]!));
      value.assign(newValue!);
    });
  });
}

export class FusedAdamOptimizer extends tf.AdamOptimizer {
  override applyGradients(variableGradients: Parameters<tf.AdamOptimizer['applyGradients']>[0]): void {
    if (!tf.getKernel(ADAM_UPDATE, tf.getBackend())) {
      super.applyGradients(variableGradients);
      return;
    }
    const state = this as unknown as AdamState;
    tf.tidy(() => {
      // The β powers the variables hold, computed here rather than read back: a read would wait
      // for the device (a GPU sync per step on webgpu, where dataSync is not even available).
      const [accBeta1, accBeta2] = this.betaPowers();
      const attrs: AdamUpdateAttrs = {
        lr: this.learningRate,
        beta1: this.beta1,
        beta2: this.beta2,
        epsilon: this.epsilon,
        oneMinusAccBeta1: Math.fround(1 - accBeta1),
        oneMinusAccBeta2: Math.fround(1 - accBeta2),
      };
      applyUpdates(variableGradients, ADAM_UPDATE, attrs, [[state.accumulatedFirstMoment, 'm', 'm'], [state.accumulatedSecondMoment, 'v', 'v']]);
      state.accBeta1.assign(tf.mul(state.accBeta1, this.beta1));
      state.accBeta2.assign(tf.mul(state.accBeta2, this.beta2));
    });
    this.incrementIterations();
  }

  private powers: { iterations: number; beta1: number; beta2: number; acc1: number; acc2: number } | undefined;

  /**
   * β1^(t+1) and β2^(t+1) after t steps, as the float32 products accBeta1 and accBeta2 hold them
   * (each step multiplies by float32 β; setWeights below rebuilds them the same way).
   */
  private betaPowers(): [number, number] {
    const beta1 = Math.fround(this.beta1);
    const beta2 = Math.fround(this.beta2);
    let p = this.powers;
    if (!p || p.beta1 !== beta1 || p.beta2 !== beta2 || p.iterations > this.iterations) p = { iterations: 0, beta1, beta2, acc1: beta1, acc2: beta2 };
    while (p.iterations < this.iterations) {
      p.acc1 = Math.fround(p.acc1 * beta1);
      p.acc2 = Math.fround(p.acc2 * beta2);
      p.iterations++;
    }
    this.powers = p;
    return [p.acc1, p.acc2];
  }

  /**
   * tfjs-core rebuilds the β powers as pow(β, t + 1), which differs in the last bits from the
   * float32 product that t training steps accumulate; through the bias correction 1 − β2^t that
   * changes every step after a resume. Repeating the products restores the trained bits exactly.
   */
  override async setWeights(weightValues: Parameters<tf.AdamOptimizer['setWeights']>[0]): Promise<void> {
    await super.setWeights(weightValues);
    const state = this as unknown as AdamState;
    const beta1 = Math.fround(this.beta1);
    const beta2 = Math.fround(this.beta2);
    let accBeta1 = beta1;
    let accBeta2 = beta2;
    for (let t = 0; t < this.iterations; t++) {
      accBeta1 = Math.fround(accBeta1 * beta1);
      accBeta2 = Math.fround(accBeta2 * beta2);
    }
    tf.tidy(() => {
      state.accBeta1.assign(tf.scalar(accBeta1));
      state.accBeta2.assign(tf.scalar(accBeta2));
    });
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
    applyUpdates(variableGradients, RMSPROP_UPDATE, attrs, [[state.accumulatedMeanSquares, 'ms', 'rms'], [state.accumulatedMoments, 'mom', 'momentum']]);
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
    applyUpdates(variableGradients, MOMENTUM_UPDATE, attrs, [[state.accumulations, 'acc', 'momentum']]);
    this.incrementIterations();
  }
}

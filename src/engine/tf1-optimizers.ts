// TensorFlow 1's Adam and RMSProp, as the reference experiment trained with them
// (`tf.train.AdamOptimizer()` from scratch, `tf.train.RMSPropOptimizer(1e-5)` for transfer), in
// TF1's float32 arithmetic. On a backend that registers `SelabAdamTf1Update` /
// `SelabRmsPropTf1Update` (onednn) each weight is one kernel; elsewhere the same expressions run as
// tfjs ops, which on the cpu backend round exactly as float32 arithmetic does.
//
// Adam, TF1 (tensorflow/python/training/adam.py; kernel ApplyAdamNonCuda in
// tensorflow/core/kernels/training_ops.cc; the TPU's XLA lowering ResourceApplyAdam in
// tensorflow/compiler/tf2xla/kernels/training_ops.cc is the same expression). At step t = 1, 2, …
// with β1^t, β2^t the float32 variables beta1_power/beta2_power (they start at β and are
// multiplied by β after every step):
//   alpha = lr · sqrt(1 − β2^t) / (1 − β1^t)
//   m     = m + (g − m) · (1 − β1)
//   v     = v + (g² − v) · (1 − β2)
//   w     = w − (m · alpha) / (sqrt(v) + ε)          ε = 1e-8 ("epsilon hat" of Kingma & Ba)
// tfjs-core's (and so selab's `adam`) divides m and v by their bias corrections first and adds ε
// to sqrt(v / (1 − β2^t)): the same update only when ε is scaled by sqrt(1 − β2^t).
//
// RMSProp, TF1 (tensorflow/python/training/rmsprop.py: the "rms" slot is created with
// init_ops.ones_initializer, the "momentum" slot with zeros; kernel ApplyRMSProp in
// training_ops.cc):
//   ms  = ms + (g² − ms) · (1 − ρ)                   ms starts at ONE, ρ = 0.9
//   mom = mom · momentum + (g · lr) / sqrt(ms + ε)   momentum 0, ε = 1e-10
//   w   = w − mom
// (XLA computes g·lr·rsqrt(ms + ε): equal but for the last bit.) With ms ≈ 1 the first updates are
// about lr·g, where RMSProp from ms = 0 moves every weight by about lr/sqrt(1 − ρ) ≈ 3.2·lr.
//
// The state is tfjs-core's AdamOptimizer's and RMSPropOptimizer's (same slots, same getWeights
// order), so checkpoints hold it unchanged. The β powers are recomputed from the iteration count as
// the float32 products TF1's variables hold, so a resumed run continues bit for bit.
import * as tf from '@tensorflow/tfjs-core';
import { ADAM_TF1_UPDATE, RMSPROP_TF1_UPDATE, type AdamTf1UpdateAttrs, type RmsPropTf1UpdateAttrs } from '../ops/kernel-names.js';

interface Slot {
  originalName: string;
  variable: tf.Variable;
}

type VariableGradients = Parameters<tf.Optimizer['applyGradients']>[0];

/** One slot list: the list, tfjs-core's name suffix, and the slot's initial value. */
type SlotSpec = [slots: Slot[], suffix: string, init: 0 | 1];

/**
 * For every variable with a gradient: `update(value, slots, gradient)` returns the new value and
 * slots, which are assigned back. Slots are created as tfjs-core creates them, on first use and
 * for every variable (with a gradient or not), but filled with `init`.
 */
function applyEach(variableGradients: VariableGradients, specs: SlotSpec[], update: (value: tf.Tensor, slots: tf.Tensor[], gradient: tf.Tensor) => tf.Tensor[]): void {
  const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
  tf.tidy(() => {
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name]!;
      const slots = specs.map(([list, suffix, init]) => {
        list[i] ??= { originalName: `${name}/${suffix}`, variable: tf.tidy(() => (init === 1 ? tf.onesLike(value) : tf.zerosLike(value)).variable(false)) };
        return list[i].variable;
      });
      const gradient = Array.isArray(variableGradients) ? variableGradients[i]!.tensor : variableGradients[name];
      if (gradient == null) return;
      const [newValue, ...newSlots] = update(value, slots, gradient);
      slots.forEach((variable, k) => variable.assign(newSlots[k]!));
      value.assign(newValue!);
    });
  });
}

const f32 = Math.fround;

/** β^t for t = 1, 2, … as the float32 product a TF1 beta_power variable holds after t − 1 steps. */
export function tf1BetaPower(beta: number, t: number): number {
  const b = f32(beta);
  let p = b;
  for (let k = 1; k < t; k++) p = f32(p * b);
  return p;
}

/** The float32 scalars of TF1's Adam step t (1-based). */
export function tf1AdamScalars(lr: number, beta1: number, beta2: number, epsilon: number, t: number): AdamTf1UpdateAttrs {
  const one = 1;
  const p1 = tf1BetaPower(beta1, t);
  const p2 = tf1BetaPower(beta2, t);
  return {
    alpha: f32(f32(f32(lr) * f32(Math.sqrt(f32(one - p2)))) / f32(one - p1)),
    oneMinusBeta1: f32(one - f32(beta1)),
    oneMinusBeta2: f32(one - f32(beta2)),
    epsilon: f32(epsilon),
  };
}

/** tfjs-core's AdamOptimizer fields that are private in its typings. */
interface AdamSlots {
  accumulatedFirstMoment: Slot[];
  accumulatedSecondMoment: Slot[];
}

/** `adam-tf1`: tf.train.AdamOptimizer (lr 1e-3, β1 0.9, β2 0.999, ε 1e-8 by default). */
export class Tf1AdamOptimizer extends tf.AdamOptimizer {
  constructor(learningRate: number, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8) {
    super(learningRate, beta1, beta2, epsilon);
  }

  override applyGradients(variableGradients: VariableGradients): void {
    const state = this as unknown as AdamSlots;
    const attrs = tf1AdamScalars(this.learningRate, this.beta1, this.beta2, this.epsilon, this.iterations + 1);
    const fused = tf.getKernel(ADAM_TF1_UPDATE, tf.getBackend()) !== undefined;
    applyEach(variableGradients, [[state.accumulatedFirstMoment, 'm', 0], [state.accumulatedSecondMoment, 'v', 0]], (value, [m, v], g) => {
      if (fused) return tf.engine().runKernel(ADAM_TF1_UPDATE, { value, m: m!, v: v!, gradient: g }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
      const newM = tf.add(m!, tf.mul(tf.sub(g, m!), attrs.oneMinusBeta1));
      const newV = tf.add(v!, tf.mul(tf.sub(tf.square(g), v!), attrs.oneMinusBeta2));
      const newValue = tf.sub(value, tf.div(tf.mul(newM, attrs.alpha), tf.add(tf.sqrt(newV), attrs.epsilon)));
      return [newValue, newM, newV];
    });
    this.incrementIterations();
  }
}

/** tfjs-core's RMSPropOptimizer fields that are private in its typings. */
interface RmsPropSlots {
  accumulatedMeanSquares: Slot[];
  accumulatedMoments: Slot[];
}

/** `rmsprop-tf1`: tf.train.RMSPropOptimizer (decay 0.9, momentum 0, ε 1e-10; mean square starting at one). */
export class Tf1RmsPropOptimizer extends tf.RMSPropOptimizer {
  constructor(learningRate: number, decay = 0.9, momentum = 0, epsilon = 1e-10) {
    super(learningRate, decay, momentum, epsilon, false);
  }

  override applyGradients(variableGradients: VariableGradients): void {
    const state = this as unknown as RmsPropSlots;
    const attrs: RmsPropTf1UpdateAttrs = { lr: f32(this.learningRate), oneMinusDecay: f32(1 - f32(this.decay)), momentum: f32(this.momentum), epsilon: f32(this.epsilon) };
    const fused = tf.getKernel(RMSPROP_TF1_UPDATE, tf.getBackend()) !== undefined;
    applyEach(variableGradients, [[state.accumulatedMeanSquares, 'rms', 1], [state.accumulatedMoments, 'momentum', 0]], (value, [ms, mom], g) => {
      if (fused) return tf.engine().runKernel(RMSPROP_TF1_UPDATE, { value, ms: ms!, mom: mom!, gradient: g }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
      const newMs = tf.add(ms!, tf.mul(tf.sub(tf.square(g), ms!), attrs.oneMinusDecay));
      const newMom = tf.add(tf.mul(mom!, attrs.momentum), tf.div(tf.mul(g, attrs.lr), tf.sqrt(tf.add(newMs, attrs.epsilon))));
      return [tf.sub(value, newMom), newMs, newMom];
    });
    this.incrementIterations();
  }
}

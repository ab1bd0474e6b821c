// The kernels selab adds to TensorFlow.js, by name, with their attributes: the contract between the
// code that runs them (models, optimizers) and the backends that implement them, as tfjs-core's
// kernel_names.ts is for its own kernels. A backend without an implementation never sees them:
// the callers fall back to standard ops.

/**
 * Inputs x, scale, offset; attrs BatchNormTrainAttrs; outputs y (with the activation applied), the
 * batch mean and the (biased) batch variance.
 */
export const BATCH_NORM_TRAIN = 'SelabBatchNormTrain';
/**
 * Inputs x, dy, mean, variance, scale, offset; attrs BatchNormTrainAttrs (those of the forward:
 * dy is the gradient of the activation's output); outputs dx, dScale, dOffset.
 */
export const BATCH_NORM_TRAIN_GRAD = 'SelabBatchNormTrainGrad';

/**
 * Inputs movingMean, movingVariance, mean, variance (channel vectors); attrs MovingAveragesAttrs;
 * outputs the new moving mean and variance, moving − (moving − batch)·decay in float32, as
 * tfjs-layers updates them with three kernels each.
 */
export const MOVING_AVERAGES = 'SelabMovingAverages';

export interface MovingAveragesAttrs {
  /** 1 − momentum. */
  decay: number;
}

/**
 * Inputs dy [N,H,W,C], gate [N,C], squeezeGrad [N,C]; output dx = dy·gate + squeezeGrad (each
 * product and sum rounded to float32): a Squeeze-and-Excitation block's input gradient, the
 * gate's share and the average pool's, in one pass.
 */
export const GATE_INPUT_GRAD = 'SelabGateInputGrad';

/** An activation a training-mode BatchNorm applies to its own output, for the layer after it. */
export type BatchNormActivation = 'linear' | 'relu' | 'relu6';

export interface BatchNormTrainAttrs {
  varianceEpsilon: number;
  /** Absent: 'linear'. A backend that does not implement an activation throws. */
  activation?: BatchNormActivation;
}

/**
 * The layer-call keyword argument by which a backend asks a training-mode BatchNorm (selab's, in
 * src/models/batch-norm.ts) to apply the activation of the ReLU/ReLU6 layer after it inside its
 * own kernels, forward and gradient: one pass over memory less each way. A BatchNorm that cannot
 * (another class, a fallback path) ignores it; the backend lets the activation layer pass the
 * result through only when its kernel applied the activation.
 */
export const BATCH_NORM_ACTIVATION_KWARG = 'selabFusedActivation';

export const ADAM_UPDATE = 'SelabAdamUpdate';
export const RMSPROP_UPDATE = 'SelabRmsPropUpdate';
export const MOMENTUM_UPDATE = 'SelabMomentumUpdate';
/**
 * TensorFlow 1's Adam and RMSProp (`adam-tf1`, `rmsprop-tf1`): kernels of their own rather than
 * attributes on the two above, because TF1 orders the float32 arithmetic differently (the moments
 * move by (g − m)·(1 − β) where tfjs-core takes β·m + (1 − β)·g, and Adam folds both bias
 * corrections into one step size), so the results differ in the last bits, not only in ε.
 */
export const ADAM_TF1_UPDATE = 'SelabAdamTf1Update';
export const RMSPROP_TF1_UPDATE = 'SelabRmsPropTf1Update';

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

/**
 * Inputs value, m, v, gradient; outputs the new value, m and v, as TF1's ApplyAdam computes them in
 * float32: m += (g − m)·oneMinusBeta1; v += (g² − v)·oneMinusBeta2; value −= (m·alpha) / (√v + ε).
 * The caller computes the float32 scalars the way TF1 does (see src/engine/tf1-optimizers.ts).
 */
export interface AdamTf1UpdateAttrs {
  /** lr·√(1 − β2^t) / (1 − β1^t), in float32. */
  alpha: number;
  /** 1 − β1 and 1 − β2 with β rounded to float32 first, as TF1 subtracts float32 tensors. */
  oneMinusBeta1: number;
  oneMinusBeta2: number;
  epsilon: number;
}

/**
 * Inputs value, ms (mean square), mom (momentum), gradient; outputs the new value, ms and mom, as
 * TF1's ApplyRMSProp computes them in float32: ms += (g² − ms)·oneMinusDecay;
 * mom = mom·momentum + (g·lr) / √(ms + ε); value −= mom.
 */
export interface RmsPropTf1UpdateAttrs {
  lr: number;
  /** 1 − decay with decay rounded to float32 first. */
  oneMinusDecay: number;
  momentum: number;
  epsilon: number;
}

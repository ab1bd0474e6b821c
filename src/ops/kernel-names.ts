// The kernels selab adds to TensorFlow.js, by name, with their attributes: the contract between the
// code that runs them (models, optimizers) and the backends that implement them, as tfjs-core's
// kernel_names.ts is for its own kernels. A backend without an implementation never sees them:
// the callers fall back to standard ops.

/** Inputs x, scale, offset; attr varianceEpsilon; outputs y, the batch mean and the (biased) batch variance. */
export const BATCH_NORM_TRAIN = 'SelabBatchNormTrain';
/** Inputs x, dy, mean, variance, scale; attr varianceEpsilon; outputs dx, dScale, dOffset. */
export const BATCH_NORM_TRAIN_GRAD = 'SelabBatchNormTrainGrad';

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

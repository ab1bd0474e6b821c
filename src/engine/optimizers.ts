// Optimizer presets of the reference experiment, as data, and their tfjs optimizers with the
// Keras defaults the reference ran with (tfjs' own defaults differ: Adam and RMSProp epsilon 1e-8).
import * as tf from '@tensorflow/tfjs-core';
import { FusedAdamOptimizer, FusedMomentumOptimizer, FusedRmsPropOptimizer } from './fused-optimizers.js';

export type OptimizerName = 'adam' | 'rmsprop' | 'sgd-momentum';
export const OPTIMIZER_NAMES: readonly OptimizerName[] = ['adam', 'rmsprop', 'sgd-momentum'];

export interface OptimizerPreset {
  name: OptimizerName;
  lr: number;
  /** Only for 'sgd-momentum'. */
  momentum?: number;
}

export const OPTIMIZER_PRESETS = {
  adam: { name: 'adam', lr: 1e-3 },
  rmsprop: { name: 'rmsprop', lr: 1e-5 },
  'rmsprop-1e-4': { name: 'rmsprop', lr: 1e-4 },
  'sgd-momentum': { name: 'sgd-momentum', lr: 1e-3, momentum: 0.9 },
} as const satisfies Record<string, OptimizerPreset>;

export type OptimizerPresetId = keyof typeof OPTIMIZER_PRESETS;
export const OPTIMIZER_PRESET_IDS = Object.keys(OPTIMIZER_PRESETS) as OptimizerPresetId[];

/** Keras defaults: Adam β1 0.9, β2 0.999, ε 1e-7; RMSprop ρ 0.9, no momentum, ε 1e-7. */
const KERAS_EPSILON = 1e-7;

/** The preset with id `id`, or a clear error listing the valid ids. */
export function getOptimizerPreset(id: string): OptimizerPreset {
  if (!Object.hasOwn(OPTIMIZER_PRESETS, id)) {
    throw new Error(`unknown optimizer preset "${id}": expected one of ${OPTIMIZER_PRESET_IDS.join(', ')}`);
  }
  return OPTIMIZER_PRESETS[id as OptimizerPresetId];
}

export function makeOptimizer(preset: OptimizerPreset | string): tf.Optimizer {
  const p = typeof preset === 'string' ? getOptimizerPreset(preset) : preset;
  if (!(typeof p.lr === 'number' && Number.isFinite(p.lr) && p.lr > 0)) {
    throw new Error(`optimizer ${p.name}: lr must be a positive number, got ${JSON.stringify(p.lr)}`);
  }
  switch (p.name) {
    case 'adam':
      return new FusedAdamOptimizer(p.lr, 0.9, 0.999, KERAS_EPSILON);
    case 'rmsprop':
      return new FusedRmsPropOptimizer(p.lr, 0.9, 0, KERAS_EPSILON, false);
    case 'sgd-momentum': {
      const momentum = p.momentum ?? 0.9;
      if (!(momentum >= 0 && momentum < 1)) throw new Error(`optimizer sgd-momentum: momentum must be in [0, 1), got ${momentum}`);
      // tfjs: v = m·v + g, w -= lr·v; Keras: v = m·v − lr·g, w += v. Identical for a constant lr.
      return new FusedMomentumOptimizer(p.lr, momentum, false);
    }
    default:
      throw new Error(`unknown optimizer "${(p as { name: unknown }).name}": expected one of ${OPTIMIZER_NAMES.join(', ')}`);
  }
}

/**
 * Changes the lr of an optimizer made by makeOptimizer, keeping its state. SGD and momentum hold
 * −lr as a kept scalar (setLearningRate replaces it); Adam and RMSProp read the number at each step.
 */
export function setLearningRate(optimizer: tf.Optimizer, lr: number): void {
  // Not `instanceof tf.SGDOptimizer`: tfjs' Optimizer overrides instanceof to match any optimizer.
  const o = optimizer as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}

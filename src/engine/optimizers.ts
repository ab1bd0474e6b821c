// Optimizer presets of the reference experiment, as data, and their tfjs optimizers: `adam` and
// `rmsprop` with today's Keras defaults (ε 1e-7; tfjs' own defaults differ), `adam-tf1` and
// `rmsprop-tf1` as the reference actually ran them (TensorFlow 1's tf.train optimizers, see
// tf1-optimizers.ts).
import * as tf from '@tensorflow/tfjs-core';
import { FusedAdamOptimizer, FusedMomentumOptimizer, FusedRmsPropOptimizer } from './fused-optimizers.js';
import { Tf1AdamOptimizer, Tf1RmsPropOptimizer } from './tf1-optimizers.js';

export type OptimizerName = 'adam' | 'rmsprop' | 'sgd-momentum' | 'adam-tf1' | 'rmsprop-tf1';
export const OPTIMIZER_NAMES: readonly OptimizerName[] = ['adam', 'rmsprop', 'sgd-momentum', 'adam-tf1', 'rmsprop-tf1'];

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
  /** tf.train.AdamOptimizer(): the reference's from-scratch optimizer. */
  'adam-tf1': { name: 'adam-tf1', lr: 1e-3 },
  /** tf.train.RMSPropOptimizer(1e-5): the reference's transfer optimizer. */
  'rmsprop-tf1': { name: 'rmsprop-tf1', lr: 1e-5 },
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
    case 'adam-tf1':
      return new Tf1AdamOptimizer(p.lr, 0.9, 0.999, 1e-8);
    case 'rmsprop-tf1':
      return new Tf1RmsPropOptimizer(p.lr, 0.9, 0, 1e-10);
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

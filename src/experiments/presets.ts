// Training recipes as complete configurations; flags override any field (resolveConfig). The
// reference cases' own presets are in cases.ts.
import { CIFAR10_MEAN, CIFAR10_STD } from '../data/batches.js';
import type { Protocol, TrainConfig } from '../runs/config.js';

/** `--normalize`: CIFAR-10's per-channel mean/std of pixel/255. */
export const CIFAR10_NORMALIZE = { mean: [...CIFAR10_MEAN], std: [...CIFAR10_STD] };

export const DEFAULT_OUT = 'runs';
export const DEFAULT_SEED = 1;

/**
 * The SE paper's CIFAR recipe (its CIFAR experiments follow He et al. 2016): 4-pixel zero pad + random 32×32 crop +
 * horizontal flip, per-channel mean/std normalisation, SGD with momentum 0.9, batch 128, weight decay
 * 1e-4, lr 0.1 divided by 10 at 32k and 48k iterations and stopped at 64k, i.e. epochs 82 and 123 of
 * 164 on the 50,000 training images.
 */
export const SE_CIFAR_RECIPE = {
  epochs: 164,
  batchSize: 128,
  optimizer: 'sgd-momentum',
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 1e-4,
  lrDecayEpochs: [82, 123],
  lrDecayFactor: 0.1,
  augment: true,
  normalize: true,
} as const;

/** The recipe's decay points scaled to another length: 82/164 and 123/164 of the epochs (once each when they round together). */
export function scaledDecayEpochs(epochs: number): number[] {
  return [...new Set(SE_CIFAR_RECIPE.lrDecayEpochs.map((e) => Math.round((e / SE_CIFAR_RECIPE.epochs) * epochs)))];
}

/** What every from-scratch recipe shares at CIFAR-10's own size. */
const SCRATCH_32: Omit<TrainConfig, 'epochs' | 'batchSize' | 'optimizer' | 'lr' | 'momentum' | 'augment' | 'normalize' | 'weightDecay' | 'lrDecayEpochs' | 'lrDecayFactor' | 'protocol' | 'validation'> = {
  microBatch: null, upsample: 1, inputShape: [32, 32, 3], trainLimit: null, testLimit: null, seed: DEFAULT_SEED, weights: 'none', preprocess: 'scale',
};

export const TRAINING_PRESET_IDS = ['se-cifar', 'reference'] as const;
export type TrainingPresetId = (typeof TRAINING_PRESET_IDS)[number];

/**
 * se-cifar: the SE paper's recipe above (its lr milestones scaled to `epochs`). reference: the
 * reference study's from-scratch training (cases 1–2): Adam 1e-3, batch 1024, 100 epochs, no
 * augmentation. Both train the Keras way unless `protocol` is 'reference' (then the reference
 * preset's Adam is TF1's, and the validation the reference's subset).
 */
export function trainingPreset(id: string, epochs?: number, protocol: Protocol = 'keras'): TrainConfig {
  const how = { protocol, validation: protocol === 'reference' ? 'reference' : 'full' } as const;
  if (id === 'se-cifar') {
    const r = SE_CIFAR_RECIPE;
    const n = epochs ?? r.epochs;
    return {
      ...SCRATCH_32, epochs: n, batchSize: r.batchSize, optimizer: r.optimizer, lr: r.lr, momentum: r.momentum, augment: r.augment,
      normalize: CIFAR10_NORMALIZE, weightDecay: r.weightDecay, lrDecayEpochs: scaledDecayEpochs(n), lrDecayFactor: r.lrDecayFactor, ...how,
    };
  }
  if (id === 'reference') {
    return {
      ...SCRATCH_32, epochs: epochs ?? 100, batchSize: 1024, optimizer: protocol === 'reference' ? 'adam-tf1' : 'adam', lr: 1e-3, momentum: null, augment: false,
      normalize: null, weightDecay: 0, lrDecayEpochs: [], lrDecayFactor: 0.1, ...how,
    };
  }
  throw new Error(`--preset ${JSON.stringify(id)}: expected one of ${TRAINING_PRESET_IDS.join(', ')}`);
}

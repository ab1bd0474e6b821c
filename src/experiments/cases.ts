// The seven cases of the reference Keras study (SE blocks on CIFAR-10), as data. Everything a
// runner needs to reproduce a case is here; buildCaseModel turns a case into a model.
import type * as tfl from '@tensorflow/tfjs-layers';
import { attentionFrom, type AttentionSpec } from '../attention/index.js';
import { getOptimizerPreset, type OptimizerPresetId } from '../engine/optimizers.js';
import { createModel, getModelEntry } from '../models/all.js';
import type { ImagenetArch } from '../models/weights.js';
import type { Protocol, TrainConfig } from '../runs/config.js';
import { DEFAULT_SEED } from './presets.js';

export type CaseModelName = 'plain10' | 'vgg16' | 'mobilenet';
export type CaseAddition = 'batchnorm';
export type Training = 'scratch' | 'transfer';

export interface ReferenceCase {
  id: number;
  /** Short id usable on the command line, e.g. 'vgg16-bn-se'. */
  name: string;
  model: CaseModelName;
  additions: readonly CaseAddition[];
  se: boolean;
  /** The registered model it builds, and with which attention. */
  architecture: string;
  attention: AttentionSpec | null;
  /** 'transfer' starts from ImageNet weights (loaded by the caller of buildCaseModel). */
  training: Training;
  optimizer: OptimizerPresetId;
  /** Other optimizer presets offered for this case. */
  alternativeOptimizers: readonly OptimizerPresetId[];
  batchSize: number;
  epochs: number;
  /** CIFAR-10's 32×32 images are upsampled by this factor (nearest / repeat) to inputShape. */
  upsample: 1 | 2 | 4;
  inputShape: readonly [number, number, number];
  /** Keras' count_params(): all weights, BatchNorm moving mean/variance included. */
  expectedParams: number;
  /** The case this one adds to (same model without the addition), if any. */
  baselineCase?: number;
  /** Test accuracy in percent reported by the reference study. */
  referenceAccuracy: number;
}

const COMMON = { batchSize: 1024, epochs: 100 } as const;
/** SE as the reference placed it: ratio 8, sigmoid gate, average squeeze. */
const SE8: AttentionSpec = { kind: 'se', ratio: 8, squeeze: 'avg', gate: 'sigmoid' };
const SCRATCH = { ...COMMON, training: 'scratch', optimizer: 'adam', alternativeOptimizers: [], upsample: 1, inputShape: [32, 32, 3] } as const;
const TRANSFER = { ...COMMON, training: 'transfer', optimizer: 'rmsprop', alternativeOptimizers: ['rmsprop-1e-4', 'sgd-momentum'] } as const;

export const CASES: readonly ReferenceCase[] = [
  { id: 1, name: 'plain10', model: 'plain10', additions: [], se: false, architecture: 'plain10', attention: null, ...SCRATCH, expectedParams: 1_927_946, referenceAccuracy: 89.33 },
  { id: 2, name: 'plain10-se', model: 'plain10', additions: [], se: true, architecture: 'plain10', attention: SE8, ...SCRATCH, expectedParams: 1_993_970, baselineCase: 1, referenceAccuracy: 89.51 },
  { id: 3, name: 'vgg16', model: 'vgg16', additions: [], se: false, architecture: 'vgg16', attention: null, ...TRANSFER, upsample: 2, inputShape: [64, 64, 3], expectedParams: 14_719_818, referenceAccuracy: 90.34 },
  { id: 4, name: 'vgg16-bn', model: 'vgg16', additions: ['batchnorm'], se: false, architecture: 'vgg16-bn', attention: null, ...TRANSFER, upsample: 2, inputShape: [64, 64, 3], expectedParams: 14_736_714, baselineCase: 3, referenceAccuracy: 91.12 },
  { id: 5, name: 'vgg16-bn-se', model: 'vgg16', additions: ['batchnorm'], se: true, architecture: 'vgg16-bn', attention: SE8, ...TRANSFER, upsample: 2, inputShape: [64, 64, 3], expectedParams: 15_194_074, baselineCase: 3, referenceAccuracy: 91.03 },
  { id: 6, name: 'mobilenet', model: 'mobilenet', additions: [], se: false, architecture: 'mobilenet', attention: null, ...TRANSFER, upsample: 4, inputShape: [128, 128, 3], expectedParams: 3_239_114, referenceAccuracy: 93.45 },
  { id: 7, name: 'mobilenet-se', model: 'mobilenet', additions: [], se: true, architecture: 'mobilenet', attention: SE8, ...TRANSFER, upsample: 4, inputShape: [128, 128, 3], expectedParams: 4_205_590, baselineCase: 6, referenceAccuracy: 92.38 },
];

/** A case by number (1–7, as number or string) or by name ('vgg16-bn-se'). */
export function getCase(idOrName: number | string): ReferenceCase {
  const key = String(idOrName).trim();
  const found = CASES.find((c) => String(c.id) === key || c.name === key);
  if (!found) {
    throw new Error(`unknown case "${key}": expected 1–${CASES.length} or one of ${CASES.map((c) => c.name).join(', ')}`);
  }
  return found;
}

export interface BuildCaseOptions {
  /** Loads pretrained weights into the Keras-named backbone before BatchNorm and attention are inserted. */
  loadBaseWeights?: (base: tfl.LayersModel) => Promise<void>;
  classes?: number;
}

function caseModelName(c: ReferenceCase): string {
  return `case${c.id}_${c.name.replace(/-/g, '_')}`;
}

/** The case's model, built from the registry with the case's input size and attention. */
export function buildCaseModel(caseOrId: ReferenceCase | number | string, options: BuildCaseOptions = {}): Promise<tfl.LayersModel> {
  const c = typeof caseOrId === 'object' ? caseOrId : getCase(caseOrId);
  return createModel(c.architecture, {
    inputShape: [...c.inputShape],
    classes: options.classes ?? 10,
    attention: attentionFrom(c.attention),
    name: caseModelName(c),
    ...(c.training === 'transfer' && options.loadBaseWeights ? { loadBaseWeights: options.loadBaseWeights } : {}),
  });
}

/** The ImageNet file the case's architecture starts from, if any. */
export function caseImagenetArch(c: ReferenceCase): ImagenetArch | undefined {
  const entry = getModelEntry(c.architecture);
  return entry.imagenet?.({ ...entry.defaults, inputShape: [...c.inputShape] });
}

/**
 * TF1's optimizer for each of the reference's: the reference study compiled its models with
 * tf.train.AdamOptimizer() and tf.train.RMSPropOptimizer(1e-5), not with Keras' own.
 */
const TF1_OPTIMIZER: Partial<Record<OptimizerPresetId, OptimizerPresetId>> = { adam: 'adam-tf1', rmsprop: 'rmsprop-tf1' };

/**
 * The case's training as the reference study ran it: its batch, epochs and input size, and under
 * the 'reference' protocol (the default) its TensorFlow 1 optimizer and validation; under 'keras'
 * the Keras optimizer of the same name and the whole test split.
 */
export function casePreset(c: ReferenceCase, protocol: Protocol = 'reference'): TrainConfig {
  const optimizer = getOptimizerPreset(protocol === 'reference' ? (TF1_OPTIMIZER[c.optimizer] ?? c.optimizer) : c.optimizer);
  return {
    epochs: c.epochs,
    batchSize: c.batchSize,
    microBatch: null,
    optimizer: optimizer.name,
    lr: optimizer.lr,
    momentum: optimizer.momentum ?? null,
    upsample: c.upsample,
    inputShape: [...c.inputShape],
    trainLimit: null,
    testLimit: null,
    seed: DEFAULT_SEED,
    weights: c.training === 'transfer' ? 'imagenet' : 'none',
    preprocess: 'scale',
    augment: false,
    normalize: null,
    weightDecay: 0,
    lrDecayEpochs: [],
    lrDecayFactor: 0.1,
    protocol,
    validation: protocol === 'reference' ? 'reference' : 'full',
  };
}

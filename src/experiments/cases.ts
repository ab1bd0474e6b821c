// The seven cases of the reference Keras study (SE blocks on CIFAR-10), as data. Everything a
// runner needs to reproduce a case is here; buildCaseModel turns a case into a model.
import type * as tfl from '@tensorflow/tfjs-layers';
import type { SEOptions } from '../attention/squeeze-excitation.js';
import type { OptimizerPresetId } from '../engine/optimizers.js';
import { withClassificationHead } from '../models/head.js';
import { mobilenetV1 } from '../models/mobilenet.js';
import { plain10 } from '../models/plain10.js';
import { mobilenetWithSE, vgg16WithBatchNorm, vgg16WithBatchNormSE } from '../models/presets.js';
import { vgg16 } from '../models/vgg16.js';

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
  seRatio: number;
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

const COMMON = { seRatio: 8, batchSize: 1024, epochs: 100 } as const;
const SCRATCH = { ...COMMON, training: 'scratch', optimizer: 'adam', alternativeOptimizers: [], upsample: 1, inputShape: [32, 32, 3] } as const;
const TRANSFER = { ...COMMON, training: 'transfer', optimizer: 'rmsprop', alternativeOptimizers: ['rmsprop-1e-4', 'sgd-momentum'] } as const;

export const CASES: readonly ReferenceCase[] = [
  { id: 1, name: 'plain10', model: 'plain10', additions: [], se: false, ...SCRATCH, expectedParams: 1_927_946, referenceAccuracy: 89.33 },
  { id: 2, name: 'plain10-se', model: 'plain10', additions: [], se: true, ...SCRATCH, expectedParams: 1_993_970, baselineCase: 1, referenceAccuracy: 89.51 },
  { id: 3, name: 'vgg16', model: 'vgg16', additions: [], se: false, ...TRANSFER, upsample: 2, inputShape: [64, 64, 3], expectedParams: 14_719_818, referenceAccuracy: 90.34 },
  { id: 4, name: 'vgg16-bn', model: 'vgg16', additions: ['batchnorm'], se: false, ...TRANSFER, upsample: 2, inputShape: [64, 64, 3], expectedParams: 14_736_714, baselineCase: 3, referenceAccuracy: 91.12 },
  { id: 5, name: 'vgg16-bn-se', model: 'vgg16', additions: ['batchnorm'], se: true, ...TRANSFER, upsample: 2, inputShape: [64, 64, 3], expectedParams: 15_194_074, baselineCase: 3, referenceAccuracy: 91.03 },
  { id: 6, name: 'mobilenet', model: 'mobilenet', additions: [], se: false, ...TRANSFER, upsample: 4, inputShape: [128, 128, 3], expectedParams: 3_239_114, referenceAccuracy: 93.45 },
  { id: 7, name: 'mobilenet-se', model: 'mobilenet', additions: [], se: true, ...TRANSFER, upsample: 4, inputShape: [128, 128, 3], expectedParams: 4_205_590, baselineCase: 6, referenceAccuracy: 92.38 },
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
  /**
   * Loads pretrained weights into the Keras-named headless backbone (VGG16 / MobileNet) before
   * BatchNorm/SE are inserted; called only for 'transfer' cases.
   */
  loadBaseWeights?: (base: tfl.LayersModel) => Promise<void>;
  /** Overrides for the SE blocks (ratio defaults to the case's seRatio). */
  seOptions?: SEOptions;
  classes?: number;
}

function caseModelName(c: ReferenceCase): string {
  return `case${c.id}_${c.name.replace(/-/g, '_')}`;
}

export async function buildCaseModel(caseOrId: ReferenceCase | number | string, options: BuildCaseOptions = {}): Promise<tfl.LayersModel> {
  const c = typeof caseOrId === 'object' ? caseOrId : getCase(caseOrId);
  const { classes = 10 } = options;
  const se: SEOptions = { ratio: c.seRatio, ...options.seOptions };
  const inputShape = [...c.inputShape] as [number, number, number];
  const name = caseModelName(c);

  if (c.model === 'plain10') {
    if (c.additions.length > 0) throw new Error(`case ${c.id}: plain10 supports no additions, got ${c.additions.join(', ')}`);
    return plain10({ se: c.se, seOptions: se, inputShape, classes, name });
  }

  const base = c.model === 'vgg16' ? vgg16({ inputShape }) : mobilenetV1({ inputShape });
  if (c.training === 'transfer' && options.loadBaseWeights) await options.loadBaseWeights(base);

  const batchnorm = c.additions.includes('batchnorm');
  let body: tfl.LayersModel;
  if (c.model === 'vgg16') {
    if (c.se && !batchnorm) throw new Error(`case ${c.id}: VGG16 + SE without BatchNorm is not a reference case`);
    body = batchnorm ? (c.se ? vgg16WithBatchNormSE(base, se) : vgg16WithBatchNorm(base)) : base;
  } else {
    if (batchnorm) throw new Error(`case ${c.id}: MobileNet already has BatchNorm`);
    body = c.se ? mobilenetWithSE(base, se) : base;
  }
  if (body !== base) {
    // The rewritten model shares most layers with `base`; drop base's claim on them so that
    // disposing the returned model frees everything (replaced layers' originals go now).
    base.dispose();
  }
  return withClassificationHead(body, classes, name);
}

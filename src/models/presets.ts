// The architecture changes of the reference experiment, as rewrites of the Keras-named backbones,
// and the registry entries of those backbones. Each rewrite returns a new model that shares every
// untouched layer (and its weights) with `base`.
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Attention } from '../attention/index.js';
import { addBatchNorm, insertAttention, insertBatchNormRelu, rewriteModel, withActivation } from './rewrite.js';
import { withClassificationHead } from './head.js';
import { MOBILENET_BLOCKS, mobilenetV1 } from './mobilenet.js';
import type { ModelEntry, ModelOptions } from './registry.js';
import { vgg16 } from './vgg16.js';

const VGG16_CONV = /^block\d_conv\d$/;

/**
 * VGG16 + BN: every blockN_convM becomes conv(linear) → BatchNormalization → ReLU. With
 * `attention`, conv(linear) → BN → ReLU → attention for each of the 13 convolutions, i.e. after
 * every conv unit as in plain10+SE. This is the placement that gives the reference's 15,194,074
 * parameters with SE (SE only after the five blocks' pools would add 154,232, not 457,360).
 */
export function vgg16WithBatchNorm(base: tfl.LayersModel, attention?: Attention): tfl.LayersModel {
  if (!attention) return addBatchNorm(base, VGG16_CONV, `${base.name}_bn`);
  return rewriteModel(base, {
    replace: [{ match: VGG16_CONV, with: (l) => withActivation(l, 'linear') }],
    insertAfter: [insertBatchNormRelu(VGG16_CONV), insertAttention(VGG16_CONV, attention)],
    name: `${base.name}_bn_${attention.kind}`,
  });
}

export const MOBILENET_SE_LAYERS: readonly string[] = ['conv1', ...MOBILENET_BLOCKS.map((_, i) => `conv_pw_${i + 1}`)];
export const MOBILENET_DEPTHWISE_LAYERS: readonly string[] = MOBILENET_BLOCKS.map((_, i) => `conv_dw_${i + 1}`);

/**
 * MobileNet + attention: a block right after conv1 and each conv_pw_i, before its BatchNorm, as
 * the reference experiment places SE (14 blocks, +966,476 parameters at alpha 1). `depthwise`
 * also puts one after every depthwise convolution (not in the reference).
 */
export function mobilenetWithAttention(base: tfl.LayersModel, attention: Attention, options: { depthwise?: boolean } = {}): tfl.LayersModel {
  const after = options.depthwise ? [...MOBILENET_SE_LAYERS, ...MOBILENET_DEPTHWISE_LAYERS] : MOBILENET_SE_LAYERS;
  return rewriteModel(base, { insertAfter: [insertAttention(after, attention)], name: `${base.name}_${attention.kind}` });
}

/** The headless backbone with ImageNet weights loaded (when asked), rewritten, then given the head. */
async function transferModel(
  o: ModelOptions,
  backbone: tfl.LayersModel,
  rewrite: (base: tfl.LayersModel) => tfl.LayersModel,
  defaultName: string,
): Promise<tfl.LayersModel> {
  if (o.loadBaseWeights) await o.loadBaseWeights(backbone);
  const body = rewrite(backbone);
  // The rewritten model shares most layers with the backbone; drop the backbone's claim on them
  // so that disposing the returned model frees everything (replaced layers' originals go now).
  if (body !== backbone) backbone.dispose();
  return withClassificationHead(body, o.classes, o.name ?? defaultName);
}

export const REFERENCE_BACKBONE_MODELS: readonly ModelEntry[] = [
  {
    name: 'vgg16',
    description: 'VGG16 (Keras applications, ImageNet weights) with the selab head',
    defaults: { inputShape: [64, 64, 3], classes: 10, integration: 'standard' },
    attention: 'none',
    imagenet: () => ({ kind: 'vgg16' }),
    build: (o) => transferModel(o, vgg16({ inputShape: o.inputShape }), (base) => base, 'vgg16'),
  },
  {
    name: 'vgg16-bn',
    description: 'VGG16 with BatchNorm + ReLU after every convolution (attention after each)',
    defaults: { inputShape: [64, 64, 3], classes: 10, integration: 'standard' },
    attention: 'units',
    imagenet: () => ({ kind: 'vgg16' }),
    build: (o) => transferModel(o, vgg16({ inputShape: o.inputShape }), (base) => vgg16WithBatchNorm(base, o.attention), 'vgg16_bn'),
  },
  {
    name: 'mobilenet',
    description: 'MobileNet v1 (Keras applications, ImageNet weights); attention after conv1 and every conv_pw_i',
    defaults: { inputShape: [128, 128, 3], classes: 10, integration: 'standard', alpha: 1, depthwiseAttention: false },
    attention: 'units',
    imagenet: (o) => ({ kind: 'mobilenet', alpha: o.alpha ?? 1, inputShape: o.inputShape }),
    build: (o) =>
      transferModel(
        o,
        mobilenetV1({ inputShape: o.inputShape, alpha: o.alpha ?? 1 }),
        (base) => (o.attention ? mobilenetWithAttention(base, o.attention, { depthwise: o.depthwiseAttention ?? false }) : base),
        'mobilenet',
      ),
  },
];

// The architecture changes of the reference experiment, as rewrites of the Keras-named backbones.
// Each returns a new model that shares every untouched layer (and its weights) with `base`.
import type * as tfl from '@tensorflow/tfjs-layers';
import type { SEOptions } from '../attention/squeeze-excitation.js';
import { addBatchNorm, insertBatchNormRelu, insertSE, rewriteModel, withActivation } from './rewrite.js';
import { MOBILENET_BLOCKS } from './mobilenet.js';

const VGG16_CONV = /^block\d_conv\d$/;

/** VGG16 + BN: every blockN_convM becomes conv(linear) → BatchNormalization → ReLU. */
export function vgg16WithBatchNorm(base: tfl.LayersModel): tfl.LayersModel {
  return addBatchNorm(base, VGG16_CONV, `${base.name}_bn`);
}

/**
 * VGG16 + BN + SE: conv(linear) → BN → ReLU → SE for each of the 13 convolutions, i.e. SE after
 * every conv unit as in plain10+SE. This is the placement that gives the reference's 15,194,074
 * parameters (SE only after the five blocks' pools would add 154,232, not 457,360).
 */
export function vgg16WithBatchNormSE(base: tfl.LayersModel, se: SEOptions = {}): tfl.LayersModel {
  return rewriteModel(base, {
    replace: [{ match: VGG16_CONV, with: (l) => withActivation(l, 'linear') }],
    insertAfter: [insertBatchNormRelu(VGG16_CONV), insertSE(VGG16_CONV, se)],
    name: `${base.name}_bn_se`,
  });
}

export const MOBILENET_SE_LAYERS: readonly string[] = ['conv1', ...MOBILENET_BLOCKS.map((_, i) => `conv_pw_${i + 1}`)];
export const MOBILENET_DEPTHWISE_LAYERS: readonly string[] = MOBILENET_BLOCKS.map((_, i) => `conv_dw_${i + 1}`);

export interface MobileNetSEOptions extends SEOptions {
  /** Also put an SE block after every depthwise convolution. Default false (not in the reference). */
  depthwise?: boolean;
}

/**
 * MobileNet + SE: an SE block right after conv1 and each conv_pw_i, before its BatchNorm, as the
 * reference experiment places it (14 blocks, +966,476 parameters at alpha 1).
 */
export function mobilenetWithSE(base: tfl.LayersModel, options: MobileNetSEOptions = {}): tfl.LayersModel {
  const { depthwise = false, ...se } = options;
  const after = depthwise ? [...MOBILENET_SE_LAYERS, ...MOBILENET_DEPTHWISE_LAYERS] : MOBILENET_SE_LAYERS;
  return rewriteModel(base, { insertAfter: [insertSE(after, se)], name: `${base.name}_se` });
}

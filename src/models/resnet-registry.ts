// The CIFAR ResNets and WRN-16-8 in `selab models`, each without and with SE (standard placement,
// r = 16 as in the SE paper's CIFAR experiments).
import type * as tfl from '@tensorflow/tfjs-layers';
import { registerModel } from './registry.js';
import { resnet20, resnet32, resnet56, resnet110, resnet164, type ResNetSEOptions } from './resnet.js';
import { wrn16_8 } from './wrn.js';

const SE_PAPER: ResNetSEOptions = { se: true, integration: 'standard', seOptions: { ratio: 16 } };

const FAMILY: [string, string, (o: ResNetSEOptions) => tfl.LayersModel][] = [
  ['resnet20', 'ResNet-20 for CIFAR (He et al. 2016, basic units, option A shortcuts)', resnet20],
  ['resnet32', 'ResNet-32 for CIFAR (He et al. 2016, basic units, option A shortcuts)', resnet32],
  ['resnet56', 'ResNet-56 for CIFAR (He et al. 2016, basic units, option A shortcuts)', resnet56],
  ['resnet110', 'ResNet-110 for CIFAR (He et al. 2016, basic units, option A shortcuts)', resnet110],
  ['resnet164', 'ResNet-164 for CIFAR (pre-activation bottlenecks, He et al. 2016b)', resnet164],
  ['wrn16-8', 'WRN-16-8 (Zagoruyko & Komodakis 2016, pre-activation, 1×1 projections)', wrn16_8],
];

for (const [name, description, build] of FAMILY) {
  registerModel({ name, description, inputShape: [32, 32, 3], build: () => build({}) });
  registerModel({ name: `${name}-se`, description: `${description} + SE (r = 16) on every residual branch`, inputShape: [32, 32, 3], build: () => build(SE_PAPER) });
}

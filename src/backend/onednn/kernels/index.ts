import type { KernelConfig } from '@tensorflow/tfjs-core';
import { batchNormKernels } from './batchnorm.js';
import { convKernels } from './conv.js';
import { convOpKernels } from './conv-op.js';
import { matMulKernels } from './matmul.js';
import { optimizerKernels } from './optimizer.js';
import { poolKernels } from './pool.js';
import { elementwiseKernels } from './eltwise.js';
import { gateKernels } from './gate.js';
import { gradientKernels, installNativeGradients } from './gradients.js';
import { reduceKernels } from './reduce.js';

// The fused gradients only act while `onednn` is the active backend (see gradients.ts).
installNativeGradients();

/** Kernels implemented natively; each kernel module adds its list here. */
export const nativeKernels: KernelConfig[] = [
  ...elementwiseKernels,
  ...reduceKernels,
  ...batchNormKernels,
  ...gradientKernels,
  ...gateKernels,
  ...convKernels,
  ...convOpKernels,
  ...poolKernels,
  ...matMulKernels,
  ...optimizerKernels,
];

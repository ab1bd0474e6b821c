import type { KernelConfig } from '@tensorflow/tfjs-core';
import { convKernels } from './conv.js';
import { matMulKernels } from './matmul.js';
import { poolKernels } from './pool.js';

/** Kernels implemented natively; each kernel module adds its list here. */
export const nativeKernels: KernelConfig[] = [
  ...convKernels,
  ...poolKernels,
  ...matMulKernels,
];

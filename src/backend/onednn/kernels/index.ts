import type { KernelConfig } from '@tensorflow/tfjs-core';

/** Kernels implemented natively; each kernel module adds its list here. */
export const nativeKernels: KernelConfig[] = [];

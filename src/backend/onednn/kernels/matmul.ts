import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { floats, nativeAddon, nativeOutput, withFallback } from './fallback.js';
import { activationCode } from './activation.js';

declare module '../addon.js' {
  interface OneDnnAddon {
    matmul(a: Float32Array, b: Float32Array, bias: Float32Array | null, geometry: number[], activation: number, alpha: number, out: Float32Array): boolean;
  }
}

const product = (dims: number[]): number => dims.reduce((p, d) => p * d, 1);

function matMul(fused: boolean) {
  return (backend: MathBackendCPU, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): TensorInfo | undefined => {
    const { a, b, bias, preluActivationWeights } = inputs;
    const { transposeA = false, transposeB = false, activation, leakyreluAlpha } = attrs as {
      transposeA?: boolean; transposeB?: boolean; activation?: string; leakyreluAlpha?: number;
    };
    if (!a || !b || preluActivationWeights || a.shape.length < 2 || b.shape.length < 2) return undefined;
    const act = fused ? activationCode(activation) : 0;
    const av = floats(backend, a);
    const bv = floats(backend, b);
    const biasv = bias ? floats(backend, bias) : null;
    if (act === undefined || !av || !bv || biasv === undefined) return undefined;
    const ra = a.shape.length;
    const rb = b.shape.length;
    const m = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
    const k = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
    const n = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
    const batchA = product(a.shape.slice(0, -2));
    const batchB = product(b.shape.slice(0, -2));
    // oneDNN broadcasts a batch of 1; other broadcasts and a bias that is not [N] stay on cpu.
    if (batchA !== batchB && batchA !== 1 && batchB !== 1) return undefined;
    if (biasv && biasv.length !== n) return undefined;
    const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    if (product(outBatch) !== Math.max(batchA, batchB)) return undefined;
    const geometry = [batchA, batchB, m, k, n, transposeA ? 1 : 0, transposeB ? 1 : 0];
    return nativeOutput(backend, [...outBatch, m, n], (y) => nativeAddon().matmul(av, bv, biasv, geometry, act, leakyreluAlpha ?? 0.2, y));
  };
}

export const matMulKernels: KernelConfig[] = [
  withFallback(tf.BatchMatMul, matMul(false)),
  withFallback(tf._FusedMatMul, matMul(true)),
];

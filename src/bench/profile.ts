// Per-kernel self time of a function on one backend. tf.profile counts a kernel that runs
// other kernels through the engine twice; here each registered kernel of the backend is
// wrapped with a timer and a child's time is subtracted from its parent, so the shares add
// up to the time spent in kernels.
import * as tf from '@tensorflow/tfjs-core';

export interface KernelTime {
  kernel: string;
  calls: number;
  ms: number;
}

export interface KernelProfile {
  totalMs: number;
  kernelMs: number;
  kernels: KernelTime[];
}

export function profileKernels(backendName: string, fn: () => void): KernelProfile {
  const originals = tf.getKernelsForBackend(backendName);
  const stats = new Map<string, KernelTime>();
  const childMs: number[] = [];
  for (const k of originals) {
    const inner = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, backendName);
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        childMs.push(0);
        const t0 = performance.now();
        try {
          return inner(args);
        } finally {
          const elapsed = performance.now() - t0;
          const self = elapsed - childMs.pop()!;
          if (childMs.length > 0) childMs[childMs.length - 1]! += elapsed;
          const s = stats.get(k.kernelName) ?? { kernel: k.kernelName, calls: 0, ms: 0 };
          s.calls++;
          s.ms += self;
          stats.set(k.kernelName, s);
        }
      },
    });
  }
  const t0 = performance.now();
  try {
    fn();
  } finally {
    for (const k of originals) {
      tf.unregisterKernel(k.kernelName, backendName);
      tf.registerKernel(k);
    }
  }
  const totalMs = performance.now() - t0;
  const kernels = [...stats.values()].sort((a, b) => b.ms - a.ms);
  return { totalMs, kernelMs: kernels.reduce((s, k) => s + k.ms, 0), kernels };
}

/**
 * Per-kernel device time of an asynchronous step on a GPU backend, from tf.profile. On webgpu a
 * profiled kernel runs in its own compute pass between two timestamp queries (where the adapter
 * offers them), so its time is what the GPU spent on it, not the time to record it; the step as a
 * whole runs slower than unprofiled, one submission per kernel.
 */
export async function profileDeviceKernels(fn: () => Promise<unknown>): Promise<KernelProfile> {
  const t0 = performance.now();
  const info = await tf.profile(async () => {
    await fn();
    return [];
  });
  const totalMs = performance.now() - t0;
  const stats = new Map<string, KernelTime>();
  for (const k of info.kernels) {
    const s = stats.get(k.name) ?? { kernel: k.name, calls: 0, ms: 0 };
    s.calls++;
    s.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    stats.set(k.name, s);
  }
  const kernels = [...stats.values()].sort((a, b) => b.ms - a.ms);
  return { totalMs, kernelMs: kernels.reduce((s, k) => s + k.ms, 0), kernels };
}

/** A plain-text table: kernel, calls, ms, share of the whole step. */
export function formatProfile(p: KernelProfile, minShare = 0.005): string {
  const lines = [`step ${p.totalMs.toFixed(1)} ms, in kernels ${p.kernelMs.toFixed(1)} ms (${((100 * p.kernelMs) / p.totalMs).toFixed(1)}%)`];
  lines.push(`${'kernel'.padEnd(34)} ${'calls'.padStart(6)} ${'ms'.padStart(9)} ${'share'.padStart(7)}`);
  for (const k of p.kernels) {
    const share = k.ms / p.totalMs;
    if (share < minShare) continue;
    lines.push(`${k.kernel.padEnd(34)} ${String(k.calls).padStart(6)} ${k.ms.toFixed(1).padStart(9)} ${(100 * share).toFixed(1).padStart(6)}%`);
  }
  return lines.join('\n');
}

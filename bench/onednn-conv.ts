// Per-kernel timing of the native convolutions on plain10's layers (batch 128), for both
// weight layouts: `blocked` (oneDNN picks the layout, the tfjs filter is reordered each call)
// and `direct` (oneDNN runs on the hwio filter as is).
//   node --import tsx bench/onednn-conv.ts [--batch 128] [--reps 5] [--layouts blocked,direct] [--addon path/to/selab_onednn.node]
import * as tf from '@tensorflow/tfjs-core';
import { createRequire } from 'node:module';
import { loadAddon, addonLoadError, type OneDnnAddon } from '../src/backend/onednn/addon.js';
import '../src/backend/onednn/kernels/conv.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const batch = flag('--batch', 128);
const reps = flag('--reps', 5);

const addonPath = args.includes('--addon') ? args[args.indexOf('--addon') + 1]! : undefined;
const addon = addonPath ? (createRequire(import.meta.url)(addonPath) as OneDnnAddon) : loadAddon();
if (!addon) throw new Error(`onednn addon not loaded: ${addonLoadError()?.message}`);

// plain10: [spatial, in, out] of each 3×3 'same' convolution.
const LAYERS: [number, number, number][] = [
  [32, 3, 64], [32, 64, 64], [16, 64, 128], [16, 128, 128], [8, 128, 256], [8, 256, 256],
];
const COUNT = [1, 2, 1, 2, 1, 2];

function randomArray(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() - 0.5;
  return a;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(fn: () => unknown): number {
  fn();
  const samples: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return median(samples);
}

console.log(`threads ${addon.info().threads}, batch ${batch}, median of ${reps}`);
const totals: Record<string, number> = {};
const layouts = (args.includes('--layouts') ? args[args.indexOf('--layouts') + 1]! : 'blocked,direct').split(',') as ('blocked' | 'direct')[];
for (const layout of layouts) {
  addon.setConvWeightsLayout(layout);
  for (const [li, [size, cin, cout]] of LAYERS.entries()) {
    const info = tf.backend_util.computeConv2DInfo([batch, size, size, cin], [3, 3, cin, cout], 1, 1, 'same');
    const p = info.padInfo;
    const g = [batch, size, size, cin, 3, 3, cout, size, size, 1, 1, 1, 1, p.top, p.left, p.bottom, p.right, 1];
    const x = randomArray(batch * size * size * cin);
    const w = randomArray(9 * cin * cout);
    const dy = randomArray(batch * size * size * cout);
    // Outputs are reused across calls, as the backend's recycled storage is in steady state.
    const y = new Float32Array(dy.length);
    const dx = new Float32Array(x.length);
    const dw = new Float32Array(w.length);
    const flops = 2 * batch * size * size * cout * 9 * cin;
    const row: string[] = [];
    for (const [phase, fn] of [
      ['fwd', () => addon.convForward(x, w, null, g, 0, 0, y)],
      ['bwd_data', () => addon.convBackwardData(dy, w, g, dx)],
      ['bwd_weights', () => addon.convBackwardWeights(x, dy, g, dw)],
    ] as const) {
      // The first layer's backward-data is never computed in training (the input needs no gradient).
      if (li === 0 && phase === 'bwd_data') {
        row.push(`${phase} -`);
        continue;
      }
      const s = time(fn);
      totals[`${layout} ${phase}`] = (totals[`${layout} ${phase}`] ?? 0) + s * COUNT[li]!;
      row.push(`${phase} ${(s * 1e3).toFixed(1)} ms ${(flops / s / 1e9).toFixed(0)} GFLOPS`);
    }
    console.log(`${layout} ${size}x${size} ${cin}->${cout}: ${row.join(' | ')}`);
  }
}
for (const [k, v] of Object.entries(totals)) console.log(`total ${k}: ${(v * 1e3).toFixed(1)} ms per batch`);

// BatchNorm's native training kernels alone (`batchNormTrainForward` with ReLU6, then
// `batchNormTrainGrad`) over the 27 activation shapes of MobileNet's step at 128×128, batch 32
// (211 MB), with the backend's thread and OpenMP settings. Prints the medians of all 27 calls
// and each distinct shape's time and bandwidth (bytes moved: forward x twice and out once,
// gradient x and dy twice and dx once).
//   node --import tsx bench/onednn-batchnorm.ts [runs]
import { selectBackend } from '../src/backend/select.js';
import { loadAddon } from '../src/backend/onednn/addon.js';
import { median } from '../src/bench/step.js';
import { mulberry32 } from '../src/util/random.js';

const RELU6 = 2;
const runs = Number(process.argv[2] ?? 7);
await selectBackend('onednn');
const addon = loadAddon()!;

// [rows = batch·height·width, channels] of each BatchNorm, in model order.
const hw = (side: number) => 32 * side * side;
const SHAPES: [number, number][] = [
  [hw(64), 32], [hw(64), 32], [hw(64), 64], [hw(32), 64], [hw(32), 128], [hw(32), 128], [hw(32), 128],
  [hw(16), 128], [hw(16), 256], [hw(16), 256], [hw(16), 256], [hw(8), 256], [hw(8), 512],
  ...Array.from({ length: 10 }, (): [number, number] => [hw(8), 512]),
  [hw(4), 512], [hw(4), 1024], [hw(4), 1024], [hw(4), 1024],
];

const random = mulberry32(1);
const layers = SHAPES.map(([rows, c]) => {
  const fill = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * random());
  return {
    rows, c,
    x: fill(rows * c, -1, 3), dy: fill(rows * c, -0.5, 0.5), out: new Float32Array(rows * c), dx: new Float32Array(rows * c),
    scale: fill(c, 0.5, 1.5), offset: fill(c, -0.5, 0.5), mean: new Float32Array(c), variance: new Float32Array(c),
    dScale: new Float32Array(c), dOffset: new Float32Array(c),
  };
});
type Layer = (typeof layers)[number];
const forward = (l: Layer) => addon.batchNormTrainForward(l.x, l.scale, l.offset, 1e-3, l.c, l.out, l.mean, l.variance, RELU6);
const gradient = (l: Layer) => addon.batchNormTrainGrad(l.x, l.dy, l.mean, l.variance, l.scale, l.offset, 1e-3, l.c, l.dx, l.dScale, l.dOffset, RELU6);

function medianMs(fn: () => void): number {
  for (let i = 0; i < 2; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

const megabytes = layers.reduce((s, l) => s + l.rows * l.c * 4, 0) / 1e6;
const allForward = medianMs(() => layers.forEach(forward));
const allGradient = medianMs(() => layers.forEach(gradient));
console.log(`27 BatchNorms, ${megabytes.toFixed(0)} MB of activations: forward ${allForward.toFixed(1)} ms, gradient ${allGradient.toFixed(1)} ms`);
const seen = new Set<string>();
for (const l of layers) {
  const key = `${l.rows}×${l.c}`;
  if (seen.has(key)) continue;
  seen.add(key);
  const mb = (l.rows * l.c * 4) / 1e6;
  const f = medianMs(() => forward(l));
  const g = medianMs(() => gradient(l));
  console.log(`${key.padEnd(12)} ${mb.toFixed(1).padStart(5)} MB  forward ${f.toFixed(2)} ms (${((3 * mb) / f).toFixed(0)} GB/s)  gradient ${g.toFixed(2)} ms (${((5 * mb) / g).toFixed(0)} GB/s)`);
}

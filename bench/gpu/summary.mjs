// Reads what bench/gpu/run.sh measured under OUT and writes OUT/summary.json and OUT/summary.txt:
// webgpu against this project's onednn figures (the floor: ≥ 10× per bench model), against
// PyTorch on the same GPU with TF32 off (the goal: ≥ 0.5× for plain10 and MobileNet training),
// and the seed's full study (7 cases × 100 epochs at the presets) projected from the measured
// epochs of cases 1 and 6 and the bench's training and inference speeds (the floor: < 6 hours).
// Usage: node summary.mjs OUT
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const out = process.argv[2];
if (!out) throw new Error('usage: node summary.mjs OUT');
const readJson = (file) => {
  try {
    return JSON.parse(readFileSync(join(out, file), 'utf8'));
  } catch {
    return null;
  }
};

/** onednn on the project's 2-core machine, quiet, 2026-11-29 (docs/benchmarks.md, "Training and inference vs PyTorch"). */
const ONEDNN = {
  plain10: { batch: 128, train: 173.0, infer: 635.6 },
  'plain10-se': { batch: 128, train: 160.5, infer: 582.9 },
  'vgg16-bn-se': { batch: 16, train: 28.1, infer: 100.1 },
  mobilenet: { batch: 32, train: 100.9, infer: 425.6 },
  'mobilenet-se': { batch: 32, train: 74.6, infer: 365.3 },
};
/** The bench model each case's speed is projected from (cases 3 and 4 lack SE and BatchNorm: VGG16+BN+SE bounds them from above). */
const CASE_MODEL = { 1: 'plain10', 2: 'plain10-se', 3: 'vgg16-bn-se', 4: 'vgg16-bn-se', 5: 'vgg16-bn-se', 6: 'mobilenet', 7: 'mobilenet-se' };
const TRAIN_IMAGES = 50_000;
const TEST_IMAGES = 10_000;
const EPOCHS = 100;

const webgpu = readJson('bench-webgpu.json');
const torch = readJson('bench-torch-cuda.json');
const lines = [];
const summary = { adapter: webgpu?.adapter ?? null, torchDevice: torch?.device ?? null, models: {}, epochs: {}, projection: null, floor: {}, goal: {} };

const row = (rows, model, phase, extra = () => true) => rows?.find((r) => r.model === model && r.phase === phase && extra(r));
for (const [model, ref] of Object.entries(ONEDNN)) {
  const train = row(webgpu?.rows, model, 'train');
  const infer = row(webgpu?.rows, model, 'infer');
  const t32off = row(torch?.rows, model, 'train', (r) => r.tf32 === false);
  const t32on = row(torch?.rows, model, 'train', (r) => r.tf32 === true);
  const m = {
    webgpuTrain: train?.imagesPerSecond ?? null,
    webgpuInfer: infer?.imagesPerSecond ?? null,
    batch: train?.batch ?? null,
    onednnTrain: ref.train,
    speedupOverOnednn: train ? train.imagesPerSecond / ref.train : null,
    torchTrainTf32Off: t32off?.imagesPerSecond ?? null,
    torchTrainTf32On: t32on?.imagesPerSecond ?? null,
    vsTorchTf32Off: train && t32off ? train.imagesPerSecond / t32off.imagesPerSecond : null,
  };
  summary.models[model] = m;
  summary.floor[model] = m.speedupOverOnednn === null ? null : m.speedupOverOnednn >= 10;
  if (['plain10', 'mobilenet'].includes(model)) summary.goal[model] = m.vsTorchTf32Off === null ? null : m.vsTorchTf32Off >= 0.5;
}

// Measured epochs (history.json of each run under OUT/runs).
const runs = join(out, 'runs');
if (existsSync(runs)) {
  for (const dir of readdirSync(runs)) {
    const history = join(runs, dir, 'history.json');
    if (!existsSync(history) || !statSync(history).isFile()) continue;
    const rows = JSON.parse(readFileSync(history, 'utf8')).rows ?? [];
    const run = JSON.parse(readFileSync(join(runs, dir, 'run.json'), 'utf8'));
    if (rows.length > 0) summary.epochs[dir] = { seconds: rows[0].seconds, imagesPerSecond: rows[0].imagesPerSecond, trainImages: run.config?.trainLimit ?? TRAIN_IMAGES, batchSize: run.config?.batchSize };
  }
}

// The study: a measured full epoch where there is one (cases 1 and 6), else the bench's speeds.
const caseSeconds = {};
let complete = true;
for (const [id, model] of Object.entries(CASE_MODEL)) {
  const epoch = summary.epochs[`case_${id}`];
  if (epoch && epoch.trainImages === TRAIN_IMAGES) {
    caseSeconds[id] = { epoch: epoch.seconds, from: 'measured epoch' };
    continue;
  }
  const m = summary.models[model];
  if (!m?.webgpuTrain || !m?.webgpuInfer) {
    complete = false;
    continue;
  }
  caseSeconds[id] = { epoch: TRAIN_IMAGES / m.webgpuTrain + TEST_IMAGES / m.webgpuInfer, from: `bench ${model}` };
}
if (complete) {
  const hours = Object.values(caseSeconds).reduce((s, c) => s + c.epoch * EPOCHS, 0) / 3600;
  summary.projection = { hours, cases: caseSeconds, underSixHours: hours < 6 };
}

lines.push(`GPU: ${summary.adapter ?? '?'}; PyTorch on ${summary.torchDevice ?? '(not measured)'}`);
lines.push('model          batch  webgpu train img/s  vs onednn  torch fp32 (TF32 off / on)  webgpu/torch');
for (const [model, m] of Object.entries(summary.models)) {
  const f = (x, d = 1) => (x === null ? '—' : x.toFixed(d));
  lines.push(`${model.padEnd(14)} ${String(m.batch ?? '—').padStart(5)}  ${f(m.webgpuTrain).padStart(18)}  ${(m.speedupOverOnednn === null ? '—' : `${m.speedupOverOnednn.toFixed(1)}×`).padStart(9)}  ${`${f(m.torchTrainTf32Off)} / ${f(m.torchTrainTf32On)}`.padStart(26)}  ${(m.vsTorchTf32Off === null ? '—' : `${m.vsTorchTf32Off.toFixed(2)}×`).padStart(12)}`);
}
for (const [run, e] of Object.entries(summary.epochs)) lines.push(`${run}: one epoch of ${e.trainImages} images at batch ${e.batchSize}: ${e.seconds.toFixed(1)} s (${e.imagesPerSecond.toFixed(1)} img/s training)`);
const floorOk = Object.values(summary.floor).every((v) => v === true);
lines.push(`floor, every bench model ≥ 10× onednn: ${Object.values(summary.floor).includes(null) ? 'not all measured' : floorOk ? 'met' : 'NOT met'}`);
lines.push(summary.projection
  ? `floor, the study (7 cases × ${EPOCHS} epochs) on this GPU: ${summary.projection.hours.toFixed(2)} h (${summary.projection.underSixHours ? 'under' : 'NOT under'} 6 h)`
  : 'floor, the study: not projected (missing bench rows)');
lines.push(`goal, webgpu ≥ 0.5× PyTorch fp32 (TF32 off) training: ${Object.entries(summary.goal).map(([k, v]) => `${k} ${v === null ? 'not measured' : v ? 'met' : 'not met'}`).join(', ')}`);
writeFileSync(join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
writeFileSync(join(out, 'summary.txt'), lines.join('\n') + '\n');
console.log(lines.join('\n'));

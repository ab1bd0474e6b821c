// Resident memory across many short epochs of a real case on the onednn backend: RSS after each
// epoch (after a full GC), to tell a per-epoch leak from the allocator settling. Usage:
//   node --expose-gc --import tsx bench/epoch-rss.ts [case] [epochs] [data]
import { selectBackend } from '../src/backend/select.js';
import { runTraining } from '../src/engine/runner.js';
import { loadCifar10 } from '../src/data/cifar.js';
import { buildCaseModel, casePreset, getCase } from '../src/experiments/cases.js';
import { resolveConfig } from '../src/runs/config.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

const [caseId = '1', epochs = '50', data = '../shared/datasets/cifar-10-binary.tar.gz'] = process.argv.slice(2);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const backend = await selectBackend('onednn');
const dataset = await loadCifar10({ data, verify: false });
const c = getCase(caseId);
const out = await mkdtemp(join(tmpdir(), 'selab-epoch-rss-'));
const mib = () => (process.memoryUsage().rss / 2 ** 20).toFixed(1);
try {
  await runTraining({
    out,
    id: 'run',
    describe: { case: c.id, name: c.name, model: c.model, additions: [], se: c.se, attention: c.attention, training: c.training, sweep: null },
    config: resolveConfig(casePreset(c), { epochs: Number(epochs), batchSize: 64, trainLimit: 512, testLimit: 256, weights: 'none' }),
    environment: { backend, data, threads: null },
    buildModel: () => buildCaseModel(c),
    train: dataset.train,
    test: dataset.test,
    resume: false,
    callbacks: [{ onEpochEnd: (row) => { gc(); console.log(`epoch ${row.epoch} rss ${mib()} MiB tensors ${tf.memory().numTensors}`); } }],
  });
} finally {
  await rm(out, { recursive: true, force: true });
}

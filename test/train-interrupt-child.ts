// Child process of test/train-interrupt.test.ts: a tiny run on the cpu backend with the CLI's
// Ctrl-C handling, printing one line per step and per epoch so the parent can choose its moment.
// argv: out, fresh|resume, optimizer, epochs, images, micro-batch (default 8).
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { stopOnInterrupt } from '../src/cli/commands/train.js';
import { runTraining } from '../src/engine/runner.js';
import { generatedSplit, tinyRequest } from './train-helpers.js';

await tf.setBackend('cpu');
const [out, mode, optimizer, epochs, images, microBatch] = process.argv.slice(2);
const stop = stopOnInterrupt();
let epoch = 0;
let step = 0;
process.on('SIGINT', () => process.stdout.write(`sigint ${epoch} ${step}\n`));
const lr = optimizer === 'rmsprop' ? 0.003 : 0.01;
try {
  await runTraining(
    tinyRequest(out!, { epochs: Number(epochs), optimizer: optimizer!, lr, batchSize: 32, microBatch: Number(microBatch ?? 8) }, {
      resume: mode === 'resume',
      train: generatedSplit(Number(images), 1),
      signal: stop.signal,
      callbacks: [
        {
          onEpochBegin: (e) => void (epoch = e),
          onStep: (info) => {
            step = info.step;
            process.stdout.write(`step ${epoch} ${step}\n`);
          },
          onEpochEnd: (row) => void process.stdout.write(`epoch ${row.epoch}\n`),
        },
      ],
    }),
  );
  process.stdout.write('done\n');
} catch (e) {
  process.stdout.write(`error ${(e as Error).message}\n`);
  process.exitCode = 2;
} finally {
  stop.dispose();
}

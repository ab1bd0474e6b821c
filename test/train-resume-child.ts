// Child process of test/train-cli.test.ts: one tiny run into argv[2], resumed if argv[3] is "resume".
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { runTraining } from '../src/engine/runner.js';
import { generatedSplit, tinyRequest } from './train-helpers.js';

await tf.setBackend('cpu');
const [out, mode, epochs] = process.argv.slice(2);
await runTraining(
  tinyRequest(out!, { epochs: Number(epochs ?? 3) }, { resume: mode === 'resume', train: generatedSplit(600, 1) }),
);

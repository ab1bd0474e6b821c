import type { Command } from 'commander';
import { OPTIMIZER_PRESET_IDS } from '../../engine/optimizers.js';
import { DEFAULT_OUT, parseOneCase, runCases, type CasesRunResult, type TrainFlags } from '../../experiments/run-cases.js';

/** The flags shared by `selab train` and `selab run`; none has a default here, so "not given" stays visible. */
export function addTrainOptions(cmd: Command): Command {
  return cmd
    .option('--epochs <n>', 'epochs to train (preset: 100)')
    .option('--batch-size <n>', 'images per optimizer step (preset: 1024)')
    .option('--micro-batch <n>', 'images per forward/backward pass; must divide the batch size (default: chosen from the model\'s activation size)')
    .option('--optimizer <preset>', `optimizer preset: ${OPTIMIZER_PRESET_IDS.join(', ')} (default: the case's)`)
    .option('--lr <x>', "learning rate (default: the optimizer preset's)")
    .option('--lr-decay-epochs <list>', 'step schedule: multiply the lr by --lr-decay-factor after each of these epochs, e.g. 82,123, or "none" (default: none)')
    .option('--lr-decay-factor <x>', 'step schedule factor, in (0, 1] (default: 0.1)')
    .option('--weight-decay <x>', 'L2 weight decay on conv and dense kernels (not biases or BatchNorm), added to the gradient as grad += x·w (default: 0)')
    .option('--train-limit <n>', 'train on the first n training images only')
    .option('--test-limit <n>', 'validate on the first n test images only')
    .option('--seed <n>', 'seed for weight initialisation, shuffling and augmentation (default: 1)')
    .option('--backend <name>', 'auto, onednn, wasm, cpu or tensorflow (default: auto)')
    .option('--data <source>', 'CIFAR-10: a folder, the .tar.gz archive or a URL (default: $SELAB_DATA, else the official download)')
    .option('--no-verify', 'accept a CIFAR-10 archive whose MD5 is not the official one (e.g. ../shared/datasets)')
    .option('--weights <spec>', 'imagenet, none, a file or a URL (default: imagenet for transfer cases 3-7, none otherwise)')
    .option('--preprocess <mode>', 'scale (default), caffe or tf')
    .option('--augment', 'pad 4 + random crop + horizontal flip (default: off, as in the reference cases)')
    .option('--normalize', "subtract CIFAR-10's per-channel mean and divide by its std (of pixel/255), train and test (default: off)")
    .option('--out <dir>', `output folder (default: ${DEFAULT_OUT})`)
    .option('--resume', 'continue the run in the output folder from its last checkpoint (or start it if it has none)');
}

/** Ctrl-C stops after the current step, keeping the last checkpoint; a second Ctrl-C quits at once. */
export function stopOnInterrupt(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const handler = (): void => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\nselab: stopping after the current step (Ctrl-C again to quit now)\n');
    controller.abort();
  };
  process.on('SIGINT', handler);
  return { signal: controller.signal, dispose: () => process.removeListener('SIGINT', handler) };
}

export function exitCodeOf(result: CasesRunResult): number {
  return result.runs.some((r) => r.error !== null) ? 1 : 0;
}

export function register(program: Command): void {
  addTrainOptions(
    program
      .command('train')
      .description("Train one reference case with its preset (Adam or RMSProp, batch 1024, 100 epochs, upsampling), writing OUT/case_N/{history.json,run.json,checkpoint/}")
      .requiredOption('--case <n>', 'case number 1-7 (or its name, e.g. plain10-se)'),
  ).action(async (opts: TrainFlags & { case: string }) => {
    const stop = stopOnInterrupt();
    try {
      const result = await runCases({ caseIds: [parseOneCase(opts.case)], flags: opts, signal: stop.signal });
      process.exitCode = exitCodeOf(result);
    } catch (e) {
      console.error(`selab train: ${(e as Error).message}`);
      process.exitCode = 1;
    } finally {
      stop.dispose();
    }
  });
}

import type { Command } from 'commander';
import { markRunsStopped } from '../../engine/callbacks/run-files.js';
import type { RunOutcome } from '../../experiments/plan.js';
import { parseOneCase, runCases } from '../../experiments/run-cases.js';
import { runModel } from '../../experiments/model-run.js';
import { addAttentionOptions, addTrainOptions, launchFrom, parseAttention, parseOverrides, type AttentionFlags, type TrainFlags } from '../options.js';

/**
 * Ctrl-C stops after the current step, keeping the last checkpoint; a second Ctrl-C quits at once,
 * marking the runs in progress stopped.
 */
export function stopOnInterrupt(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const handler = (): void => {
    if (controller.signal.aborted) {
      markRunsStopped('quit by the user (a second Ctrl-C)');
      process.exit(130);
    }
    process.stderr.write('\nselab: stopping after the current step (Ctrl-C again to quit now)\n');
    controller.abort();
  };
  process.on('SIGINT', handler);
  return { signal: controller.signal, dispose: () => process.removeListener('SIGINT', handler) };
}

export function exitCodeOf(outcomes: readonly RunOutcome[]): number {
  return outcomes.some((r) => r.error !== null) ? 1 : 0;
}

type TrainCommandFlags = TrainFlags & AttentionFlags & { case?: string; model?: string; preset?: string };

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .description(
      'Train one reference case with its preset (--case N, into OUT/case_N) or any registered model with any channel attention ' +
        '(--model NAME [--attention se|eca], into OUT/<model>[-<attention>]), writing history.json, run.json and checkpoint/',
    )
    .option('--case <n>', 'reference case 1-7 (or its name, e.g. plain10-se)')
    .option('--model <name>', 'a registered model (selab models), e.g. resnet20, resnet<6n+2>, wrn16-8, plain10');
  addAttentionOptions(cmd, false);
  addTrainOptions(cmd, { recipe: 'the case\'s or --preset\'s' }).action(async (opts: TrainCommandFlags) => {
    const stop = stopOnInterrupt();
    try {
      if ((opts.case === undefined) === (opts.model === undefined)) throw new Error('give either --case N or --model NAME');
      const overrides = parseOverrides(opts);
      const launch = launchFrom(opts, stop.signal);
      let outcomes: RunOutcome[];
      if (opts.case !== undefined) {
        const modelOnly = (['attention', 'seRatio', 'seGate', 'seSqueeze', 'ecaKernel', 'integration', 'preset'] as const).find((k) => opts[k] !== undefined);
        if (modelOnly) throw new Error(`--${modelOnly.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies to --model; a reference case has its own model and attention`);
        outcomes = await runCases([parseOneCase(opts.case)], overrides, launch);
      } else {
        outcomes = await runModel({ model: opts.model!, ...parseAttention(opts), preset: opts.preset ?? 'se-cifar' }, overrides, launch);
      }
      process.exitCode = exitCodeOf(outcomes);
    } catch (e) {
      console.error(`selab train: ${(e as Error).message}`);
      process.exitCode = 1;
    } finally {
      stop.dispose();
    }
  });
}

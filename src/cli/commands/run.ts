import type { Command } from 'commander';
import { DEFAULT_OUT, parseCases, runCases, type TrainFlags } from '../../experiments/run-cases.js';
import { caseTables, formatTables } from '../../report/table-format.js';
import { addTrainOptions, exitCodeOf, stopOnInterrupt } from './train.js';

export function register(program: Command): void {
  addTrainOptions(
    program
      .command('run')
      .description('Train several reference cases one after the other (each as `selab train` would), then print the results table')
      .requiredOption('--cases <list>', 'cases to run: numbers and ranges, e.g. 1-7 or 1,2,5-7'),
  ).action(async (opts: TrainFlags & { cases: string }) => {
    const stop = stopOnInterrupt();
    try {
      const result = await runCases({ caseIds: parseCases(opts.cases), flags: opts, signal: stop.signal });
      process.exitCode = exitCodeOf(result);
      console.log('');
      console.log(formatTables(await caseTables(opts.out ?? DEFAULT_OUT), 'md'));
    } catch (e) {
      console.error(`selab run: ${(e as Error).message}`);
      process.exitCode = 1;
    } finally {
      stop.dispose();
    }
  });
}

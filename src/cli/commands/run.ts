import type { Command } from 'commander';
import { parseCases, runCases } from '../../experiments/run-cases.js';
import { RUN_PRESETS, runPreset } from '../../experiments/run-presets.js';
import { caseTables, formatTables } from '../../report/table-format.js';
import { planCaseExperiment } from '../../cluster/coordinator.js';
import { addTrainOptions, launchFrom, parseOverrides, type TrainFlags } from '../options.js';
import { addQueueOptions, parseQueueFlags, runQueued, type QueueFlags } from '../queued.js';
import { exitCodeOf, stopOnInterrupt } from './train.js';

export function register(program: Command): void {
  addQueueOptions(addTrainOptions(
    program
      .command('run')
      .description('Train several reference cases one after the other (each as `selab train` would), then print the results table')
      .option('--cases <list>', 'cases to run: numbers and ranges, e.g. 1-7 or 1,2,5-7')
      .option('--preset <id>', `a named run: ${Object.entries(RUN_PRESETS).map(([id, p]) => `${id} (${p.description})`).join('; ')}; flags override it`),
  )).action(async (opts: TrainFlags & QueueFlags & { cases?: string; preset?: string }) => {
    const stop = stopOnInterrupt();
    try {
      if ((opts.cases === undefined) === (opts.preset === undefined)) throw new Error('give either --cases LIST or --preset ID');
      const preset = opts.preset === undefined ? null : runPreset(opts.preset);
      const flags: TrainFlags = preset ? { ...preset.flags, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } : opts;
      const launch = launchFrom(flags, stop.signal);
      const caseIds = parseCases(preset ? preset.cases : opts.cases!);
      const queue = parseQueueFlags(flags);
      if (queue) {
        const experiment = await planCaseExperiment(caseIds, parseOverrides(flags), {
          out: launch.out, resume: launch.resume, ...(launch.env.data !== undefined ? { data: launch.env.data } : {}), ...(launch.env.verify === false ? { verify: false } : {}),
        });
        const queued = await runQueued(experiment, queue, stop.signal);
        if (queued.detached || queued.follow?.interrupted) return;
        process.exitCode = queued.failed ? 1 : 0;
      } else {
        process.exitCode = exitCodeOf(await runCases(caseIds, parseOverrides(flags), launch));
      }
      console.log('');
      console.log(formatTables(await caseTables(launch.out), 'md'));
    } catch (e) {
      console.error(`selab run: ${(e as Error).message}`);
      process.exitCode = 1;
    } finally {
      stop.dispose();
    }
  });
}

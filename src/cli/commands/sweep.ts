import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { renderSvg } from '../../report/render-chart.js';
import { sweepCharts, sweepCsv, sweepJson, sweepMarkdown, sweepTables, type SweepTable } from '../../report/sweep.js';
import { findRuns } from '../../runs/files.js';
import { executeSweep, describeLrSchedule, planSweep, type SweepRequest } from '../../experiments/sweep.js';
import { DEFAULT_OUT } from '../../experiments/presets.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { planSweepExperiment } from '../../cluster/coordinator.js';
import { addAttentionOptions, parseAttentionGrid, addTrainOptions, launchFrom, parseOverrides, type AttentionFlags, type TrainFlags } from '../options.js';
import { addQueueOptions, parseQueueFlags, runQueued, type QueueFlags } from '../queued.js';
import { stopOnInterrupt } from './train.js';

type SweepFlags = TrainFlags & AttentionFlags & QueueFlags & { model?: string; name?: string; baseline?: boolean; repeats?: string; preset?: string };

/** The sweep a command line asks for; every flag checked, nothing written. */
export function sweepRequest(flags: SweepFlags): SweepRequest {
  if (flags.model === undefined) throw new Error('--model is required (e.g. --model resnet20); to print the tables of existing sweeps use --table');
  const repeats = flags.repeats === undefined ? 1 : Number(flags.repeats);
  if (!(/^\d+$/.test((flags.repeats ?? '1').trim()) && repeats >= 1)) throw new Error(`--repeats ${JSON.stringify(flags.repeats)}: expected an integer ≥ 1`);
  return {
    model: flags.model,
    ...(flags.name !== undefined ? { name: flags.name } : {}),
    grid: parseAttentionGrid(flags),
    baseline: flags.baseline ?? true,
    repeats,
    preset: flags.preset ?? 'se-cifar',
    overrides: parseOverrides(flags),
    out: flags.out ?? DEFAULT_OUT,
  };
}

type Format = 'md' | 'csv' | 'json';

function parseFormat(f: string | undefined): Format {
  const v = f ?? 'md';
  if (v !== 'md' && v !== 'csv' && v !== 'json') throw new Error(`--format ${JSON.stringify(v)}: expected md, csv or json`);
  return v;
}

async function tablesFor(out: string, name: string | undefined): Promise<SweepTable[]> {
  if (!existsSync(out)) throw new Error(`--out ${out}: no such folder`);
  const tables = sweepTables(await findRuns(out));
  if (name === undefined) return tables;
  const t = tables.filter((x) => x.name === name);
  if (t.length === 0) throw new Error(`no sweep named "${name}" under ${out} (found: ${tables.map((x) => x.name).join(', ') || 'none'})`);
  return t;
}

async function printTables(tables: SweepTable[], format: Format, charts: string | undefined): Promise<void> {
  process.stdout.write(format === 'md' ? sweepMarkdown(tables) : format === 'csv' ? sweepCsv(tables) : sweepJson(tables));
  if (!charts) return;
  await mkdir(charts, { recursive: true });
  for (const t of tables) {
    for (const chart of sweepCharts(t)) {
      const file = join(charts, `${chart.id}.svg`);
      await writeFileAtomic(file, await renderSvg(chart.spec, chart.id));
      process.stderr.write(`wrote ${file}\n`);
    }
  }
}

export function register(program: Command): void {
  const cmd = program
    .command('sweep')
    .description(
      'Train a model over a grid of channel-attention settings (SE: ratio, gate, squeeze; ECA: kernel size; where in a residual unit) ' +
        'plus a baseline without attention, each point with --repeats seeds, as ordinary runs in OUT/sweep_<name>/<point>/seed_<k>/, ' +
        'then print mean ± std and each gain with its 95% CI and verdict',
    )
    .option('--model <name>', '(required) a registered model with attention: plain10, resnet<6n+2> (resnet20, resnet56, …), resnet164, preresnet<9n+2> or wrn<6n+4>-<k> (wrn16-8)')
    .option('--name <name>', 'sweep name, the folder sweep_<name> (default: the model name)')
    .option('--no-baseline', 'leave out the point without attention (then no gains are computed)')
    .option('--repeats <k>', 'seeds per point: --seed, --seed+1, … (default: 1)')
    .option('--format <f>', 'table format: md, csv or json (default: md)')
    .option('--charts <dir>', 'also write the sweep charts as SVG into this folder')
    .option('--dry-run', 'list the runs the sweep would train and exit')
    .option('--table', 'train nothing: print the tables of the sweeps under --out (all, or --name)');
  addAttentionOptions(cmd, true);
  addQueueOptions(addTrainOptions(cmd, { recipe: 'the --preset\'s' })).action(async (opts: SweepFlags & { format?: string; charts?: string; dryRun?: boolean; table?: boolean }) => {
    const stop = stopOnInterrupt();
    try {
      const format = parseFormat(opts.format);
      if (opts.table) {
        await printTables(await tablesFor(opts.out ?? DEFAULT_OUT, opts.name), format, opts.charts);
        return;
      }
      const request = sweepRequest(opts);
      const plan = planSweep(request);
      const queue = parseQueueFlags(opts);
      const { spec, jobs } = plan;
      console.error(
        `sweep ${spec.name}: ${spec.model}, ${jobs.length / spec.repeats} point${jobs.length / spec.repeats === 1 ? '' : 's'} × ${spec.repeats} seed${spec.repeats === 1 ? '' : 's'} = ${jobs.length} runs, preset ${plan.preset} ` +
          `(${plan.config.optimizer} lr ${describeLrSchedule(plan.config)}${plan.config.weightDecay ? `, weight decay ${plan.config.weightDecay}` : ''}, ` +
          `batch ${plan.config.batchSize}${plan.config.augment ? ', augmentation' : ''}${plan.config.normalize ? ', normalisation' : ''})`,
      );
      if (opts.dryRun) {
        for (const j of jobs) console.log(`${j.dir}  seed ${j.seed}`);
        return;
      }
      const launch = launchFrom(opts, stop.signal);
      if (queue) {
        const experiment = await planSweepExperiment(request, plan, {
          out: spec.out, resume: launch.resume, ...(launch.env.data !== undefined ? { data: launch.env.data } : {}), ...(launch.env.verify === false ? { verify: false } : {}),
        });
        const queued = await runQueued(experiment, queue, stop.signal);
        if (queued.detached || queued.follow?.interrupted) return;
        console.error(`sweep ${spec.name}: ${queued.trained} trained on the queue, ${queued.alreadyCompleted} already completed, ${queued.failed} failed`);
        await printTables(await tablesFor(spec.out, spec.name), format, opts.charts);
        if (queued.failed) process.exitCode = 1;
        return;
      }
      const outcome = await executeSweep(plan, launch);
      console.error(`sweep ${spec.name}: ${outcome.trained} trained, ${outcome.skipped} already completed, ${outcome.failed.length} failed`);
      await printTables(await tablesFor(spec.out, spec.name), format, opts.charts);
      if (outcome.failed.length) process.exitCode = 1;
    } catch (e) {
      console.error(`selab sweep: ${(e as Error).message}`);
      process.exitCode = 1;
    } finally {
      stop.dispose();
    }
  });
}

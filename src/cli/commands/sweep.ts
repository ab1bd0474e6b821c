import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { renderSvg } from '../../report/render-chart.js';
import { sweepCharts, sweepCsv, sweepJson, sweepMarkdown, sweepTables, type SweepTable } from '../../report/sweep.js';
import { findRuns } from '../../runs/files.js';
import { DEFAULT_OUT } from '../../experiments/run-cases.js';
import { OPTIMIZER_PRESET_IDS } from '../../engine/optimizers.js';
import { describeLrSchedule, executeSweep, planSweep, SWEEP_PRESET_IDS, type SweepFlags } from '../../experiments/sweep.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { stopOnInterrupt } from './train.js';

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
  program
    .command('sweep')
    .description(
      'Train a model with SE over a grid of SE settings plus a baseline without SE, each point with --repeats seeds, ' +
        'as ordinary runs in OUT/sweep_<name>/<point>/seed_<k>/, then print mean ± std and each gain with its 95% CI and verdict',
    )
    .option('--model <name>', '(required) plain10, resnet<6n+2> (resnet20, resnet56, resnet110, …), resnet164, preresnet<9n+2> or wrn<6n+4>-<k> (wrn16-8)')
    .option('--name <name>', 'sweep name, the folder sweep_<name> (default: the model name)')
    .option('--ratio <list>', 'SE reduction ratios, e.g. 2,4,8,16,32, or "all" (default: 16)')
    .option('--gate <list>', 'SE gates: sigmoid, tanh, relu, hardSigmoid, or "all" = sigmoid,tanh,relu (default: sigmoid)')
    .option('--squeeze <list>', 'avg, max, or "all" (default: avg)')
    .option('--integration <list>', 'where SE sits in a residual unit: standard, pre, post, identity, or "all" (default: standard)')
    .option('--no-baseline', 'leave out the point without SE (then no gains are computed)')
    .option('--repeats <k>', 'seeds per point: --seed, --seed+1, … (default: 1)')
    .option('--preset <id>', `training recipe: ${SWEEP_PRESET_IDS.join(', ')} (default: se-cifar; flags override it)`)
    .option('--format <f>', 'table format: md, csv or json (default: md)')
    .option('--charts <dir>', 'also write the sweep charts as SVG into this folder')
    .option('--dry-run', 'list the runs the sweep would train and exit')
    .option('--table', 'train nothing: print the tables of the sweeps under --out (all, or --name)')
    // The runner's flags, with the sweep's defaults.
    .option('--epochs <n>', 'epochs per run (se-cifar: 164, reference: 100)')
    .option('--batch-size <n>', 'images per optimizer step (se-cifar: 128, reference: 1024)')
    .option('--micro-batch <n>', "images per forward/backward pass; must divide the batch size (default: chosen from the model's activation size)")
    .option('--optimizer <preset>', `optimizer preset: ${OPTIMIZER_PRESET_IDS.join(', ')} (se-cifar: SGD momentum 0.9, lr 0.1)`)
    .option('--lr <x>', 'learning rate (se-cifar: 0.1)')
    .option('--lr-decay-epochs <list>', 'multiply the lr by --lr-decay-factor after these epochs, or "none" (se-cifar: 82,123 scaled to --epochs; reference: none)')
    .option('--lr-decay-factor <x>', 'step decay factor (default: 0.1)')
    .option('--weight-decay <x>', 'L2 weight decay on conv and dense kernels, grad += x·w (se-cifar: 1e-4, reference: 0)')
    .option('--train-limit <n>', 'train on the first n training images only')
    .option('--test-limit <n>', 'validate on the first n test images only')
    .option('--seed <n>', 'seed of the first repeat (default: 1)')
    .option('--backend <name>', 'auto, onednn, wasm, cpu or tensorflow (default: auto)')
    .option('--data <source>', 'CIFAR-10: a folder, the .tar.gz archive or a URL (default: $SELAB_DATA, else the official download)')
    .option('--no-verify', 'accept a CIFAR-10 archive whose MD5 is not the official one (e.g. ../shared/datasets)')
    .option('--preprocess <mode>', 'scale (default), caffe or tf')
    .option('--augment', 'pad 4 + random crop + horizontal flip (se-cifar: on)')
    .option('--no-augment', 'no augmentation (reference: off)')
    .option('--normalize', "per-channel CIFAR-10 mean/std normalisation (se-cifar: on)")
    .option('--no-normalize', 'pixels only divided by 255 (reference: off)')
    .option('--out <dir>', `output folder (default: ${DEFAULT_OUT})`)
    .option('--resume', "continue the sweep's unfinished runs from their last checkpoints (completed runs are always skipped)")
    .action(async (opts: SweepFlags & { format?: string; charts?: string; dryRun?: boolean; table?: boolean }) => {
      const stop = stopOnInterrupt();
      try {
        const format = parseFormat(opts.format);
        if (opts.table) {
          await printTables(await tablesFor(opts.out ?? DEFAULT_OUT, opts.name), format, opts.charts);
          return;
        }
        if (opts.model === undefined) throw new Error('--model is required (e.g. --model resnet20); to print the tables of existing sweeps use --table');
        const plan = planSweep(opts);
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
        const outcome = await executeSweep(plan, opts, { signal: stop.signal });
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

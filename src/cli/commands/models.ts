// `selab models`: the seven reference cases and every registered model, with their size and cost.
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { se } from '../../attention/index.js';
import { buildCaseModel, CASES } from '../../experiments/cases.js';
import { createModel, modelEntries } from '../../models/all.js';
import { summarize, withZeroInitializers } from '../../models/summary.js';
import { SqueezeExcitation } from '../../attention/squeeze-excitation.js';

export interface ModelRow {
  /** Reference case number, or null for a registered model. */
  case: number | null;
  name: string;
  model: string;
  additions: string[];
  /** Whether the built model contains SqueezeExcitation layers. */
  se: boolean;
  training: string | null;
  optimizer: string | null;
  params: number;
  trainableParams: number;
  inputShape: number[];
  macs: number;
  description?: string;
}

async function measure(build: () => tfl.LayersModel | Promise<tfl.LayersModel>) {
  // Only shapes are needed: the weights start as zeros (no random draws), and are freed at once.
  const model = await withZeroInitializers(build);
  const summary = { ...summarize(model), se: model.layers.some((l) => l instanceof SqueezeExcitation) };
  tf.dispose(model.weights.map((w) => w.read()));
  return summary;
}

/** The SE the registry rows show with: the SE paper's r = 16. */
const SE_PAPER = se({ ratio: 16 });

/**
 * One row per case, then one per registered model without attention and, where it takes
 * attention, one with SE; `onProgress` gets each name before building it.
 */
export async function collectModelRows(onProgress: (name: string, i: number, n: number) => void = () => {}): Promise<ModelRow[]> {
  const variants = modelEntries().flatMap((entry) => [
    { entry, name: entry.name, attention: undefined },
    ...(entry.attention === 'none' ? [] : [{ entry, name: `${entry.name}-se`, attention: SE_PAPER }]),
  ]);
  const n = CASES.length + variants.length;
  const rows: ModelRow[] = [];
  for (const c of CASES) {
    onProgress(c.name, rows.length, n);
    const s = await measure(() => buildCaseModel(c));
    rows.push({
      case: c.id, name: c.name, model: c.model, additions: [...c.additions], se: c.se, training: c.training, optimizer: c.optimizer,
      params: s.params, trainableParams: s.trainableParams, inputShape: s.inputShape, macs: s.macs,
    });
  }
  for (const v of variants) {
    onProgress(v.name, rows.length, n);
    const s = await measure(() => createModel(v.entry.name, v.attention ? { attention: v.attention } : {}));
    rows.push({
      case: null, name: v.name, model: v.entry.name, additions: [], se: s.se, training: null, optimizer: null,
      params: s.params, trainableParams: s.trainableParams, inputShape: s.inputShape, macs: s.macs,
      description: v.attention ? `${v.entry.description} + SE (r = 16)` : v.entry.description,
    });
  }
  return rows;
}

const int = (n: number) => n.toLocaleString('en-US');
const macs = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : `${(n / 1e6).toFixed(1)} M`);

export function formatModelTable(rows: readonly ModelRow[]): string {
  const header = ['case', 'model', 'additions', 'SE', 'training', 'params', 'trainable', 'input', 'MACs/image'];
  const body = rows.map((r) => [
    r.case === null ? '-' : String(r.case),
    r.name,
    r.additions.length ? r.additions.join('+') : '-',
    r.se ? 'yes' : 'no',
    r.training === null ? '-' : `${r.training}${r.optimizer ? ` (${r.optimizer})` : ''}`,
    int(r.params),
    int(r.trainableParams),
    r.inputShape.join('×'),
    macs(r.macs),
  ]);
  const numeric = new Set([5, 6, 8]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

export function register(program: Command): void {
  program
    .command('models')
    .description('List the reference cases and registered models with parameters, trainable parameters, input shape and MACs per image')
    .option('--json', 'print a JSON array instead of a table')
    .action(async (opts: { json?: boolean }) => {
      try {
        await tf.setBackend('cpu');
        // Show progress on stderr, so that --json output stays clean.
        const bar = process.stderr.isTTY
          ? new cliProgress.SingleBar({ format: 'building {bar} {value}/{total} {name}', stream: process.stderr, clearOnComplete: true, hideCursor: true })
          : null;
        const rows = await collectModelRows((name, i, n) => {
          if (!bar) process.stderr.write(`building ${i + 1}/${n} ${name}\n`);
          else if (i === 0) bar.start(n, 0, { name });
          else bar.update(i, { name });
        });
        bar?.update(rows.length);
        bar?.stop();
        console.log(opts.json ? JSON.stringify(rows, null, 2) : formatModelTable(rows));
      } catch (e) {
        console.error(`selab models: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}

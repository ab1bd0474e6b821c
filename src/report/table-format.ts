// `selab table`: the reference experiment's two tables (conditions; results with gains over each
// case's baseline, at the final and at the best epoch), beside the reference's published numbers,
// as Markdown, CSV or JSON. The numbers come from src/report/tables.ts, shared with the report.
import { loadRuns } from './load-runs.js';
import { buildTables, type ConditionRow, type ResultRow, type Tables } from './tables.js';
import { CASES } from '../experiments/cases.js';

export const TABLE_FORMATS = ['md', 'csv', 'json'] as const;
export type TableFormat = (typeof TABLE_FORMATS)[number];

export function parseTableFormat(value: string): TableFormat {
  if ((TABLE_FORMATS as readonly string[]).includes(value)) return value as TableFormat;
  throw new Error(`--format ${JSON.stringify(value)}: expected one of ${TABLE_FORMATS.join(', ')}`);
}

export async function caseTables(out: string): Promise<Tables> {
  return buildTables(await loadRuns(out), CASES);
}

const pct = (fraction: number | null): string => (fraction === null ? '' : (fraction * 100).toFixed(2));
const gain = (pp: number | null): string => (pp === null ? '' : `${pp >= 0 ? '+' : ''}${pp.toFixed(2)}`);
const int = (n: number | null): string => (n === null ? '' : n.toLocaleString('en-US'));

interface Column<R> {
  title: string;
  cell: (r: R) => string;
  /** Plain value for CSV (no thousands separators, no words). */
  raw?: (r: R) => string;
}

const conditionColumns: Column<ConditionRow>[] = [
  { title: 'case', cell: (r) => String(r.case) },
  { title: 'name', cell: (r) => r.name },
  { title: 'model', cell: (r) => r.model },
  { title: 'additions', cell: (r) => (r.additions.length ? r.additions.join('+') : '–'), raw: (r) => r.additions.join('+') },
  { title: 'SE', cell: (r) => (r.se ? 'yes' : 'no') },
  { title: 'training', cell: (r) => r.training },
  { title: 'optimizer', cell: (r) => r.optimizer },
  { title: 'input', cell: (r) => r.inputShape.join('×'), raw: (r) => r.inputShape.join('x') },
  { title: 'params', cell: (r) => int(r.params), raw: (r) => String(r.params) },
  { title: 'trainable', cell: (r) => int(r.trainableParams), raw: (r) => (r.trainableParams === null ? '' : String(r.trainableParams)) },
  { title: 'MACs', cell: (r) => int(r.macs), raw: (r) => (r.macs === null ? '' : String(r.macs)) },
  { title: 'protocol', cell: (r) => r.protocol ?? '' },
];

function statusText(r: ResultRow): string {
  if (r.status === 'missing') return 'missing';
  const epochs = `${r.epochsCompleted}/${r.epochsPlanned ?? '?'} epochs`;
  return r.status === 'completed' ? epochs : `${r.status}, ${epochs}`;
}

const resultColumns: Column<ResultRow>[] = [
  { title: 'case', cell: (r) => String(r.case) },
  { title: 'name', cell: (r) => r.name },
  { title: 'vs', cell: (r) => (r.baselineCase === null ? '' : String(r.baselineCase)) },
  { title: 'status', cell: statusText, raw: (r) => r.status },
  { title: 'epochs', cell: (r) => String(r.epochsCompleted) },
  { title: 'protocol', cell: (r) => (r.protocol === 'reference' && r.validation === 'full' ? 'reference (full validation)' : (r.protocol ?? '')), raw: (r) => r.protocol ?? '' },
  { title: 'validation', cell: (r) => r.validation ?? '' },
  { title: 'final acc %', cell: (r) => (r.status === 'missing' ? 'missing' : pct(r.finalAcc)), raw: (r) => pct(r.finalAcc) },
  { title: 'final gain pp', cell: (r) => (r.gainNote ? 'n/a: protocols differ' : gain(r.finalGain)), raw: (r) => gain(r.finalGain) },
  { title: 'best acc %', cell: (r) => (r.status === 'missing' ? 'missing' : r.bestAcc === null ? '' : `${pct(r.bestAcc)} (ep ${r.bestEpoch})`), raw: (r) => pct(r.bestAcc) },
  { title: 'best epoch', cell: (r) => (r.bestEpoch === null ? '' : String(r.bestEpoch)) },
  { title: 'best gain pp', cell: (r) => (r.gainNote ? 'n/a: protocols differ' : gain(r.bestGain)), raw: (r) => gain(r.bestGain) },
  { title: 'test acc %', cell: (r) => (r.status === 'missing' ? '' : pct(r.finalTestAcc)), raw: (r) => pct(r.finalTestAcc) },
  { title: 'reference acc %', cell: (r) => r.referenceAcc.toFixed(2) },
  { title: 'reference gain pp', cell: (r) => gain(r.referenceGain) },
];

function markdown<R>(title: string, columns: Column<R>[], rows: R[]): string {
  const cols = columns.filter((c) => c.title !== 'best epoch' && c.title !== 'validation');
  const lines = [
    `### ${title}`,
    '',
    `| ${cols.map((c) => c.title).join(' | ')} |`,
    `| ${cols.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${cols.map((c) => c.cell(r).replace(/\|/g, '\\|')).join(' | ')} |`),
  ];
  return lines.join('\n');
}

function csvField(text: string): string {
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csv<R>(columns: Column<R>[], rows: R[]): string {
  const header = columns.map((c) => csvField(c.title.replace(/ %| pp/g, '').replace(/ /g, '_'))).join(',');
  return [header, ...rows.map((r) => columns.map((c) => csvField((c.raw ?? c.cell)(r))).join(','))].join('\n');
}

/**
 * Markdown: two tables with notes. CSV: the conditions block, an empty line, the results block
 * (each with its own header). JSON: { conditions, results } with fractions and percentage points.
 */
export function formatTables(tables: Tables, format: TableFormat): string {
  if (format === 'json') return JSON.stringify(tables, null, 2);
  if (format === 'csv') return `${csv(conditionColumns, tables.conditions)}\n\n${csv(resultColumns, tables.results)}`;
  return [
    markdown('Conditions', conditionColumns, tables.conditions),
    '',
    markdown('Results (accuracy on each run\'s validation)', resultColumns, tables.results),
    '',
    'Gains are percentage points over the baseline case (vs): 2 vs 1, 4 and 5 vs 3, 7 vs 6, at the final epoch and at each run\'s best epoch, only between runs of the same protocol and validation ("n/a: protocols differ" otherwise).',
    'acc %: the reference\'s validation subset (val_acc) for --validation reference, the whole test split for full; test acc %: the whole test split at the final epoch.',
    'Reference: the published accuracies of the reference experiment (100 epochs, full data). "missing": the case has not run in this output folder.',
    ...tables.results.filter((r) => r.gainNote).map((r) => `Case ${r.case}: ${r.gainNote}.`),
  ].join('\n');
}

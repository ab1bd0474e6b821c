// Sweep results: one row per sweep point (mean ± std over its seeds of the final and best test
// accuracy), each SE point compared with the sweep's baseline point by Welch's t-test, and the
// SE paper's ablation charts (accuracy against r, against the gate, …) with error bars.
import type { TopLevelSpec } from 'vega-lite';
import { attentionKinds, type AttentionSetting, type SettingValue } from '../attention/index.js';
import type { FoundRun } from '../runs/files.js';
import { escapeHtml, htmlTable, type HtmlCell, type ReportChart, type ReportSection } from './html.js';
import { mean, summarize, verdict, welchTTest, type Summary, type Verdict, type WelchResult } from './stats.js';

/** The sweep dimensions, in the order they appear in point ids and tables: the kind, each kind's settings, the placement. */
export const SWEEP_DIMENSIONS: readonly string[] = ['attention', ...new Set(attentionKinds().flatMap((k) => k.settings.map((s) => s.key))), 'integration'];
export type SweepDimension = string;

/** The attention setting a dimension is, if it is one. */
function settingOf(d: SweepDimension): AttentionSetting | undefined {
  for (const k of attentionKinds()) for (const s of k.settings) if (s.key === d) return s;
  return undefined;
}

/** SE paper (Hu et al., "Squeeze-and-Excitation Networks", TPAMI 2020): CIFAR-10 test error %, without → with SE (r = 16). */
export const SE_PAPER_CIFAR10 = [
  { model: 'resnet110', label: 'ResNet-110', baselineError: 6.37, seError: 5.21 },
  { model: 'resnet164', label: 'ResNet-164', baselineError: 5.46, seError: 4.39 },
  { model: 'wrn16-8', label: 'WRN-16-8', baselineError: 4.27, seError: 3.88 },
] as const;

export interface Comparison {
  /** mean(SE point) − mean(baseline) over completed runs; NaN when either side has none. */
  diff: number;
  /** Welch's test with its 95% CI; null with fewer than two runs on either side. */
  test: WelchResult | null;
  verdict: Verdict;
}

export interface SweepPointRow {
  point: string;
  /** False for the baseline, the point without channel attention. */
  se: boolean;
  /** The point's attention settings (kind, SE's ratio/gate/squeeze or ECA's kernel size, integration); empty for the baseline. */
  params: Record<string, unknown>;
  model: string;
  paramCount: number | null;
  /** Completed runs, which the statistics use. */
  runs: number;
  /** Runs not (yet) completed: running, stopped or failed. */
  unfinished: number;
  seeds: number[];
  epochs: number | null;
  final: Summary;
  best: Summary;
  /** Against the baseline point; null for the baseline itself or when the sweep has none. */
  finalGain: Comparison | null;
  bestGain: Comparison | null;
}

export interface SweepTable {
  name: string;
  model: string;
  baseline: string | null;
  rows: SweepPointRow[];
  /** The SE paper's numbers for this model, if it is one of the paper's CIFAR networks. */
  reference: (typeof SE_PAPER_CIFAR10)[number] | null;
}

function compare(baseline: readonly number[], treatment: readonly number[]): Comparison {
  const test = welchTTest(baseline, treatment, 0.95);
  return { diff: mean(treatment) - mean(baseline), test, verdict: verdict(test) };
}

/** Every sweep found among `runs`, by name; points sorted with the baseline first. */
export function sweepTables(runs: readonly FoundRun[]): SweepTable[] {
  const bySweep = new Map<string, Map<string, FoundRun[]>>();
  for (const r of runs) {
    const s = r.run.sweep;
    if (!s) continue;
    const points = bySweep.get(s.name) ?? new Map<string, FoundRun[]>();
    bySweep.set(s.name, points);
    const list = points.get(s.point) ?? [];
    list.push(r);
    points.set(s.point, list);
  }
  const tables: SweepTable[] = [];
  for (const [name, points] of [...bySweep].sort(([a], [b]) => a.localeCompare(b))) {
    const rows = [...points].map(([point, list]) => pointRow(point, list));
    rows.sort((a, b) => Number(a.se) - Number(b.se) || comparePoints(a, b));
    const baseline = rows.find((r) => !r.se) ?? null;
    const finals = (p: string) => completedValues(points.get(p)!, 'final');
    const bests = (p: string) => completedValues(points.get(p)!, 'best');
    if (baseline) {
      for (const row of rows) {
        if (!row.se) continue;
        row.finalGain = compare(finals(baseline.point), finals(row.point));
        row.bestGain = compare(bests(baseline.point), bests(row.point));
      }
    }
    const model = rows[0]?.model ?? '';
    tables.push({ name, model, baseline: baseline?.point ?? null, rows, reference: SE_PAPER_CIFAR10.find((p) => p.model === model) ?? null });
  }
  return tables;
}

function completedValues(list: readonly FoundRun[], which: 'final' | 'best'): number[] {
  return list.filter((r) => r.run.status === 'completed' && r.run[which]).map((r) => r.run[which]!.val_acc);
}

/** The values of a dimension in their papers' order (each setting's "all"); anything else after them, alphabetically. */
function valueOrder(d: SweepDimension): readonly string[] {
  if (d === 'attention') return attentionKinds().map((k) => k.kind);
  if (d === 'integration') return ['standard', 'pre', 'post', 'identity'];
  return (settingOf(d)?.all ?? []).map(String);
}

function comparePoints(a: SweepPointRow, b: SweepPointRow): number {
  for (const d of SWEEP_DIMENSIONS) {
    const x = a.params[d];
    const y = b.params[d];
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    const order = valueOrder(d);
    const rank = (v: unknown): number => (order.includes(String(v)) ? order.indexOf(String(v)) : order.length);
    return rank(x) - rank(y) || String(x).localeCompare(String(y));
  }
  return a.point.localeCompare(b.point);
}

function pointRow(point: string, list: readonly FoundRun[]): SweepPointRow {
  const first = list[0]!.run;
  const done = list.filter((r) => r.run.status === 'completed');
  const epochs = new Set(list.map((r) => r.run.config.epochs));
  return {
    point,
    se: first.attention !== null,
    params: first.sweep!.params,
    model: first.model,
    paramCount: first.params ?? null,
    runs: done.length,
    unfinished: list.length - done.length,
    seeds: list.map((r) => r.run.sweep!.seed).sort((a, b) => a - b),
    epochs: epochs.size === 1 ? [...epochs][0]! : null,
    final: summarize(completedValues(list, 'final')),
    best: summarize(completedValues(list, 'best')),
    finalGain: null,
    bestGain: null,
  };
}

// ---- formatting -------------------------------------------------------------------------------

const pct = (x: number): string => (Number.isFinite(x) ? (x * 100).toFixed(2) : '–');
const pp = (x: number): string => (Number.isFinite(x) ? `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(2)}` : '–');

/** "91.23 ± 0.15" in percent; just the mean for a single run, a dash for none. */
export function meanStd(s: Summary): string {
  if (s.n === 0) return '–';
  return s.n < 2 ? pct(s.mean) : `${pct(s.mean)} ± ${pct(s.std)}`;
}

/** "+0.42 [+0.10, +0.74] better" in percentage points; "+0.42 (too few runs)" without a test. */
export function gainText(c: Comparison | null): string {
  if (!c) return '–';
  if (!c.test) return Number.isFinite(c.diff) ? `${pp(c.diff)} (${c.verdict})` : c.verdict;
  return `${pp(c.test.diff)} [${pp(c.test.ci[0])}, ${pp(c.test.ci[1])}] ${c.verdict}`;
}

/** A dimension's value as the tables show it: a setting's id form (r16, k3) or the value itself. */
function valueText(d: SweepDimension, v: unknown): string {
  const s = settingOf(d);
  return s ? s.id(v as SettingValue) : String(v);
}

/** e.g. "r16 sigmoid avg standard" (SE, the sweeps' default attention, goes unnamed) or "eca k3 standard". */
export function pointLabel(row: Pick<SweepPointRow, 'se' | 'params'>): string {
  if (!row.se) return 'baseline (no attention)';
  return SWEEP_DIMENSIONS.filter((d) => row.params[d] !== undefined && !(d === 'attention' && row.params[d] === 'se'))
    .map((d) => valueText(d, row.params[d]))
    .join(' ');
}

function runsText(row: SweepPointRow): string {
  return row.unfinished ? `${row.runs} (+${row.unfinished} unfinished)` : String(row.runs);
}

const COLUMNS = ['point', 'runs', 'params', 'final acc % (mean ± std)', 'best acc % (mean ± std)', 'final gain pp [95% CI] verdict', 'best gain pp [95% CI] verdict'];

function tableCells(row: SweepPointRow): string[] {
  return [
    pointLabel(row),
    runsText(row),
    row.paramCount === null ? '–' : row.paramCount.toLocaleString('en-US'),
    meanStd(row.final),
    meanStd(row.best),
    row.se ? gainText(row.finalGain) : '(baseline)',
    row.se ? gainText(row.bestGain) : '(baseline)',
  ];
}

function referenceLine(t: SweepTable): string | null {
  const r = t.reference;
  if (!r) return null;
  return `SE paper (TPAMI, CIFAR-10, r = 16): ${r.label} test error ${r.baselineError}% → ${r.seError}% with SE, i.e. accuracy ${(100 - r.baselineError).toFixed(2)}% → ${(100 - r.seError).toFixed(2)}% (+${(r.baselineError - r.seError).toFixed(2)} pp).`;
}

const NOTE =
  'Gain = SE point − baseline in percentage points, mean of completed runs; 95% CI from Welch\'s t-test. ' +
  'Verdict: better / worse when the whole interval is above / below 0, within noise when it contains 0, too few runs below two completed runs per side.';

export function sweepMarkdown(tables: readonly SweepTable[]): string {
  if (tables.length === 0) return 'No sweep runs found.\n';
  const out: string[] = [];
  for (const t of tables) {
    out.push(`### sweep ${t.name} (${t.model})`, '');
    out.push(`| ${COLUMNS.join(' | ')} |`, `|${COLUMNS.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
    for (const row of t.rows) out.push(`| ${tableCells(row).join(' | ')} |`);
    out.push('', NOTE);
    const ref = referenceLine(t);
    if (ref) out.push('', ref);
    out.push('');
  }
  out.push(seReferenceMarkdown());
  return out.join('\n');
}

export function seReferenceMarkdown(): string {
  const lines = ['SE paper reference (Hu et al., TPAMI, CIFAR-10 test error %):', '', '| model | baseline | with SE | gain pp |', '|---|---:|---:|---:|'];
  for (const r of SE_PAPER_CIFAR10) lines.push(`| ${r.label} | ${r.baselineError.toFixed(2)} | ${r.seError.toFixed(2)} | +${(r.baselineError - r.seError).toFixed(2)} |`);
  return lines.join('\n') + '\n';
}

function csvField(v: string | number | null): string {
  const s = v === null ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function sweepCsv(tables: readonly SweepTable[]): string {
  const header = ['sweep', 'model', 'point', ...SWEEP_DIMENSIONS, 'se', 'params', 'runs', 'unfinished',
    'final_mean', 'final_std', 'best_mean', 'best_std',
    'final_gain', 'final_ci_low', 'final_ci_high', 'final_p', 'final_verdict',
    'best_gain', 'best_ci_low', 'best_ci_high', 'best_p', 'best_verdict'];
  const num = (x: number | undefined): number | null => (x === undefined || !Number.isFinite(x) ? null : x);
  const gainCols = (c: Comparison | null) => [num(c?.diff), num(c?.test?.ci[0]), num(c?.test?.ci[1]), num(c?.test?.p), c?.verdict ?? null];
  const lines = [header.join(',')];
  for (const t of tables) {
    for (const r of t.rows) {
      const dims = SWEEP_DIMENSIONS.map((d) => (r.params[d] === undefined ? null : String(r.params[d])));
      lines.push([t.name, r.model, r.point, ...dims, String(r.se), r.paramCount, r.runs, r.unfinished,
        num(r.final.mean), num(r.final.std), num(r.best.mean), num(r.best.std), ...gainCols(r.finalGain), ...gainCols(r.bestGain)].map(csvField).join(','));
    }
  }
  return lines.join('\n') + '\n';
}

/** JSON-safe (NaN and ±Infinity become null). */
export function sweepJson(tables: readonly SweepTable[]): string {
  return JSON.stringify({ sweeps: tables, reference: SE_PAPER_CIFAR10 }, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n';
}

// ---- charts -----------------------------------------------------------------------------------

interface ChartDatum {
  x: string | number;
  series: string;
  mean: number;
  lo: number;
  hi: number;
  n: number;
}

/** Dimensions with more than one value among the attention points: those are what the sweep varied. */
export function variedDimensions(t: SweepTable): SweepDimension[] {
  return SWEEP_DIMENSIONS.filter((d) => new Set(t.rows.filter((r) => r.se).map((r) => String(r.params[d]))).size > 1);
}

function dimensionTitle(d: SweepDimension): string {
  return d === 'attention' ? 'attention' : d === 'integration' ? 'integration' : (settingOf(d)?.help ?? d);
}

/**
 * Final test accuracy (mean over seeds, error bars ± one standard deviation) against one sweep
 * dimension, one line per combination of the other varied dimensions; the baseline is a
 * horizontal rule with its ± std band.
 */
export function sweepChartSpec(t: SweepTable, dim: SweepDimension): TopLevelSpec {
  const others = variedDimensions(t).filter((d) => d !== dim);
  const data: ChartDatum[] = t.rows
    .filter((r) => r.se && r.final.n > 0)
    .map((r) => {
      const sd = Number.isFinite(r.final.std) ? r.final.std : 0;
      return {
        x: typeof r.params[dim] === 'number' ? Number(r.params[dim]) : String(r.params[dim]),
        series: others.length ? others.map((d) => valueText(d, r.params[d])).join(' ') : 'attention',
        mean: r.final.mean * 100,
        lo: (r.final.mean - sd) * 100,
        hi: (r.final.mean + sd) * 100,
        n: r.final.n,
      };
    });
  const base = t.rows.find((r) => !r.se && r.final.n > 0);
  const xType = settingOf(dim)?.all.every((v) => typeof v === 'number') ? 'ordinal' : 'nominal';
  // Values in the table's order (the SE paper's: sigmoid, tanh, relu; standard, pre, post, identity).
  const x = { field: 'x', type: xType, title: dimensionTitle(dim), axis: { labelAngle: 0 }, sort: [...new Set(data.map((d) => d.x))] } as const;
  // Series in the table's order (r numerically), not alphabetically.
  const series = [...new Set(data.map((d) => d.series))];
  const color = { field: 'series', type: 'nominal', title: others.map((d) => dimensionTitle(d)).join(', ') || null, sort: series } as const;
  const layers: object[] = [
    { mark: { type: 'errorbar', ticks: true }, encoding: { x, y: { field: 'lo', type: 'quantitative', title: 'final test accuracy %', scale: { zero: false } }, y2: { field: 'hi' }, color } },
    { mark: { type: 'line', point: true }, encoding: { x, y: { field: 'mean', type: 'quantitative' }, color, tooltip: [{ field: 'mean', format: '.2f' }, { field: 'n' }] } },
  ];
  if (base) {
    const sd = Number.isFinite(base.final.std) ? base.final.std : 0;
    const b = { mean: base.final.mean * 100, lo: (base.final.mean - sd) * 100, hi: (base.final.mean + sd) * 100 };
    layers.unshift(
      { data: { values: [b] }, mark: { type: 'rect', color: '#999', opacity: 0.15 }, encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } },
      { data: { values: [b] }, mark: { type: 'rule', color: '#666', strokeDash: [4, 3] }, encoding: { y: { field: 'mean', type: 'quantitative' } } },
    );
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `${t.model}: test accuracy against ${dimensionTitle(dim)}`, subtitle: `sweep ${t.name}; mean ± std over seeds${base ? '; dashed: baseline without SE (band ± std)' : ''}` },
    width: 360,
    height: 240,
    data: { values: data },
    layer: layers,
  } as TopLevelSpec;
}

/** Every point of the sweep side by side (baseline first): final test accuracy, mean ± std over seeds. */
export function sweepPointsChartSpec(t: SweepTable): TopLevelSpec {
  const data = t.rows
    .filter((r) => r.final.n > 0)
    .map((r) => {
      const sd = Number.isFinite(r.final.std) ? r.final.std : 0;
      return { point: pointLabel(r), kind: r.se ? 'with attention' : 'baseline', mean: r.final.mean * 100, lo: (r.final.mean - sd) * 100, hi: (r.final.mean + sd) * 100, n: r.final.n };
    });
  const y = { field: 'point', type: 'nominal', title: null, sort: data.map((d) => d.point), axis: { labelLimit: 260 } } as const;
  const color = { field: 'kind', type: 'nominal', title: null, scale: { domain: ['baseline', 'with attention'], range: ['#4c78a8', '#e45756'] } } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `${t.model}: test accuracy per sweep point`, subtitle: `sweep ${t.name}; mean ± std over seeds (n per point in the table)` },
    width: 360,
    height: { step: 22 },
    data: { values: data },
    layer: [
      { mark: { type: 'errorbar', ticks: true }, encoding: { y, x: { field: 'lo', type: 'quantitative', title: 'final test accuracy %', scale: { zero: false } }, x2: { field: 'hi' }, color } },
      { mark: { type: 'point', filled: true, size: 60 }, encoding: { y, x: { field: 'mean', type: 'quantitative' }, color, tooltip: [{ field: 'mean', format: '.2f' }, { field: 'n' }] } },
    ],
  } as TopLevelSpec;
}

/**
 * The charts of one sweep: every point side by side, then accuracy against each varied dimension
 * (r, the gate, the squeeze, the integration).
 */
export function sweepCharts(t: SweepTable): ReportChart[] {
  const safe = t.name.replace(/[^A-Za-z0-9_-]/g, '_');
  const caption = 'Final test accuracy, mean ± one standard deviation over the completed seeds of each point.';
  return [
    { id: `sweep-${safe}-points`, title: `sweep ${t.name}: accuracy per point`, spec: sweepPointsChartSpec(t), caption },
    ...variedDimensions(t).map((dim) => ({
      id: `sweep-${safe}-${dim}`,
      title: `sweep ${t.name}: accuracy against ${dimensionTitle(dim)}`,
      spec: sweepChartSpec(t, dim),
      caption,
    })),
  ];
}

function htmlCell(text: string, col: string, numeric = true): HtmlCell {
  return { html: escapeHtml(text), col, className: numeric ? 'num' : '' };
}

/** Report sections (for writeReport's `extraSections`): one per sweep, with its table and charts. */
export function sweepReportSections(runs: readonly FoundRun[]): ReportSection[] {
  const tables = sweepTables(runs);
  if (tables.length === 0) return [];
  return tables.map((t) => {
    const header = `<tr>${COLUMNS.map((c, i) => `<th${i === 0 ? '' : ' class="num"'}>${escapeHtml(c)}</th>`).join('')}</tr>`;
    const cols = ['point', 'runs', 'params', 'final', 'best', 'finalGain', 'bestGain'];
    const rows = t.rows.map((r) => ({
      attrs: `data-point="${escapeHtml(r.point)}" data-verdict="${escapeHtml(r.finalGain?.verdict ?? 'baseline')}"`,
      cells: tableCells(r).map((text, i) => htmlCell(text, cols[i]!, i > 0)),
    }));
    const ref = referenceLine(t);
    const html = htmlTable(header, rows, 'sweep') + `<p class="note">${escapeHtml(NOTE)}</p>` + (ref ? `<p class="ref">${escapeHtml(ref)}</p>` : '');
    return { id: `sweep-${t.name.replace(/[^A-Za-z0-9_-]/g, '_')}`, title: `Sweep ${t.name} (${t.model})`, html, charts: sweepCharts(t) };
  });
}

// Vega-Lite specs for the report's charts: learning curves (SE runs drawn over their
// baselines) and the cost of SE in parameters and multiply-accumulates.
import type { TopLevelSpec } from 'vega-lite';
import type { Protocol } from '../runs/config.js';
import type { HistoryRow } from '../runs/files.js';
import type { ConditionRow } from './tables.js';

export interface CurveSeries {
  /** Legend entry, e.g. "case 2 · plain10+SE". */
  label: string;
  se: boolean;
  rows: readonly HistoryRow[];
  /** Under 'reference' the validation (val_*) is the reference's subset and is drawn apart from the test split (test_*). Default 'keras'. */
  protocol?: Protocol;
}

// SE runs get warm colours and baselines cool ones, so "SE over its baseline" reads at a glance.
const COOL = ['#4c78a8', '#54a24b', '#72b7b2', '#9d755d'];
const WARM = ['#e45756', '#f58518', '#b279a2', '#ff9da6'];
const SOLID: number[] = [1, 0];
const DASHED: number[] = [5, 3];
const DOTTED: number[] = [1, 3];
/** The line styles: the test split solid, training dashed, the reference's validation subset dotted. */
const SPLITS = [['test', SOLID], ['train', DASHED], ['reference validation', DOTTED]] as const;

function seriesColors(series: readonly CurveSeries[]): string[] {
  let cool = 0;
  let warm = 0;
  return series.map((s) => (s.se ? WARM[warm++ % WARM.length] : COOL[cool++ % COOL.length]) as string);
}

/**
 * Train and test accuracy (left) and loss (right) against epoch for runs that belong together:
 * a baseline first, then the runs compared with it, which are drawn on top. A reference-protocol
 * run also gets its validation subset (val_*), dotted, beside the whole test split (test_*).
 */
export function learningCurveSpec(title: string, series: readonly CurveSeries[]): TopLevelSpec {
  const values = series.flatMap((s) =>
    s.rows.flatMap((r) => [
      { run: s.label, epoch: r.epoch, split: 'test', metric: 'accuracy', value: (s.protocol === 'reference' ? r.test_acc : r.val_acc) * 100 },
      { run: s.label, epoch: r.epoch, split: 'train', metric: 'accuracy', value: r.acc * 100 },
      { run: s.label, epoch: r.epoch, split: 'test', metric: 'loss', value: s.protocol === 'reference' ? r.test_loss : r.val_loss },
      { run: s.label, epoch: r.epoch, split: 'train', metric: 'loss', value: r.loss },
      ...(s.protocol === 'reference'
        ? [
            { run: s.label, epoch: r.epoch, split: 'reference validation', metric: 'accuracy', value: r.val_acc * 100 },
            { run: s.label, epoch: r.epoch, split: 'reference validation', metric: 'loss', value: r.val_loss },
          ]
        : []),
    ]),
  );
  const splits = SPLITS.filter(([name]) => values.some((v) => v.split === name));
  const labels = series.map((s) => s.label);
  const maxEpochs = Math.max(1, ...series.map((s) => s.rows.length));
  const x = { field: 'epoch', type: 'quantitative' as const, title: 'epoch', axis: { tickMinStep: 1 }, scale: { domainMin: 1 } };
  const color = {
    field: 'run', type: 'nominal' as const, title: null, sort: labels,
    scale: { domain: labels, range: seriesColors(series) },
    legend: { symbolType: 'stroke', symbolStrokeWidth: 2.5 },
  };
  const panel = (metric: 'accuracy' | 'loss', yTitle: string) => {
    const y = { field: 'value', type: 'quantitative' as const, title: yTitle, scale: { zero: false } };
    const line = {
      mark: { type: 'line' as const, strokeWidth: 1.8, clip: true },
      encoding: {
        x, y, color,
        strokeDash: {
          field: 'split', type: 'nominal' as const, title: null, sort: splits.map(([name]) => name),
          scale: { domain: splits.map(([name]) => name), range: splits.map(([, dash]) => dash) },
          legend: { symbolType: 'stroke', symbolStrokeWidth: 2, symbolStrokeColor: '#555', symbolSize: 300 },
        },
      },
    };
    // Points make short runs (a few epochs, or one) readable; on 100 epochs they would only add
    // noise. A layer of their own keeps the legends showing lines and dashes.
    const points = { mark: { type: 'point' as const, filled: true, size: 30, opacity: 1, clip: true }, encoding: { x, y, color } };
    return {
      width: 400,
      height: 240,
      transform: [{ filter: { field: 'metric', equal: metric } }],
      layer: maxEpochs <= 20 ? [line, points] : [line],
    };
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values },
    hconcat: [panel('accuracy', 'accuracy (%)'), panel('loss', 'loss (cross-entropy)')],
    config: { legend: { orient: 'bottom', direction: 'horizontal', columns: 4, labelLimit: 0, columnPadding: 18 } },
  } as TopLevelSpec;
}

export interface CostBar {
  label: string;
  metric: 'parameters' | 'MACs per image';
  part: 'model without SE' | 'SE overhead';
  /** Stacking order: the model first, its SE overhead at the end of the bar. */
  stack: 0 | 1;
  /** Millions. */
  value: number;
  /** Overhead note at the end of an SE bar, e.g. "+66,024 (+3.4%)". */
  note: string | null;
}

function overheadNote(extra: number, base: number): string {
  return `+${Math.round(extra).toLocaleString('en-US')} (+${((extra / base) * 100).toFixed(1)}%)`;
}

/**
 * Each SE case's cost split into the same model without SE and the SE overhead. The model
 * without SE is the condition with the same backbone and additions and `se: false`.
 */
export function costBars(conditions: readonly ConditionRow[]): CostBar[] {
  const bars: CostBar[] = [];
  const key = (c: ConditionRow) => `${c.model}|${[...c.additions].sort().join('+')}`;
  const withoutSE = new Map(conditions.filter((c) => !c.se).map((c) => [key(c), c]));
  for (const c of conditions) {
    const label = `case ${c.case} · ${c.name}`;
    const plain = c.se ? withoutSE.get(key(c)) : undefined;
    const metrics = [
      ['parameters', c.params, plain?.params ?? null],
      ['MACs per image', c.macs, plain?.macs ?? null],
    ] as const;
    for (const [metric, total, base] of metrics) {
      if (total === null) continue;
      if (base === null || base > total) {
        bars.push({ label, metric, part: 'model without SE', stack: 0, value: total / 1e6, note: null });
      } else {
        bars.push({ label, metric, part: 'model without SE', stack: 0, value: base / 1e6, note: null });
        bars.push({ label, metric, part: 'SE overhead', stack: 1, value: (total - base) / 1e6, note: overheadNote(total - base, base) });
      }
    }
  }
  return bars;
}

/** Horizontal stacked bars of parameters and of MACs per image, SE overhead in its own colour. */
export function costSpec(bars: readonly CostBar[]): TopLevelSpec {
  const labels = [...new Set(bars.map((b) => b.label))];
  // One shared row per case: only the left panel names the rows.
  const panel = (metric: CostBar['metric'], xTitle: string, rowLabels: boolean) => {
    const y = {
      field: 'label', type: 'nominal' as const, title: null, sort: labels,
      scale: { domain: labels }, axis: rowLabels ? { labelLimit: 0 } : null,
    };
    return {
      width: 300,
      height: { step: 22 },
      transform: [{ filter: { field: 'metric', equal: metric } }],
      layer: [
        {
          mark: { type: 'bar' as const },
          encoding: {
            y,
            x: { field: 'value', type: 'quantitative' as const, title: xTitle, stack: 'zero' as const },
            color: {
              field: 'part', type: 'nominal' as const, title: null,
              scale: { domain: ['model without SE', 'SE overhead'], range: ['#9ecae9', '#e45756'] },
            },
            order: { field: 'stack', sort: 'ascending' as const },
          },
        },
        {
          // The note sits at the end of the stacked bar, i.e. at the total.
          transform: [
            { joinaggregate: [{ op: 'sum' as const, field: 'value', as: 'total' }], groupby: ['label'] },
            { filter: 'datum.note !== null' },
          ],
          mark: { type: 'text' as const, align: 'left' as const, dx: 4, fontSize: 10, color: '#b03a3a' },
          encoding: { y, x: { field: 'total', type: 'quantitative' as const }, text: { field: 'note' } },
        },
      ],
    };
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values: bars.map((b) => ({ ...b })) },
    // The spacing leaves room for the overhead notes at the end of the longest bars. MACs come
    // from run files only: without any, their panel would be an empty frame.
    hconcat: [
      panel('parameters', 'parameters (millions)', true),
      ...(bars.some((b) => b.metric === 'MACs per image') ? [panel('MACs per image', 'MACs per image (millions)', false)] : []),
    ],
    spacing: 150,
    config: { legend: { orient: 'bottom', direction: 'horizontal' } },
  } as TopLevelSpec;
}

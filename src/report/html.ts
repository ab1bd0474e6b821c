// The report page: one self-contained HTML file with no script and no external resource.
// Charts are inline SVG rendered in Node, so the page opens offline, scales and prints.
import type { TopLevelSpec } from 'vega-lite';
import { CASES } from '../experiments/cases.js';
import type { RunFile } from '../runs/files.js';
import { costBars, costSpec, learningCurveSpec, type CurveSeries } from './charts.js';
import type { LoadedRun } from './load-runs.js';
import { renderSvg } from './render-chart.js';
import { buildTables, caseRuns, formatLr, type CaseInfo, type ConditionRow, type ResultRow } from './tables.js';

export interface ReportChart {
  /** Unique in the report; also the file name under `--png DIR`. Letters, digits, '-' and '_'. */
  id: string;
  title: string;
  spec: TopLevelSpec;
  /** Plain text under the chart. */
  caption?: string;
}

/** A section appended after the built-in ones (the sweep charts come in this way). */
export interface ReportSection {
  id: string;
  title: string;
  /** Trusted HTML put before the charts; build it with escapeHtml / htmlTable. */
  html?: string;
  charts?: ReportChart[];
}

export interface ReportOptions {
  /** The output folder the runs were read from, shown on the page. */
  out: string;
  cases?: readonly CaseInfo[];
  extraSections?: readonly ReportSection[];
  generatedAt?: Date;
}

export interface RenderedChart {
  id: string;
  title: string;
  svg: string;
}

export interface RenderedReport {
  html: string;
  charts: RenderedChart[];
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

export interface HtmlCell {
  /** Already-escaped HTML. */
  html: string;
  /** Names the column for readers and tests (data-col). */
  col?: string;
  className?: string;
}

/** A table; `header` holds escaped HTML rows (for grouped headers), `rows` the body. */
export function htmlTable(header: string, rows: { attrs?: string; cells: HtmlCell[] }[], className = ''): string {
  const body = rows
    .map((r) => {
      const cells = r.cells
        .map((c) => `<td${c.col ? ` data-col="${c.col}"` : ''}${c.className ? ` class="${c.className}"` : ''}>${c.html}</td>`)
        .join('');
      return `<tr${r.attrs ? ` ${r.attrs}` : ''}>${cells}</tr>`;
    })
    .join('\n');
  // Wide tables scroll inside the page instead of running past its edge.
  return `<div class="table-wrap"><table class="${className}"><thead>${header}</thead><tbody>\n${body}\n</tbody></table></div>`;
}

const DASH = '<span class="na">–</span>';
const int = (n: number): string => n.toLocaleString('en-US');
const pct = (frac: number | null): string => (frac === null ? DASH : (frac * 100).toFixed(2));
const millions = (n: number | null): string => (n === null ? DASH : `${(n / 1e6).toFixed(1)} M`);

function gain(pp: number | null): HtmlCell {
  if (pp === null) return { html: DASH };
  const rounded = Number(pp.toFixed(2));
  const cls = rounded > 0 ? 'up' : rounded < 0 ? 'down' : '';
  return { html: `${rounded > 0 ? '+' : rounded < 0 ? '−' : '±'}${Math.abs(rounded).toFixed(2)}`, className: `num ${cls}`.trim() };
}

function caseLabel(c: { id: number; name: string }): string {
  return `case ${c.id} · ${c.name}`;
}

function statusBadge(status: string): string {
  return `<span class="status ${escapeHtml(status)}">${escapeHtml(status)}</span>`;
}

function conditionsTable(rows: readonly ConditionRow[], hasRun: ReadonlySet<number>): string {
  const header = `<tr><th>Case</th><th>Model</th><th>Additions</th><th>SE</th><th>Training</th><th>Optimizer</th><th>Input</th><th class="num">Params</th><th class="num">MACs / image</th></tr>`;
  return htmlTable(
    header,
    rows.map((c) => ({
      attrs: `data-case="${c.case}"`,
      cells: [
        { html: String(c.case), col: 'case' },
        { html: escapeHtml(c.name), col: 'name' },
        { html: c.additions.length ? escapeHtml(c.additions.join(', ')) : DASH, col: 'additions' },
        { html: c.se ? 'yes' : 'no', col: 'se' },
        { html: escapeHtml(c.training), col: 'training' },
        { html: escapeHtml(c.optimizer), col: 'optimizer' },
        { html: escapeHtml(c.inputShape.slice(0, 2).join('×')), col: 'input' },
        { html: `${int(c.params)}${hasRun.has(c.case) ? '' : '<sup>*</sup>'}`, col: 'params', className: 'num' },
        { html: millions(c.macs), col: 'macs', className: 'num' },
      ],
    })),
    'conditions',
  );
}

function resultsTable(rows: readonly ResultRow[]): string {
  const header =
    `<tr><th rowspan="2">Case</th><th rowspan="2">Status</th><th rowspan="2" class="num">Epochs</th><th rowspan="2">Protocol</th><th rowspan="2">vs</th>` +
    `<th colspan="3" class="group">Final epoch</th><th colspan="3" class="group">Best epoch</th><th colspan="2" class="group ref">Reference (published)</th></tr>` +
    `<tr><th class="num">acc %</th><th class="num">gain pp</th><th class="num">test acc %</th><th class="num">acc %</th><th class="num">epoch</th><th class="num">gain pp</th>` +
    `<th class="num ref">test acc %</th><th class="num ref">gain pp</th></tr>`;
  const notComparable = (r: ResultRow): HtmlCell => ({ html: `<span class="na" title="${escapeHtml(r.gainNote ?? '')}">n/a</span>` });
  return htmlTable(
    header,
    rows.map((r) => ({
      attrs: `data-case="${r.case}" data-status="${r.status}"`,
      cells: [
        { html: escapeHtml(caseLabel({ id: r.case, name: r.name })), col: 'case' },
        { html: statusBadge(r.status), col: 'status' },
        {
          html: r.status === 'missing' ? DASH : `${r.epochsCompleted}${r.epochsPlanned === null ? '' : ` / ${r.epochsPlanned}`}`,
          col: 'epochs', className: 'num',
        },
        { html: r.protocol === null ? DASH : escapeHtml(r.protocol === 'reference' && r.validation === 'full' ? 'reference (full validation)' : r.protocol), col: 'protocol' },
        { html: r.baselineCase === null ? DASH : `case ${r.baselineCase}`, col: 'baseline' },
        { html: pct(r.finalAcc), col: 'finalAcc', className: 'num' },
        { ...(r.gainNote ? notComparable(r) : gain(r.finalGain)), col: 'finalGain' },
        { html: pct(r.finalTestAcc), col: 'finalTestAcc', className: 'num' },
        { html: pct(r.bestAcc), col: 'bestAcc', className: 'num' },
        { html: r.bestEpoch === null ? DASH : String(r.bestEpoch), col: 'bestEpoch', className: 'num' },
        { ...(r.gainNote ? notComparable(r) : gain(r.bestGain)), col: 'bestGain' },
        { html: r.referenceAcc.toFixed(2), col: 'referenceAcc', className: 'num ref' },
        { ...gain(r.referenceGain), col: 'referenceGain' },
      ],
    })),
    'results',
  );
}

/** Sentences about what is not (yet) complete; empty when every case has completed. */
function partialNotes(results: readonly ResultRow[]): string[] {
  const notes: string[] = [];
  const running = results.filter((r) => r.status === 'running');
  const missing = results.filter((r) => r.status === 'missing');
  for (const r of running) {
    notes.push(`Case ${r.case} (${r.name}) is still running: ${r.epochsCompleted} of ${r.epochsPlanned ?? '?'} epochs done; its numbers are from the last completed epoch.`);
  }
  for (const r of results.filter((x) => x.status === 'failed' || x.status === 'stopped')) {
    notes.push(`Case ${r.case} (${r.name}) ${r.status} after ${r.epochsCompleted} of ${r.epochsPlanned ?? '?'} epochs.`);
  }
  if (missing.length) {
    const list = missing.map((r) => String(r.case));
    const which = list.length === 1 ? `Case ${list[0]} has` : `Cases ${list.slice(0, -1).join(', ')} and ${list.at(-1)} have`;
    notes.push(`${which} no run in this folder yet; ${list.length === 1 ? 'it shows' : 'they show'} as missing (–), not as zero.`);
  }
  return notes;
}

/** Runs on a subset are not comparable with the published numbers: say so next to them. */
function subsetNotes(runs: ReadonlyMap<number, LoadedRun>): string[] {
  const groups = new Map<string, number[]>();
  for (const [id, { run }] of [...runs].sort((a, b) => a[0] - b[0])) {
    const { trainLimit, testLimit } = run.config;
    if (trainLimit === null && testLimit === null) continue;
    const what = [
      trainLimit === null ? 'all 50,000 training images' : `${int(trainLimit)} training images`,
      testLimit === null ? 'all 10,000 test images' : `${int(testLimit)} test images`,
    ].join(' and ');
    groups.set(what, [...(groups.get(what) ?? []), id]);
  }
  return [...groups].map(([what, ids]) => {
    const which = ids.length === 1 ? `Case ${ids[0]} ran` : `Cases ${ids.slice(0, -1).join(', ')} and ${ids.at(-1)} ran`;
    return `${which} on a subset (${what}): a quick run, not comparable with the published numbers.`;
  });
}

function duration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : m >= 10 ? `${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}

function runDuration(run: RunFile, history: LoadedRun['history']): string {
  if (run.endedAt) return duration((Date.parse(run.endedAt) - Date.parse(run.startedAt)) / 1000);
  const trained = (history?.rows ?? []).reduce((t, r) => t + r.seconds, 0);
  return trained ? `${duration(trained)} so far` : DASH;
}

function meanThroughput(history: LoadedRun['history']): string {
  const rows = history?.rows ?? [];
  if (!rows.length) return DASH;
  return (rows.reduce((t, r) => t + r.imagesPerSecond, 0) / rows.length).toFixed(1);
}

/** "2026-11-27 08:00" (UTC, to the minute); the run cards keep the exact ISO time. */
function time(iso: string | null): string {
  return iso ? escapeHtml(iso.slice(0, 16).replace('T', ' ')) : DASH;
}

function value(v: unknown): string {
  if (v === null || v === undefined) return DASH;
  if (typeof v === 'object') return `<code>${escapeHtml(JSON.stringify(v))}</code>`;
  return escapeHtml(String(v));
}

function runsSection(runs: readonly LoadedRun[]): string {
  const header =
    `<tr><th>Run</th><th>Status</th><th class="num">Epochs</th><th>Backend</th><th class="num">Seed</th><th class="num">Batch (micro)</th>` +
    `<th class="num">Images/s</th><th>Started (UTC)</th><th>Ended (UTC)</th><th class="num">Time</th><th>Commit</th></tr>`;
  const summary = htmlTable(
    header,
    runs.map(({ run, history }) => ({
      attrs: `data-run="${escapeHtml(run.id)}"`,
      cells: [
        { html: `<a href="#run-${escapeHtml(anchor(run.id))}">${escapeHtml(run.id)}</a>`, col: 'run' },
        { html: statusBadge(run.status), col: 'status' },
        { html: `${run.epochsCompleted} / ${run.config.epochs}`, col: 'epochs', className: 'num' },
        { html: escapeHtml(run.environment.backend), col: 'backend' },
        { html: String(run.config.seed), col: 'seed', className: 'num' },
        { html: `${run.config.batchSize} (${run.config.microBatch ?? '–'})`, col: 'batch', className: 'num' },
        { html: meanThroughput(history), col: 'throughput', className: 'num' },
        { html: time(run.startedAt), col: 'started', className: 'nowrap' },
        { html: time(run.endedAt), col: 'ended', className: 'nowrap' },
        { html: runDuration(run, history), col: 'time', className: 'num' },
        { html: run.gitCommit ? `<code>${escapeHtml(run.gitCommit.slice(0, 10))}</code>` : DASH, col: 'commit' },
      ],
    })),
    'runs',
  );
  const card = ({ run }: LoadedRun): string => {
    const fields: [string, unknown][] = [
      ['model', `${run.model}${run.additions.length ? ` + ${run.additions.join(' + ')}` : ''}${run.attention ? ` + ${run.attention.kind.toUpperCase()}` : ''}`],
      ['attention', run.attention],
      ['training', run.training],
      ...(run.sweep ? ([['sweep', run.sweep]] as [string, unknown][]) : []),
      ...Object.entries(run.config).map(([k, v]): [string, unknown] => [k, k === 'lr' && typeof v === 'number' ? formatLr(v) : v]),
      ...Object.entries(run.environment).map(([k, v]): [string, unknown] => [k, v]),
      ['BatchNorm statistics', run.batchNormStatistics],
      ['BatchNorm group', run.batchNormGroup],
      ['params', int(run.params)],
      ['trainable params', run.trainableParams == null ? null : int(run.trainableParams)],
      ['MACs / image', run.macs == null ? null : int(run.macs)],
      ['versions', Object.entries(run.versions ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')],
      ['git commit', run.gitCommit],
      ['started', run.startedAt],
      ['ended', run.endedAt],
      ...(run.resumes?.length ? ([['resumed', run.resumes.map((r) => `${r.at} from epoch ${r.fromEpoch}`).join('; ')]] as [string, unknown][]) : []),
      ...(run.error ? ([['error', run.error]] as [string, unknown][]) : []),
    ];
    const dl = fields.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${value(v)}</dd>`).join('');
    return `<div class="card" id="run-${escapeHtml(anchor(run.id))}"><h3>${escapeHtml(run.id)} ${statusBadge(run.status)}</h3><dl>${dl}</dl></div>`;
  };
  // Sweeps can hold hundreds of runs that differ only in their point and seed: folded away.
  const single = runs.filter((r) => !r.run.sweep);
  const swept = runs.filter((r) => r.run.sweep);
  const sweptHtml = swept.length
    ? `<details class="sweep-runs"><summary>Configuration of the ${swept.length} sweep run${swept.length === 1 ? '' : 's'}</summary><div class="cards">${swept.map(card).join('\n')}</div></details>`
    : '';
  return `${summary}\n<div class="cards">${single.map(card).join('\n')}</div>\n${sweptHtml}`;
}

function anchor(id: string): string {
  return id.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** Learning-curve charts: one per baseline with the cases compared with it, then one per other run. */
function curveCharts(runs: readonly LoadedRun[], cases: readonly CaseInfo[]): { charts: ReportChart[]; notes: string[] } {
  const byCase = caseRuns(runs);
  const byId = new Map(cases.map((c) => [c.id, c]));
  const root = (c: CaseInfo): number => {
    const base = c.baselineCase === undefined ? undefined : byId.get(c.baselineCase);
    return base ? root(base) : c.id;
  };
  const groups = new Map<number, CaseInfo[]>();
  for (const c of [...cases].sort((a, b) => a.id - b.id)) groups.set(root(c), [...(groups.get(root(c)) ?? []), c]);

  const charts: ReportChart[] = [];
  const notes: string[] = [];
  for (const [rootId, members] of groups) {
    const series: CurveSeries[] = [];
    const absent: string[] = [];
    for (const c of members) {
      const found = byCase.get(c.id);
      const rows = found?.history?.rows ?? [];
      if (rows.length) series.push({ label: caseLabel(c), se: c.se, rows, protocol: found!.run.config.protocol });
      else absent.push(`case ${c.id}`);
    }
    const names = members.map((c) => `case ${c.id}`).join(', ');
    if (!series.length) {
      notes.push(`No learning curves for ${names}: no completed epoch yet.`);
      continue;
    }
    charts.push({
      id: `curves-case-${rootId}`,
      title: `Learning curves: ${members.map(caseLabel).join(' vs ')}`,
      spec: learningCurveSpec(members.map(caseLabel).join(' vs '), series),
      caption:
        'Test (solid) and training (dashed) accuracy and loss per epoch; SE runs in warm colours over their baselines.' +
        (series.some((s) => s.protocol === 'reference') ? " Reference-protocol runs: their validation subset dotted, the whole test split solid." : '') +
        (absent.length ? ` Not drawn (no completed epoch): ${absent.join(', ')}.` : ''),
    });
  }
  // A case trained under more than one protocol in this folder: its runs side by side.
  const byCaseAll = new Map<number, LoadedRun[]>();
  for (const r of runs) if (r.run.case !== null && !r.run.sweep && r.history?.rows.length) byCaseAll.set(r.run.case, [...(byCaseAll.get(r.run.case) ?? []), r]);
  for (const [caseId, list] of [...byCaseAll].sort((a, b) => a[0] - b[0])) {
    if (new Set(list.map((r) => r.run.config.protocol)).size < 2) continue;
    const c = byId.get(caseId);
    const ordered = [...list].sort((a, b) => a.run.config.protocol.localeCompare(b.run.config.protocol) || a.run.id.localeCompare(b.run.id));
    charts.push({
      id: `curves-case-${caseId}-protocols`,
      title: `Learning curves: case ${caseId}${c ? ` · ${c.name}` : ''} under each protocol`,
      spec: learningCurveSpec(`case ${caseId} under each protocol`, ordered.map(({ run, history }, k) => ({ label: `${run.config.protocol} · ${run.id}`, se: k % 2 === 1, rows: history!.rows, protocol: run.config.protocol }))),
      caption:
        'The same case under --protocol keras and --protocol reference: the whole test split solid, training dashed, the reference\'s validation subset dotted. ' +
        'Training accuracy and loss under reference are replica 0\'s (the first eighth of each batch), as the reference logged them.',
    });
  }
  for (const { run, history } of runs) {
    if (run.case !== null || run.sweep || !history?.rows.length) continue;
    charts.push({
      id: `curves-${anchor(run.id)}`,
      title: `Learning curves: ${run.id}`,
      spec: learningCurveSpec(run.id, [{ label: `${run.id} · ${run.name}`, se: run.se, rows: history.rows, protocol: run.config.protocol }]),
      caption: 'Test (solid) and training (dashed) accuracy and loss per epoch.',
    });
  }
  return { charts, notes };
}

const STYLE = `
:root { --fg: #1d2327; --muted: #66707a; --line: #dde1e5; --head: #f3f5f7; --up: #1a7f37; --down: #c0392b; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", Verdana, system-ui, sans-serif; color: var(--fg); margin: 0; background: #fafbfc; font-size: 14px; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 14px; margin: 0 0 8px; }
.meta { color: var(--muted); margin: 0 0 16px; }
.notice { border-left: 4px solid #e0a800; background: #fff8e1; padding: 10px 14px; margin: 16px 0; }
.notice ul { margin: 4px 0 0; padding-left: 20px; }
.complete { border-left-color: var(--up); background: #eef8f0; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
table.runs { font-size: 12px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 9px; text-align: left; vertical-align: top; }
thead th { background: var(--head); font-weight: 600; border-bottom: 2px solid var(--line); }
th.group { text-align: center; border-left: 1px solid var(--line); }
tbody tr:nth-child(even) { background: #fbfcfd; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.ref { color: #5a4a8a; }
.nowrap { white-space: nowrap; }
.up { color: var(--up); font-weight: 600; }
.down { color: var(--down); font-weight: 600; }
.na { color: #b0b6bc; }
sup { color: var(--muted); }
.status { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 11px; font-weight: 600; background: #eceff1; color: #455a64; }
.status.completed { background: #e3f4e8; color: var(--up); }
.status.running { background: #fff3cd; color: #8a6d00; }
.status.failed, .status.stopped { background: #fdecea; color: var(--down); }
.status.missing { background: #f1f1f1; color: #8a8f94; }
.note { color: var(--muted); font-size: 12px; margin: 4px 0 0; }
figure.chart { margin: 16px 0 24px; }
figure.chart svg { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 2px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 12px; margin-top: 14px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; font-size: 12px; }
.card dl { display: grid; grid-template-columns: max-content 1fr; gap: 1px 12px; margin: 0; }
.card dt { color: var(--muted); }
.card dd { margin: 0; overflow-wrap: anywhere; }
code { font-size: 11.5px; }
details.sweep-runs { margin-top: 14px; }
details.sweep-runs summary { cursor: pointer; color: var(--muted); }
@media print { body { background: #fff; } main { padding: 0; } figure.chart, table, .card { break-inside: avoid; } }
`;

async function chartHtml(chart: ReportChart): Promise<{ html: string; rendered: RenderedChart }> {
  if (!/^[A-Za-z0-9_-]+$/.test(chart.id)) throw new Error(`report chart id "${chart.id}": expected letters, digits, '-' or '_'`);
  const svg = await renderSvg(chart.spec, chart.id);
  const caption = chart.caption ? `<figcaption>${escapeHtml(chart.caption)}</figcaption>` : '';
  return {
    html: `<figure class="chart" id="chart-${chart.id}" data-chart="${chart.id}" aria-label="${escapeHtml(chart.title)}">${svg}${caption}</figure>`,
    rendered: { id: chart.id, title: chart.title, svg },
  };
}

/** The whole report page, and each chart's SVG (for `--png`). */
export async function renderReport(runs: readonly LoadedRun[], options: ReportOptions): Promise<RenderedReport> {
  const cases = options.cases ?? CASES;
  const generatedAt = options.generatedAt ?? new Date();
  const { conditions, results } = buildTables(runs, cases);
  const hasRun = new Set(caseRuns(runs).keys());

  const rendered: RenderedChart[] = [];
  const seen = new Set<string>();
  const renderCharts = async (charts: readonly ReportChart[]): Promise<string> => {
    const parts: string[] = [];
    for (const chart of charts) {
      if (seen.has(chart.id)) throw new Error(`report chart id "${chart.id}" is used twice`);
      seen.add(chart.id);
      const { html, rendered: r } = await chartHtml(chart);
      rendered.push(r);
      parts.push(html);
    }
    return parts.join('\n');
  };

  const partial = partialNotes(results);
  const notes = [...partial, ...subsetNotes(caseRuns(runs))];
  const noticeHtml = notes.length
    ? `<div class="notice" id="partial"><strong>${partial.length ? 'Partial results.' : 'Quick runs.'}</strong><ul>${notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul></div>`
    : `<div class="notice complete" id="partial"><strong>All ${results.length} cases completed on the whole data set.</strong></div>`;

  const curves = curveCharts(runs, cases);
  const curvesHtml = curves.charts.length
    ? (await renderCharts(curves.charts)) + curves.notes.map((n) => `<p class="note">${escapeHtml(n)}</p>`).join('')
    : '<p class="note">No run has a completed epoch yet.</p>';

  const bars = costBars(conditions);
  const costHtml = await renderCharts([
    {
      id: 'params-macs',
      title: 'Parameters and MACs per image',
      spec: costSpec(bars),
      caption:
        'Each SE case split into the same model without SE (light) and the SE blocks’ overhead (red, with the count and ratio). ' +
        'Parameter counts of cases without a run are the expected ones; MACs come from run files only.',
    },
  ]);

  const extra: string[] = [];
  for (const section of options.extraSections ?? []) {
    extra.push(
      `<section id="${escapeHtml(section.id)}"><h2>${escapeHtml(section.title)}</h2>${section.html ?? ''}${await renderCharts(section.charts ?? [])}</section>`,
    );
  }

  const others = runs.filter((r) => r.run.case === null || r.run.sweep).length;
  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>selab report</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>selab report: CNNs with and without Squeeze-and-Excitation on CIFAR-10</h1>
<p class="meta">Generated ${escapeHtml(generatedAt.toISOString().replace(/\.\d+Z$/, 'Z'))} from <code>${escapeHtml(options.out)}</code>: ${runs.length} run${runs.length === 1 ? '' : 's'}${others ? ` (${others} outside the reference cases)` : ''}.</p>
${noticeHtml}
<section id="conditions"><h2>Conditions</h2>
${conditionsTable(conditions, hasRun)}
<p class="note"><sup>*</sup> no run yet: the case’s expected parameter count (Keras count_params, BatchNorm moving statistics included).</p>
</section>
<section id="results"><h2>Results</h2>
${resultsTable(results)}
<p class="note">acc %: accuracy on the run’s validation — the whole CIFAR-10 test split (10,000 images unless the run set a test limit) under --validation full, the reference’s reshuffled subset (an eighth of each whole batch of a new test permutation, as the reference’s Keras logged it) under --validation reference; test acc %: the whole test split at the final epoch. Gains are percentage points over the case in “vs”: final epoch against final epoch, best against best, and only between runs of the same protocol and validation (n/a otherwise). The reference columns are the published experiment’s numbers.</p>
</section>
<section id="curves"><h2>Learning curves</h2>
${curvesHtml}
</section>
<section id="cost"><h2>Parameters and compute</h2>
${costHtml}
</section>
${extra.join('\n')}
<section id="runs"><h2>Runs</h2>
${runs.length ? runsSection(runs) : '<p class="note">No run files found.</p>'}
</section>
</main>
</body>
</html>
`;
  return { html, charts: rendered };
}

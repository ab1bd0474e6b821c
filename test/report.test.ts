// selab report on fixture runs: cases 1, 2, 3 and 5 completed (30 epochs), case 4 running
// (12 of 30), cases 6 and 7 missing. Expected numbers are written out by hand from the fixtures.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Resvg } from '@resvg/resvg-js';
import { parse, type HTMLElement } from 'node-html-parser';
import { CASES } from '../src/experiments/cases.js';
import { learningCurveSpec } from '../src/report/charts.js';
import { renderReport } from '../src/report/html.js';
import { loadRuns, type LoadedRun } from '../src/report/load-runs.js';
import { renderSvg, resvgOptions } from '../src/report/render-chart.js';
import { writeReport } from '../src/report/report.js';
import { buildTables } from '../src/report/tables.js';

const ROOT = join(import.meta.dirname, '..');
const FIXTURES = join(import.meta.dirname, 'fixtures', 'report', 'runs');
const exec = promisify(execFile);

let runs: LoadedRun[];
let page: HTMLElement;
let tmp: string;

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'selab-report-'));
  runs = await loadRuns(FIXTURES);
  const { html } = await renderReport(runs, { out: 'runs' });
  page = parse(html);
});
after(() => rm(tmp, { recursive: true, force: true }));

function tableRows(table: string): Record<string, string>[] {
  const rows = page.querySelectorAll(`table.${table} tbody tr`);
  return rows.map((tr) => Object.fromEntries(tr.querySelectorAll('td').map((td) => [td.getAttribute('data-col') ?? '', td.text.trim()])));
}

const NA = '–';

describe('tables', () => {
  test('buildTables: final and best accuracies, gains over each baseline, published numbers beside', () => {
    const { results } = buildTables(runs, CASES);
    const by = new Map(results.map((r) => [r.case, r]));
    const expected: [number, string, number | null, number | null, number | null, number | null][] = [
      // case, status, final acc, final gain (pp), best acc, best gain (pp)
      [1, 'completed', 0.8712, null, 0.879, null],
      [2, 'completed', 0.8841, 1.29, 0.8862, 0.72], // vs case 1
      [3, 'completed', 0.895, null, 0.9011, null],
      [4, 'running', 0.88, -1.5, 0.883, -1.81], // vs case 3
      [5, 'completed', 0.9087, 1.37, 0.912, 1.09], // vs case 3
      [6, 'missing', null, null, null, null],
      [7, 'missing', null, null, null, null],
    ];
    for (const [id, status, finalAcc, finalGain, bestAcc, bestGain] of expected) {
      const r = by.get(id)!;
      assert.equal(r.status, status, `case ${id}`);
      assert.equal(r.finalAcc, finalAcc, `case ${id} final`);
      assert.equal(r.bestAcc, bestAcc, `case ${id} best`);
      for (const [got, want] of [[r.finalGain, finalGain], [r.bestGain, bestGain]] as const) {
        if (want === null) assert.equal(got, null, `case ${id} gain`);
        else assert.ok(got !== null && Math.abs(got - want) < 1e-9, `case ${id}: gain ${got}, expected ${want}`);
      }
    }
    assert.equal(by.get(5)!.bestEpoch, 28);
    assert.equal(by.get(4)!.epochsCompleted, 12);
    assert.ok(Math.abs(by.get(7)!.referenceGain! - (92.38 - 93.45)) < 1e-9);
    assert.equal(by.get(6)!.referenceGain, null);
  });

  test('the conditions table in the page: every case, params from the runs or expected ones', () => {
    const rows = tableRows('conditions');
    assert.deepEqual(
      rows.map((r) => [r.case, r.name, r.additions, r.se, r.training, r.optimizer, r.input, r.params, r.macs]),
      [
        ['1', 'plain10', NA, 'no', 'scratch', 'adam, lr 0.001', '32×32', '1,927,946', '266.0 M'],
        ['2', 'plain10-se', NA, 'yes', 'scratch', 'adam, lr 0.001', '32×32', '1,993,970', '266.8 M'],
        ['3', 'vgg16', NA, 'no', 'transfer', 'rmsprop, lr 1e-5', '64×64', '14,719,818', '1254.2 M'],
        ['4', 'vgg16-bn', 'batchnorm', 'no', 'transfer', 'rmsprop, lr 1e-5', '64×64', '14,736,714', '1254.4 M'],
        ['5', 'vgg16-bn-se', 'batchnorm', 'yes', 'transfer', 'rmsprop, lr 1e-5', '64×64', '15,194,074', '1260.5 M'],
        // no run: the expected count, marked
        ['6', 'mobilenet', NA, 'no', 'transfer', 'rmsprop, lr 1e-5', '128×128', '3,239,114*', NA],
        ['7', 'mobilenet-se', NA, 'yes', 'transfer', 'rmsprop, lr 1e-5', '128×128', '4,205,590*', NA],
      ],
    );
  });

  test('the results table in the page: accuracies in %, gains in pp with signs, missing cases as –', () => {
    const rows = tableRows('results');
    const cols = ['status', 'epochs', 'baseline', 'finalAcc', 'finalGain', 'bestAcc', 'bestEpoch', 'bestGain', 'referenceAcc', 'referenceGain'];
    assert.deepEqual(
      rows.map((r) => cols.map((c) => r[c])),
      [
        ['completed', '30 / 30', NA, '87.12', NA, '87.90', '24', NA, '89.33', NA],
        ['completed', '30 / 30', 'case 1', '88.41', '+1.29', '88.62', '27', '+0.72', '89.51', '+0.18'],
        ['completed', '30 / 30', NA, '89.50', NA, '90.11', '22', NA, '90.34', NA],
        ['running', '12 / 30', 'case 3', '88.00', '−1.50', '88.30', '11', '−1.81', '91.12', '+0.78'],
        ['completed', '30 / 30', 'case 3', '90.87', '+1.37', '91.20', '28', '+1.09', '91.03', '+0.69'],
        ['missing', NA, NA, NA, NA, NA, NA, NA, '93.45', NA],
        ['missing', NA, 'case 6', NA, NA, NA, NA, NA, '92.38', '−1.07'],
      ],
    );
    // gains are coloured by sign
    const case4 = page.querySelector('table.results tr[data-case="4"] td[data-col="finalGain"]')!;
    assert.match(case4.getAttribute('class') ?? '', /\bdown\b/);
  });

  test('partial results are stated on the page', () => {
    const notice = page.querySelector('#partial')!.text;
    assert.match(notice, /Partial results/);
    assert.match(notice, /Case 4 \(vgg16-bn\) is still running: 12 of 30 epochs/);
    assert.match(notice, /Cases 6 and 7 have no run in this folder yet/);
  });
});

test('runs on a subset are called out as not comparable with the published numbers', async () => {
  const subset = runs.map((r) =>
    r.run.case === 1 || r.run.case === 2 ? { ...r, run: { ...r.run, config: { ...r.run.config, trainLimit: 5000, testLimit: 2000 } } } : r,
  );
  const notice = parse((await renderReport(subset, { out: 'runs' })).html).querySelector('#partial')!.text;
  assert.match(notice, /Cases 1 and 2 ran on a subset \(5,000 training images and 2,000 test images\): a quick run, not comparable/);
  assert.doesNotMatch(notice, /3 ran on a subset/);
  // the fixture runs themselves used the whole data set
  assert.doesNotMatch(page.querySelector('#partial')!.text, /subset/);
});

test('an output folder with no runs yet: every case missing, only the expected parameter counts drawn', async () => {
  const empty = join(tmp, 'empty');
  await mkdir(empty);
  const { html, charts } = await renderReport(await loadRuns(empty), { out: empty });
  const doc = parse(html);
  assert.match(doc.querySelector('#partial')!.text, /Cases 1, 2, 3, 4, 5, 6 and 7 have no run in this folder yet/);
  assert.deepEqual(charts.map((c) => c.id), ['params-macs']);
  assert.equal(doc.querySelector('#curves')!.text.trim(), 'Learning curves\nNo run has a completed epoch yet.');
  // 7 parameter bars + 3 SE overheads; no MACs panel without run files
  assert.equal(doc.querySelectorAll('figure[data-chart="params-macs"] g.mark-rect.role-mark path').length, 10);
  assert.doesNotMatch(doc.querySelector('figure[data-chart="params-macs"]')!.text, /MACs per image/);
});

describe('charts', () => {
  test('one learning-curve chart per baseline group, each line drawn, SE case over its baseline', () => {
    const figs = page.querySelectorAll('figure.chart');
    assert.deepEqual(figs.map((f) => f.getAttribute('data-chart')), ['curves-case-1', 'curves-case-3', 'params-macs']);
    const lines = (id: string) => page.querySelectorAll(`figure[data-chart="${id}"] g.mark-line.role-mark path`);
    // runs × (train, test) × (accuracy, loss) panels
    assert.equal(lines('curves-case-1').length, 2 * 2 * 2);
    assert.equal(lines('curves-case-3').length, 3 * 2 * 2);
    for (const path of lines('curves-case-1')) assert.match(path.getAttribute('d') ?? '', /^M[\d.-]+,[\d.-]+(L[\d.-]+,[\d.-]+){29}$/);
    const legend = page.querySelectorAll('figure[data-chart="curves-case-1"] g.role-legend-label text').map((t) => t.text);
    assert.deepEqual(legend, ['case 1 · plain10', 'case 2 · plain10-se', 'test', 'train']);
    assert.match(page.querySelector('#curves')!.text, /No learning curves for case 6, case 7/);
  });

  test('params and MACs bars with the SE overhead marked', () => {
    const fig = page.querySelector('figure[data-chart="params-macs"]')!;
    // params: 7 cases + 3 SE overheads; MACs: 5 runs with MACs + 2 SE overheads (case 2 vs 1, 5 vs 4)
    assert.equal(fig.querySelectorAll('g.mark-rect.role-mark path').length, 10 + 7);
    const notes = fig.querySelectorAll('g.mark-text.role-mark text').map((t) => t.text);
    assert.deepEqual(notes.sort(), [
      '+457,360 (+3.1%)', // 15,194,074 − 14,736,714
      '+6,080,512 (+0.5%)', // 1,260,517,888 − 1,254,437,376
      '+66,024 (+3.4%)', // 1,993,970 − 1,927,946
      '+752,640 (+0.3%)', // 266,765,824 − 266,013,184
      '+966,476 (+29.8%)', // 4,205,590 − 3,239,114 (expected counts: no runs)
    ]);
  });

  test('ids are unique across the inlined charts and the page loads nothing from outside', () => {
    const ids = page.querySelectorAll('[id]').map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'duplicate ids');
    assert.equal(page.querySelectorAll('script, link, img, iframe, object').length, 0);
    for (const el of page.querySelectorAll('[href], [src]')) {
      const ref = el.getAttribute('href') ?? el.getAttribute('src') ?? '';
      assert.ok(ref.startsWith('#'), `external reference ${ref}`);
    }
  });

  test('PNG rendering finds a font: text alone draws pixels', () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="30"><text x="4" y="22" font-family="sans-serif" font-size="18">epoch 12</text></svg>';
    const pixels = new Resvg(svg, resvgOptions(1)).render().pixels;
    let drawn = 0;
    for (let i = 3; i < pixels.length; i += 4) if ((pixels[i] as number) > 0) drawn++;
    assert.ok(drawn > 50, `only ${drawn} pixels drawn: no system font found (apt-get install fonts-dejavu-core)`);
  });
});

describe('writing', () => {
  test('writeReport: HTML written atomically, --png writes every chart as SVG and PNG', async () => {
    const to = join(tmp, 'w', 'report.html');
    const png = join(tmp, 'w', 'charts');
    await writeReport({ out: FIXTURES, to, png });
    await writeReport({ out: FIXTURES, to, png }); // replaces, leaves no temp file
    assert.deepEqual((await readdir(join(tmp, 'w'))).sort(), ['charts', 'report.html']);
    const files = (await readdir(png)).sort();
    assert.deepEqual(files, ['curves-case-1.png', 'curves-case-1.svg', 'curves-case-3.png', 'curves-case-3.svg', 'params-macs.png', 'params-macs.svg']);
    const pngBytes = await readFile(join(png, 'params-macs.png'));
    assert.deepEqual([...pngBytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    // twice the SVG's size (scale 2)
    const svgWidth = Number(/width="(\d+)"/.exec(await readFile(join(png, 'params-macs.svg'), 'utf8'))![1]);
    assert.equal(pngBytes.readUInt32BE(16), svgWidth * 2);
    assert.match(await readFile(to, 'utf8'), /^<!DOCTYPE html>/);
  });

  test('extra sections (e.g. sweeps) are appended with their charts, chart ids must be unique', async () => {
    const spec = {
      data: { values: [{ r: 2, acc: 90.1 }, { r: 8, acc: 90.6 }] },
      mark: 'point' as const,
      encoding: { x: { field: 'r', type: 'quantitative' as const }, y: { field: 'acc', type: 'quantitative' as const } },
    };
    const { html, charts } = await renderReport(runs, {
      out: 'runs',
      extraSections: [{ id: 'sweeps', title: 'Sweeps', html: '<p class="x">ratio sweep</p>', charts: [{ id: 'sweep-ratio', title: 'acc vs r', spec }] }],
    });
    const doc = parse(html);
    const sections = doc.querySelectorAll('main > section').map((s) => s.id);
    assert.deepEqual(sections, ['conditions', 'results', 'curves', 'cost', 'sweeps', 'runs']);
    assert.equal(doc.querySelectorAll('#sweeps figure[data-chart="sweep-ratio"] g.mark-symbol.role-mark path').length, 2);
    assert.ok(charts.some((c) => c.id === 'sweep-ratio'));
    await assert.rejects(
      renderReport(runs, { out: 'runs', extraSections: [{ id: 's', title: 's', charts: [{ id: 'params-macs', title: 'x', spec }] }] }),
      /chart id "params-macs" is used twice/,
    );
  });

  test('bad input: a missing folder and a malformed run file are clear errors; nothing is written', async () => {
    const to = join(tmp, 'bad', 'report.html');
    await assert.rejects(writeReport({ out: join(tmp, 'nope'), to }), /--out .*nope: no such folder/);
    const out = join(tmp, 'badruns');
    await cp(FIXTURES, out, { recursive: true });
    const file = join(out, 'case_2', 'run.json');
    const run = JSON.parse(await readFile(file, 'utf8'));
    run.best.val_acc = 88.62; // a percentage where a fraction belongs
    await writeFile(file, JSON.stringify(run));
    await assert.rejects(writeReport({ out, to }), (e: Error) => {
      assert.ok(e.message.startsWith(`${file}: not a valid selab run file`), e.message);
      assert.match(e.message, /\/best\/val_acc must be <= 1/);
      return true;
    });
    await assert.rejects(readdir(join(tmp, 'bad')), /ENOENT/);
    // a folder where the report file should go, and a file where the chart folder should go
    await mkdir(join(tmp, 'taken.html'));
    await assert.rejects(writeReport({ out: FIXTURES, to: join(tmp, 'taken.html') }), /^Error: --to .*taken\.html: cannot write there \(/);
    await writeFile(join(tmp, 'file'), 'x');
    await assert.rejects(writeReport({ out: FIXTURES, to: join(tmp, 'ok.html'), png: join(tmp, 'file') }), /^Error: --png .*file: cannot write there/);
  });

  test('the CLI: selab report --out --to, and exit code 1 with a message on a bad --out', async () => {
    const to = join(tmp, 'cli.html');
    const ok = await exec(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'report', '--out', FIXTURES, '--to', to], { cwd: ROOT });
    assert.match(ok.stdout, /wrote .*cli\.html \(5 runs from/);
    assert.equal(parse(await readFile(to, 'utf8')).querySelectorAll('table.results tbody tr').length, 7);
    await assert.rejects(
      exec(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'report', '--out', join(tmp, 'none'), '--to', join(tmp, 'x.html')], { cwd: ROOT }),
      (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 1);
        assert.match(e.stderr, /selab report: --out .*none: no such folder/);
        return true;
      },
    );
  });
});

test('short runs: a point per epoch, and the legend still shows solid test and dashed train lines', async () => {
  const rows = [1, 2, 3].map((epoch) => ({ epoch, loss: 2 / epoch, acc: 0.2 * epoch, val_loss: 2.1 / epoch, val_acc: 0.18 * epoch, test_loss: 2.1 / epoch, test_acc: 0.18 * epoch, lr: 1e-3, seconds: 60, imagesPerSecond: 20 }));
  const svg = parse(await renderSvg(learningCurveSpec('t', [{ label: 'a', se: false, rows }, { label: 'b', se: true, rows }]), 'short'));
  // 2 runs × 2 splits × 2 panels lines; 2 runs × 2 splits × 3 epochs points per panel
  assert.equal(svg.querySelectorAll('g.mark-line.role-mark path').length, 8);
  assert.equal(svg.querySelectorAll('g.mark-symbol.role-mark path').length, 2 * 12);
  const symbols = svg.querySelectorAll('g.role-legend-symbol path');
  const dash = symbols.filter((p) => p.getAttribute('stroke-dasharray'));
  assert.deepEqual(dash.map((p) => p.getAttribute('stroke-dasharray')), ['1,0', '5,3']);
  for (const p of dash) assert.ok(!['transparent', null].includes(p.getAttribute('stroke') ?? null), `invisible legend line: ${p.toString()}`);
});

test('renderSvg prefixes ids so several charts can share a page', async () => {
  const spec = {
    data: { values: [{ x: 1, y: 1 }, { x: 2, y: 3 }] },
    mark: { type: 'line' as const, clip: true },
    encoding: { x: { field: 'x', type: 'quantitative' as const }, y: { field: 'y', type: 'quantitative' as const } },
  };
  const svg = await renderSvg(spec, 'abc');
  const ids = [...svg.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
  assert.ok(ids.length > 0, 'a clipped mark defines a clip path');
  for (const id of ids) assert.ok(id!.startsWith('abc-'), id);
  for (const m of svg.matchAll(/url\(#([^)]+)\)/g)) assert.ok(ids.includes(m[1]), `dangling reference ${m[0]}`);
});

// The report and the protocols: a run's protocol in the results table, no gain between runs of
// different protocols, and a case trained under both protocols drawn in one chart with the
// reference run's validation subset beside its whole test split.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'node-html-parser';
import { renderReport } from '../src/report/html.js';
import { loadRuns } from '../src/report/load-runs.js';
import { packageRoot } from '../src/util/paths.js';

const fixtures = join(packageRoot(), 'test', 'fixtures', 'report', 'runs');
let out: string;

/** A copy of fixture case 1 as a reference-protocol run in `dir`, its val_* a little above its test_*. */
function referenceCopy(dir: string): void {
  cpSync(join(fixtures, 'case_1'), dir, { recursive: true });
  const runFile = join(dir, 'run.json');
  const run = JSON.parse(readFileSync(runFile, 'utf8'));
  run.id = 'reference/case_1';
  run.config = { ...run.config, protocol: 'reference', validation: 'reference', optimizer: 'adam-tf1' };
  run.startedAt = '2099-01-01T00:00:00.000Z';
  writeFileSync(runFile, JSON.stringify(run));
  const historyFile = join(dir, 'history.json');
  const history = JSON.parse(readFileSync(historyFile, 'utf8'));
  history.rows = history.rows.map((r: { val_acc: number; val_loss: number }) => ({ ...r, test_acc: r.val_acc, test_loss: r.val_loss, val_acc: Math.min(1, r.val_acc + 0.02), val_loss: r.val_loss * 0.9 }));
  writeFileSync(historyFile, JSON.stringify(history));
}

/** A copy of a fixture case under `dir`, its id its folder below the output folder. */
function kerasCopy(name: string, dir: string, id: string): void {
  cpSync(join(fixtures, name), dir, { recursive: true });
  const runFile = join(dir, 'run.json');
  writeFileSync(runFile, JSON.stringify({ ...JSON.parse(readFileSync(runFile, 'utf8')), id }));
}

before(() => {
  out = mkdtempSync(join(tmpdir(), 'selab-report-protocol-'));
  kerasCopy('case_1', join(out, 'keras', 'case_1'), 'keras/case_1');
  kerasCopy('case_2', join(out, 'keras', 'case_2'), 'keras/case_2');
  referenceCopy(join(out, 'reference', 'case_1'));
});
after(() => rmSync(out, { recursive: true, force: true }));

describe('selab report with runs of both protocols', () => {
  it('one chart for the case under each protocol, with the reference validation dotted', async () => {
    const runs = await loadRuns(out);
    const report = await renderReport(runs, { out });
    const chart = report.charts.find((c) => c.id === 'curves-case-1-protocols');
    assert.ok(chart, `charts: ${report.charts.map((c) => c.id).join(', ')}`);
    const legend = parse(chart.svg).querySelectorAll('g.role-legend-label text').map((t) => t.text);
    for (const label of ['keras · keras/case_1', 'reference · reference/case_1', 'test', 'train', 'reference validation']) assert.ok(legend.includes(label), `legend: ${legend.join(' | ')}`);
    // The case charts of a keras-only group keep their two line styles.
    const plain = report.charts.find((c) => c.id === 'curves-case-1')!;
    assert.ok(plain, 'the case group chart');
  });

  it('the results table names the protocol and gives no gain across protocols', async () => {
    const runs = await loadRuns(out);
    const report = await renderReport(runs, { out });
    const doc = parse(report.html);
    // Case 1 is the reference run (started last), case 2 a keras run: not comparable.
    const row2 = doc.querySelector('table.results tr[data-case="2"]')!;
    assert.equal(row2.querySelector('td[data-col="protocol"]')?.text ?? row2.querySelectorAll('td')[3]!.text, 'keras');
    const row1 = doc.querySelector('table.results tr[data-case="1"]')!;
    assert.match(row1.text, /reference/);
    assert.match(row2.innerHTML, /n\/a/);
  });
});

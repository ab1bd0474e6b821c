// The report in a real browser: Debian's chromium (never a downloaded one) opens the HTML from
// disk, logs no error, and has drawn marks in every chart; a screenshot is written for a human.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { writeReport } from '../src/report/report.js';

const CHROMIUM = '/usr/bin/chromium';
const FIXTURES = join(import.meta.dirname, 'fixtures', 'report', 'runs');

test('the report opens in headless Chromium from disk, without errors, with marks in every chart', {
  skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent (apt-get install chromium); browser test skipped`,
  timeout: 120_000,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'selab-report-browser-'));
  // A fresh profile each time; Playwright takes it as launchPersistentContext's folder, not as an argument.
  const browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
  });
  try {
    const { html } = await writeReport({ out: FIXTURES, to: join(dir, 'report.html') });
    const page = await browser.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });

    assert.deepEqual(problems, []);
    // Self-contained: the only thing loaded is the page itself.
    assert.deepEqual(requests, [pathToFileURL(html).href]);

    const charts = await page.$$eval('figure.chart', (figs) =>
      figs.map((f) => {
        const svg = f.querySelector('svg');
        const box = svg?.getBoundingClientRect();
        return {
          id: f.getAttribute('data-chart'),
          // vega draws data as paths (lines, bars) inside role-mark groups
          marks: f.querySelectorAll('g[class*="role-mark"] path, g[class*="role-mark"] rect').length,
          width: box?.width ?? 0,
          height: box?.height ?? 0,
        };
      }),
    );
    assert.deepEqual(charts.map((c) => c.id), ['curves-case-1', 'curves-case-3', 'params-macs']);
    for (const c of charts) {
      assert.ok(c.marks > 0, `chart ${c.id} has no drawn marks`);
      assert.ok(c.width > 300 && c.height > 150, `chart ${c.id} is ${c.width}×${c.height}`);
    }

    const screenshot = join(dir, 'report.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    assert.ok((await stat(screenshot)).size > 50_000);
    if (process.env.SELAB_KEEP_SCREENSHOT) console.log(`screenshot: ${screenshot}`);
  } finally {
    await browser.close();
    if (!process.env.SELAB_KEEP_SCREENSHOT) await rm(dir, { recursive: true, force: true });
  }
});

// `selab report`: read the runs under OUT, write the HTML page, and optionally each chart as SVG + PNG.
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { renderReport, type ReportSection } from './html.js';
import { loadRuns, type LoadedRun } from './load-runs.js';
import { svgToPng } from './render-chart.js';

export interface WriteReportOptions {
  out: string;
  /** The HTML file to write. */
  to: string;
  /** A folder for each chart as `<id>.svg` and `<id>.png`. */
  png?: string;
  /** Sections appended after the built-in ones, computed from the loaded runs. */
  extraSections?: (runs: readonly LoadedRun[]) => ReportSection[] | Promise<ReportSection[]>;
  generatedAt?: Date;
}

export interface WrittenReport {
  html: string;
  runs: number;
  /** Paths of the chart files written under `png`. */
  files: string[];
}

export async function writeReport(options: WriteReportOptions): Promise<WrittenReport> {
  const runs = await loadRuns(options.out);
  const extraSections = options.extraSections ? await options.extraSections(runs) : [];
  const report = await renderReport(runs, { out: options.out, extraSections, generatedAt: options.generatedAt });

  const html = resolve(options.to);
  await naming(`--to ${options.to}`, async () => {
    await mkdir(dirname(html), { recursive: true });
    await writeFileAtomic(html, report.html);
  });

  const files: string[] = [];
  const png = options.png;
  if (png) {
    await naming(`--png ${png}`, async () => {
      await mkdir(png, { recursive: true });
      for (const chart of report.charts) {
        const svgPath = join(png, `${chart.id}.svg`);
        const pngPath = join(png, `${chart.id}.png`);
        await writeFileAtomic(svgPath, chart.svg);
        await writeFileAtomic(pngPath, svgToPng(chart.svg));
        files.push(svgPath, pngPath);
      }
    });
  }
  return { html, runs: runs.length, files };
}

/** File-system errors name the flag whose path could not be written. */
async function naming(flag: string, write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (e) {
    throw new Error(`${flag}: cannot write there (${(e as Error).message})`, { cause: e });
  }
}

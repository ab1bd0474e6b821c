import type { Command } from 'commander';
import { writeReport } from '../../report/report.js';
import { sweepReportSections } from '../../report/sweep.js';

export function register(program: Command): void {
  program
    .command('report')
    .description('Write one self-contained HTML report (tables, learning curves, parameters and MACs, run metadata) from the run files')
    .option('--out <dir>', 'output folder holding the runs', 'runs')
    .option('--to <file>', 'HTML file to write', 'report.html')
    .option('--png <dir>', 'also write each chart as <id>.svg and <id>.png into this folder')
    .action(async (opts: { out: string; to: string; png?: string }) => {
      try {
        const written = await writeReport({ out: opts.out, to: opts.to, png: opts.png, extraSections: sweepReportSections });
        console.log(`wrote ${written.html} (${written.runs} run${written.runs === 1 ? '' : 's'} from ${opts.out})`);
        for (const f of written.files) console.log(`wrote ${f}`);
      } catch (e) {
        console.error(`selab report: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}

import type { Command } from 'commander';
import { DEFAULT_OUT } from '../../experiments/presets.js';
import { caseTables, formatTables, parseTableFormat, TABLE_FORMATS } from '../../report/table-format.js';

export function register(program: Command): void {
  program
    .command('table')
    .description("Print the reference experiment's two tables (conditions; results with gains, final and best epoch) from the run files")
    .option('--out <dir>', 'output folder holding the runs', DEFAULT_OUT)
    .option('--format <format>', `${TABLE_FORMATS.join(', ')}`, 'md')
    .action(async (opts: { out: string; format: string }) => {
      try {
        const format = parseTableFormat(opts.format);
        console.log(formatTables(await caseTables(opts.out), format));
      } catch (e) {
        console.error(`selab table: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}

#!/usr/bin/env node
// Each subcommand lives in src/cli/commands/<name>.ts and exports `register(program)`.
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../util/paths.js';

const { version } = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };

const program = new Command()
  .name('selab')
  .description('Build, train and compare CNNs with and without Squeeze-and-Excitation blocks on CIFAR-10.')
  .version(version)
  .showHelpAfterError();

// Subcommands are registered below this line, one import each.
(await import('./commands/report.js')).register(program);
(await import('./commands/models.js')).register(program);
(await import('./commands/sweep.js')).register(program);
(await import('./commands/train.js')).register(program);
(await import('./commands/run.js')).register(program);
(await import('./commands/table.js')).register(program);
(await import('./commands/data.js')).register(program);
(await import('./commands/bench.js')).register(program);
(await import('./commands/worker.js')).register(program);
(await import('./commands/queue.js')).register(program);

await program.parseAsync(process.argv);

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

// Subcommands, one module each (src/cli/commands/<name>.ts exporting `register(program)`). When
// the command line names one, only its module is loaded: loading them all (vega, resvg, BullMQ,
// h5wasm, ...) takes longer than a command like `selab models` itself.
const COMMANDS = ['report', 'models', 'sweep', 'train', 'run', 'table', 'data', 'bench', 'worker', 'queue'];
const named = COMMANDS.find((name) => name === process.argv[2]);
for (const name of named ? [named] : COMMANDS) ((await import(`./commands/${name}.js`)) as { register(p: Command): void }).register(program);

await program.parseAsync(process.argv);

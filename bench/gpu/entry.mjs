// The selab of bench/gpu/run.sh, bundled into one file by bench/gpu/prepare.sh: the commands the
// GPU measurement needs (bench, train, run), with @tensorflow/tfjs-backend-webgpu inside the bundle
// (imported by name here, so that esbuild includes it). Dawn (`webgpu`, with its dawn.node) stays
// outside, in node_modules beside the bundle. Plain JavaScript: it is not typechecked, so the
// optional package need not be installed for `npm run typecheck`.
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setWebGpuPackageLoader } from '../../src/backend/webgpu/backend.ts';
import { packageRoot } from '../../src/util/paths.ts';
import * as bench from '../../src/cli/commands/bench.ts';
import * as train from '../../src/cli/commands/train.ts';
import * as run from '../../src/cli/commands/run.ts';

setWebGpuPackageLoader(() => import('@tensorflow/tfjs-backend-webgpu'));

const { version } = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8'));
const program = new Command().name('selab').description('selab (GPU measurement bundle: bench, train, run)').version(version).showHelpAfterError();
for (const command of [bench, train, run]) command.register(program);
await program.parseAsync(process.argv);

// `selab data info`: where the CIFAR-10 data comes from, and its per-split and per-class counts.
import type { Command } from 'commander';
import { loadCifar10, loadCifar100 } from '../../data/cifar.js';
import { classCounts } from '../../data/format.js';

export interface DataInfo {
  train: { count: number; perClass: number[] };
  test: { count: number; perClass: number[] };
  classes: string[];
}

const LOADERS = { cifar10: loadCifar10, cifar100: loadCifar100 };

interface InfoFlags {
  dataset: string;
  data?: string;
  json?: boolean;
  verify: boolean;
}

export function register(program: Command): void {
  const data = program.command('data').description('CIFAR-10 data: download, verify, cache and inspect');
  data
    .command('info')
    .description('Load CIFAR-10 (downloading and extracting it into $SELAB_HOME the first time) and print per-split and per-class counts')
    .option('--dataset <name>', 'cifar10 or cifar100 (fine labels)', 'cifar10')
    .option('--data <source>', 'a folder holding cifar-10-batches-bin/, the .tar.gz archive, or an http(s):// or file:// URL (default: $SELAB_DATA, for cifar100 $SELAB_DATA_CIFAR100, else the official download)')
    .option('--no-verify', 'accept an archive whose MD5 is not the official one (e.g. ../shared/datasets/cifar-10-binary.tar.gz)')
    .option('--json', 'print {train: {count, perClass}, test: {count, perClass}, classes} as JSON')
    .action(async (flags: InfoFlags) => {
      try {
        const load = LOADERS[flags.dataset as keyof typeof LOADERS] as (typeof LOADERS)[keyof typeof LOADERS] | undefined;
        if (!load) throw new Error(`--dataset ${flags.dataset}: expected ${Object.keys(LOADERS).join(' or ')}`);
        const ds = await load({ data: flags.data, verify: flags.verify });
        const n = ds.classes.length;
        const info: DataInfo = {
          train: { count: ds.train.count, perClass: classCounts(ds.train, n) },
          test: { count: ds.test.count, perClass: classCounts(ds.test, n) },
          classes: ds.classes,
        };
        if (flags.json) {
          console.log(JSON.stringify(info, null, 2));
          return;
        }
        const src = ds.source;
        const check = src.md5 === undefined ? 'a folder: no checksum' : src.verified ? `md5 ${src.md5}, verified` : `md5 ${src.md5}, not verified (--no-verify)`;
        console.log(`source: ${src.spec} (${src.kind}; ${check})`);
        console.log(`files:  ${src.dir}`);
        console.log(`train:  ${info.train.count} images`);
        console.log(`test:   ${info.test.count} images`);
        const w = Math.max(5, ...info.classes.map((c) => c.length));
        console.log(`\n${'label'.padEnd(6)}${'class'.padEnd(w + 2)}${'train'.padStart(7)}${'test'.padStart(7)}`);
        info.classes.forEach((c, i) => {
          console.log(`${String(i).padEnd(6)}${c.padEnd(w + 2)}${String(info.train.perClass[i]).padStart(7)}${String(info.test.perClass[i]).padStart(7)}`);
        });
      } catch (e) {
        console.error(`selab data info: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}

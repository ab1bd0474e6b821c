// `selab bench`: images per second and GFLOPS of training and inference, per model and
// backend, side by side with PyTorch on the same machine.
import type { Command } from 'commander';
import { BENCH_BACKENDS, BENCH_MODELS, DEFAULT_BACKENDS, formatBenchTable, runBench, type BenchBackend, type Phase } from '../../bench/run.js';

interface BenchFlags {
  json?: boolean;
  models: string;
  backends: string;
  phases: string;
  steps: string;
  warmup: string;
  rounds: string;
  batch?: string;
  torch: boolean;
  profile?: boolean;
}

function list<T extends string>(flag: string, raw: string, allowed: readonly T[]): T[] {
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = items.filter((s) => !(allowed as readonly string[]).includes(s));
  if (items.length === 0 || bad.length > 0) throw new Error(`${flag} expects a comma-separated list of ${allowed.join(', ')}; got "${raw}"`);
  return items as T[];
}

function positiveInt(flag: string, raw: string, min = 1): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} expects an integer ≥ ${min}, got "${raw}"`);
  return n;
}

export function register(program: Command): void {
  program
    .command('bench')
    .description('Measure training and inference images/s (median after warm-up) on each backend and on PyTorch (bench/torch_peer.py)')
    .option('--json', 'print { rows: [ { model, backend, phase, batch, imagesPerSecond, gflops, rounds? } ] } (PyTorch rows have backend "torch"; rounds: images/s per round, with --rounds above 1)')
    .option('--models <list>', `comma-separated: ${BENCH_MODELS.map((m) => m.name).join(', ')}`, BENCH_MODELS.map((m) => m.name).join(','))
    .option('--backends <list>', `comma-separated: ${BENCH_BACKENDS.join(', ')} (cpu is pure JS: minutes per step; webgpu needs a GPU, see docs/backend.md)`, DEFAULT_BACKENDS.join(','))
    .option('--phases <list>', 'train, infer or both', 'train,infer')
    .option('--steps <n>', 'timed steps per row (the median is reported)', '5')
    .option('--warmup <n>', 'untimed steps before timing (selab reaches its steady speed after about six)', '10')
    .option('--rounds <n>', 'repeat the whole measurement, PyTorch included, n times and report the median of each row (the machine drifts between rows)', '1')
    .option('--batch <n>', `batch for every model (default per model: ${BENCH_MODELS.map((m) => `${m.name} ${m.batch}`).join(', ')}; wasm at most 32)`)
    .option('--no-torch', 'skip the PyTorch peer')
    .option('--profile', 'also print a per-kernel profile of one training step and one inference pass per model and backend (to stderr)')
    .action(async (flags: BenchFlags) => {
      try {
        const result = await runBench({
          models: list('--models', flags.models, BENCH_MODELS.map((m) => m.name)),
          backends: list<BenchBackend>('--backends', flags.backends, BENCH_BACKENDS),
          phases: list<Phase>('--phases', flags.phases, ['train', 'infer']),
          steps: positiveInt('--steps', flags.steps),
          warmup: positiveInt('--warmup', flags.warmup, 0),
          rounds: positiveInt('--rounds', flags.rounds),
          batch: flags.batch === undefined ? undefined : positiveInt('--batch', flags.batch),
          torch: flags.torch,
          profile: flags.profile ?? false,
          // Progress goes to stderr so --json output stays parseable.
          log: (line) => console.error(line),
        });
        if (flags.json) console.log(JSON.stringify({ threads: result.threads, ...(result.adapter ? { adapter: result.adapter } : {}), rows: result.rows, skipped: result.skipped }, null, 2));
        else console.log(formatBenchTable(result));
      } catch (e) {
        console.error(`selab bench: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}

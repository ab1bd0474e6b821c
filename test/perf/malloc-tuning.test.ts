// Machine-dependent: page-fault counts depend on the kernel, glibc and the load (npm run check:perf).
// Both sides of `selab bench` run with glibc told to keep freed memory (native/src/malloc.cc,
// torchPeerEnv): a large block freed and allocated again must not be faulted in afresh.
// Measured as minor page faults per round of allocate 64 MiB, write it, free it: 16,384 (every
// page) by glibc's defaults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ADDON_PATH, addonLoadError, loadAddon } from '../../src/backend/onednn/addon.js';
import { PYTHON, torchPeerEnv } from '../../src/bench/run.js';

const PAGES_PER_ROUND = (64 << 20) / 4096;

function faultsPerRound(command: string, args: string[], env: NodeJS.ProcessEnv): number {
  const res = spawnSync(command, args, { encoding: 'utf8', env });
  assert.equal(res.status, 0, res.stderr);
  return Number(res.stdout.trim().split('\n').at(-1));
}

const PYTHON_ROUNDS = `
import ctypes, resource
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
def round():
    p = libc.malloc(64 << 20); libc.memset(p, 1, 64 << 20); libc.free(p)
round()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8): round()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 8)
`;

test('the PyTorch peer environment makes glibc reuse freed memory', { skip: existsSync(PYTHON) ? false : `${PYTHON} is absent` }, () => {
  const plain = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MALLOC_')));
  const defaults = faultsPerRound(PYTHON, ['-c', PYTHON_ROUNDS], plain);
  const tuned = faultsPerRound(PYTHON, ['-c', PYTHON_ROUNDS], torchPeerEnv(2, plain));
  assert.ok(defaults >= 0.9 * PAGES_PER_ROUND, `glibc defaults: ${defaults} faults per round`);
  assert.ok(tuned <= 0.05 * PAGES_PER_ROUND, `peer environment: ${tuned} faults per round`);
  assert.equal(torchPeerEnv(3, { MALLOC_TOP_PAD_: '0' }).MALLOC_TOP_PAD_, '0', 'a setting already in the environment wins');
  assert.equal(torchPeerEnv(3, { OMP_NUM_THREADS: '8' }).OMP_NUM_THREADS, '3', "the peer runs with selab's threads");
});

// V8 frees an ArrayBuffer's memory when the collector takes it; gc() forces that.
const NODE_ROUNDS = `
const addon = require(${JSON.stringify(ADDON_PATH)});
if (process.argv[1] === 'tuned' && !addon.keepFreedMemory()) throw new Error('glibc refused the settings');
const round = () => { new Float32Array(16 << 20).fill(1); globalThis.gc(); };
round();
const before = process.resourceUsage().minorPageFault;
for (let i = 0; i < 8; i++) round();
console.log((process.resourceUsage().minorPageFault - before) / 8);
`;

test('the onednn addon makes glibc reuse freed memory in-process', { skip: loadAddon() ? false : `addon not built: ${addonLoadError()?.message}` }, () => {
  const run = (mode: string) => faultsPerRound(process.execPath, ['--expose-gc', '-e', NODE_ROUNDS, mode], process.env);
  const defaults = run('default');
  const tuned = run('tuned');
  assert.ok(defaults >= 0.9 * PAGES_PER_ROUND, `glibc defaults: ${defaults} faults per round`);
  // calloc still clears reused blocks, and V8 keeps some pages of its own; measured ~2,050 (an eighth).
  assert.ok(tuned <= 0.25 * PAGES_PER_ROUND, `after keepFreedMemory(): ${tuned} faults per round`);
});

// What a user sees when a run is interrupted: Ctrl-C stops after the step in progress (the event
// loop gets a turn between micro-batches), a second Ctrl-C quits at once and still leaves run.json
// "stopped", and a SIGKILL at any point of a run, then --resume, ends with the history of the
// uninterrupted run, number for number, with Adam and with RMSProp.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { History, HistoryRow, RunFile } from '../src/runs/files.js';
import { packageRoot } from '../src/util/paths.js';

const root = packageRoot();
const EPOCHS = 3;
const IMAGES = 256; // 8 steps of 32 (4 micro-batches of 8) per epoch
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'selab-interrupt-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Child {
  process: ChildProcess;
  lines: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function child(out: string, mode: 'fresh' | 'resume', optimizer: string, images = IMAGES, microBatch = 8): Child {
  const p = spawn(process.execPath, ['--import', 'tsx', join(root, 'test', 'train-interrupt-child.ts'), out, mode, optimizer, String(EPOCHS), String(images), String(microBatch)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const lines: string[] = [];
  let partial = '';
  p.stdout!.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => p.on('exit', (code, signal) => resolve({ code, signal })));
  return { process: p, lines, exit };
}

/** Polls until `ready()` holds (or the child ends, or 60 s pass). */
async function until(c: Child, ready: () => boolean): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (ready()) return true;
    if (c.process.exitCode !== null) return false;
    await new Promise((r) => setTimeout(r, 2));
  }
  return false;
}

const runDir = (out: string) => join(out, 'tiny');
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const comparable = (rows: HistoryRow[]) => rows.map(({ seconds: _s, imagesPerSecond: _i, ...r }) => r);
const historyRows = (out: string): number => (existsSync(join(runDir(out), 'history.json')) ? readJson<History>(join(runDir(out), 'history.json')).rows.length : 0);

describe('Ctrl-C', () => {
  it('stops after the step in progress, mid-epoch, and marks the run stopped', async () => {
    const out = join(dir, 'sigint');
    const c = child(out, 'fresh', 'adam', 2048); // 64 steps per epoch
    assert.ok(await until(c, () => c.lines.includes('step 1 3')), 'the run reached step 3');
    c.process.kill('SIGINT');
    const { code } = await c.exit;
    assert.equal(code, 2, c.lines.join('\n'));
    const handled = c.lines.find((l) => l.startsWith('sigint '))!.split(' ').map(Number);
    const steps = c.lines.filter((l) => l.startsWith('step ')).map((l) => l.split(' ').map(Number));
    const last = steps.at(-1)!;
    assert.equal(handled[1], 1, 'the signal was handled during epoch 1, not at its end');
    assert.equal(last[1], 1);
    assert.ok(last[2]! - handled[2]! <= 1, `at most the step in progress ran after the signal was handled: handled at ${handled[2]}, last ${last[2]}`);
    assert.ok(last[2]! < 64, 'the epoch did not run to its end');
    const run = readJson<RunFile>(join(runDir(out), 'run.json'));
    assert.equal(run.status, 'stopped');
    assert.match(run.error ?? '', /stopped by the user during epoch 1; no epoch had completed/);
  });

  it('a second Ctrl-C quits at once and still leaves run.json stopped, never running', async () => {
    const out = join(dir, 'sigint2');
    // Steps of 32 micro-batches of one image: the second Ctrl-C comes while the first waits for the step's end.
    const c = child(out, 'fresh', 'adam', 2048, 1);
    assert.ok(await until(c, () => c.lines.includes('step 1 2')));
    c.process.kill('SIGINT');
    assert.ok(await until(c, () => c.lines.some((l) => l.startsWith('sigint '))), 'the first Ctrl-C was handled');
    c.process.kill('SIGINT');
    const { code } = await c.exit;
    assert.equal(code, 130);
    const run = readJson<RunFile>(join(runDir(out), 'run.json'));
    assert.equal(run.status, 'stopped');
    assert.match(run.error ?? '', /quit by the user \(a second Ctrl-C\) during epoch 1/);
  });
});

/** Moments to kill at, each chosen by watching the run's output and files. */
const KILL_POINTS: [string, (c: Child, out: string) => boolean][] = [
  ['run.json written, epoch 1 training', (_c, out) => existsSync(join(runDir(out), 'run.json'))],
  ['mid-epoch 1', (c) => c.lines.includes('step 1 4')],
  ['while the first checkpoint is written', (c, out) => c.lines.includes('step 1 8') && (readdirSync(runDir(out)).some((n) => n.startsWith('.checkpoint')) || existsSync(join(runDir(out), 'checkpoint')))],
  ['after the first checkpoint, before its history row', (_c, out) => existsSync(join(runDir(out), 'checkpoint', 'state.json'))],
  ['after epoch 1', (_c, out) => historyRows(out) >= 1],
  ['mid-epoch 2', (c) => c.lines.includes('step 2 5')],
  ['at the end of epoch 2', (c) => c.lines.includes('step 2 8')],
];

for (const optimizer of ['adam', 'rmsprop']) {
  describe(`SIGKILL then --resume (${optimizer})`, () => {
    let reference: HistoryRow[];
    before(async () => {
      const out = join(dir, `ref-${optimizer}`);
      const c = child(out, 'fresh', optimizer);
      assert.equal((await c.exit).code, 0);
      reference = readJson<History>(join(runDir(out), 'history.json')).rows;
      assert.equal(reference.length, EPOCHS);
    });

    for (const [i, [point, ready]] of KILL_POINTS.entries()) {
      it(`killed ${point}: the resumed history equals the uninterrupted one exactly`, async () => {
        const out = join(dir, `kill-${optimizer}-${i}`);
        const c = child(out, 'fresh', optimizer);
        assert.ok(await until(c, () => ready(c, out)), `the run reached the point "${point}"`);
        c.process.kill('SIGKILL');
        assert.equal((await c.exit).signal, 'SIGKILL');
        const r = child(out, 'resume', optimizer);
        assert.equal((await r.exit).code, 0, r.lines.join('\n'));
        const rows = readJson<History>(join(runDir(out), 'history.json')).rows;
        assert.deepEqual(rows.map((row) => row.epoch), [1, 2, 3], 'consecutive epochs, none twice');
        assert.deepEqual(comparable(rows), comparable(reference));
        assert.equal(readJson<RunFile>(join(runDir(out), 'run.json')).status, 'completed');
      });
    }
  });
}

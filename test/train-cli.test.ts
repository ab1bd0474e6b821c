import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadAddon } from '../src/backend/onednn/addon.js';
import { launchFrom, parseOverrides, type TrainFlags } from '../src/cli/options.js';
import { parseCases, parseOneCase, runCases as runCaseIds } from '../src/experiments/run-cases.js';
import type { History, RunFile } from '../src/runs/files.js';
import { packageRoot } from '../src/util/paths.js';
import { skipWithoutNative } from './native.js';

const root = packageRoot();
const cifar = join(root, '..', 'shared', 'datasets', 'cifar-10-binary.tar.gz');
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'selab-train-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function selab(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, SELAB_HOME: join(dir, 'home'), ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `selab run` as a library call: flags parsed as the CLI parses them. */
async function runCases({ caseIds, flags }: { caseIds: number[]; flags: TrainFlags }) {
  return runCaseIds(caseIds, parseOverrides(flags), launchFrom(flags));
}

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

describe('selab train/run: bad input is a clear error, nothing written', () => {
  const out = () => join(dir, 'never');
  const flags = () => ({ out: out(), data: cifar, verify: false });
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ['unknown case', async () => runCases({ caseIds: [parseOneCase('99')], flags: flags() }), /--case: unknown case "99": expected 1–7/],
    ['bad range', async () => runCases({ caseIds: parseCases('3-1'), flags: flags() }), /--cases "3-1": range 3-1 runs backwards/],
    ['not a range', async () => runCases({ caseIds: parseCases('1-x'), flags: flags() }), /--cases "1-x": "1-x" is not a case number or range/],
    ['negative epochs', () => runCases({ caseIds: [1], flags: { ...flags(), epochs: '-1' } }), /--epochs "-1": expected an integer ≥ 1/],
    ['unknown optimizer', () => runCases({ caseIds: [1], flags: { ...flags(), optimizer: 'adamw' } }), /--optimizer: unknown optimizer preset "adamw": expected one of adam, rmsprop, rmsprop-1e-4, sgd-momentum/],
    ['micro-batch not dividing the batch', () => runCases({ caseIds: [1], flags: { ...flags(), batchSize: '100', microBatch: '30' } }), /--micro-batch 30 must divide --batch-size 100/],
    ['unknown backend', () => runCases({ caseIds: [1], flags: { ...flags(), backend: 'gpu' } }), /--backend "gpu": expected one of auto, webgpu, onednn, wasm, cpu, tensorflow/],
  ];
  for (const [what, run, message] of cases) {
    it(what, async () => {
      await assert.rejects(run(), message);
      assert.equal(existsSync(out()), false, 'the output folder must not be created');
    });
  }

  it('unwritable --out (a file, or below a file)', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'keep me');
    await assert.rejects(runCases({ caseIds: [1], flags: { ...flags(), out: file } }), /--out .*a-file: exists and is not a folder/);
    await assert.rejects(runCases({ caseIds: [1], flags: { ...flags(), out: join(file, 'runs') } }), /--out .*a-file\/runs: cannot (be used|create the folder) \(.*ENOTDIR/);
    assert.equal(readFileSync(file, 'utf8'), 'keep me');
  });

  it('a weights file that does not exist: a clear error, and no empty --out left behind', { skip: existsSync(cifar) ? false : `needs ${cifar}` }, async () => {
    const outcomes = await runCases({ caseIds: [1], flags: { ...flags(), weights: join(dir, 'missing.h5'), trainLimit: '8', testLimit: '8', protocol: 'keras' } });
    assert.match(outcomes[0]!.error ?? '', /weights file .*missing\.h5 does not exist \(expected a Keras \.h5 weight file/);
    assert.equal(existsSync(out()), false);
  });

  it('through the CLI: exit code 1 and the message on stderr', () => {
    const r = selab(['run', '--cases', '1,9', '--epochs', '-1', '--out', out()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^selab run: --cases "1,9": unknown case 9; known cases: 1, 2, 3, 4, 5, 6, 7/m);
    const e = selab(['train', '--case', '2', '--epochs', '-1', '--out', out()]);
    assert.equal(e.code, 1);
    assert.match(e.stderr, /^selab train: --epochs "-1": expected an integer ≥ 1/m);
    assert.equal(existsSync(out()), false);
    assert.equal(existsSync(join(dir, 'home')), false, 'nothing may be written to the cache either');
  });
});

describe('resume after SIGKILL', () => {
  it('a run killed after epoch 1 and resumed ends with epochs 1..E once each', async () => {
    const out = join(dir, 'killed');
    const history = join(out, 'tiny', 'history.json');
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test', 'train-resume-child.ts'), out, 'fresh', '3'], { cwd: root, stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    // Kill as soon as epoch 1's row is on disk: the run is then inside epoch 2.
    for (;;) {
      if (existsSync(history) && readJson<History>(history).rows.length >= 1) break;
      if (child.exitCode !== null) assert.fail('the child finished before it could be killed');
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    const killed = readJson<RunFile>(join(out, 'tiny', 'run.json'));
    assert.equal(killed.status, 'running', 'the kill must land before the run completes');
    assert.ok(readJson<History>(history).rows.length < 3);

    const resumed = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'test', 'train-resume-child.ts'), out, 'resume', '3'], { cwd: root, encoding: 'utf8' });
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.deepEqual(readJson<History>(history).rows.map((r) => r.epoch), [1, 2, 3]);
    const run = readJson<RunFile>(join(out, 'tiny', 'run.json'));
    assert.equal(run.status, 'completed');
    assert.equal(run.epochsCompleted, 3);
    assert.equal(run.resumes.length, 1);
  });
});

// Real CIFAR-10 through the CLI needs a fast backend: the pure-JS one would take many minutes.
const noFastRun = skipWithoutNative(loadAddon() !== undefined) || (existsSync(cifar) ? false : `needs ${cifar}`);
describe('selab train on real CIFAR-10 (onednn)', { skip: noFastRun }, () => {
  it('case 1, 2 epochs on 256 images, then --resume to 3 epochs', () => {
    const out = join(dir, 'real');
    const args = ['train', '--case', '1', '--train-limit', '256', '--test-limit', '128', '--batch-size', '64', '--backend', 'onednn', '--data', cifar, '--no-verify', '--out', out];
    const first = selab([...args, '--epochs', '2']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /case 1 epoch 2\/2: loss [\d.]+ acc [\d.]+ val_loss [\d.]+ val_acc [\d.]+/);
    const h1 = readJson<History>(join(out, 'case_1', 'history.json'));
    assert.deepEqual(h1.rows.map((r) => r.epoch), [1, 2]);
    assert.ok(h1.rows[1]!.loss < h1.rows[0]!.loss, `training loss should fall: ${h1.rows.map((r) => r.loss).join(', ')}`);
    const again = selab([...args, '--epochs', '2']);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /already holds a run .*--resume/);
    const second = selab([...args, '--epochs', '3', '--resume']);
    assert.equal(second.code, 0, second.stderr);
    const h2 = readJson<History>(join(out, 'case_1', 'history.json'));
    assert.deepEqual(h2.rows.map((r) => r.epoch), [1, 2, 3]);
    assert.deepEqual(h2.rows.slice(0, 2), h1.rows);
    const run = readJson<RunFile>(join(out, 'case_1', 'run.json'));
    assert.equal(run.status, 'completed');
    assert.equal(run.config.trainLimit, 256);
    assert.equal(run.environment.backend, 'onednn');
    assert.deepEqual(run.attention, null);
    assert.equal(run.params, 1_927_946);
  });

  it('any registered model with any attention: resnet20 + ECA, 1 epoch, the usual run files', () => {
    const out = join(dir, 'model-eca');
    const r = selab(['train', '--model', 'resnet20', '--attention', 'eca', '--epochs', '1', '--train-limit', '512', '--test-limit', '256',
      '--backend', 'onednn', '--data', cifar, '--no-verify', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const run = readJson<RunFile>(join(out, 'resnet20-eca', 'run.json'));
    assert.deepEqual([run.status, run.model, run.case, run.attention, run.config.optimizer, run.config.batchSize], ['completed', 'resnet20', null, { kind: 'eca' }, 'sgd-momentum', 128]);
    // ResNet-20's 271,098 weights plus ECA's k = 3 per unit (16, 32 and 64 channels all give k = 3) in its 9 units.
    assert.equal(run.params, 271_098 + 9 * 3);
    assert.deepEqual(readJson<History>(join(out, 'resnet20-eca', 'history.json')).rows.map((row) => row.epoch), [1]);
    assert.ok(existsSync(join(out, 'resnet20-eca', 'checkpoint', 'state.json')));
    const bad = selab(['train', '--model', 'vgg16', '--attention', 'eca', '--out', join(dir, 'never')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /selab train: model vgg16 has no place for channel attention \(--attention eca\)/);
  });
});

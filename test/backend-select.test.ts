import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describeAddonProblem, selectBackend } from '../src/backend/select.js';
import { loadAddon } from '../src/backend/onednn/addon.js';
import { packageRoot } from '../src/util/paths.js';
import { skipWithoutNative } from './native.js';

const hasAddon = loadAddon() !== undefined;
const noAddon = skipWithoutNative(hasAddon);

/** Runs a snippet in a fresh Node (backend choice and OpenMP threads are per process). */
function runSnippet(code: string, env: Record<string, string>, root = packageRoot()): { stdout: string; stderr: string; status: number | null } {
  const script = `import { selectBackend } from ${JSON.stringify(join(root, 'src/backend/select.ts'))};
import { loadAddon } from ${JSON.stringify(join(root, 'src/backend/onednn/addon.ts'))};
${code}`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    env: { ...process.env, SELAB_THREADS: '', OMP_NUM_THREADS: '', ...env },
    encoding: 'utf8',
  });
  return { stdout: child.stdout, stderr: child.stderr, status: child.status };
}

describe('selectBackend', () => {
  it('sets cpu', async () => {
    assert.equal(await selectBackend('cpu'), 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
  });

  it('sets wasm, with the gradient kernels it lacks', async () => {
    assert.equal(await selectBackend('wasm'), 'wasm');
    for (const name of [tf.Conv2DBackpropFilter, tf.DepthwiseConv2dNativeBackpropInput, tf.DepthwiseConv2dNativeBackpropFilter]) {
      assert.ok(tf.getKernel(name, 'wasm'), `${name} missing on wasm`);
    }
    const y = tf.conv2d(tf.ones([1, 4, 4, 1]) as tf.Tensor4D, tf.ones([3, 3, 1, 1]) as tf.Tensor4D, 1, 'valid');
    assert.deepEqual(Array.from(y.dataSync()), [9, 9, 9, 9]);
    y.dispose();
  });

  it('refuses tensorflow when @tensorflow/tfjs-node is not installed', async () => {
    let installed = true;
    try {
      await import('@tensorflow/tfjs-node' as string);
    } catch {
      installed = false;
    }
    if (installed) assert.equal(await selectBackend('tensorflow'), 'tensorflow');
    else await assert.rejects(selectBackend('tensorflow'), /@tensorflow\/tfjs-node/);
  });

  it('rejects an unknown name', async () => {
    await assert.rejects(selectBackend('gpu' as never), /unknown backend "gpu"/);
  });

  it('sets onednn, and auto picks it when tfjs-node is absent', { skip: noAddon }, async () => {
    assert.equal(await selectBackend('onednn'), 'onednn');
    await selectBackend('cpu');
    assert.equal(await selectBackend('auto'), 'onednn');
  });
});

describe('threads', { skip: noAddon }, () => {
  const threadsAfterSelect = 'await selectBackend("onednn"); console.log(loadAddon().info().threads);';

  it('SELAB_THREADS sets the OpenMP thread count', () => {
    const r = runSnippet(threadsAfterSelect, { SELAB_THREADS: '1' });
    assert.equal(r.stdout.trim(), '1', r.stderr);
  });

  it('OMP_NUM_THREADS is honoured when SELAB_THREADS is unset', () => {
    const r = runSnippet(threadsAfterSelect, { OMP_NUM_THREADS: '1' });
    assert.equal(r.stdout.trim(), '1', r.stderr);
  });

  it('a bad SELAB_THREADS is an error naming the variable', () => {
    const r = runSnippet(threadsAfterSelect, { SELAB_THREADS: 'two' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /SELAB_THREADS must be a positive integer, got "two"/);
  });
});

describe('without the addon', () => {
  it('auto falls back to wasm and warns once, naming the fix', () => {
    // A copy of the sources with no native/build: exactly what a failed addon build leaves.
    const root = mkdtempSync(join(tmpdir(), 'selab-noaddon-'));
    try {
      writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'selab', type: 'module' }));
      symlinkSync(join(packageRoot(), 'node_modules'), join(root, 'node_modules'));
      cpSync(join(packageRoot(), 'src'), join(root, 'src'), { recursive: true });
      const r = runSnippet('console.log(await selectBackend("auto")); console.log(await selectBackend("auto")); process.exit(0);', {}, root);
      assert.equal(r.stdout.trim().split('\n').filter((l) => l === 'wasm').length, 2, r.stderr);
      const warnings = r.stderr.split('\n').filter((l) => l.startsWith('selab: '));
      assert.equal(warnings.length, 1, r.stderr);
      assert.match(warnings[0]!, /was not built .*apt-get install -y libdnnl-dev g\+\+ make.*node native\/build\.mjs/);
      const explicit = runSnippet('await selectBackend("onednn");', {}, root);
      assert.notEqual(explicit.status, 0);
      assert.match(explicit.stderr, /--backend onednn: the native oneDNN backend was not built/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('describeAddonProblem', () => {
  it('names libdnnl and the apt package when oneDNN is missing', () => {
    const msg = describeAddonProblem(new Error('libdnnl.so.2: cannot open shared object file: No such file or directory'));
    assert.match(msg, /libdnnl\.so\.2/);
    assert.match(msg, /apt-get install -y libdnnl-dev/);
    assert.match(msg, /node native\/build\.mjs/);
  });

  it('names the OpenMP runtime package for libgomp', () => {
    const msg = describeAddonProblem(new Error('libgomp.so.1: cannot open shared object file: No such file or directory'));
    assert.match(msg, /libgomp\.so\.1/);
    assert.match(msg, /apt-get install -y libgomp1/);
  });

  it('says the addon was not built when the .node file is missing', () => {
    const msg = describeAddonProblem(new Error("Cannot find module '/x/native/build/Release/selab_onednn.node'"));
    assert.match(msg, /was not built/);
    assert.match(msg, /apt-get install -y libdnnl-dev g\+\+ make/);
  });
});

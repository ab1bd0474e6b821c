// Choosing the webgpu backend: by name on any adapter (SwiftShader here), by `auto` only on a
// hardware one, and without the optional packages one line that says so while the other backends
// work as before.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/backend/select.js';
import { hasVulkanLoader, isSoftwareAdapter, mayHaveHardwareVulkan, vulkanDriverFiles } from '../src/backend/webgpu/dawn.js';
import { packageRoot } from '../src/util/paths.js';
import { SWIFTSHADER_ICD, skipWithoutWebGpu } from './webgpu.js';

const skip = await skipWithoutWebGpu();

/** Runs a snippet in a fresh Node (one backend choice per process) and returns its output. */
function runSnippet(code: string, env: Record<string, string | undefined>, root = packageRoot()): { stdout: string; stderr: string; status: number | null } {
  const script = `import { selectBackend } from ${JSON.stringify(join(root, 'src/backend/select.ts'))};\n${code}`;
  const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, env: merged, encoding: 'utf8' });
  return { stdout: child.stdout, stderr: child.stderr, status: child.status };
}

/** A folder with an ICD manifest named like NVIDIA's (its library does not exist). */
function fakeHardwareIcd(dir: string): string {
  const file = join(dir, 'nvidia_icd.json');
  writeFileSync(file, JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: join(dir, 'libGLX_nvidia.so.0'), api_version: '1.3.0' } }));
  return file;
}

describe('adapters and drivers', () => {
  it('tells SwiftShader, lavapipe and fallback adapters from a hardware GPU', () => {
    assert.equal(isSoftwareAdapter({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader driver 5.0.0' }), true);
    assert.equal(isSoftwareAdapter({ vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }), true);
    assert.equal(isSoftwareAdapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H200' }), false);
    assert.equal(isSoftwareAdapter({ vendor: 'nvidia', architecture: 'hopper', isFallbackAdapter: true }), true);
  });

  it('finds ICD manifests as the Vulkan loader does, and sees no hardware in SwiftShader or lavapipe', () => {
    const dir = mkdtempSync(join(tmpdir(), 'selab-icd-'));
    try {
      writeFileSync(join(dir, 'lvp_icd.x86_64.json'), '{}');
      const nvidia = fakeHardwareIcd(dir);
      assert.deepEqual(vulkanDriverFiles({ VK_DRIVER_FILES: SWIFTSHADER_ICD }).length <= 1, true);
      assert.deepEqual(vulkanDriverFiles({ VK_ICD_FILENAMES: nvidia }), [nvidia]);
      assert.deepEqual(vulkanDriverFiles({ VK_DRIVER_FILES: dir }).sort(), [join(dir, 'lvp_icd.x86_64.json'), nvidia].sort());
      // The usual folders, under an empty XDG tree and home.
      assert.deepEqual(vulkanDriverFiles({ HOME: dir, XDG_CONFIG_DIRS: dir, XDG_DATA_DIRS: dir }).filter((f) => f.startsWith(dir)), []);
      assert.equal(mayHaveHardwareVulkan({ VK_DRIVER_FILES: join(dir, 'lvp_icd.x86_64.json') }), false);
      assert.equal(mayHaveHardwareVulkan({ VK_DRIVER_FILES: SWIFTSHADER_ICD }), false);
      if (hasVulkanLoader()) assert.equal(mayHaveHardwareVulkan({ VK_DRIVER_FILES: nvidia }), true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('selectBackend and webgpu', () => {
  it('sets webgpu by name, on SwiftShader too', { skip }, async () => {
    assert.equal(await selectBackend('webgpu'), 'webgpu');
    assert.equal(tf.getBackend(), 'webgpu');
    const y = tf.add(tf.ones([64]), 1);
    assert.deepEqual(Array.from(await y.data()).slice(0, 2), [2, 2]);
    y.dispose();
    await selectBackend('cpu');
  });

  it('auto does not take a software adapter, and says nothing about it', { skip: skip || (!existsSync(SWIFTSHADER_ICD) && `no SwiftShader at ${SWIFTSHADER_ICD}`) }, () => {
    // Only SwiftShader's driver, even on a machine that also has a GPU.
    const r = runSnippet('console.log(await selectBackend("auto")); process.exit(0);', { VK_ICD_FILENAMES: SWIFTSHADER_ICD, VK_DRIVER_FILES: undefined });
    assert.equal(r.status, 0, r.stderr);
    assert.notEqual(r.stdout.trim(), 'webgpu');
    assert.doesNotMatch(r.stderr, /webgpu|Vulkan/i);
    // With a (broken) hardware driver file beside it, auto asks Dawn, gets SwiftShader and declines it.
    const dir = mkdtempSync(join(tmpdir(), 'selab-icd-'));
    try {
      const probed = runSnippet('console.log(await selectBackend("auto")); process.exit(0);', { VK_ICD_FILENAMES: `${fakeHardwareIcd(dir)}:${SWIFTSHADER_ICD}`, VK_DRIVER_FILES: undefined });
      assert.equal(probed.status, 0, probed.stderr);
      assert.notEqual(probed.stdout.trim(), 'webgpu', probed.stderr);
      assert.doesNotMatch(probed.stderr, /^selab: .*webgpu/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('without the optional packages', () => {
  it('--backend webgpu is an error of one line; auto says so once where a GPU driver is installed, then trains on a CPU backend', () => {
    // A copy of the sources whose node_modules lacks webgpu and @tensorflow/tfjs-backend-webgpu.
    const root = mkdtempSync(join(tmpdir(), 'selab-nowebgpu-'));
    try {
      writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'selab', type: 'module' }));
      const modules = join(packageRoot(), 'node_modules');
      mkdirSync(join(root, 'node_modules', '@tensorflow'), { recursive: true });
      for (const name of readdirSync(modules)) {
        if (name !== 'webgpu' && name !== '@tensorflow') symlinkSync(join(modules, name), join(root, 'node_modules', name));
      }
      for (const name of readdirSync(join(modules, '@tensorflow'))) {
        if (name !== 'tfjs-backend-webgpu') symlinkSync(join(modules, '@tensorflow', name), join(root, 'node_modules', '@tensorflow', name));
      }
      cpSync(join(packageRoot(), 'src'), join(root, 'src'), { recursive: true });
      symlinkSync(join(packageRoot(), 'native'), join(root, 'native'));

      const explicit = runSnippet('await selectBackend("webgpu");', {}, root);
      assert.notEqual(explicit.status, 0);
      const errorLines = explicit.stderr.split('\n').filter((l) => l.startsWith('Error: selab: --backend webgpu'));
      assert.equal(errorLines.length, 1, explicit.stderr);
      assert.match(errorLines[0]!, /optional package `webgpu` .*is not installed/);

      const icd = fakeHardwareIcd(root);
      const auto = runSnippet('const name = await selectBackend("auto"); const tf = await import("@tensorflow/tfjs-core"); console.log(name, (await tf.add(tf.ones([2]), 1).data())[0]); process.exit(0);', { VK_ICD_FILENAMES: icd, VK_DRIVER_FILES: undefined }, root);
      assert.equal(auto.status, 0, auto.stderr);
      assert.match(auto.stdout.trim(), /^(onednn|wasm|cpu) 2$/);
      const warnings = auto.stderr.split('\n').filter((l) => l.startsWith('selab: ') && /webgpu/.test(l));
      if (hasVulkanLoader()) {
        assert.equal(warnings.length, 1, auto.stderr);
        assert.match(warnings[0]!, /Vulkan driver is installed but the webgpu backend cannot use it: the optional package `webgpu`/);
      } else {
        assert.equal(warnings.length, 0, auto.stderr);
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

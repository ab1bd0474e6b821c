// The layer rule of eslint.config.js: a module imports only from its own folder and from lower
// layers. Checked on planted files, so the rule is shown to fail as well as to pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { packageRoot } from '../src/util/paths.js';

const eslint = new ESLint({ cwd: packageRoot() });

async function layerErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(packageRoot(), file) });
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

test('an upward import fails lint, naming the layers', async () => {
  const [models] = await layerErrors('src/models/planted.ts', "import { trainEpoch } from '../engine/loop.js';\nexport const x = trainEpoch;\n");
  assert.match(models ?? '', /src\/models is in a lower layer than .*src\/engine.*: it may only import from src\/util, src\/ops, src\/backend, src\/data, src\/attention/);
  const deep = await layerErrors('src/backend/onednn/kernels/planted.ts', "import { RUN_FILE } from '../../../runs/files.js';\nexport const y = RUN_FILE;\n");
  assert.equal(deep.length, 1);
  const sibling = await layerErrors('src/data/planted.ts', "import { se } from '../attention/index.js';\nexport const z = se;\n");
  assert.equal(sibling.length, 1, 'folders of one layer do not import each other');
});

test('imports from lower layers and from the same folder pass', async () => {
  assert.deepEqual(await layerErrors('src/engine/planted.ts', "import { createModel } from '../models/all.js';\nimport { stepLr } from './schedule.js';\nexport const x = [createModel, stepLr];\n"), []);
  assert.deepEqual(await layerErrors('src/cli/planted.ts', "import { runCases } from '../experiments/run-cases.js';\nexport const x = runCases;\n"), []);
});

test('the source tree as committed has no upward import', async () => {
  const results = await eslint.lintFiles(['src/**/*.ts']);
  const upward = results.flatMap((r) => r.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => `${r.filePath}: ${m.message}`));
  assert.deepEqual(upward, []);
});

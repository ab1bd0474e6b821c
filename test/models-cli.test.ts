import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { packageRoot } from '../src/util/paths.js';
import { formatModelTable, type ModelRow } from '../src/cli/commands/models.js';
import { seParamCount } from '../src/attention/squeeze-excitation.js';

const run = promisify(execFile);

test('formatModelTable: one aligned line per row, numbers grouped', () => {
  const rows: ModelRow[] = [
    { case: 1, name: 'plain10', model: 'plain10', additions: [], se: false, training: 'scratch', optimizer: 'adam',
      params: 1_927_946, trainableParams: 1_925_258, inputShape: [32, 32, 3], macs: 266_013_184 },
    { case: null, name: 'x', model: 'x', additions: ['batchnorm'], se: true, training: null, optimizer: null,
      params: 5, trainableParams: 4, inputShape: [8, 8, 1], macs: 2_000_000_000 },
  ];
  const lines = formatModelTable(rows).split('\n');
  assert.equal(lines.length, 4);
  assert.match(lines[0]!, /^case\s+model\s+additions\s+SE\s+training\s+params\s+trainable\s+input\s+MACs\/image$/);
  assert.match(lines[2]!, /^1\s+plain10\s+-\s+no\s+scratch \(adam\)\s+1,927,946\s+1,925,258\s+32×32×3\s+266\.0 M$/);
  assert.match(lines[3]!, /^-\s+x\s+batchnorm\s+yes\s+-\s+5\s+4\s+8×8×1\s+2\.00 G$/);
  assert.equal(lines[2]!.indexOf('1,925,258') + '1,925,258'.length, lines[3]!.indexOf(' 4 ') + 2, 'numbers right-aligned');
});

test('selab models --json lists the seven cases with exact counts and the registered models', async () => {
  const root = packageRoot();
  const { stdout } = await run(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'models', '--json'],
    { cwd: root, maxBuffer: 16 << 20 });
  const rows = JSON.parse(stdout) as ModelRow[];
  const cases = rows.filter((r) => r.case !== null);
  assert.deepEqual(cases.map((r) => [r.case, r.name, r.params]), [
    [1, 'plain10', 1_927_946], [2, 'plain10-se', 1_993_970], [3, 'vgg16', 14_719_818], [4, 'vgg16-bn', 14_736_714],
    [5, 'vgg16-bn-se', 15_194_074], [6, 'mobilenet', 3_239_114], [7, 'mobilenet-se', 4_205_590],
  ]);
  assert.deepEqual(cases[5]!.inputShape, [128, 128, 3]);
  assert.equal(cases[0]!.macs, 266_013_184);
  assert.equal(cases[0]!.trainableParams, 1_925_258);
  // Then every registered model without attention and, where it takes attention, with SE (r = 16).
  const registered = rows.filter((r) => r.case === null);
  const entries = ['plain10', 'vgg16', 'vgg16-bn', 'mobilenet', 'resnet20', 'resnet32', 'resnet56', 'resnet110', 'resnet164', 'wrn16-8'];
  const withSE = new Set(entries.filter((e) => e !== 'vgg16'));
  assert.deepEqual(registered.map((r) => r.name), entries.flatMap((e) => (withSE.has(e) ? [e, `${e}-se`] : [e])));
  for (const r of registered) {
    assert.equal(r.se, r.name.endsWith('-se'), r.name);
    assert.equal(r.model, r.name.replace(/-se$/, ''), r.name);
    assert.equal(r.description?.endsWith(' + SE (r = 16)'), r.se, r.name);
  }
  const params = (name: string) => registered.find((r) => r.name === name)!.params;
  // Without attention the registry builds what the cases build.
  assert.equal(params('plain10'), 1_927_946);
  assert.equal(params('vgg16-bn'), 14_736_714);
  assert.equal(params('mobilenet'), 3_239_114);
  assert.equal(params('resnet20'), 271_098);
  // With SE r = 16: one block per conv unit of plain10, one per residual unit of ResNet-20.
  const se16 = (c: number) => seParamCount(c, 16);
  assert.equal(params('plain10-se') - params('plain10'), 3 * (se16(64) + se16(128) + se16(256)));
  assert.equal(params('resnet20-se') - params('resnet20'), 3 * (se16(16) + se16(32) + se16(64)));
});

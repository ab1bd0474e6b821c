import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { packageRoot } from '../src/util/paths.js';

const root = packageRoot();
const fixtures = join(root, 'test', 'fixtures', 'runs');

function selab(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Fixture runs (test/fixtures/runs): case 1 final 60% (best 62% at epoch 2), case 2 final 65%
// (best 65% at 3), case 3 85%, case 5 running at 83% after 1 of 2 epochs; 4, 6, 7 missing; plus a
// sweep run at 99% that must not count as case 2.
describe('selab table', () => {
  it('prints both tables in Markdown with final/best accuracies, gains and the reference numbers', () => {
    const { code, stdout, stderr } = selab('table', '--out', fixtures);
    assert.equal(code, 0, stderr);
    const results = stdout.slice(stdout.indexOf('### Results')).split('\n');
    const row = (c: number) => results.find((l) => l.startsWith(`| ${c} |`));
    assert.match(stdout, /### Conditions/);
    // The fixtures predate the protocols: they read as keras runs validated on the whole test split.
    assert.match(stdout, /\| 2 \| plain10-se \| plain10 \| – \| yes \| scratch \| adam, lr 0\.001 \| 32×32×3 \| 1,993,970 \| 1,991,282 \| 266,078,720 \| keras \|/);
    assert.match(stdout, /\| 4 \| vgg16-bn \| vgg16 \| batchnorm \| no \| transfer \| rmsprop, lr 1e-5 \| 64×64×3 \| 14,736,714 \| {2}\| {2}\| {2}\|/);
    assert.equal(row(1), '| 1 | plain10 |  | 3/3 epochs | 3 | keras | 60.00 |  | 62.00 (ep 2) |  | 60.00 | 89.33 |  |');
    assert.equal(row(2), '| 2 | plain10-se | 1 | 3/3 epochs | 3 | keras | 65.00 | +5.00 | 65.00 (ep 3) | +3.00 | 65.00 | 89.51 | +0.18 |');
    assert.equal(row(4), '| 4 | vgg16-bn | 3 | missing | 0 |  | missing |  | missing |  |  | 91.12 | +0.78 |');
    assert.equal(row(5), '| 5 | vgg16-bn-se | 3 | running, 1/2 epochs | 1 | keras | 83.00 | -2.00 | 83.00 (ep 1) | -2.00 | 83.00 | 91.03 | +0.69 |');
    assert.equal(row(7), '| 7 | mobilenet-se | 6 | missing | 0 |  | missing |  | missing |  |  | 92.38 | -1.07 |');
  });

  it('--format json gives fractions, percentage-point gains and null for missing cases', () => {
    const { code, stdout, stderr } = selab('table', '--out', fixtures, '--format', 'json');
    assert.equal(code, 0, stderr);
    const t = JSON.parse(stdout) as { conditions: { case: number; params: number }[]; results: Record<string, unknown>[] };
    assert.equal(t.conditions.length, 7);
    assert.equal(t.conditions[2]!.params, 14_719_818);
    const r = (c: number) => t.results.find((x) => x.case === c)!;
    assert.equal(r(1).finalAcc, 0.6);
    assert.equal(r(1).bestAcc, 0.62);
    assert.equal(r(1).bestEpoch, 2);
    assert.ok(Math.abs((r(2).finalGain as number) - 5) < 1e-9);
    assert.ok(Math.abs((r(2).bestGain as number) - 3) < 1e-9);
    assert.ok(Math.abs((r(5).finalGain as number) + 2) < 1e-9);
    assert.equal(r(6).status, 'missing');
    assert.equal(r(6).finalAcc, null);
    assert.equal(r(7).finalGain, null);
    assert.ok(Math.abs((r(7).referenceGain as number) + 1.07) < 1e-9);
  });

  it('--format csv gives two blocks with plain numbers', () => {
    const { code, stdout } = selab('table', '--out', fixtures, '--format', 'csv');
    assert.equal(code, 0);
    const [conditions, results] = stdout.trim().split('\n\n');
    assert.equal(conditions!.split('\n')[0], 'case,name,model,additions,SE,training,optimizer,input,params,trainable,MACs,protocol');
    assert.ok(conditions!.includes('\n3,vgg16,vgg16,,no,transfer,"rmsprop, lr 1e-5",64x64x3,14719818,14719818,1254000000,keras'));
    const lines = results!.split('\n');
    assert.equal(lines[0], 'case,name,vs,status,epochs,protocol,validation,final_acc,final_gain,best_acc,best_epoch,best_gain,test_acc,reference_acc,reference_gain');
    assert.equal(lines[2], '2,plain10-se,1,completed,3,keras,full,65.00,+5.00,65.00,3,+3.00,65.00,89.51,+0.18');
    assert.equal(lines[4], '4,vgg16-bn,3,missing,0,,,,,,,,,91.12,+0.78');
  });

  it('runs of different protocols: side by side, no gain between them; a reference run\'s acc is its validation subset, test acc the whole split', async () => {
    const out = mkdtempSync(join(tmpdir(), 'selab-table-protocols-'));
    try {
      cpSync(join(fixtures, 'case_1'), join(out, 'case_1'), { recursive: true });
      cpSync(join(fixtures, 'case_2'), join(out, 'case_2'), { recursive: true });
      const file = join(out, 'case_2', 'run.json');
      const run = JSON.parse(readFileSync(file, 'utf8'));
      run.config = { ...run.config, protocol: 'reference', validation: 'reference', optimizer: 'adam-tf1' };
      run.final = { ...run.final, val_acc: 0.66, test_acc: 0.64, test_loss: 1 };
      run.best = { ...run.best, val_acc: 0.66, test_acc: 0.64 };
      writeFileSync(file, JSON.stringify(run));
      const { code, stdout, stderr } = selab('table', '--out', out);
      assert.equal(code, 0, stderr);
      const row2 = stdout.split('\n').find((l) => l.startsWith('| 2 | plain10-se | 1 |'));
      assert.equal(row2, '| 2 | plain10-se | 1 | 3/3 epochs | 3 | reference | 66.00 | n/a: protocols differ | 66.00 (ep 3) | n/a: protocols differ | 64.00 | 89.51 | +0.18 |');
      assert.match(stdout, /Case 2: not comparable: case 2 ran under --protocol reference \(validation reference\), case 1 under keras \(validation full\)\./);
      const json = JSON.parse(selab('table', '--out', out, '--format', 'json').stdout) as { results: Record<string, unknown>[] };
      const r2 = json.results.find((r) => r.case === 2)!;
      assert.deepEqual([r2.protocol, r2.finalGain, r2.finalTestAcc], ['reference', null, 0.64]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('bad input: unknown format, missing folder', () => {
    const bad = selab('table', '--out', fixtures, '--format', 'xlsx');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--format "xlsx": expected one of md, csv, json/);
    const missing = selab('table', '--out', join(fixtures, 'nope'));
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /--out .*nope: no such folder/);
  });
});

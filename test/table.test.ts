import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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
    assert.match(stdout, /\| 2 \| plain10-se \| plain10 \| – \| yes \| scratch \| adam, lr 0\.001 \| 32×32×3 \| 1,993,970 \| 1,991,282 \| 266,078,720 \|/);
    assert.match(stdout, /\| 4 \| vgg16-bn \| vgg16 \| batchnorm \| no \| transfer \| rmsprop, lr 1e-5 \| 64×64×3 \| 14,736,714 \| {2}\| {2}\|/);
    assert.equal(row(1), '| 1 | plain10 |  | 3/3 epochs | 3 | 60.00 |  | 62.00 (ep 2) |  | 89.33 |  |');
    assert.equal(row(2), '| 2 | plain10-se | 1 | 3/3 epochs | 3 | 65.00 | +5.00 | 65.00 (ep 3) | +3.00 | 89.51 | +0.18 |');
    assert.equal(row(4), '| 4 | vgg16-bn | 3 | missing | 0 | missing |  | missing |  | 91.12 | +0.78 |');
    assert.equal(row(5), '| 5 | vgg16-bn-se | 3 | running, 1/2 epochs | 1 | 83.00 | -2.00 | 83.00 (ep 1) | -2.00 | 91.03 | +0.69 |');
    assert.equal(row(7), '| 7 | mobilenet-se | 6 | missing | 0 | missing |  | missing |  | 92.38 | -1.07 |');
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
    assert.equal(conditions!.split('\n')[0], 'case,name,model,additions,SE,training,optimizer,input,params,trainable,MACs');
    assert.ok(conditions!.includes('\n3,vgg16,vgg16,,no,transfer,"rmsprop, lr 1e-5",64x64x3,14719818,14719818,1254000000'));
    const lines = results!.split('\n');
    assert.equal(lines[0], 'case,name,vs,status,epochs,final_acc,final_gain,best_acc,best_epoch,best_gain,reference_acc,reference_gain');
    assert.equal(lines[2], '2,plain10-se,1,completed,3,65.00,+5.00,65.00,3,+3.00,89.51,+0.18');
    assert.equal(lines[4], '4,vgg16-bn,3,missing,0,,,,,,91.12,+0.78');
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

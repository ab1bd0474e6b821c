// The real CIFAR-10 copy at ../shared/datasets (official binary layout, non-official record
// order): counts, per-class counts, and the first records' labels and pixels, whose expected
// values were read from the archive independently (Python's tarfile, then `od -t u1`).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, test } from 'node:test';
import { loadCifar10, type Dataset } from '../src/data/cifar.js';
import { classCounts, DataError } from '../src/data/format.js';
import { packageRoot } from '../src/util/paths.js';

const ARCHIVE = join(packageRoot(), '..', 'shared', 'datasets', 'cifar-10-binary.tar.gz');
const present = existsSync(ARCHIVE);
const skip = present ? false : `real CIFAR-10 copy not found at ${ARCHIVE}`;
const home = mkdtempSync(join(tmpdir(), 'selab-real-'));

after(() => rmSync(home, { recursive: true, force: true }));

let loaded: Promise<Dataset> | undefined;
function dataset(): Promise<Dataset> {
  loaded ??= loadCifar10({ data: ARCHIVE, home, verify: false, quiet: true });
  return loaded;
}

describe('the real CIFAR-10 copy', { skip }, () => {
  test('without --no-verify it is rejected: its MD5 is not the official one', async () => {
    await assert.rejects(loadCifar10({ data: ARCHIVE, home, quiet: true }), (err: Error) => {
      assert.ok(err instanceof DataError);
      assert.match(err.message, /expected md5 c32a1d4ab5d03f1284b67883e8d87530 \(official CIFAR-10 archive\), got 9cb36a0da7587f9a1626f1180d82c238/);
      return true;
    });
  });

  test('50,000 train and 10,000 test images, 5,000 and 1,000 per class, official class names', async () => {
    const ds = await dataset();
    assert.equal(ds.train.count, 50_000);
    assert.equal(ds.test.count, 10_000);
    assert.deepEqual(classCounts(ds.train, 10), new Array(10).fill(5000));
    assert.deepEqual(classCounts(ds.test, 10), new Array(10).fill(1000));
    assert.deepEqual(ds.classes, ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
  });

  test('first records: labels and pixel values as read from the archive', async () => {
    const { train, test } = await dataset();
    const px = (s: typeof train, n: number, row: number, col: number) => [...s.images.subarray(((n * 32 + row) * 32 + col) * 3, ((n * 32 + row) * 32 + col) * 3 + 3)];
    // data_batch_1.bin record 0: label 5 (dog); R plane starts 31 31 32 30 30, G 24 24 25 23 23, B 14 14 15 13 13.
    assert.equal(train.labels[0], 5);
    assert.deepEqual([0, 1, 2, 3, 4].map((c) => px(train, 0, 0, c)), [[31, 24, 14], [31, 24, 14], [32, 25, 15], [30, 23, 13], [30, 23, 13]]);
    assert.deepEqual(px(train, 0, 31, 31), [118, 1, 10]);
    // Record 1: label 6 (frog), first pixel 175 181 205.
    assert.equal(train.labels[1], 6);
    assert.deepEqual(px(train, 1, 0, 0), [175, 181, 205]);
    // test_batch.bin record 0: label 0 (airplane), first pixel 220 211 235.
    assert.equal(test.labels[0], 0);
    assert.deepEqual(px(test, 0, 0, 0), [220, 211, 235]);
  });
});

describe('selab data info', { skip }, () => {
  const cli = (...args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', join(packageRoot(), 'src', 'cli', 'main.ts'), 'data', 'info', '--data', ARCHIVE, ...args], {
      env: { ...process.env, SELAB_HOME: home },
      maxBuffer: 1 << 20,
    });

  test('--json gives per-split and per-class counts and the class names', async () => {
    await dataset();
    const { stdout } = await cli('--no-verify', '--json');
    assert.deepEqual(JSON.parse(stdout), {
      train: { count: 50000, perClass: new Array(10).fill(5000) },
      test: { count: 10000, perClass: new Array(10).fill(1000) },
      classes: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
    });
  });

  test('without --no-verify: exit code 1 and the checksum error on stderr', async () => {
    await dataset();
    await assert.rejects(cli(), (err: Error & { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /selab data info: checksum mismatch for .*cifar-10-binary\.tar\.gz: expected md5 c32a1d4ab5d03f1284b67883e8d87530/);
      return true;
    });
  });
});

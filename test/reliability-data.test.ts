// A CIFAR archive with a bad member: the error names the archive the user gave and the member,
// and the cache keeps no extraction of it.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tar from 'tar';
import { loadCifar } from '../src/data/cifar.js';
import { CIFAR10, DataError, type CifarFormat } from '../src/data/format.js';

const PER_FILE = 4;
const FORMAT: CifarFormat = { ...CIFAR10, recordsPerFile: PER_FILE };
const CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

let work: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), 'selab-bad-archive-'));
});
after(() => {
  rmSync(work, { recursive: true, force: true });
});

/** A .tar.gz of cifar-10-batches-bin/ with PER_FILE records a file, after `breakIt` changed the folder. */
async function archiveWith(name: string, breakIt: (dir: string) => void): Promise<string> {
  const root = join(work, name);
  const dir = join(root, FORMAT.dirName);
  mkdirSync(dir, { recursive: true });
  for (const file of [...FORMAT.trainFiles, ...FORMAT.testFiles]) {
    const buf = Buffer.alloc(PER_FILE * 3073, 128);
    for (let r = 0; r < PER_FILE; r++) buf[r * 3073] = r;
    writeFileSync(join(dir, file), buf);
  }
  writeFileSync(join(dir, FORMAT.classNamesFile), CLASSES.join('\n') + '\n');
  breakIt(dir);
  const archive = join(work, `${name}.tar.gz`);
  await tar.c({ gzip: true, file: archive, cwd: root }, [FORMAT.dirName]);
  return archive;
}

/** Loads `archive` into a fresh cache; returns the error and what the cache's extraction folder holds. */
async function loadBad(archive: string): Promise<{ err: Error; cached: string[] }> {
  const home = mkdtempSync(join(work, 'home-'));
  let err: Error | undefined;
  try {
    await loadCifar(FORMAT, { data: archive, home, verify: false, quiet: true });
  } catch (e) {
    err = e as Error;
  }
  assert.ok(err, `${archive} loaded`);
  const extracted = join(home, 'data', 'extracted');
  return { err, cached: existsSync(extracted) ? readdirSync(extracted, { recursive: true }) as string[] : [] };
}

describe('an archive with a bad member', () => {
  test('a truncated data_batch_1.bin: the archive and the member are named, nothing is cached', async () => {
    const archive = await archiveWith('truncated', (dir) => writeFileSync(join(dir, 'data_batch_1.bin'), Buffer.alloc(1000)));
    const { err, cached } = await loadBad(archive);
    assert.ok(err instanceof DataError, String(err));
    assert.equal(
      err.message,
      `${archive}: member cifar-10-batches-bin/data_batch_1.bin: 1000 bytes, expected 12292 bytes (4 records of 3073 bytes); the file is truncated or not CIFAR-10 binary data`,
    );
    assert.deepEqual(cached, []);
  });

  test('a bad label in test_batch.bin', async () => {
    const archive = await archiveWith('label', (dir) => {
      const buf = Buffer.alloc(PER_FILE * 3073);
      buf[3 * 3073] = 12;
      writeFileSync(join(dir, 'test_batch.bin'), buf);
    });
    const { err, cached } = await loadBad(archive);
    assert.equal(err.message, `${archive}: member cifar-10-batches-bin/test_batch.bin: record 3 (byte offset 9219) has label 12, expected 0–9`);
    assert.deepEqual(cached, []);
  });

  test('a class-name file with too few names', async () => {
    const archive = await archiveWith('names', (dir) => writeFileSync(join(dir, 'batches.meta.txt'), 'cat\ndog\n'));
    const { err, cached } = await loadBad(archive);
    assert.equal(err.message, `${archive}: member cifar-10-batches-bin/batches.meta.txt: 2 class names, expected 10 (one a line)`);
    assert.deepEqual(cached, []);
  });
});

// CIFAR binary parsing and the data sources (folder, .tar.gz, http/file URLs), on small
// generated files: every source loads the same pixels, every failure is a clear error and leaves
// the cache clean.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import * as tar from 'tar';
import { loadCifar, type LoadOptions } from '../src/data/cifar.js';
import { CIFAR10, CIFAR100, classCounts, DataError, parseRecords, recordBytes, type CifarFormat, type Split } from '../src/data/format.js';

const CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
const PER_FILE = 4;
const TEST_FORMAT: CifarFormat = { ...CIFAR10, recordsPerFile: PER_FILE };

/** The generated value at (row, col, channel) of record `r` of file `f`. */
function pixel(f: number, r: number, row: number, col: number, ch: number): number {
  return (f * 41 + r * 7 + row * 3 + col * 5 + ch * 11) & 255;
}
function label(f: number, r: number): number {
  return (f * PER_FILE + r * 3) % 10;
}

/** A data file in the official layout: label byte, then the R, G and B planes, row-major. */
function makeBin(f: number, records = PER_FILE): Buffer {
  const buf = Buffer.alloc(records * 3073);
  for (let r = 0; r < records; r++) {
    const o = r * 3073;
    buf[o] = label(f, r);
    for (let ch = 0; ch < 3; ch++) {
      for (let row = 0; row < 32; row++) {
        for (let col = 0; col < 32; col++) buf[o + 1 + ch * 1024 + row * 32 + col] = pixel(f, r, row, col, ch);
      }
    }
  }
  return buf;
}

const FILES = [...CIFAR10.trainFiles, ...CIFAR10.testFiles];

/** `<root>/cifar-10-batches-bin/` with all files; the official meta file has trailing blank lines. */
function makeDataset(root: string): string {
  const dir = join(root, 'cifar-10-batches-bin');
  mkdirSync(dir, { recursive: true });
  FILES.forEach((name, f) => writeFileSync(join(dir, name), makeBin(f)));
  writeFileSync(join(dir, 'batches.meta.txt'), CLASSES.join('\n') + '\n\n');
  return dir;
}

let work: string;
let archive: string;
let archiveMd5: string;
let server: Server;
let base: string;
let requests: string[] = [];

function freshHome(): string {
  return mkdtempSync(join(work, 'home-'));
}

/** Every file and folder below `dir`, relative. */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[]).sort();
}

function load(data: string, home: string, extra: Partial<LoadOptions> & { format?: CifarFormat } = {}) {
  const { format = { ...TEST_FORMAT, md5: archiveMd5 }, ...rest } = extra;
  return loadCifar(format, { data, home, quiet: true, ...rest });
}

function checkPixels(train: Split, test: Split): void {
  assert.equal(train.count, 5 * PER_FILE);
  assert.equal(test.count, PER_FILE);
  for (const [split, files] of [[train, [0, 1, 2, 3, 4]], [test, [5]]] as const) {
    for (const [k, f] of files.entries()) {
      for (let r = 0; r < PER_FILE; r++) {
        const n = k * PER_FILE + r;
        assert.equal(split.labels[n], label(f, r), `label of image ${n}`);
        for (const [row, col] of [[0, 0], [0, 31], [5, 17], [31, 0], [31, 31]] as const) {
          for (let ch = 0; ch < 3; ch++) {
            assert.equal(split.images[((n * 32 + row) * 32 + col) * 3 + ch], pixel(f, r, row, col, ch), `image ${n} (${row}, ${col}, ${ch})`);
          }
        }
      }
    }
  }
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'selab-data-'));
  makeDataset(join(work, 'src'));
  archive = join(work, 'cifar-10-binary.tar.gz');
  await tar.c({ gzip: true, file: archive, cwd: join(work, 'src') }, ['cifar-10-batches-bin']);
  archiveMd5 = createHash('md5').update(readFileSync(archive)).digest('hex');
  const bytes = readFileSync(archive);
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (req.url === '/cifar-10-binary.tar.gz') {
      res.writeHead(200, { 'content-length': bytes.length });
      res.end(bytes);
    } else if (req.url === '/cut/cifar-10-binary.tar.gz') {
      // Promises the whole archive, sends half, then drops the connection.
      res.writeHead(200, { 'content-length': bytes.length });
      res.write(bytes.subarray(0, bytes.length >> 1), () => res.socket?.destroy());
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.close();
  rmSync(work, { recursive: true, force: true });
});

describe('parser', () => {
  test('pixels land at (row, col, channel) in NHWC, labels and class names are read', async () => {
    const ds = await load(join(work, 'src'), freshHome());
    checkPixels(ds.train, ds.test);
    assert.deepEqual(ds.classes, CLASSES);
    assert.equal(ds.source.kind, 'directory');
    assert.equal(ds.source.verified, false);
    assert.deepEqual(classCounts(ds.test, 10), [1, 0, 0, 1, 0, 0, 1, 0, 0, 1]);
  });

  test('the cifar-10-batches-bin folder itself is accepted', async () => {
    const ds = await load(join(work, 'src', 'cifar-10-batches-bin'), freshHome());
    checkPixels(ds.train, ds.test);
  });

  test('two label bytes (CIFAR-100: coarse, fine) select the configured one', () => {
    const fmt: CifarFormat = { ...TEST_FORMAT, labelBytes: 2, labelIndex: 1, numClasses: 100, recordsPerFile: undefined };
    assert.equal(recordBytes(fmt), 3074);
    const buf = new Uint8Array(2 * 3074);
    for (let r = 0; r < 2; r++) {
      buf[r * 3074] = 19 - r; // coarse
      buf[r * 3074 + 1] = 99 - r; // fine
      buf[r * 3074 + 2 + 1024 + 33] = 200 + r; // green at (row 1, col 1)
    }
    const split: Split = { images: new Uint8Array(2 * 3072), labels: new Uint8Array(2), count: 2, height: 32, width: 32, channels: 3 };
    parseRecords(buf, 'train.bin', fmt, split, 0);
    assert.deepEqual([...split.labels], [99, 98]);
    assert.equal(split.images[(32 + 1) * 3 + 1], 200);
    assert.equal(split.images[3072 + (32 + 1) * 3 + 1], 201);
    const coarse = { ...fmt, labelIndex: 0, numClasses: 20 };
    parseRecords(buf, 'train.bin', coarse, split, 0);
    assert.deepEqual([...split.labels], [19, 18]);
  });
});

describe('bad data', () => {
  function brokenCopy(name: string, breakIt: (dir: string) => void): string {
    const root = join(work, name);
    breakIt(makeDataset(root));
    return root;
  }

  test('a truncated file names the file, its size and the expected size', async () => {
    const root = brokenCopy('truncated', (dir) => truncateSync(join(dir, 'data_batch_3.bin'), PER_FILE * 3073 - 1));
    await assert.rejects(load(root, freshHome()), (err: Error) => {
      assert.ok(err instanceof DataError);
      assert.match(err.message, /data_batch_3\.bin: 12291 bytes, expected 12292 bytes \(4 records of 3073 bytes\)/);
      return true;
    });
  });

  test('the real format expects 10,000 records per file', async () => {
    await assert.rejects(load(join(work, 'src'), freshHome(), { format: CIFAR10 }), /data_batch_1\.bin: 12292 bytes, expected 30730000 bytes \(10000 records of 3073 bytes\)/);
  });

  test('a bad label names the file, the record and the allowed range', async () => {
    const root = brokenCopy('badlabel', (dir) => {
      const p = join(dir, 'test_batch.bin');
      const b = readFileSync(p);
      b[2 * 3073] = 10;
      writeFileSync(p, b);
    });
    await assert.rejects(load(root, freshHome()), /test_batch\.bin: record 2 \(byte offset 6146\) has label 10, expected 0–9/);
  });

  test('a missing data file or class-name file is named', async () => {
    const root = brokenCopy('missing', (dir) => rmSync(join(dir, 'test_batch.bin')));
    await assert.rejects(load(root, freshHome()), /missing file .*cifar-10-batches-bin\/test_batch\.bin: expected CIFAR-10 binary data of 12292 bytes/);
    const root2 = brokenCopy('nometa', (dir) => writeFileSync(join(dir, 'batches.meta.txt'), 'cat\ndog\n'));
    await assert.rejects(load(root2, freshHome()), /batches\.meta\.txt: 2 class names, expected 10/);
  });

  test('a folder without the data, or a path that does not exist, is named', async () => {
    const empty = join(work, 'empty');
    mkdirSync(empty, { recursive: true });
    await assert.rejects(load(empty, freshHome()), /--data .*empty: folder has no cifar-10-batches-bin\//);
    await assert.rejects(load(join(work, 'nope.tar.gz'), freshHome()), /--data .*nope\.tar\.gz: no such file or folder/);
  });
});

describe('archives', () => {
  test('a .tar.gz is checked, extracted into the cache once, and read from there afterwards', async () => {
    const home = freshHome();
    const logs: string[] = [];
    const ds = await load(archive, home, { log: (l) => logs.push(l) });
    checkPixels(ds.train, ds.test);
    assert.equal(ds.source.kind, 'archive');
    assert.equal(ds.source.verified, true);
    assert.equal(ds.source.md5, archiveMd5);
    assert.ok(ds.source.dir.startsWith(join(home, 'data', 'extracted')), ds.source.dir);
    assert.ok(logs.some((l) => l.startsWith('extracting ')));
    const record = JSON.parse(readFileSync(join(ds.source.dir, '..', 'source.json'), 'utf8')) as { md5: string; size: number };
    assert.equal(record.md5, archiveMd5);
    assert.equal(record.size, statSync(archive).size);

    const logs2: string[] = [];
    const again = await load(archive, home, { log: (l) => logs2.push(l) });
    assert.equal(again.source.dir, ds.source.dir);
    assert.deepEqual(logs2, [], 'second load neither hashes nor extracts');
    assert.ok(!tree(home).some((p) => p.includes('selab-tmp')));
  });

  test('a checksum mismatch names the file and both sums, suggests --no-verify, and caches nothing', async () => {
    const home = freshHome();
    const wrong = { ...TEST_FORMAT, md5: '0123456789abcdef0123456789abcdef' };
    await assert.rejects(load(archive, home, { format: wrong }), (err: Error) => {
      assert.ok(err instanceof DataError);
      assert.ok(err.message.includes(`checksum mismatch for ${archive}: expected md5 0123456789abcdef0123456789abcdef`), err.message);
      assert.ok(err.message.includes(`got ${archiveMd5}`), err.message);
      assert.match(err.message, /--no-verify/);
      return true;
    });
    assert.deepEqual(tree(join(home, 'data', 'extracted')), []);
    const ds = await load(archive, home, { format: wrong, verify: false });
    assert.equal(ds.source.verified, false);
    checkPixels(ds.train, ds.test);
    // Verification is not skipped because the archive is already extracted.
    await assert.rejects(load(archive, home, { format: wrong }), /checksum mismatch/);
  });

  test('a truncated archive is a clear error and leaves the cache clean', async () => {
    const cut = join(work, 'cut.tar.gz');
    const bytes = readFileSync(archive);
    writeFileSync(cut, bytes.subarray(0, bytes.length >> 1));
    const home = freshHome();
    await assert.rejects(load(cut, home, { verify: false }), (err: Error) => {
      assert.ok(err instanceof DataError, String(err.stack));
      assert.match(err.message, /cannot extract .*cut\.tar\.gz/);
      return true;
    });
    assert.deepEqual(tree(join(home, 'data', 'extracted')), []);
  });

  test('an archive without the expected files is named', async () => {
    const odd = join(work, 'odd.tar.gz');
    mkdirSync(join(work, 'odd', 'cifar-10-batches-bin'), { recursive: true });
    writeFileSync(join(work, 'odd', 'cifar-10-batches-bin', 'batches.meta.txt'), CLASSES.join('\n'));
    await tar.c({ gzip: true, file: odd, cwd: join(work, 'odd') }, ['cifar-10-batches-bin']);
    const home = freshHome();
    await assert.rejects(load(odd, home, { verify: false }), /odd\.tar\.gz: archive has no cifar-10-batches-bin\/data_batch_1\.bin/);
    assert.deepEqual(tree(join(home, 'data', 'extracted')), []);
  });
});

describe('URLs', () => {
  test('http: downloaded once into the cache, verified, extracted', async () => {
    const home = freshHome();
    requests = [];
    const url = `${base}/cifar-10-binary.tar.gz`;
    const progress: number[] = [];
    const ds = await load(url, home, { onDownloadProgress: (r) => progress.push(r) });
    checkPixels(ds.train, ds.test);
    assert.equal(ds.source.kind, 'url');
    assert.equal(ds.source.verified, true);
    assert.equal(progress.at(-1), statSync(archive).size);
    const again = await load(url, home);
    assert.equal(again.source.dir, ds.source.dir);
    assert.deepEqual(requests, ['/cifar-10-binary.tar.gz'], 'one request for two loads');
    assert.equal(tree(join(home, 'data', 'downloads')).length, 1);
  });

  test('file:// URLs are copied into the cache like downloads', async () => {
    const ds = await load(pathToFileURL(archive).href, freshHome());
    assert.equal(ds.source.kind, 'url');
    checkPixels(ds.train, ds.test);
  });

  test('a wrong checksum over http names both sums and caches nothing', async () => {
    const home = freshHome();
    const wrong = { ...TEST_FORMAT, md5: 'ffffffffffffffffffffffffffffffff' };
    await assert.rejects(load(`${base}/cifar-10-binary.tar.gz`, home, { format: wrong }), (err: Error) => {
      assert.ok(err instanceof DataError);
      assert.match(err.message, new RegExp(`expected md5 f{32}, got ${archiveMd5}`));
      assert.match(err.message, /--no-verify/);
      return true;
    });
    assert.deepEqual(tree(join(home, 'data')), ['downloads']);
  });

  test('an interrupted download (connection closed before Content-Length) caches nothing', async () => {
    const home = freshHome();
    await assert.rejects(load(`${base}/cut/cifar-10-binary.tar.gz`, home), /was cut off: received \d+ of \d+ bytes/);
    assert.deepEqual(tree(join(home, 'data')), ['downloads']);
  });

  test('HTTP 404 is a clear error and caches nothing', async () => {
    const home = freshHome();
    await assert.rejects(load(`${base}/missing.tar.gz`, home), /missing\.tar\.gz failed: HTTP 404 Not Found\. Without network access, point --data/);
    assert.deepEqual(tree(join(home, 'data')), ['downloads']);
  });

  test('SELAB_DATA and SELAB_HOME are the defaults for data and home', async () => {
    const home = freshHome();
    process.env.SELAB_DATA = archive;
    process.env.SELAB_HOME = home;
    try {
      const ds = await loadCifar({ ...TEST_FORMAT, md5: archiveMd5 }, { quiet: true });
      assert.equal(ds.source.spec, archive);
      assert.ok(ds.source.dir.startsWith(home));
      process.env.SELAB_DATA = join(work, 'absent');
      await assert.rejects(loadCifar(TEST_FORMAT, { quiet: true }), /^DataError: SELAB_DATA=.*absent: no such file or folder/);
    } finally {
      delete process.env.SELAB_DATA;
      delete process.env.SELAB_HOME;
    }
  });
});

describe('CIFAR-100 layout', () => {
  test('train.bin/test.bin with coarse+fine label bytes, fine label names, from a .tar.gz', async () => {
    const root = join(work, 'c100');
    const dir = join(root, 'cifar-100-binary');
    mkdirSync(dir, { recursive: true });
    const counts = { 'train.bin': 3, 'test.bin': 2 };
    for (const [name, n] of Object.entries(counts)) {
      const buf = Buffer.alloc(n * 3074);
      for (let r = 0; r < n; r++) {
        buf[r * 3074] = r; // coarse
        buf[r * 3074 + 1] = 90 + r + (name === 'test.bin' ? 5 : 0); // fine
        buf[r * 3074 + 2 + 2048 + 31 * 32 + 30] = 100 + r; // blue at (row 31, col 30)
      }
      writeFileSync(join(dir, name), buf);
    }
    const fine = Array.from({ length: 100 }, (_, i) => `fine${i}`);
    writeFileSync(join(dir, 'fine_label_names.txt'), fine.join('\n') + '\n');
    writeFileSync(join(dir, 'coarse_label_names.txt'), Array.from({ length: 20 }, (_, i) => `coarse${i}`).join('\n') + '\n');
    const tgz = join(work, 'cifar-100-binary.tar.gz');
    await tar.c({ gzip: true, file: tgz, cwd: root }, ['cifar-100-binary']);

    const format = { ...CIFAR100, recordsPerFile: counts, md5: createHash('md5').update(readFileSync(tgz)).digest('hex') };
    const ds = await loadCifar(format, { data: tgz, home: freshHome(), quiet: true });
    assert.deepEqual(ds.classes, fine);
    assert.deepEqual([...ds.train.labels], [90, 91, 92]);
    assert.deepEqual([...ds.test.labels], [95, 96]);
    assert.equal(ds.train.images[2 * 3072 + (31 * 32 + 30) * 3 + 2], 102);
    assert.equal(ds.test.images[(31 * 32 + 30) * 3 + 2], 100);
    // The real descriptor expects 50,000 and 10,000 records, per file.
    await assert.rejects(loadCifar({ ...CIFAR100 }, { data: root, home: freshHome(), quiet: true }), /train\.bin: 9222 bytes, expected 153700000 bytes \(50000 records of 3074 bytes\)/);
  });
});

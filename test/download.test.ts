import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { removeStaleTemps, tempPathFor, withAtomicPath, writeFileAtomic } from '../src/util/atomic.js';
import { consoleProgress, download, DownloadError } from '../src/util/download.js';

const body = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7 + 3) & 255));
const md5 = createHash('md5').update(body).digest('hex');
const sha256 = createHash('sha256').update(body).digest('hex');

let server: Server;
let base: string;
let dir: string;
const stalled: ServerResponse[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'selab-download-'));
  server = createServer((req, res) => {
    switch (req.url) {
      case '/ok.bin':
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
        break;
      case '/redirect':
        res.writeHead(302, { location: '/ok.bin' });
        res.end();
        break;
      case '/slow.bin':
        // Sends a little, then stalls: a download in progress, for the interruption tests.
        res.writeHead(200, { 'content-length': body.length });
        res.write(body.subarray(0, 1000));
        stalled.push(res);
        break;
      case '/truncated.bin':
        // Promise more than we send, then drop the connection: an interrupted download.
        res.writeHead(200, { 'content-length': body.length * 2 });
        res.write(body, () => res.socket?.destroy());
        break;
      default:
        res.writeHead(404);
        res.end('not here');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  for (const res of stalled) res.destroy();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

function filesIn(d: string): string[] {
  return existsSync(d) ? readdirSync(d).sort() : [];
}

describe('download', () => {
  test('http: saves the body, reports progress and both sums, checks the expected hash', async () => {
    const dest = join(dir, 'ok', 'file.bin');
    const seen: Array<[number, number | undefined]> = [];
    const r = await download(`${base}/ok.bin`, dest, { expectedHash: { algorithm: 'md5', hex: md5 }, onProgress: (a, b) => seen.push([a, b]) });
    assert.deepEqual(r, { bytes: body.length, md5, sha256 });
    assert.deepEqual(readFileSync(dest), body);
    assert.deepEqual(seen[0], [0, body.length]);
    assert.deepEqual(seen.at(-1), [body.length, body.length]);
    assert.deepEqual(filesIn(join(dir, 'ok')), ['file.bin']);
  });

  test('follows redirects and accepts an uppercase sha256', async () => {
    const dest = join(dir, 'redir', 'file.bin');
    await download(`${base}/redirect`, dest, { expectedHash: { algorithm: 'sha256', hex: sha256.toUpperCase() } });
    assert.deepEqual(readFileSync(dest), body);
  });

  test('file:// URLs', async () => {
    const src = join(dir, 'src.bin');
    writeFileSync(src, body);
    const dest = join(dir, 'fromfile', 'copy.bin');
    const r = await download(pathToFileURL(src).href, dest, { expectedHash: { algorithm: 'sha256', hex: sha256 } });
    assert.equal(r.md5, md5);
    assert.deepEqual(readFileSync(dest), body);
  });

  test('hash mismatch names both sums and leaves nothing behind', async () => {
    const d = join(dir, 'badhash');
    const wrong = '0'.repeat(32);
    await assert.rejects(download(`${base}/ok.bin`, join(d, 'file.bin'), { expectedHash: { algorithm: 'md5', hex: wrong } }), (err: Error) => {
      assert.ok(err instanceof DownloadError && err.kind === 'hash');
      assert.match(err.message, new RegExp(`expected md5 ${wrong}, got ${md5}`));
      assert.match(err.message, /ok\.bin/);
      return true;
    });
    assert.deepEqual(filesIn(d), []);
  });

  test('HTTP 404 is a clear error and leaves nothing behind', async () => {
    const d = join(dir, 'missing');
    await assert.rejects(download(`${base}/nope.bin`, join(d, 'file.bin')), (err: Error) => {
      assert.ok(err instanceof DownloadError && err.kind === 'http');
      assert.match(err.message, /nope\.bin failed: HTTP 404 Not Found/);
      return true;
    });
    assert.deepEqual(filesIn(d), []);
  });

  test('a connection cut before Content-Length bytes is a truncation error and leaves nothing behind', async () => {
    const d = join(dir, 'trunc');
    await assert.rejects(download(`${base}/truncated.bin`, join(d, 'file.bin')), (err: Error) => {
      assert.ok(err instanceof DownloadError && err.kind === 'truncated', err.message);
      assert.match(err.message, new RegExp(`received ${body.length} of ${body.length * 2} bytes`));
      return true;
    });
    assert.deepEqual(filesIn(d), []);
  });

  test('unsupported scheme and missing file:// source are clear errors', async () => {
    await assert.rejects(download('ftp://example.com/x', join(dir, 'x')), /unsupported URL scheme ftp:/);
    await assert.rejects(download(pathToFileURL(join(dir, 'absent.bin')).href, join(dir, 'y', 'x')), /absent\.bin/);
    assert.deepEqual(filesIn(join(dir, 'y')), []);
  });
});

describe('consoleProgress', () => {
  test('without a TTY: one plain line per 10 %', () => {
    const lines: string[] = [];
    const stream = { isTTY: false, write: (l: string) => lines.push(l) } as unknown as NodeJS.WriteStream;
    const p = consoleProgress('CIFAR-10 download', stream);
    for (let r = 0; r <= 2_000_000; r += 50_000) p.onProgress(r, 2_000_000);
    p.stop();
    assert.equal(lines.length, 11);
    assert.equal(lines[0], 'CIFAR-10 download: 0% (0.0/2.0 MB)\n');
    assert.equal(lines[5], 'CIFAR-10 download: 50% (1.0/2.0 MB)\n');
    assert.equal(lines[10], 'CIFAR-10 download: 100% (2.0/2.0 MB)\n');
  });
});

describe('atomic', () => {
  test('writeFileAtomic writes and replaces whole files', async () => {
    const p = join(dir, 'atomic', 'a.json');
    await writeFileAtomic(p, '{"v":1}');
    await writeFileAtomic(p, '{"v":2}');
    assert.equal(readFileSync(p, 'utf8'), '{"v":2}');
    assert.deepEqual(filesIn(join(dir, 'atomic')), ['a.json']);
  });

  test('withAtomicPath removes a half-built directory on failure', async () => {
    const d = join(dir, 'atomicdir');
    await assert.rejects(
      withAtomicPath(join(d, 'out'), async (tmp) => {
        writeFileSync(tmp, 'partial');
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.deepEqual(filesIn(d), []);
  });

  test('removeStaleTemps removes temporaries of dead processes only', () => {
    const d = join(dir, 'stale');
    const mine = tempPathFor(join(d, 'x'));
    const dead = join(d, '.x.selab-tmp-999999999-abcd');
    mkdirSync(d, { recursive: true });
    for (const p of [mine, dead, join(d, 'keep.bin')]) writeFileSync(p, '');
    assert.deepEqual(removeStaleTemps(d), ['.x.selab-tmp-999999999-abcd']);
    assert.equal(filesIn(d).length, 2);
  });
});

describe('interrupted process', () => {
  /** Starts a child process downloading /slow.bin into `d`; resolves once its temporary exists. */
  async function startDownload(d: string) {
    const moduleUrl = new URL('../src/util/download.ts', import.meta.url).href;
    const code = `const { download } = await import(${JSON.stringify(moduleUrl)}); await download(${JSON.stringify(`${base}/slow.bin`)}, ${JSON.stringify(join(d, 'file.bin'))});`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: 'ignore' });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    for (let i = 0; i < 600 && !filesIn(d).some((n) => n.includes('selab-tmp')); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(filesIn(d).some((n) => n.includes('selab-tmp')), 'the child started downloading');
    return { child, exited };
  }

  test('SIGINT during a download removes the temporary, and the process still dies of SIGINT', async () => {
    const d = join(dir, 'sigint');
    const { child, exited } = await startDownload(d);
    child.kill('SIGINT');
    const [code, signal] = await exited;
    assert.equal(signal, 'SIGINT', `exit code ${code}`);
    assert.deepEqual(filesIn(d), []);
  });

  test('after SIGKILL the stale temporary is recognised and removed', async () => {
    const d = join(dir, 'sigkill');
    const { child, exited } = await startDownload(d);
    child.kill('SIGKILL');
    await exited;
    assert.equal(filesIn(d).length, 1);
    assert.equal(removeStaleTemps(d).length, 1);
    assert.deepEqual(filesIn(d), []);
  });
});

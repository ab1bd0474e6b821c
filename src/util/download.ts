// Downloads a URL (http, https or file) to a local path atomically, checking length and hash on
// the fly. The destination either appears complete and verified, or not at all.
import cliProgress from 'cli-progress';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { withAtomicPath } from './atomic.js';

export type HashAlgorithm = 'md5' | 'sha256';

/** Called as bytes arrive; `total` is undefined when the server sends no Content-Length. */
export type ProgressFn = (received: number, total: number | undefined) => void;

export interface DownloadOptions {
  /** Checked after the last byte; on mismatch nothing is written and a DownloadError names both sums. */
  expectedHash?: { algorithm: HashAlgorithm; hex: string };
  onProgress?: ProgressFn;
  /** Give up when no byte arrives for this long (default 60 s). */
  idleTimeoutMs?: number;
}

export interface DownloadResult {
  bytes: number;
  md5: string;
  sha256: string;
}

export type DownloadErrorKind = 'http' | 'truncated' | 'hash' | 'network' | 'url';

export class DownloadError extends Error {
  constructor(
    readonly kind: DownloadErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

const MAX_REDIRECTS = 5;

/** Downloads `url` to `destPath` (temp file beside it + rename). Resolves with size and sums. */
export async function download(url: string, destPath: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DownloadError('url', `download: not a URL: ${JSON.stringify(url)} (expected http://, https:// or file://)`);
  }
  if (!['http:', 'https:', 'file:'].includes(parsed.protocol)) {
    throw new DownloadError('url', `download: unsupported URL scheme ${parsed.protocol} in ${url} (expected http://, https:// or file://)`);
  }
  const expected = options.expectedHash;
  if (expected && !/^[0-9a-f]+$/i.test(expected.hex)) {
    throw new DownloadError('url', `download: expectedHash.hex must be hexadecimal, got ${JSON.stringify(expected.hex)}`);
  }

  return withAtomicPath(destPath, async (tmp) => {
    const { body, total } = parsed.protocol === 'file:' ? await openFile(parsed) : await openHttp(parsed, options.idleTimeoutMs ?? 60_000);
    const md5 = createHash('md5');
    const sha256 = createHash('sha256');
    let received = 0;
    options.onProgress?.(0, total);
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        received += chunk.length;
        md5.update(chunk);
        sha256.update(chunk);
        options.onProgress?.(received, total);
        done(null, chunk);
      },
    });
    try {
      await pipeline(body, meter, createWriteStream(tmp));
    } catch (err) {
      if (total !== undefined && received < total) {
        throw new DownloadError('truncated', `download of ${url} was cut off: received ${received} of ${total} bytes (Content-Length); nothing was saved to ${destPath}`);
      }
      throw new DownloadError('network', `download of ${url} failed after ${received} bytes: ${(err as Error).message}; nothing was saved to ${destPath}`);
    }
    if (total !== undefined && received !== total) {
      throw new DownloadError('truncated', `download of ${url} is incomplete: received ${received} of ${total} bytes (Content-Length); nothing was saved to ${destPath}`);
    }
    const result: DownloadResult = { bytes: received, md5: md5.digest('hex'), sha256: sha256.digest('hex') };
    if (expected) {
      const got = result[expected.algorithm];
      if (got !== expected.hex.toLowerCase()) {
        throw new DownloadError('hash', `checksum mismatch for ${url}: expected ${expected.algorithm} ${expected.hex.toLowerCase()}, got ${got}; nothing was saved to ${destPath}`);
      }
    }
    return result;
  });
}

async function openFile(url: URL): Promise<{ body: Readable; total: number }> {
  const path = fileURLToPath(url);
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    throw new DownloadError('network', `download: cannot read ${url.href}: ${(err as Error).message}`);
  }
  return { body: createReadStream(path), total: size };
}

function openHttp(url: URL, idleTimeoutMs: number, redirects = 0): Promise<{ body: Readable; total: number | undefined }> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http;
    // identity: a compressed transfer would make Content-Length count the wrong bytes.
    const req = client.get(url, { headers: { 'accept-encoding': 'identity', 'user-agent': 'selab' } }, (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location) {
        res.resume();
        if (redirects >= MAX_REDIRECTS) {
          reject(new DownloadError('http', `download of ${url.href}: more than ${MAX_REDIRECTS} redirects`));
          return;
        }
        openHttp(new URL(location, url), idleTimeoutMs, redirects + 1).then(resolve, reject);
        return;
      }
      if (status !== 200) {
        res.resume();
        reject(new DownloadError('http', `download of ${url.href} failed: HTTP ${status} ${res.statusMessage ?? ''}`.trimEnd()));
        return;
      }
      const lengthHeader = res.headers['content-length'];
      const total = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
      resolve({ body: res, total });
    });
    req.setTimeout(idleTimeoutMs, () => {
      req.destroy(new DownloadError('network', `download of ${url.href}: no data for ${idleTimeoutMs / 1000} s`));
    });
    req.on('error', (err) => {
      reject(err instanceof DownloadError ? err : new DownloadError('network', `download of ${url.href} failed: ${err.message}`));
    });
  });
}

function formatMB(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

/**
 * A progress reporter for downloads on stderr: a cli-progress bar when stderr is a TTY, otherwise
 * a plain line every 10 %. Call `stop()` when the download settles.
 */
export function consoleProgress(label: string, stream: NodeJS.WriteStream = process.stderr): { onProgress: ProgressFn; stop(): void } {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { stream, format: `${label} [{bar}] {percentage}% {done}/{all} MB`, hideCursor: true, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      onProgress(received, total) {
        const all = total ?? 0;
        if (!started) {
          bar.start(all, received, { done: formatMB(received), all: total === undefined ? '?' : formatMB(all) });
          started = true;
        }
        bar.update(received, { done: formatMB(received) });
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  let nextTenth = 0;
  return {
    onProgress(received, total) {
      if (total === undefined || total === 0) {
        if (received === 0) stream.write(`${label}: downloading (size unknown)\n`);
        return;
      }
      const tenth = Math.floor((received / total) * 10);
      if (tenth >= nextTenth) {
        stream.write(`${label}: ${tenth * 10}% (${formatMB(received)}/${formatMB(total)} MB)\n`);
        nextTenth = tenth + 1;
      }
    },
    stop() {},
  };
}

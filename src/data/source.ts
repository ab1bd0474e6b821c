// Where the data comes from and how it lands in the cache. A source is a folder (used in place),
// a .tar.gz archive (extracted once into the cache), or a URL (downloaded once into the cache,
// then treated as an archive). Every cache entry appears by rename, complete or not at all.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import * as tar from 'tar';
import { removeStaleTemps, withAtomicPath } from '../util/atomic.js';
import { download, DownloadError, type ProgressFn } from '../util/download.js';
import { selabHome } from '../util/home.js';
import { checkDataFolder, DataError, type CifarFormat } from './format.js';

export interface SourceOptions {
  /** Folder, .tar.gz file, or http(s):// / file:// URL. Default: $SELAB_DATA (CIFAR-100: $SELAB_DATA_CIFAR100), else the official URL. */
  data?: string;
  /** Check an archive's MD5 against the official one (default: true unless $SELAB_VERIFY is 0). */
  verify?: boolean;
  home?: string;
  onDownloadProgress?: ProgressFn;
  /** One-line notices (downloading, extracting). */
  log?: (line: string) => void;
}

export interface ResolvedSource {
  /** The source as given (after defaults). */
  spec: string;
  kind: 'directory' | 'archive' | 'url';
  /** The folder holding the .bin files. */
  dir: string;
  /** The archive read (downloaded or given), when not a folder. */
  archive?: string;
  /** The archive's MD5, when the source is an archive. */
  md5?: string;
  /** True when the archive's MD5 was checked and matched the official one. */
  verified: boolean;
}

interface ExtractRecord {
  archive: string;
  size: number;
  mtimeMs: number;
  md5: string;
  sha256: string;
}

const URL_RE = /^[a-z][a-z0-9+.-]*:\/\//i;

export async function resolveSource(format: CifarFormat, options: SourceOptions = {}): Promise<ResolvedSource> {
  const spec = options.data ?? process.env[format.dataEnv] ?? format.url;
  // How the user named this source, for error messages.
  const named = options.data !== undefined ? `--data ${spec}` : process.env[format.dataEnv] !== undefined ? `${format.dataEnv}=${spec}` : spec;
  const verify = options.verify ?? process.env.SELAB_VERIFY !== '0';
  const log = options.log ?? (() => {});
  const dataHome = join(selabHome(options.home), 'data');

  if (URL_RE.test(spec)) {
    const archive = await fetchArchive(spec, format, dataHome, verify, options.onDownloadProgress, log);
    const r = await extractArchive(archive, `${spec} (downloaded to ${archive})`, format, dataHome, verify, log);
    return { ...r, spec, kind: 'url' };
  }

  const path = resolve(spec);
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch {
    throw new DataError(`${named}: no such file or folder (expected a folder holding ${format.dirName}/, a .tar.gz archive, or an http(s):// or file:// URL)`);
  }
  if (isDir) return { spec, kind: 'directory', dir: findBinDir(path, format, named), verified: false };
  const r = await extractArchive(path, path, format, dataHome, verify, log);
  return { ...r, spec, kind: 'archive' };
}

/** `path/<dirName>` if present, else `path` itself when it holds the data files directly. */
function findBinDir(path: string, format: CifarFormat, named: string): string {
  const nested = join(path, format.dirName);
  if (existsSync(nested)) return nested;
  if (existsSync(join(path, format.trainFiles[0]!)) || existsSync(join(path, format.classNamesFile))) return path;
  throw new DataError(`${named}: folder has no ${format.dirName}/ (expected ${join(path, format.dirName, format.trainFiles[0]!)} and the other ${format.name} binary files)`);
}

async function fetchArchive(url: string, format: CifarFormat, dataHome: string, verify: boolean, onProgress: ProgressFn | undefined, log: (l: string) => void): Promise<string> {
  const dir = join(dataHome, 'downloads');
  removeStaleTemps(dir);
  const key = createHash('sha256').update(url).digest('hex').slice(0, 12);
  const name = basename(new URL(url).pathname) || 'archive.tar.gz';
  const dest = join(dir, `${key}-${name}`);
  if (existsSync(dest)) return dest;
  log(`downloading ${url} to ${dest}`);
  try {
    await download(url, dest, { expectedHash: verify ? { algorithm: 'md5', hex: format.md5 } : undefined, onProgress });
  } catch (err) {
    if (err instanceof DownloadError && err.kind === 'hash') {
      throw new DataError(`${err.message}. This is not the official ${format.name} archive; if you trust it, pass --no-verify (SELAB_VERIFY=0)`);
    }
    if (err instanceof DownloadError && (err.kind === 'network' || err.kind === 'http')) {
      throw new DataError(`${err.message}. Without network access, point --data (or ${format.dataEnv}) at a local copy of the archive or its extracted folder`);
    }
    throw err;
  }
  return dest;
}

async function hashFile(path: string): Promise<{ md5: string; sha256: string }> {
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  for await (const c of createReadStream(path) as AsyncIterable<Buffer>) {
    md5.update(c);
    sha256.update(c);
  }
  return { md5: md5.digest('hex'), sha256: sha256.digest('hex') };
}

function checkMd5(archive: string, md5: string, format: CifarFormat): void {
  if (md5 !== format.md5) {
    throw new DataError(
      `checksum mismatch for ${archive}: expected md5 ${format.md5} (official ${format.name} archive), got ${md5}. ` +
        `If this is a trusted non-official copy (such as ../shared/datasets/cifar-10-binary.tar.gz for CIFAR-10: same images, different record order), pass --no-verify (SELAB_VERIFY=0)`,
    );
  }
}

/**
 * Extracts `archive` into `<dataHome>/extracted/<key>/`, key = hash of (format folder, real path, size, mtime),
 * so an unchanged archive is hashed and unpacked once. `source.json` beside the files records the
 * archive's sums, which later runs check instead of rehashing. The files are checked before the
 * extraction lands in the cache, so a bad archive leaves nothing there; errors name the archive as
 * `named` (the source the user gave) and the member.
 */
async function extractArchive(archive: string, named: string, format: CifarFormat, dataHome: string, verify: boolean, log: (l: string) => void): Promise<Omit<ResolvedSource, 'spec' | 'kind'>> {
  const real = await realpath(archive);
  const st = await stat(real);
  const root = join(dataHome, 'extracted');
  removeStaleTemps(root);
  const key = createHash('sha256').update(`${format.dirName}\0${real}\0${st.size}\0${st.mtimeMs}`).digest('hex').slice(0, 16);
  const target = join(root, key);
  const recordPath = join(target, 'source.json');

  let record: ExtractRecord | undefined;
  if (existsSync(recordPath)) record = JSON.parse(await readFile(recordPath, 'utf8')) as ExtractRecord;
  if (!record) {
    log(`checking ${real}`);
    const sums = await hashFile(real);
    if (verify) checkMd5(named, sums.md5, format);
    log(`extracting ${real} into ${target}`);
    await mkdir(root, { recursive: true });
    record = { archive: real, size: st.size, mtimeMs: st.mtimeMs, ...sums };
    const rec = record;
    await withAtomicPath(target, async (tmp) => {
      await mkdir(tmp);
      try {
        await tar.x({ file: real, cwd: tmp, strict: true, filter: (p) => p.replace(/^\.\//, '').startsWith(`${format.dirName}/`) });
      } catch (err) {
        throw new DataError(`cannot extract ${named}: ${(err as Error).message} (expected a .tar.gz of ${format.name} holding ${format.dirName}/)`);
      }
      for (const f of [...format.trainFiles, ...format.testFiles, format.classNamesFile]) {
        if (!existsSync(join(tmp, format.dirName, f))) {
          throw new DataError(`${named}: archive has no ${format.dirName}/${f} (expected the ${format.name} binary files under ${format.dirName}/)`);
        }
      }
      await checkDataFolder(join(tmp, format.dirName), format, (f) => `${named}: member ${format.dirName}/${f}`);
      await writeFile(join(tmp, 'source.json'), JSON.stringify(rec, null, 2) + '\n');
    });
  } else if (verify) {
    checkMd5(named, record.md5, format);
  }
  return { dir: join(target, format.dirName), archive: real, md5: record.md5, verified: verify };
}

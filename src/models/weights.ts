// `--weights imagenet | none | PATH | URL`: finds (downloading once into the cache when needed) and
// reads a weight file, and hands back the callback the case builder runs on the Keras-named base
// model before BatchNorm and SE are inserted.
import type * as tfl from '@tensorflow/tfjs-layers';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeStaleTemps, withAtomicPath } from '../util/atomic.js';
import { consoleProgress, download, type HashAlgorithm, type ProgressFn } from '../util/download.js';
import { exists } from '../util/fs.js';
import { selabHome } from '../util/home.js';
import { readKerasH5 } from './keras-h5.js';
import { applyWeights } from './weights-load.js';
import { WeightsFileError, type WeightSet } from './weights-source.js';
import { manifestShardPaths, readTfjsLayersWeights } from './weights-tfjs.js';

/** Where the Keras applications keep their ImageNet files (keras/src/applications/vgg16.py, mobilenet.py). */
export const KERAS_APPLICATIONS_URL = 'https://storage.googleapis.com/tensorflow/keras-applications/';
/** Overrides KERAS_APPLICATIONS_URL, e.g. for a mirror or a test server: `${base}vgg16/…`, `${base}mobilenet/…`. */
export const WEIGHTS_URL_ENV = 'SELAB_KERAS_WEIGHTS_URL';

export const VGG16_NOTOP_FILE = 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5';
/** The `file_hash` keras' vgg16.py passes to get_file for the no-top file (32 hex digits: MD5). */
export const VGG16_NOTOP_MD5 = '6d6bbae143d832006294945121d1f1fc';

export const MOBILENET_ALPHAS = [0.25, 0.5, 0.75, 1.0] as const;
export const MOBILENET_ROWS = [128, 160, 192, 224] as const;

export type ImagenetArch = { kind: 'vgg16' } | { kind: 'mobilenet'; alpha: number; inputShape: readonly number[] };

export interface ImagenetFile {
  fileName: string;
  url: string;
  /** Only where Keras publishes one: VGG16 yes, MobileNet no. */
  expectedHash?: { algorithm: HashAlgorithm; hex: string };
  /** Keras' warning when the input size has no weights of its own. */
  warning?: string;
}

/** The alpha part of Keras' MobileNet file names: 1.0 → `1_0`, 0.75 → `7_5`, 0.5 → `5_0`, 0.25 → `2_5`. */
export function mobilenetAlphaText(alpha: number): string {
  switch (alpha) {
    case 1.0:
      return '1_0';
    case 0.75:
      return '7_5';
    case 0.5:
      return '5_0';
    case 0.25:
      return '2_5';
    default:
      throw new Error(`--weights imagenet: MobileNet ImageNet weights exist for alpha 0.25, 0.5, 0.75 and 1.0 only, not ${alpha}; use --weights none or a file`);
  }
}

/**
 * The input size whose weights Keras loads: the input's own when it is square and one of 128, 160,
 * 192, 224; otherwise 224, with Keras' warning. The convolution weights do not depend on the input
 * size, so any of them fits; the choice only follows Keras.
 */
export function mobilenetWeightRows(inputShape: readonly number[]): { rows: number; warning?: string } {
  const [rows, cols] = inputShape;
  if (rows === cols && (MOBILENET_ROWS as readonly (number | undefined)[]).includes(rows)) return { rows: rows as number };
  return {
    rows: 224,
    warning:
      `input shape ${inputShape.slice(0, 2).join('×')} is non-square or not one of 128, 160, 192, 224; ` +
      `weights for input shape (224, 224) will be loaded as the default (as Keras does)`,
  };
}

export function imagenetWeightsFile(arch: ImagenetArch, baseUrl: string = process.env[WEIGHTS_URL_ENV] || KERAS_APPLICATIONS_URL): ImagenetFile {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  if (arch.kind === 'vgg16') {
    return { fileName: VGG16_NOTOP_FILE, url: `${base}vgg16/${VGG16_NOTOP_FILE}`, expectedHash: { algorithm: 'md5', hex: VGG16_NOTOP_MD5 } };
  }
  const { rows, warning } = mobilenetWeightRows(arch.inputShape);
  const fileName = `mobilenet_${mobilenetAlphaText(arch.alpha)}_${rows}_tf_no_top.h5`;
  return { fileName, url: `${base}mobilenet/${fileName}`, ...(warning ? { warning } : {}) };
}

export function weightsCacheDir(home: string = selabHome()): string {
  return join(home, 'weights');
}

export type ProgressFactory = (label: string) => { onProgress: ProgressFn; stop(): void };

export interface ResolveWeightsOptions {
  /** Which ImageNet file `imagenet` means; required for that spec only. */
  arch?: ImagenetArch;
  /** Cache root (default selabHome()). */
  home?: string;
  /** Default: $SELAB_KERAS_WEIGHTS_URL, else KERAS_APPLICATIONS_URL. */
  baseUrl?: string;
  /** Default: a progress bar on stderr (plain lines when stderr is not a terminal). */
  progress?: ProgressFactory;
  /** Default: a line on stderr. */
  log?: (message: string) => void;
  /** Name of the option for error messages (default `--weights`). */
  flag?: string;
}

/** Runs on the Keras-named base model, before the graph rewrite. */
export type LoadBaseWeights = (base: tfl.LayersModel) => Promise<void>;

async function md5File(path: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function fetchOnce(url: string, dest: string, opts: ResolveWeightsOptions, expectedHash?: ImagenetFile['expectedHash']): Promise<void> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  if (await exists(dest)) {
    if (!expectedHash) return;
    const got = await md5File(dest);
    if (got === expectedHash.hex) return;
    log(`cached ${dest} has md5 ${got}, expected ${expectedHash.hex}: downloading it again`);
  }
  const progress = (opts.progress ?? consoleProgress)(basename(dest));
  try {
    const result = await download(url, dest, { ...(expectedHash ? { expectedHash } : {}), onProgress: progress.onProgress });
    log(`saved ${url} to ${dest} (${result.bytes} bytes, sha256 ${result.sha256})`);
  } finally {
    progress.stop();
  }
}

/** The cache folder for an arbitrary URL: its file name, prefixed by a hash of the whole URL. */
function urlCachePath(url: URL, home: string): string {
  const key = createHash('sha256').update(url.href).digest('hex').slice(0, 16);
  const name = basename(url.pathname) || 'weights';
  return join(weightsCacheDir(home), 'url', `${key}-${name}`);
}

/** Downloads a URL's weights into the cache once; returns the local .h5 or model.json path. */
async function fetchUrl(url: URL, opts: ResolveWeightsOptions, home: string): Promise<string> {
  if (url.protocol === 'file:') return fileURLToPath(url);
  const dest = urlCachePath(url, home);
  removeStaleTemps(join(weightsCacheDir(home), 'url'));
  if (!url.pathname.endsWith('.json')) {
    await fetchOnce(url.href, dest, opts);
    return dest;
  }
  // A model.json and its shards land together in one folder that appears only once complete.
  if (!(await exists(join(dest, 'model.json')))) {
    await withAtomicPath(dest, async (tmp) => {
      await mkdir(tmp);
      const jsonPath = join(tmp, 'model.json');
      await fetchOnce(url.href, jsonPath, opts);
      const json = JSON.parse(await readFile(jsonPath, 'utf8')) as unknown;
      for (const shard of manifestShardPaths(json, url.href)) {
        await fetchOnce(new URL(shard, url).href, join(tmp, shard), opts);
      }
    });
  }
  return join(dest, 'model.json');
}

/** Reads a Keras .h5 file, a TensorFlow.js model.json, or a folder holding a model.json. */
export async function readWeights(path: string): Promise<WeightSet> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new WeightsFileError(`weights file ${path} does not exist (expected a Keras .h5 weight file, a TensorFlow.js model.json or a folder with one)`);
  }
  if (info.isDirectory()) {
    const json = join(path, 'model.json');
    if (!(await exists(json))) throw new WeightsFileError(`weights folder ${path} has no model.json (expected a TensorFlow.js layers model)`);
    return readTfjsLayersWeights(json);
  }
  if (path.endsWith('.json')) return readTfjsLayersWeights(path);
  return readKerasH5(path);
}

/** Reads weights from a file and loads them into `model` (all or nothing). Returns the tensor count. */
export async function loadWeightsFile(model: tfl.LayersModel, path: string): Promise<number> {
  return applyWeights(model, await readWeights(path));
}

/**
 * Resolves a `--weights` value. `none` gives undefined (fresh initialisation). Anything else is
 * fetched (once, into SELAB_HOME/weights) and read now, so a bad file fails before any model is
 * built; the returned callback assigns the tensors and can be called for several models.
 */
export async function resolveWeights(spec: string, opts: ResolveWeightsOptions = {}): Promise<LoadBaseWeights | undefined> {
  const flag = opts.flag ?? '--weights';
  const home = opts.home ?? selabHome();
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const value = spec.trim();
  if (value === '') throw new Error(`${flag}: empty value (expected imagenet, none, a file path or a URL)`);
  if (value === 'none') return undefined;

  let path: string;
  if (value === 'imagenet') {
    if (!opts.arch) {
      throw new Error(`${flag} imagenet: ImageNet weights exist for VGG16 and MobileNet (cases 3–7) only; use ${flag} none or a file for this model`);
    }
    const file = imagenetWeightsFile(opts.arch, opts.baseUrl);
    if (file.warning) log(`warning: ${file.warning}`);
    const dir = weightsCacheDir(home);
    removeStaleTemps(dir);
    path = join(dir, file.fileName);
    await fetchOnce(file.url, path, opts, file.expectedHash);
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new Error(`${flag}: ${JSON.stringify(value)} is not a valid URL`);
    }
    if (!['http:', 'https:', 'file:'].includes(url.protocol)) {
      throw new Error(`${flag}: unsupported URL scheme ${url.protocol} (expected http://, https:// or file://)`);
    }
    path = await fetchUrl(url, opts, home);
  } else {
    path = resolve(value);
  }

  const set = await readWeights(path);
  return async (base) => {
    const n = applyWeights(base, set);
    log(`loaded ${n} weight tensors from ${set.source} into ${base.name}`);
  };
}

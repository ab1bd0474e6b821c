// The CIFAR "binary version" record format and its parser. A record is `labelBytes` label bytes
// followed by a planar CHW image (all red bytes, then green, then blue, each plane row-major).
// The parser converts to interleaved NHWC at load so that building a batch is a plain gather.
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';

/** Describes one dataset in the CIFAR binary layout. CIFAR-100 fits with labelBytes 2. */
export interface CifarFormat {
  name: string;
  /** Official archive and its MD5 (checked unless verification is switched off). */
  url: string;
  md5: string;
  /** Environment variable naming the default source (before the official URL). */
  dataEnv: string;
  /** Folder the archive unpacks to, holding the files below. */
  dirName: string;
  trainFiles: readonly string[];
  testFiles: readonly string[];
  /** Class names, one a line, in label order. */
  classNamesFile: string;
  numClasses: number;
  /** Label bytes at the start of each record (CIFAR-10: 1; CIFAR-100: 2, coarse then fine). */
  labelBytes: number;
  /** Which of the label bytes is the label used (CIFAR-100: 1 for the fine label). */
  labelIndex: number;
  /** Exact record count of every data file (a number) or of each file (by name), when the format fixes it. */
  recordsPerFile?: number | Readonly<Record<string, number>>;
  height: number;
  width: number;
  channels: number;
}

export const CIFAR10: CifarFormat = {
  name: 'CIFAR-10',
  url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
  md5: 'c32a1d4ab5d03f1284b67883e8d87530',
  dataEnv: 'SELAB_DATA',
  dirName: 'cifar-10-batches-bin',
  trainFiles: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
  testFiles: ['test_batch.bin'],
  classNamesFile: 'batches.meta.txt',
  numClasses: 10,
  labelBytes: 1,
  labelIndex: 0,
  recordsPerFile: 10_000,
  height: 32,
  width: 32,
  channels: 3,
};

export const CIFAR100: CifarFormat = {
  name: 'CIFAR-100',
  url: 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
  md5: '03b5dce01913d631647c71ecec9e9cb8',
  dataEnv: 'SELAB_DATA_CIFAR100',
  dirName: 'cifar-100-binary',
  trainFiles: ['train.bin'],
  testFiles: ['test.bin'],
  classNamesFile: 'fine_label_names.txt',
  numClasses: 100,
  labelBytes: 2,
  labelIndex: 1,
  recordsPerFile: { 'train.bin': 50_000, 'test.bin': 10_000 },
  height: 32,
  width: 32,
  channels: 3,
};

/** One split held in memory: uint8 images in NHWC order and one label per image. */
export interface Split {
  /** count × height × width × channels bytes, NHWC; backed by a SharedArrayBuffer so a worker can read it without a copy. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  channels: number;
}

/** A problem with the data itself (missing file, wrong size, bad label, bad checksum). */
export class DataError extends Error {
  override name = 'DataError';
}

export function recordBytes(format: CifarFormat): number {
  return format.labelBytes + format.height * format.width * format.channels;
}

function expectedRecords(file: string, format: CifarFormat): number | undefined {
  const r = format.recordsPerFile;
  return typeof r === 'number' || r === undefined ? r : r[file];
}

function sizeExpectation(file: string, format: CifarFormat): string {
  const rb = recordBytes(format);
  const n = expectedRecords(file, format);
  return n === undefined
    ? `a positive multiple of ${rb} bytes (records of ${format.labelBytes} label + ${rb - format.labelBytes} pixel bytes)`
    : `${n * rb} bytes (${n} records of ${rb} bytes)`;
}

/**
 * Records held by a data file of `size` bytes, or a DataError naming the file (as `path`) and the
 * expected size. `file` is the data file's own name, which fixes its record count.
 */
export function recordsInFile(path: string, size: number, format: CifarFormat, file = basename(path)): number {
  const rb = recordBytes(format);
  const n = expectedRecords(file, format);
  const ok = n === undefined ? size > 0 && size % rb === 0 : size === n * rb;
  if (!ok) throw new DataError(`${path}: ${size} bytes, expected ${sizeExpectation(file, format)}; the file is truncated or not ${format.name} binary data`);
  return size / rb;
}

/** Checks every record's label against numClasses; errors name the file as `path`. */
function checkLabels(buf: Uint8Array, path: string, format: CifarFormat): void {
  const rb = recordBytes(format);
  for (let rec = 0; rec < buf.length; rec += rb) {
    const label = buf[rec + format.labelIndex]!;
    if (label >= format.numClasses) {
      throw new DataError(`${path}: record ${rec / rb} (byte offset ${rec + format.labelIndex}) has label ${label}, expected 0–${format.numClasses - 1}`);
    }
  }
}

/**
 * Parses `count` records from `buf` into `split` starting at image `offset`: labels checked
 * against numClasses, planes interleaved to HWC.
 */
export function parseRecords(buf: Uint8Array, path: string, format: CifarFormat, split: Split, offset: number): void {
  checkLabels(buf, path, format);
  const rb = recordBytes(format);
  const plane = format.height * format.width;
  const c = format.channels;
  const imageBytes = plane * c;
  const count = buf.length / rb;
  const { images, labels } = split;
  for (let r = 0; r < count; r++) {
    const rec = r * rb;
    labels[offset + r] = buf[rec + format.labelIndex]!;
    const src = rec + format.labelBytes;
    const dst = (offset + r) * imageBytes;
    for (let ch = 0; ch < c; ch++) {
      const p0 = src + ch * plane;
      for (let p = 0, o = dst + ch; p < plane; p++, o += c) images[o] = buf[p0 + p]!;
    }
  }
}

function allocSplit(count: number, format: CifarFormat): Split {
  const { height, width, channels } = format;
  return {
    images: new Uint8Array(new SharedArrayBuffer(count * height * width * channels)),
    labels: new Uint8Array(new SharedArrayBuffer(count)),
    count,
    height,
    width,
    channels,
  };
}

async function fileSize(path: string, format: CifarFormat): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DataError(`missing file ${path}: expected ${format.name} binary data of ${sizeExpectation(basename(path), format)}`);
    }
    throw err;
  }
}

/** Reads and validates the data files of one split from `dir` (the folder holding the .bin files). */
export async function readSplit(dir: string, files: readonly string[], format: CifarFormat): Promise<Split> {
  const paths = files.map((f) => join(dir, f));
  const counts: number[] = [];
  for (const p of paths) counts.push(recordsInFile(p, await fileSize(p, format), format));
  const split = allocSplit(counts.reduce((a, b) => a + b, 0), format);
  let offset = 0;
  for (const [i, p] of paths.entries()) {
    const buf = await readFile(p);
    // The size may have changed since stat (a file being replaced); check what was read.
    if (recordsInFile(p, buf.length, format) !== counts[i]) throw new DataError(`${p}: changed while being read`);
    parseRecords(buf, p, format, split, offset);
    offset += counts[i]!;
  }
  return split;
}

/** Reads the class-name file: exactly numClasses non-empty lines (blank lines ignored). */
export async function readClassNames(dir: string, format: CifarFormat): Promise<string[]> {
  const path = join(dir, format.classNamesFile);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DataError(`missing file ${path}: expected ${format.numClasses} class names, one a line`);
    throw err;
  }
  return parseClassNames(text, path, format);
}

/** The class names in `text`; errors name the file as `path`. */
function parseClassNames(text: string, path: string, format: CifarFormat): string[] {
  const names = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (names.length !== format.numClasses) {
    throw new DataError(`${path}: ${names.length} class names, expected ${format.numClasses} (one a line)`);
  }
  return names;
}

/**
 * Checks the files of the dataset folder `dir` as loadCifar reads them (every data file's size and
 * labels, the class names) without keeping them. `name(file)` is how errors name a file: for a
 * folder that is not where the user's data lives, e.g. an archive's extraction in progress.
 */
export async function checkDataFolder(dir: string, format: CifarFormat, name: (file: string) => string): Promise<void> {
  for (const file of [...format.trainFiles, ...format.testFiles]) {
    const buf = await readFile(join(dir, file));
    recordsInFile(name(file), buf.length, format, file);
    checkLabels(buf, name(file), format);
  }
  parseClassNames(await readFile(join(dir, format.classNamesFile), 'utf8'), name(format.classNamesFile), format);
}

/** Images per class, indexed by label. */
export function classCounts(split: Split, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const l of split.labels) counts[l]!++;
  return counts;
}

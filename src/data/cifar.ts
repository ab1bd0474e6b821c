// Loading a whole CIFAR dataset: resolve the source (download/extract into the cache as needed),
// then read, validate and convert both splits.
import { consoleProgress } from '../util/download.js';
import { CIFAR10, CIFAR100, readClassNames, readSplit, type CifarFormat, type Split } from './format.js';
import { resolveSource, type ResolvedSource, type SourceOptions } from './source.js';

export interface LoadOptions extends SourceOptions {
  /** No progress bar or notices on stderr (they are shown by default when nothing else is given). */
  quiet?: boolean;
}

export interface Dataset {
  train: Split;
  test: Split;
  classes: string[];
  source: ResolvedSource;
  format: CifarFormat;
}

export async function loadCifar(format: CifarFormat, options: LoadOptions = {}): Promise<Dataset> {
  const loud = !options.quiet;
  const bar = loud && !options.onDownloadProgress ? consoleProgress(`${format.name} download`) : undefined;
  let source: ResolvedSource;
  try {
    source = await resolveSource(format, {
      ...options,
      onDownloadProgress: options.onDownloadProgress ?? bar?.onProgress,
      log: options.log ?? (loud ? (line) => process.stderr.write(`selab: ${line}\n`) : undefined),
    });
  } finally {
    bar?.stop();
  }
  const classes = await readClassNames(source.dir, format);
  const train = await readSplit(source.dir, format.trainFiles, format);
  const test = await readSplit(source.dir, format.testFiles, format);
  return { train, test, classes, source, format };
}

/**
 * CIFAR-10 from `data` (folder, .tar.gz or URL; default $SELAB_DATA, else the official archive,
 * downloaded once into $SELAB_HOME/data). Images are uint8 NHWC.
 */
export function loadCifar10(options: LoadOptions = {}): Promise<Dataset> {
  return loadCifar(CIFAR10, options);
}

/** CIFAR-100 (binary version) with its 100 fine labels; same sources and cache as loadCifar10. */
export function loadCifar100(options: LoadOptions = {}): Promise<Dataset> {
  return loadCifar(CIFAR100, options);
}

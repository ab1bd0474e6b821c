import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * selab's cache root: `home` if given, else $SELAB_HOME, else ~/.cache/selab; always absolute.
 * An empty $SELAB_HOME counts as unset, so it cannot turn the cache root into the current folder.
 */
export function selabHome(home?: string): string {
  return resolve(home ?? (process.env.SELAB_HOME || join(homedir(), '.cache', 'selab')));
}

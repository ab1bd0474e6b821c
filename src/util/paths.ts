import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The selab package's root folder, whether running from src/ (tsx) or dist/src/ (compiled). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('selab: cannot find the package root (no package.json above ' + import.meta.url + ')');
    dir = parent;
  }
  return dir;
}

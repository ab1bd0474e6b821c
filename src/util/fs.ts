import { stat } from 'node:fs/promises';

/** True when something (file or folder) is at `path`; any stat failure counts as absent. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

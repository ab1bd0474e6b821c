// Atomic file and directory writes: everything is produced under a temporary name in the
// destination's own folder (same file system, so the final rename is atomic) and renamed into
// place only once complete, so readers only ever see the old or the new complete content.
// A failure removes the temporary; an interrupting signal (SIGINT, SIGTERM, SIGHUP) that ends the
// process, or any other exit, removes every live temporary first; temporaries of a SIGKILL'd
// process are recognised by their dead owner's pid and removed by removeStaleTemps().
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const TEMP_MARK = '.selab-tmp-';

/** A fresh temporary path beside `path`: `<dir>/.<name>.selab-tmp-<pid>-<random>`. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}${TEMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** True if `name` (a bare file name) is a temporary made by tempPathFor. */
export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.includes(TEMP_MARK);
}

const live = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function onSignal(signal: NodeJS.Signals): void {
  // Another listener owns this signal (e.g. "stop after the current step"): the process goes on,
  // and the 'exit' hook cleans up if it ends.
  if (process.listenerCount(signal) > 1) return;
  for (const p of live) rmSync(p, { recursive: true, force: true });
  live.clear();
  uninstall();
  // Re-raise with the default disposition so the exit status still says "killed by signal".
  process.kill(process.pid, signal);
}

function onExit(): void {
  for (const p of live) rmSync(p, { recursive: true, force: true });
}

function uninstall(): void {
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  process.removeListener('exit', onExit);
}

function track(p: string): void {
  live.add(p);
  if (live.size !== 1) return;
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on('exit', onExit);
}

function untrack(p: string): void {
  if (live.delete(p) && live.size === 0) uninstall();
}

// Retries: a failed producer may still have writes in flight (e.g. an aborted tar extraction
// finishing its current file), which makes a single recursive removal fail with ENOTEMPTY.
const RM_RETRYING = { recursive: true, force: true, maxRetries: 10, retryDelay: 100 } as const;

/**
 * Runs `use(tmp)` with a fresh temporary path beside `dest` that is removed afterwards unless `use`
 * renamed it away: on success, on failure (the error is rethrown) and on an interrupting signal.
 */
export async function withTempPath<T>(dest: string, use: (tmp: string) => Promise<T>): Promise<T> {
  const tmp = tempPathFor(dest);
  track(tmp);
  try {
    const result = await use(tmp);
    await rm(tmp, RM_RETRYING);
    return result;
  } catch (err) {
    // The original error is the one worth reporting; a temporary that cannot be removed now (it
    // keeps this process's pid) is removed by removeStaleTemps once this process is gone.
    await rm(tmp, RM_RETRYING).catch(() => undefined);
    throw err;
  } finally {
    untrack(tmp);
  }
}

/**
 * Runs `produce(tmp)` with a temporary path beside `dest` and renames the temporary onto `dest`
 * once `produce` resolves. `produce` may create a file or a directory at `tmp`. On failure the
 * temporary is removed and the error rethrown; `dest` is untouched. When `dest` is a non-empty
 * directory that already exists, another process finished first: its copy is kept and the
 * temporary discarded.
 */
export async function withAtomicPath<T>(dest: string, produce: (tmp: string) => Promise<T>): Promise<T> {
  await mkdir(dirname(dest), { recursive: true });
  return withTempPath(dest, async (tmp) => {
    const result = await produce(tmp);
    try {
      await rename(tmp, dest);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Another process finished first: its copy stays, withTempPath removes ours.
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
    }
    return result;
  });
}

/** Writes `data` to `path` atomically (temp file in the same folder + rename). Creates the folder. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await withAtomicPath(path, (tmp) => writeFile(tmp, data));
}

/** Synchronous writeFileAtomic, for exit paths and small bookkeeping files. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporaries in `dir` left by processes that no longer exist (e.g. killed with SIGKILL).
 * Temporaries of live processes, including this one, are left alone. Returns the removed names.
 */
export function removeStaleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!isTempName(name)) continue;
    const pid = Number(/selab-tmp-(\d+)-/.exec(name)?.[1]);
    if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

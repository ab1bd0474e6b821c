// The rules for starting and continuing a run, in one place: a folder that holds a run is only
// continued with --resume, only from a complete checkpoint, and only with the configuration it
// was started with (bar the fields RESUMABLE_CHANGES names).
import { join } from 'node:path';
import { configDifferences, RESUMABLE_CHANGES, type TrainConfig } from '../runs/config.js';
import { readRunFile, RUN_FILE, type RunFile } from '../runs/files.js';
import { exists } from '../util/fs.js';
import { findCheckpoint } from './checkpoint.js';

/** The run already in `dir`, or null; throws when there is one and `resume` is off. */
export async function existingRun(dir: string, resume: boolean): Promise<RunFile | null> {
  if (!(await exists(join(dir, RUN_FILE)))) return null;
  if (!resume) throw new Error(`${dir} already holds a run (${RUN_FILE}); pass --resume to continue it, or choose another --out`);
  return readRunFile(dir);
}

export interface RunStart {
  previous: RunFile | null;
  /** The checkpoint to continue from; null starts from scratch. */
  checkpoint: string | null;
}

export async function openRun(dir: string, resume: boolean, wanted: TrainConfig): Promise<RunStart> {
  const previous = await existingRun(dir, resume);
  const checkpoint = resume ? await findCheckpoint(dir) : null;
  if (previous && checkpoint) checkResumable(previous.config, wanted, dir);
  return { previous, checkpoint };
}

/** A micro-batch left to the runner keeps the run's; one given must equal it. */
export function checkResumable(saved: TrainConfig, wanted: TrainConfig, dir: string): void {
  const diffs = configDifferences(saved, { ...wanted, microBatch: wanted.microBatch ?? saved.microBatch }, RESUMABLE_CHANGES);
  if (diffs.length > 0) {
    throw new Error(
      `cannot resume ${dir} with a different configuration: ${diffs.join('; ')}. ` +
        `Only ${RESUMABLE_CHANGES.join(', ')} (and the backend and data source) may change on --resume; start a new run with another --out instead`,
    );
  }
}

// The experiment manifest: OUT/experiments/<id>.json, written by the coordinator into the shared
// output folder before any job is queued. A worker trains a job only if it sees the manifest at
// the job's --out (so it never trains into a private folder that merely has the same name) and
// the manifest lists that very job (so a job forged in Redis cannot make it train anything the
// coordinator did not plan).
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { writeFileAtomic } from '../util/atomic.js';
import { JobRefused, type JobData } from './job.js';

export const MANIFEST_DIR = 'experiments';

export interface ExperimentManifest {
  version: 1;
  id: string;
  /** `run` (reference cases) or `sweep`. */
  command: 'run' | 'sweep';
  /** The sweep's name, for its table. */
  name: string | null;
  out: string;
  createdAt: string;
  /** Where the coordinator ran. */
  host: string;
  /** The queue, its password masked. */
  queue: string;
  /** Every job of the experiment: its BullMQ id and its data, exactly as queued. */
  jobs: { id: string; data: JobData }[];
}

export function manifestPath(out: string, experiment: string): string {
  return join(out, MANIFEST_DIR, `${experiment}.json`);
}

export function newManifest(fields: Omit<ExperimentManifest, 'version' | 'createdAt' | 'host'>): ExperimentManifest {
  return { version: 1, ...fields, createdAt: new Date().toISOString(), host: hostname() };
}

export async function writeManifest(manifest: ExperimentManifest): Promise<string> {
  const path = manifestPath(manifest.out, manifest.id);
  await writeFileAtomic(path, JSON.stringify(manifest, null, 2) + '\n');
  return path;
}

/** A worker that does not see the shared output folder: worth retrying on another worker. */
export class ManifestMissing extends Error {
  override name = 'ManifestMissing';
}

/**
 * Checks that the job's manifest is where the job says, that it is this experiment's, and that it
 * lists this job with exactly this data. Reads the one file; writes nothing.
 */
export async function checkManifest(job: JobData, jobId: string): Promise<ExperimentManifest> {
  const path = manifestPath(job.out, job.experiment);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new ManifestMissing(
      `this worker (${hostname()}) cannot see the experiment manifest ${path} (${code}): --out ${job.out} must be a folder every worker sees at the same path ` +
        '(NFS, a Kubernetes volume, a shared disk); the job was not trained here, so that nothing lands in a folder only this machine sees',
    );
  }
  let manifest: ExperimentManifest;
  try {
    manifest = JSON.parse(text) as ExperimentManifest;
  } catch (e) {
    throw new JobRefused(`refused: ${path} is not valid JSON (${(e as Error).message})`);
  }
  if (manifest.version !== 1 || manifest.id !== job.experiment || manifest.out !== job.out || !Array.isArray(manifest.jobs)) {
    throw new JobRefused(`refused: ${path} is not the manifest of experiment ${job.experiment} in ${job.out}`);
  }
  const entry = manifest.jobs.find((j) => j.id === jobId);
  if (!entry) throw new JobRefused(`refused: the experiment manifest ${path} lists no job ${jobId}`);
  if (!isDeepStrictEqual(entry.data, job)) throw new JobRefused(`refused: job ${jobId} differs from the one the experiment manifest ${path} records`);
  return manifest;
}

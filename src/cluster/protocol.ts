// What `selab worker` and its training processes (src/cluster/processor.ts) tell each other, and
// what a job reports as progress.
import type { BackendName } from '../backend/select.js';

/** The worker's settings for its training processes: environment variable SELAB_WORKER_CONFIG, JSON. */
export interface ProcessorConfig {
  worker: string;
  backend: BackendName;
  /** The worker's own data source (absolute path or URL), if any. */
  data?: string;
  verify?: boolean;
  allowRemote: boolean;
  leaseTtlMs: number;
  /** How long to wait for a run folder leased by a live process before giving the attempt up. */
  leaseWaitMs: number;
  progressIntervalMs: number;
}

export const CONFIG_ENV = 'SELAB_WORKER_CONFIG';

/** Exit status of a training process that found its run folder's lease taken. */
export const EXIT_LEASE_LOST = 75;
/** Exit status of a training process whose worker is gone. */
export const EXIT_ORPHANED = 76;

/** Why the worker aborted a job (the abort signal's reason). */
export const CANCELLED = 'cancelled';
export const SHUTDOWN = 'shutdown';
export const LOCK_LOST = 'lock-lost';

/** A job's progress as BullMQ carries it to the coordinator. */
export interface ProgressReport {
  run: string;
  worker: string;
  phase: 'start' | 'step' | 'epoch';
  attempt: number;
  epoch?: number;
  epochs?: number;
  step?: number;
  steps?: number;
  loss?: number;
  acc?: number;
  val_loss?: number;
  val_acc?: number;
  imagesPerSecond?: number;
  /** Epochs already in the run's checkpoint when this attempt started. */
  resumedFrom?: number;
}

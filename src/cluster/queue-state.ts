// What selab keeps in Redis beside BullMQ's own keys, under the queue's prefix: each experiment's
// record (so that `selab queue status|wait|cancel` work from any machine, without the output
// folder) and the set of cancelled experiments the workers poll.
import type { Redis } from 'ioredis';
import type { QueueTarget } from './connection.js';

export interface ExperimentRecord {
  id: string;
  command: 'run' | 'sweep';
  /** The sweep's name (its table), or null for reference cases. */
  name: string | null;
  out: string;
  createdAt: string;
  host: string;
  /** BullMQ job ids and the runs they train, in order. */
  jobs: { id: string; run: string }[];
  /** Runs of the experiment that were already complete and not queued. */
  skipped: string[];
}

const key = (target: QueueTarget, what: string): string => `bull:${target.queue}:selab:${what}`;

export async function saveExperiment(redis: Redis, target: QueueTarget, record: ExperimentRecord): Promise<void> {
  await redis.hset(key(target, 'experiments'), record.id, JSON.stringify(record));
}

export async function getExperiment(redis: Redis, target: QueueTarget, id: string): Promise<ExperimentRecord | null> {
  const text = await redis.hget(key(target, 'experiments'), id);
  return text === null ? null : (JSON.parse(text) as ExperimentRecord);
}

/** Every experiment, oldest first. */
export async function listExperiments(redis: Redis, target: QueueTarget): Promise<ExperimentRecord[]> {
  const all = await redis.hvals(key(target, 'experiments'));
  return all.map((t) => JSON.parse(t) as ExperimentRecord).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

export async function markCancelled(redis: Redis, target: QueueTarget, id: string): Promise<void> {
  await redis.sadd(key(target, 'cancelled'), id);
}

export async function isCancelled(redis: Redis, target: QueueTarget, id: string): Promise<boolean> {
  return (await redis.sismember(key(target, 'cancelled'), id)) === 1;
}

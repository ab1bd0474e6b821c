// Prepares batches off the main thread. The images arrive once (shared memory, no copy); a request
// carries its indices and, when the main thread has one to recycle, an output buffer pair; the
// reply transfers the filled buffers back (no copy either way).
import { parentPort, workerData } from 'node:worker_threads';
import { fillBatch, type PreparedArrays, type PrepSpec } from './prepare.js';

export interface WorkerInit {
  images: Uint8Array;
  labels: Uint8Array;
  spec: PrepSpec;
}

export interface WorkerRequest {
  id: number;
  epoch: number;
  step: number;
  indices: Uint32Array;
  out?: PreparedArrays;
}

export type WorkerReply = { id: number; batch: PreparedArrays } | { id: number; error: string };

const { images, labels, spec } = workerData as WorkerInit;
const port = parentPort!;

port.on('message', (req: WorkerRequest) => {
  try {
    const batch = fillBatch(images, labels, spec, req.indices, req.epoch, req.step, req.out);
    port.postMessage({ id: req.id, batch } satisfies WorkerReply, [batch.xs.buffer as ArrayBuffer, batch.ys.buffer as ArrayBuffer]);
  } catch (err) {
    port.postMessage({ id: req.id, error: (err as Error).stack ?? String(err) } satisfies WorkerReply);
  }
});

// Reads every run below an output folder and checks each file against the run-file contract
// (docs/run-format.md) before anything is drawn, so a bad file is one clear error naming it
// rather than a NaN deep inside a chart.
import { Ajv, type ErrorObject } from 'ajv';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { findRuns, HISTORY_FILE, RUN_FILE, type FoundRun } from '../runs/files.js';

/** A run's folder, its run.json, and its history.json (null until the first epoch is written). */
export type LoadedRun = FoundRun;

const fraction = { type: 'number', minimum: 0, maximum: 1 } as const;
const nullableNumber = { type: ['number', 'null'] } as const;

const historySchema = {
  type: 'object',
  required: ['version', 'rows'],
  properties: {
    version: { const: 1 },
    rows: {
      type: 'array',
      items: {
        type: 'object',
        // test_* are filled in from val_* for rows written before they existed (normalizeRows).
        required: ['epoch', 'loss', 'acc', 'val_loss', 'val_acc', 'test_loss', 'test_acc', 'lr', 'seconds', 'imagesPerSecond'],
        properties: {
          epoch: { type: 'integer', minimum: 1 },
          loss: { type: 'number' },
          acc: fraction,
          val_loss: { type: 'number' },
          val_acc: fraction,
          test_loss: { type: 'number' },
          test_acc: fraction,
          lr: { type: 'number' },
          seconds: { type: 'number', minimum: 0 },
          imagesPerSecond: { type: 'number', minimum: 0 },
        },
      },
    },
  },
} as const;

const runSchema = {
  type: 'object',
  required: [
    'version', 'id', 'case', 'name', 'model', 'additions', 'se', 'training', 'config', 'params',
    'startedAt', 'endedAt', 'status', 'epochsCompleted', 'final', 'best',
  ],
  properties: {
    version: { const: 1 },
    id: { type: 'string' },
    case: { type: ['integer', 'null'], minimum: 1 },
    name: { type: 'string' },
    model: { type: 'string' },
    additions: { type: 'array', items: { type: 'string' } },
    se: { type: 'boolean' },
    training: { type: 'string' },
    sweep: {
      anyOf: [
        { type: 'null' },
        { type: 'object', required: ['name', 'point', 'params', 'seed'], properties: { name: { type: 'string' }, point: { type: 'string' }, params: { type: 'object' }, seed: { type: 'integer' } } },
      ],
    },
    config: {
      type: 'object',
      // protocol and validation are filled in ('keras', 'full') for files written before they existed.
      required: ['epochs', 'batchSize', 'optimizer', 'lr', 'seed', 'protocol', 'validation'],
      properties: {
        epochs: { type: 'integer', minimum: 0 },
        batchSize: { type: 'integer', minimum: 1 },
        optimizer: { type: 'string' },
        lr: { type: 'number' },
        seed: { type: 'integer' },
        protocol: { enum: ['reference', 'keras'] },
        validation: { enum: ['reference', 'full'] },
      },
    },
    environment: {
      type: 'object',
      required: ['backend', 'data'],
      properties: { backend: { type: 'string' }, data: { type: 'string' }, threads: { type: ['integer', 'null'] } },
    },
    attention: { anyOf: [{ type: 'null' }, { type: 'object', required: ['kind'], properties: { kind: { enum: ['se', 'eca'] } } }] },
    batchNormGroup: { type: ['integer', 'null'], minimum: 1 },
    params: { type: 'integer', minimum: 0 },
    trainableParams: { type: 'integer', minimum: 0 },
    macs: nullableNumber,
    versions: { type: 'object', additionalProperties: { type: 'string' } },
    gitCommit: { type: ['string', 'null'] },
    startedAt: { type: 'string' },
    endedAt: { type: ['string', 'null'] },
    status: { enum: ['running', 'completed', 'failed', 'stopped'] },
    error: { type: ['string', 'null'] },
    epochsCompleted: { type: 'integer', minimum: 0 },
    final: {
      anyOf: [
        { type: 'null' },
        { type: 'object', required: ['epoch', 'val_acc', 'test_acc'], properties: { epoch: { type: 'integer', minimum: 1 }, val_acc: fraction, val_loss: { type: 'number' }, test_acc: fraction, test_loss: { type: 'number' } } },
      ],
    },
    best: {
      anyOf: [
        { type: 'null' },
        { type: 'object', required: ['epoch', 'val_acc', 'test_acc'], properties: { epoch: { type: 'integer', minimum: 1 }, val_acc: fraction, test_acc: fraction } },
      ],
    },
  },
} as const;

const ajv = new Ajv({ allErrors: true });
const validateRun = ajv.compile(runSchema);
const validateHistory = ajv.compile(historySchema);

function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .filter((e) => e.keyword !== 'anyOf') // the branch errors below it say more
    .map((e) => `${e.instancePath || '(top level)'} ${e.message ?? 'is invalid'}`)
    .join('; ');
}

/**
 * Every run below `out`, sorted by id, each checked against the run-file contract.
 * Throws naming the folder when `out` is missing, and naming the file when one is malformed.
 */
export async function loadRuns(out: string): Promise<LoadedRun[]> {
  let isDir = false;
  try {
    isDir = (await stat(out)).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (!isDir) throw new Error(`--out ${out}: no such folder; expected the output folder of selab train/run (default runs/)`);

  const found = await findRuns(out);
  for (const { dir, run, history } of found) {
    if (!validateRun(run)) {
      throw new Error(`${join(dir, RUN_FILE)}: not a valid selab run file: ${describe(validateRun.errors)}`);
    }
    if (history && !validateHistory(history)) {
      throw new Error(`${join(dir, HISTORY_FILE)}: not a valid selab history: ${describe(validateHistory.errors)}`);
    }
  }
  return found;
}

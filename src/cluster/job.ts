// What a queued job carries, and the checks a worker makes before it trusts one. A job is plain
// data (the planners' inputs, never a path the worker did not choose): which run (a reference
// case, a registry model, or one point × seed of a sweep), with which configuration overrides,
// into which shared output folder. The worker checks it against a schema, refuses paths that
// leave the output folder and remote sources it was not allowed, then rebuilds the run with the
// same planners a local command uses, which check every value again.
import { Ajv, type ErrorObject } from 'ajv';
import { isAbsolute, join, normalize } from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { isDeepStrictEqual } from 'node:util';
import { getAttentionKind, type AttentionSpec } from '../attention/index.js';
import { PREPROCESS_MODES } from '../data/preprocess.js';
import { OPTIMIZER_NAMES } from '../engine/optimizers.js';
import { SE_INTEGRATIONS, type SEIntegration } from '../models/resnet.js';
import { planModelRun } from '../experiments/model-run.js';
import type { PlannedRun } from '../experiments/plan.js';
import { trainingPreset } from '../experiments/presets.js';
import { planCases } from '../experiments/run-cases.js';
import { planSweep, planSweepRun, type SweepRequest } from '../experiments/sweep.js';
import { PROTOCOLS, VALIDATIONS, type TrainConfig } from '../runs/config.js';

export const JOB_VERSION = 1;
/** The BullMQ job name of every training job. */
export const JOB_NAME = 'train';

export type JobSpec =
  | { kind: 'case'; caseId: number; overrides: Partial<TrainConfig> }
  | { kind: 'model'; model: string; attention: AttentionSpec | null; integration: SEIntegration; preset: string; overrides: Partial<TrainConfig> }
  | { kind: 'sweep'; request: Omit<SweepRequest, 'out'>; index: number };

export interface JobData {
  version: typeof JOB_VERSION;
  /** The experiment (one `selab run|sweep --queue` invocation) the job belongs to. */
  experiment: string;
  /** The shared output folder, absolute, the same on every worker. */
  out: string;
  /** The run's folder below `out`, e.g. case_1 or sweep_tiny/baseline/seed_1. */
  run: string;
  spec: JobSpec;
  /** A CIFAR-10 source the job names (a URL, for workers started with --allow-remote); default: the worker's own. */
  data?: string;
  /** Accept a data archive whose MD5 is not the official one (only with `data`). */
  verify?: boolean;
}

/** What a finished job returns. */
export interface JobResult {
  run: string;
  status: string;
  epochsCompleted: number;
  /** False when the run was already complete and nothing was trained. */
  trained: boolean;
  worker: string;
  finalValAcc: number | null;
}

/** A job a worker will not run, whoever asks: BullMQ fails it at once, without retries. */
export class JobRefused extends UnrecoverableError {
  constructor(message: string) {
    super(message);
    this.name = 'UnrecoverableError';
  }
}

const ID = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$';
const int = (minimum: number) => ({ type: 'integer', minimum }) as const;
const nullable = (schema: object) => ({ anyOf: [{ type: 'null' }, schema] });
const list = (items: object, maxItems = 64) => ({ type: 'array', items, maxItems }) as const;

/** TrainConfig's fields, as a complete configuration (a preset) has them. */
const CONFIG_KEYS = Object.keys(trainingPreset('se-cifar'));

/**
 * Overrides of a preset: only TrainConfig's fields, none required; the usual ones typed here,
 * any other a plain value that resolveConfig then checks like every value.
 */
export const OVERRIDES_SCHEMA = {
  type: 'object',
  propertyNames: { enum: CONFIG_KEYS },
  additionalProperties: { type: ['string', 'number', 'boolean', 'null'] },
  properties: {
    epochs: int(1),
    batchSize: int(1),
    microBatch: nullable(int(1)),
    optimizer: { enum: [...OPTIMIZER_NAMES] },
    lr: { type: 'number', exclusiveMinimum: 0 },
    momentum: nullable({ type: 'number', minimum: 0 }),
    upsample: { enum: [1, 2, 4] },
    inputShape: { type: 'array', items: int(1), minItems: 3, maxItems: 3 },
    trainLimit: nullable(int(1)),
    testLimit: nullable(int(1)),
    seed: int(0),
    weights: { type: 'string', minLength: 1, maxLength: 2048 },
    preprocess: { enum: [...PREPROCESS_MODES] },
    augment: { type: 'boolean' },
    normalize: nullable({
      type: 'object',
      additionalProperties: false,
      required: ['mean', 'std'],
      properties: { mean: { type: 'array', items: { type: 'number' }, minItems: 3, maxItems: 3 }, std: { type: 'array', items: { type: 'number', exclusiveMinimum: 0 }, minItems: 3, maxItems: 3 } },
    }),
    weightDecay: { type: 'number', minimum: 0 },
    lrDecayEpochs: list(int(1)),
    lrDecayFactor: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
    protocol: { enum: [...PROTOCOLS] },
    validation: { enum: [...VALIDATIONS] },
  },
} as const;

const KIND_NAME = { type: 'string', pattern: '^[a-z][a-z0-9-]{0,31}$' } as const;

/** A recorded attention spec: its kind and its settings (checked against the kind's settings by checkJob). */
const ATTENTION_SCHEMA = {
  anyOf: [
    { type: 'null' },
    { type: 'object', required: ['kind'], properties: { kind: KIND_NAME }, additionalProperties: { type: ['number', 'string', 'boolean'] }, maxProperties: 16 },
  ],
};

const SPEC_SCHEMAS = {
  case: {
    type: 'object',
    additionalProperties: false,
    required: ['kind', 'caseId', 'overrides'],
    properties: { kind: { const: 'case' }, caseId: int(1), overrides: OVERRIDES_SCHEMA },
  },
  model: {
    type: 'object',
    additionalProperties: false,
    required: ['kind', 'model', 'attention', 'integration', 'preset', 'overrides'],
    properties: {
      kind: { const: 'model' },
      model: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,63}$' },
      attention: ATTENTION_SCHEMA,
      integration: { enum: [...SE_INTEGRATIONS] },
      preset: { type: 'string', pattern: ID },
      overrides: OVERRIDES_SCHEMA,
    },
  },
  sweep: {
    type: 'object',
    additionalProperties: false,
    required: ['kind', 'request', 'index'],
    properties: {
      kind: { const: 'sweep' },
      index: int(0),
      request: {
        type: 'object',
        additionalProperties: false,
        required: ['model', 'grid', 'baseline', 'repeats', 'preset', 'overrides'],
        properties: {
          model: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,63}$' },
          name: { type: 'string', pattern: ID },
          grid: {
            type: 'object',
            additionalProperties: false,
            required: ['attention', 'integration'],
            properties: {
              attention: list({
                type: 'object',
                additionalProperties: false,
                required: ['kind', 'values'],
                properties: { kind: KIND_NAME, values: { type: 'object', additionalProperties: list({ type: ['number', 'string'] }), maxProperties: 16 } },
              }, 8),
              integration: list({ enum: [...SE_INTEGRATIONS] }),
            },
          },
          baseline: { type: 'boolean' },
          repeats: { type: 'integer', minimum: 1, maximum: 1000 },
          preset: { type: 'string', pattern: ID },
          overrides: OVERRIDES_SCHEMA,
        },
      },
    },
  },
} as const;

export const JOB_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['version', 'experiment', 'out', 'run', 'spec'],
  properties: {
    version: { const: JOB_VERSION },
    experiment: { type: 'string', pattern: ID },
    out: { type: 'string', minLength: 1, maxLength: 4096 },
    run: { type: 'string', minLength: 1, maxLength: 1024 },
    spec: {
      type: 'object',
      required: ['kind'],
      properties: { kind: { enum: ['case', 'model', 'sweep'] } },
      // The branch for the kind given, so that errors name that kind's fields only.
      allOf: Object.entries(SPEC_SCHEMAS).map(([kind, schema]) => ({ if: { properties: { kind: { const: kind } } }, then: schema })),
    },
    data: { type: 'string', minLength: 1, maxLength: 4096 },
    verify: { type: 'boolean' },
  },
};

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile<JobData>(JOB_SCHEMA);

function describeErrors(errors: ErrorObject[] | null | undefined): string {
  const lines = (errors ?? [])
    .filter((e) => e.keyword !== 'if' && e.keyword !== 'anyOf' && !(e.keyword === 'enum' && e.propertyName !== undefined))
    .map((e) => {
      const where = e.instancePath === '' ? 'the job' : e.instancePath.slice(1).replace(/\//g, '.');
      if (e.keyword === 'additionalProperties') return `${where}: unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"`;
      if (e.keyword === 'propertyNames') return `${where}: unknown field "${(e.params as { propertyName: string }).propertyName}"`;
      if (e.keyword === 'enum') return `${where} ${e.message} (${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')})`;
      return `${where} ${e.message ?? 'is invalid'}`;
    });
  return [...new Set(lines)].join('; ');
}

const URL_RE = /^[a-z][a-z0-9+.-]*:/i;

/** True for a value that names something to fetch (http:, https:, file:, …) rather than a file in the output folder. */
export function isUrl(value: string): boolean {
  return URL_RE.test(value) && !/^[a-z]:[\\/]/i.test(value);
}

/** A path below a folder: relative, no `.` or `..` segment, no backslash, no NUL. */
export function checkRelativePath(what: string, path: string): void {
  const segments = path.split('/');
  if (isAbsolute(path) || path.includes('\\') || path.includes('\0') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new JobRefused(`${what} ${JSON.stringify(path)}: a job may only name a path inside the output folder (relative, without '..', '.', empty segments or backslashes)`);
  }
}

/** Each attention kind known, each setting one of the kind's, each value one its flag accepts. */
function checkAttentionSettings(grids: readonly { kind: string; values: Record<string, unknown[]> }[]): void {
  for (const g of grids) {
    let kind;
    try {
      kind = getAttentionKind(g.kind, 'attention');
    } catch (e) {
      throw new JobRefused(`refused: ${(e as Error).message}`);
    }
    for (const [key, values] of Object.entries(g.values)) {
      const setting = kind.settings.find((s) => s.key === key);
      if (!setting) throw new JobRefused(`refused: attention ${kind.kind} has no setting "${key}" (it has ${kind.settings.map((s) => s.key).join(', ')})`);
      for (const v of values) {
        let parsed: unknown;
        try {
          parsed = setting.parse(String(v));
        } catch (e) {
          throw new JobRefused(`refused: attention ${kind.kind} ${key}: ${(e as Error).message}`);
        }
        if (!isDeepStrictEqual(parsed, v)) throw new JobRefused(`refused: attention ${kind.kind} ${key}: ${JSON.stringify(v)} is not a value ${setting.flag} gives`);
      }
    }
  }
}

/** The worker's rules for what a job may make it read. */
export interface JobPolicy {
  /** Weights URLs and data sources named by jobs (`selab worker --allow-remote`). */
  allowRemote: boolean;
}

/**
 * The job's data as a JobData once it passes the schema, the path rules and the worker's remote
 * policy; otherwise a JobRefused naming what is wrong. Reads and writes nothing.
 */
export function checkJob(data: unknown, policy: JobPolicy): JobData {
  if (!validate(data)) throw new JobRefused(`refused: the job does not match selab's job schema: ${describeErrors(validate.errors)}`);
  const job = data;
  if (!isAbsolute(job.out) || normalize(job.out) !== job.out || job.out.includes('\0') || job.out.split('/').includes('..')) {
    throw new JobRefused(`refused: out ${JSON.stringify(job.out)} must be an absolute path without '..' or '.' segments (the output folder every worker sees at the same path)`);
  }
  if (job.out === '/') throw new JobRefused('refused: out "/" is the root of the file system, not an output folder');
  checkRelativePath('refused: run', job.run);
  if (!job.run.split('/').every((s) => new RegExp(ID).test(s))) throw new JobRefused(`refused: run ${JSON.stringify(job.run)}: each folder name must be letters, digits, '.', '_' or '-'`);
  if (job.spec.kind === 'model') checkAttentionSettings(job.spec.attention === null ? [] : [{ kind: job.spec.attention.kind, values: Object.fromEntries(Object.entries(job.spec.attention).filter(([k]) => k !== 'kind').map(([k, v]) => [k, [v]])) }]);
  if (job.spec.kind === 'sweep') checkAttentionSettings(job.spec.request.grid.attention);
  const overrides = job.spec.kind === 'sweep' ? job.spec.request.overrides : job.spec.overrides;
  const weights = overrides.weights;
  if (weights !== undefined && weights !== 'imagenet' && weights !== 'none') {
    if (isUrl(weights)) {
      if (!policy.allowRemote) throw new JobRefused(`refused: the job names the weights URL ${weights}; this worker reads remote weights only when started with --allow-remote`);
      if (!/^https?:\/\//i.test(weights)) throw new JobRefused(`refused: weights ${JSON.stringify(weights)}: only http(s) URLs may be named by a job`);
    } else {
      checkRelativePath('refused: weights', weights);
    }
  }
  if (job.data !== undefined) {
    if (!isUrl(job.data)) throw new JobRefused(`refused: data ${JSON.stringify(job.data)}: a job may name a data source only as a URL; local data is the worker's own (selab worker --data, $SELAB_DATA or the SELAB_HOME cache)`);
    if (!policy.allowRemote) throw new JobRefused(`refused: the job names the data source ${job.data}; this worker reads data named by jobs only when started with --allow-remote`);
    if (!/^https?:\/\//i.test(job.data)) throw new JobRefused(`refused: data ${JSON.stringify(job.data)}: only http(s) URLs may be named by a job`);
  }
  if (job.verify !== undefined && job.data === undefined) throw new JobRefused('refused: verify applies only to a data source the job names');
  return job;
}

/** The overrides with a weights file (relative to the output folder in the job) made absolute. */
function localOverrides(overrides: Partial<TrainConfig>, out: string): Partial<TrainConfig> {
  const w = overrides.weights;
  if (w === undefined || w === 'imagenet' || w === 'none' || isUrl(w)) return overrides;
  return { ...overrides, weights: join(out, ...w.split('/')) };
}

/**
 * The planned run a checked job describes, built by the planners a local command uses (which
 * check the configuration, the model and the attention); the run continues whatever an earlier
 * attempt left in its folder. A job whose plan is not the run it names is refused.
 */
export async function planJob(job: JobData): Promise<PlannedRun> {
  const spec = job.spec;
  let plan: PlannedRun;
  try {
    if (spec.kind === 'case') {
      [plan] = (await planCases([spec.caseId], localOverrides(spec.overrides, job.out), job.out, true)) as [PlannedRun];
    } else if (spec.kind === 'model') {
      plan = await planModelRun({ model: spec.model, attention: spec.attention, integration: spec.integration, preset: spec.preset }, localOverrides(spec.overrides, job.out), job.out, true);
    } else {
      const sweep = planSweep({ ...spec.request, overrides: localOverrides(spec.request.overrides, job.out), out: job.out });
      const point = sweep.jobs[spec.index];
      if (!point) throw new Error(`index ${spec.index}: the sweep has ${sweep.jobs.length} runs`);
      plan = planSweepRun(sweep, point, true);
    }
  } catch (e) {
    throw new JobRefused(`refused: ${(e as Error).message}`);
  }
  if (plan.id !== job.run) throw new JobRefused(`refused: the job names run ${JSON.stringify(job.run)}, but its spec is the run ${JSON.stringify(plan.id)}`);
  return { ...plan, resume: true };
}

/** The folder of the job's run. */
export function runDir(job: JobData): string {
  return join(job.out, ...job.run.split('/'));
}

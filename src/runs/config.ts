// One training configuration: every field required, made by resolveConfig(preset, overrides), and
// checked in one place. Where a run executes (backend, data source, threads) is its Environment,
// recorded beside the configuration but not part of it: the same configuration on another
// backend is the same experiment.

/**
 * How a run follows the reference experiment. 'reference': as its TensorFlow 1 script on an
 * 8-core TPU did it — whole batches only (a new permutation each epoch, the remainder unused),
 * BatchNorm statistics per replica's share of the batch, its reshuffled validation subset, and the
 * metrics it logged (replica 0's). 'keras': as Keras does it on one device today.
 */
export const PROTOCOLS = ['reference', 'keras'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** Which validation drives a run's best epoch: the reference's subset (val_acc) or the whole test split (test_acc). */
export const VALIDATIONS = ['reference', 'full'] as const;
export type Validation = (typeof VALIDATIONS)[number];

/** The reference experiment's TPU cores: each batch was split into 8 equal shares, one per replica. */
export const REFERENCE_REPLICAS = 8;

export interface Normalization {
  mean: number[];
  std: number[];
}

export interface TrainConfig {
  epochs: number;
  batchSize: number;
  /** Images per forward/backward pass; null until the runner chooses it from the memory budget. */
  microBatch: number | null;
  /** An optimizer name of src/engine/optimizers.ts. */
  optimizer: string;
  lr: number;
  /** Only for momentum SGD. */
  momentum: number | null;
  /** CIFAR-10's 32×32 images are repeated this many times along each axis. */
  upsample: number;
  inputShape: number[];
  trainLimit: number | null;
  testLimit: number | null;
  seed: number;
  /** imagenet, none, a file or a URL. */
  weights: string;
  preprocess: string;
  augment: boolean;
  /** Per-channel mean/std of pixel/255, applied to train and test batches; null: none. */
  normalize: Normalization | null;
  /** L2 weight decay on conv/dense kernels (grad += wd·w). */
  weightDecay: number;
  /** Epochs after which the lr is multiplied by lrDecayFactor. */
  lrDecayEpochs: number[];
  lrDecayFactor: number;
  /** 'reference' (the seven cases) or 'keras' (sweeps, the quick job); see PROTOCOLS. */
  protocol: Protocol;
  /** 'reference' needs protocol 'reference': under 'keras' the validation is the full test split. */
  validation: Validation;
}

export interface Environment {
  backend: string;
  /** The data source as resolved (an absolute path or a URL). */
  data: string;
  /** Native threads (SELAB_THREADS / OMP_NUM_THREADS); null where the backend has none to set. */
  threads: number | null;
}

/** What `--resume` may change; anything else must match the run being continued. */
export const RESUMABLE_CHANGES: readonly (keyof TrainConfig)[] = ['epochs', 'lr', 'lrDecayEpochs', 'lrDecayFactor', 'validation'];

/** The flag each field is set by, for error messages. */
const FLAG: Record<keyof TrainConfig, string> = {
  epochs: '--epochs', batchSize: '--batch-size', microBatch: '--micro-batch', optimizer: '--optimizer', lr: '--lr',
  momentum: '--optimizer', upsample: 'upsample', inputShape: 'inputShape', trainLimit: '--train-limit', testLimit: '--test-limit',
  seed: '--seed', weights: '--weights', preprocess: '--preprocess', augment: '--augment', normalize: '--normalize',
  weightDecay: '--weight-decay', lrDecayEpochs: '--lr-decay-epochs', lrDecayFactor: '--lr-decay-factor',
  protocol: '--protocol', validation: '--validation',
};

export function validateConfig(config: TrainConfig): void {
  const intAtLeast = (key: keyof TrainConfig, v: number | null, min: number): void => {
    if (v !== null && !(Number.isInteger(v) && v >= min)) throw new Error(`${FLAG[key]} must be an integer ≥ ${min}, got ${v}`);
  };
  intAtLeast('epochs', config.epochs, 1);
  intAtLeast('batchSize', config.batchSize, 1);
  intAtLeast('microBatch', config.microBatch, 1);
  intAtLeast('trainLimit', config.trainLimit, 1);
  intAtLeast('testLimit', config.testLimit, 1);
  intAtLeast('seed', config.seed, 0);
  if (config.microBatch !== null && config.batchSize % config.microBatch !== 0) {
    throw new Error(`--micro-batch ${config.microBatch} must divide --batch-size ${config.batchSize}`);
  }
  if (!(Number.isFinite(config.lr) && config.lr > 0)) throw new Error(`--lr must be a positive number, got ${config.lr}`);
  if (!(Number.isFinite(config.weightDecay) && config.weightDecay >= 0)) throw new Error(`--weight-decay must be a number ≥ 0, got ${config.weightDecay}`);
  for (const e of config.lrDecayEpochs) intAtLeast('lrDecayEpochs', e, 1);
  if (!(config.lrDecayFactor > 0 && config.lrDecayFactor <= 1)) throw new Error(`--lr-decay-factor must be in (0, 1], got ${config.lrDecayFactor}`);
  if (config.normalize && config.preprocess !== 'scale') throw new Error(`--normalize replaces --preprocess ${config.preprocess}: use one or the other`);
  if (!PROTOCOLS.includes(config.protocol)) throw new Error(`--protocol ${JSON.stringify(config.protocol)}: expected one of ${PROTOCOLS.join(', ')}`);
  if (!VALIDATIONS.includes(config.validation)) throw new Error(`--validation ${JSON.stringify(config.validation)}: expected one of ${VALIDATIONS.join(', ')}`);
  if (config.protocol === 'keras' && config.validation === 'reference') {
    throw new Error('--validation reference needs --protocol reference (under --protocol keras the validation is the full test split: use --validation full)');
  }
  if (config.protocol === 'reference') {
    const b = config.batchSize;
    if (b % REFERENCE_REPLICAS !== 0) throw new Error(`--protocol reference splits each batch across the reference's ${REFERENCE_REPLICAS} TPU replicas: --batch-size must be a multiple of ${REFERENCE_REPLICAS}, got ${b}`);
    for (const key of ['trainLimit', 'testLimit'] as const) {
      const limit = config[key];
      if (limit !== null && limit < b) throw new Error(`${FLAG[key]} ${limit}: --protocol reference uses whole batches of ${b} only (training and validation), so it needs at least ${b} images; raise it or use --protocol keras`);
    }
  }
}

/** The preset with the overrides applied, checked. */
export function resolveConfig(preset: TrainConfig, overrides: Partial<TrainConfig> = {}): TrainConfig {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Partial<TrainConfig>;
  const config: TrainConfig = { ...preset, ...defined };
  validateConfig(config);
  return config;
}

/** Each field that differs between a saved run and the one asked for, as "field: wanted (the run has saved)". */
export function configDifferences(saved: TrainConfig, wanted: TrainConfig, ignore: readonly (keyof TrainConfig)[] = []): string[] {
  const diffs: string[] = [];
  for (const key of Object.keys(saved) as (keyof TrainConfig)[]) {
    if (ignore.includes(key)) continue;
    if (JSON.stringify(saved[key]) !== JSON.stringify(wanted[key])) {
      diffs.push(`${FLAG[key].startsWith('--') ? FLAG[key] : key} ${JSON.stringify(wanted[key])} (the run has ${JSON.stringify(saved[key])})`);
    }
  }
  return diffs;
}

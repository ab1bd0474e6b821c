// The options of the commands that train (train, run, sweep), defined once, and their parsing into
// configuration overrides, attention settings and the environment. Every value is checked here,
// with an error naming the flag, before anything is written.
import type { Command } from 'commander';
import { attentionKinds, attentionSpec, ATTENTION_KINDS, getAttentionKind, type AttentionKind, type AttentionSpec, type SettingValue } from '../attention/index.js';
import { BACKEND_NAMES, type BackendName } from '../backend/select.js';
import { parsePreprocess } from '../data/preprocess.js';
import { getOptimizerPreset, OPTIMIZER_PRESET_IDS } from '../engine/optimizers.js';
import { parseDecayEpochs, parseDecayFactor } from '../engine/schedule.js';
import { SE_INTEGRATIONS, type SEIntegration } from '../models/resnet.js';
import type { Launch } from '../experiments/plan.js';
import { parseAttentionKinds, parseIntegrations, parseSettingList, type SweepGrid } from '../experiments/sweep-plan.js';
import { CIFAR10_NORMALIZE, DEFAULT_OUT, TRAINING_PRESET_IDS } from '../experiments/presets.js';
import { PROTOCOLS, VALIDATIONS, type Protocol, type TrainConfig, type Validation } from '../runs/config.js';

/** The flags as commander gives them: undefined when not given. */
export interface TrainFlags {
  epochs?: string;
  batchSize?: string;
  microBatch?: string;
  optimizer?: string;
  lr?: string;
  trainLimit?: string;
  testLimit?: string;
  seed?: string;
  backend?: string;
  data?: string;
  verify?: boolean;
  out?: string;
  resume?: boolean;
  weights?: string;
  preprocess?: string;
  augment?: boolean;
  normalize?: boolean;
  weightDecay?: string;
  lrDecayEpochs?: string;
  lrDecayFactor?: string;
  protocol?: string;
  validation?: string;
}

/**
 * The attention flags of `train --model` (one value each) and `sweep` (lists): --attention,
 * --integration, and each attention kind's own settings (--se-ratio, --eca-kernel, …).
 */
export interface AttentionFlags {
  attention?: string;
  integration?: string;
  [setting: string]: unknown;
}

/** commander's property for a flag: --se-ratio → seRatio. */
function flagProperty(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function settingFlag(flags: AttentionFlags, flag: string): string | undefined {
  const v = flags[flagProperty(flag)];
  return typeof v === 'string' ? v : undefined;
}

/** A setting flag of a kind that is not asked for is an error, not silently ignored. */
function checkStraySettings(flags: AttentionFlags, kinds: readonly AttentionKind[]): void {
  for (const other of attentionKinds()) {
    if (kinds.includes(other)) continue;
    const given = other.settings.find((s) => settingFlag(flags, s.flag) !== undefined);
    if (given) throw new Error(`${given.flag} applies to --attention ${other.kind} only (got --attention ${flags.attention ?? 'none'})`);
  }
}

/** Options shared by train, run and sweep; `defaults` describes each command's own defaults in the help. */
export function addTrainOptions(cmd: Command, defaults: { recipe: string } = { recipe: "the case's preset" }): Command {
  const d = defaults.recipe;
  return cmd
    .option('--epochs <n>', `epochs to train (default: ${d})`)
    .option('--batch-size <n>', `images per optimizer step (default: ${d})`)
    .option('--micro-batch <n>', "images per forward/backward pass; must divide the batch size (default: chosen from the model's activation size)")
    .option('--optimizer <preset>', `optimizer preset: ${OPTIMIZER_PRESET_IDS.join(', ')} (default: ${d})`)
    .option('--lr <x>', "learning rate (default: the optimizer preset's)")
    .option('--lr-decay-epochs <list>', `step schedule: multiply the lr by --lr-decay-factor after each of these epochs, e.g. 82,123, or "none" (default: ${d})`)
    .option('--lr-decay-factor <x>', 'step schedule factor, in (0, 1] (default: 0.1)')
    .option('--weight-decay <x>', `L2 weight decay on conv and dense kernels (not biases or BatchNorm), grad += x·w (default: ${d})`)
    .option('--train-limit <n>', 'train on the first n training images only')
    .option('--test-limit <n>', 'validate on the first n test images only')
    .option('--seed <n>', 'seed for weight initialisation, shuffling and augmentation (default: 1)')
    .option('--backend <name>', `${BACKEND_NAMES.join(', ')} (default: auto)`)
    .option('--data <source>', 'CIFAR-10: a folder, the .tar.gz archive or a URL (default: $SELAB_DATA, else the official download)')
    .option('--no-verify', 'accept a CIFAR-10 archive whose MD5 is not the official one (e.g. ../shared/datasets)')
    .option('--weights <spec>', 'imagenet, none, a file or a URL (default: imagenet for transfer cases 3-7, none otherwise)')
    .option('--preprocess <mode>', 'scale (default), caffe or tf')
    .option('--augment', `pad 4 + random crop + horizontal flip (default: ${d})`)
    .option('--no-augment', 'no augmentation')
    .option('--normalize', `subtract CIFAR-10's per-channel mean and divide by its std (of pixel/255), train and test (default: ${d})`)
    .option('--no-normalize', 'pixels only divided by 255')
    .option('--protocol <p>', `reference (train as the reference's TF1 script on 8 TPU cores did: TF1 optimizers, whole batches only, BatchNorm per 128-image replica share, its reshuffled validation subset) or keras (as Keras does today) (default: reference for the cases, keras otherwise)`)
    .option('--validation <v>', 'which validation picks the best epoch: reference (the reference\'s subset, val_acc; needs --protocol reference) or full (the whole test split, test_acc) (default: reference under --protocol reference, else full)')
    .option('--out <dir>', `output folder (default: ${DEFAULT_OUT})`)
    .option('--resume', 'continue the runs in the output folder from their last checkpoints (or start those that have none)');
}

/** `--attention` and its settings; `list` for sweeps, where each takes a comma-separated list. */
export function addAttentionOptions(cmd: Command, list: boolean): Command {
  const many = (what: string) => (list ? `${what} (a comma-separated list, or "all")` : what);
  cmd.option('--attention <kind>', many(`channel attention: none, ${ATTENTION_KINDS.join(', ')}`) + (list ? ' (default: se)' : ' (default: none)'));
  for (const kind of attentionKinds()) {
    for (const s of kind.settings) cmd.option(`${s.flag} <value>`, `${many(s.help)} (default: ${s.fallback}${list ? `; all: ${s.all.join(',')}` : ''})`);
  }
  return cmd
    .option('--integration <where>', many(`where attention sits in a residual unit: ${SE_INTEGRATIONS.join(', ')}`) + ' (default: standard)')
    .option('--preset <id>', `training recipe: ${TRAINING_PRESET_IDS.join(', ')} (default: se-cifar; flags override it)`);
}

export function parseInteger(flag: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!/^[+-]?\d+$/.test(text.trim()) || !Number.isSafeInteger(v) || v < min) {
    throw new Error(`${flag} ${JSON.stringify(text)}: expected an integer ≥ ${min}`);
  }
  return v;
}

function parsePositive(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v <= 0) throw new Error(`${flag} ${JSON.stringify(text)}: expected a positive number`);
  return v;
}

function oneOfFlag(flag: string, value: string, allowed: readonly string[]): string {
  if (allowed.includes(value.trim())) return value.trim();
  throw new Error(`${flag} ${JSON.stringify(value)}: expected one of ${allowed.join(', ')}`);
}

/** The configuration fields the flags set; fields not given are absent. Writes nothing. */
export function parseOverrides(flags: TrainFlags): Partial<TrainConfig> {
  const o: Partial<TrainConfig> = {};
  const set = <K extends keyof TrainConfig>(key: K, v: TrainConfig[K] | undefined): void => {
    if (v !== undefined) o[key] = v;
  };
  set('epochs', parseInteger('--epochs', flags.epochs, 1));
  set('batchSize', parseInteger('--batch-size', flags.batchSize, 1));
  set('microBatch', parseInteger('--micro-batch', flags.microBatch, 1));
  set('trainLimit', parseInteger('--train-limit', flags.trainLimit, 1));
  set('testLimit', parseInteger('--test-limit', flags.testLimit, 1));
  set('seed', parseInteger('--seed', flags.seed, 0));
  if (flags.optimizer !== undefined) {
    let preset;
    try {
      preset = getOptimizerPreset(flags.optimizer);
    } catch (e) {
      throw new Error(`--optimizer: ${(e as Error).message}`, { cause: e });
    }
    Object.assign(o, { optimizer: preset.name, lr: preset.lr, momentum: preset.momentum ?? null });
  }
  set('lr', parsePositive('--lr', flags.lr));
  if (flags.preprocess !== undefined) o.preprocess = parsePreprocess(flags.preprocess);
  set('augment', flags.augment);
  if (flags.normalize !== undefined) o.normalize = flags.normalize ? CIFAR10_NORMALIZE : null;
  if (flags.weightDecay !== undefined) {
    const wd = Number(flags.weightDecay);
    if (flags.weightDecay.trim() === '' || !Number.isFinite(wd) || wd < 0) throw new Error(`--weight-decay ${JSON.stringify(flags.weightDecay)}: expected a number ≥ 0`);
    o.weightDecay = wd;
  }
  // The presets choose the validation that goes with the protocol; --validation overrides it.
  if (flags.protocol !== undefined) o.protocol = oneOfFlag('--protocol', flags.protocol, PROTOCOLS) as Protocol;
  if (flags.validation !== undefined) o.validation = oneOfFlag('--validation', flags.validation, VALIDATIONS) as Validation;
  if (flags.lrDecayEpochs !== undefined) o.lrDecayEpochs = parseDecayEpochs(flags.lrDecayEpochs);
  if (flags.lrDecayFactor !== undefined) o.lrDecayFactor = parseDecayFactor(flags.lrDecayFactor);
  if (flags.weights !== undefined) {
    if (flags.weights.trim() === '') throw new Error('--weights: empty value (expected imagenet, none, a file path or a URL)');
    o.weights = flags.weights;
  }
  if (o.batchSize !== undefined && o.microBatch != null && o.batchSize % o.microBatch !== 0) {
    throw new Error(`--micro-batch ${o.microBatch} must divide --batch-size ${o.batchSize}`);
  }
  return o;
}

export function parseBackend(name: string | undefined): BackendName {
  const b = name ?? 'auto';
  if (!(BACKEND_NAMES as readonly string[]).includes(b)) throw new Error(`--backend ${JSON.stringify(b)}: expected one of ${BACKEND_NAMES.join(', ')}`);
  return b as BackendName;
}

/** Where and how a command's runs execute. */
export function launchFrom(flags: TrainFlags, signal?: AbortSignal): Launch {
  return {
    out: flags.out ?? DEFAULT_OUT,
    resume: flags.resume ?? false,
    env: { backend: parseBackend(flags.backend), ...(flags.data !== undefined ? { data: flags.data } : {}), ...(flags.verify === false ? { verify: false } : {}) },
    ...(signal ? { signal } : {}),
  };
}

/** `--attention` and its settings for one run (`train --model`). */
export function parseAttention(flags: AttentionFlags): { attention: AttentionSpec | null; integration: SEIntegration } {
  const name = flags.attention ?? 'none';
  const kind = name === 'none' ? null : getAttentionKind(name);
  checkStraySettings(flags, kind ? [kind] : []);
  const integrations = parseIntegrations(flags.integration ?? 'standard');
  if (integrations.length !== 1) throw new Error('--integration: one place per run (a list is for selab sweep)');
  const integration = integrations[0]!;
  if (!kind) {
    if (flags.integration !== undefined) throw new Error(`--integration needs --attention ${ATTENTION_KINDS.join(' or ')}`);
    return { attention: null, integration };
  }
  const values: Record<string, SettingValue> = {};
  for (const s of kind.settings) {
    const text = settingFlag(flags, s.flag);
    if (text !== undefined) values[s.key] = s.parse(text.trim());
  }
  return { attention: attentionSpec(kind, values), integration };
}

/** The attention grid of `selab sweep`: each asked-for kind with its settings' lists, and the integrations. */
export function parseAttentionGrid(flags: AttentionFlags): SweepGrid {
  const kinds = flags.attention?.trim() === 'all' ? [...attentionKinds()] : parseAttentionKinds(flags.attention ?? 'se');
  checkStraySettings(flags, kinds);
  return {
    attention: kinds.map((kind) => ({
      kind: kind.kind,
      values: Object.fromEntries(kind.settings.map((s) => [s.key, parseSettingList(s, settingFlag(flags, s.flag) ?? String(s.fallback))])),
    })),
    integration: flags.integration?.trim() === 'all' ? [...SE_INTEGRATIONS] : parseIntegrations(flags.integration ?? 'standard'),
  };
}

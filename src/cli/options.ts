// The options of the commands that train (train, run, sweep), defined once, and their parsing into
// configuration overrides, attention settings and the environment. Every value is checked here,
// with an error naming the flag, before anything is written.
import type { Command } from 'commander';
import { ATTENTION_KINDS, type AttentionSpec } from '../attention/index.js';
import { GATE_ACTIVATIONS, SQUEEZE_MODES } from '../attention/squeeze-excitation.js';
import { BACKEND_NAMES, type BackendName } from '../backend/select.js';
import { parsePreprocess } from '../data/preprocess.js';
import { getOptimizerPreset, OPTIMIZER_PRESET_IDS } from '../engine/optimizers.js';
import { parseDecayEpochs, parseDecayFactor } from '../engine/schedule.js';
import { SE_INTEGRATIONS, type SEIntegration } from '../models/resnet.js';
import type { Launch } from '../experiments/plan.js';
import { CIFAR10_NORMALIZE, DEFAULT_OUT, TRAINING_PRESET_IDS } from '../experiments/presets.js';
import type { TrainConfig } from '../runs/config.js';

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
}

/** The attention flags of `train --model` (one value each) and `sweep` (lists). */
export interface AttentionFlags {
  attention?: string;
  seRatio?: string;
  seGate?: string;
  seSqueeze?: string;
  ecaKernel?: string;
  integration?: string;
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
    .option('--out <dir>', `output folder (default: ${DEFAULT_OUT})`)
    .option('--resume', 'continue the runs in the output folder from their last checkpoints (or start those that have none)');
}

/** `--attention` and its settings; `list` for sweeps, where each takes a comma-separated list. */
export function addAttentionOptions(cmd: Command, list: boolean): Command {
  const many = (what: string) => (list ? `${what} (a comma-separated list, or "all")` : what);
  return cmd
    .option('--attention <kind>', many(`channel attention: none, ${ATTENTION_KINDS.join(', ')}`) + (list ? ' (default: se)' : ' (default: none)'))
    .option('--se-ratio <r>', many('SE reduction ratio') + ' (default: 16)')
    .option('--se-gate <g>', many(`SE gate: ${GATE_ACTIVATIONS.join(', ')}`) + ' (default: sigmoid)')
    .option('--se-squeeze <s>', many(`SE squeeze: ${SQUEEZE_MODES.join(', ')}`) + ' (default: avg)')
    .option('--eca-kernel <k>', many('ECA kernel size: an odd integer or "adaptive"') + ' (default: adaptive)')
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

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new Error(`${flag} ${JSON.stringify(value)}: expected one of ${allowed.join(', ')}`);
}

/** `--attention` and its settings for one run (`train --model`). */
export function parseAttention(flags: AttentionFlags): { attention: AttentionSpec | null; integration: SEIntegration } {
  const kind = oneOf('--attention', flags.attention ?? 'none', ['none', ...ATTENTION_KINDS]);
  const integration = oneOf('--integration', flags.integration ?? 'standard', SE_INTEGRATIONS);
  const stray = (names: (keyof AttentionFlags)[], owner: string): void => {
    const given = names.filter((n) => flags[n] !== undefined);
    if (given.length) throw new Error(`--${given[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies to --attention ${owner} only (got --attention ${kind})`);
  };
  if (kind !== 'se') stray(['seRatio', 'seGate', 'seSqueeze'], 'se');
  if (kind !== 'eca') stray(['ecaKernel'], 'eca');
  if (kind === 'none') {
    if (flags.integration !== undefined) throw new Error('--integration needs --attention se or eca');
    return { attention: null, integration };
  }
  if (kind === 'se') {
    return {
      attention: {
        kind: 'se',
        ratio: parseInteger('--se-ratio', flags.seRatio, 1) ?? 16,
        gate: oneOf('--se-gate', flags.seGate ?? 'sigmoid', GATE_ACTIVATIONS),
        squeeze: oneOf('--se-squeeze', flags.seSqueeze ?? 'avg', SQUEEZE_MODES),
      },
      integration,
    };
  }
  const k = flags.ecaKernel === undefined || flags.ecaKernel === 'adaptive' ? undefined : parseInteger('--eca-kernel', flags.ecaKernel, 1);
  if (k !== undefined && k % 2 === 0) throw new Error(`--eca-kernel ${k}: expected an odd kernel size or "adaptive"`);
  return { attention: k === undefined ? { kind: 'eca' } : { kind: 'eca', kernelSize: k }, integration };
}

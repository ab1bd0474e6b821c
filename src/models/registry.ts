// The model registry, in the manner of timm's `create_model` and torchvision's `get_model`: one
// entry per architecture, found by name. The reference cases, sweeps, `selab train --model`,
// `selab bench`, `selab models` and the ImageNet weights all resolve models here. Each builder
// module registers its entries when imported; src/models/all.ts imports them all.
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Attention } from '../attention/index.js';
import type { SEIntegration } from './resnet.js';
import type { ImagenetArch } from './weights.js';

export type InputShape = [number, number, number];

/** Everything a caller may set; each entry reads the fields it knows and says which in `options`. */
export interface ModelOptions {
  inputShape: InputShape;
  classes: number;
  /** Channel attention wherever the architecture places it; none when undefined. */
  attention?: Attention;
  /** Model name; default the builder's (e.g. plain10_se). */
  name?: string;
  /**
   * Loads pretrained weights into the Keras-named backbone before BatchNorm or attention are
   * inserted (entries with `imagenet` only).
   */
  loadBaseWeights?: (base: tfl.LayersModel) => Promise<void>;
  /** Residual networks: where attention sits in a unit. */
  integration: SEIntegration;
  depth?: number;
  width?: number;
  alpha?: number;
  /** MobileNet: attention after every depthwise convolution too. */
  depthwiseAttention?: boolean;
}

export type ModelOverrides = Partial<ModelOptions>;

export interface ModelEntry {
  /** Lower-case id, e.g. 'resnet20'. */
  name: string;
  description: string;
  /** Options this entry builds with unless told otherwise. */
  defaults: Omit<ModelOptions, 'attention' | 'name' | 'loadBaseWeights'>;
  /**
   * Other names this entry answers to, with the options they imply: named groups of the pattern
   * become numeric options, e.g. /^resnet(?<depth>\d+)$/ makes resnet56 this entry at depth 56.
   */
  aliases?: RegExp;
  /** Where attention goes: after each unit ('units'), in one of a residual unit's four places ('residual'), or nowhere. */
  attention: 'units' | 'residual' | 'none';
  /** The Keras ImageNet weights this architecture can start from. */
  imagenet?: (options: ModelOptions) => ImagenetArch;
  build(options: ModelOptions): tfl.LayersModel | Promise<tfl.LayersModel>;
}

const registry = new Map<string, ModelEntry>();

export function registerModel(entry: ModelEntry): void {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(entry.name)) {
    throw new Error(`registerModel: name must be lower-case letters, digits, '.', '_' or '-', got "${entry.name}"`);
  }
  if (registry.has(entry.name)) throw new Error(`registerModel: a model named "${entry.name}" is already registered`);
  registry.set(entry.name, entry);
}

/** Registered entries in registration order. */
export function modelEntries(): ModelEntry[] {
  return [...registry.values()];
}

/** The entry a name means (exact names first, then aliases) and the options the name implies. */
export function resolveModelName(name: string): { entry: ModelEntry; implied: ModelOverrides } {
  const exact = registry.get(name);
  if (exact) return { entry: exact, implied: {} };
  for (const entry of registry.values()) {
    const m = entry.aliases?.exec(name);
    if (m) return { entry, implied: Object.fromEntries(Object.entries(m.groups ?? {}).map(([k, v]) => [k, Number(v)])) };
  }
  const known = [...registry.values()].map((e) => e.name + (e.aliases ? ` (${e.aliases.source})` : ''));
  throw new Error(`unknown model "${name}": expected one of ${known.length ? known.join(', ') : '(none registered)'}`);
}

export function getModelEntry(name: string): ModelEntry {
  return resolveModelName(name).entry;
}

/** The entry's defaults, then what the name implies, then `overrides`. */
export function modelOptions(name: string, overrides: ModelOverrides = {}): { entry: ModelEntry; options: ModelOptions } {
  const { entry, implied } = resolveModelName(name);
  const options: ModelOptions = { ...entry.defaults, ...implied, ...overrides };
  if (options.attention && entry.attention === 'none') {
    throw new Error(`model ${entry.name} has no place for channel attention (--attention ${options.attention.kind})`);
  }
  return { entry, options };
}

/** Builds a registered model by name, e.g. createModel('resnet20', { attention: se({ ratio: 16 }) }). */
export async function createModel(name: string, overrides: ModelOverrides = {}): Promise<tfl.LayersModel> {
  const { entry, options } = modelOptions(name, overrides);
  return entry.build(options);
}

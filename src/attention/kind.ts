// What a channel-attention kind tells the rest of selab: how to build its block, and which
// settings it has, with their flags, defaults and the values a sweep's "all" stands for. The
// command line, sweeps and run files work from these descriptions alone, so a new kind is one
// file that exports its AttentionKind, listed once in src/attention/index.ts.
import type * as tfl from '@tensorflow/tfjs-layers';

/**
 * Adds attention to `x`, the output of the unit named `at` (e.g. "block1_conv1"); the block's
 * layer is named `${at}_${kind}`. The channel count comes from `x`.
 */
export interface Attention {
  (x: tfl.SymbolicTensor, at: string): tfl.SymbolicTensor;
  readonly kind: string;
}

/** A run's attention as recorded in run.json: the kind and its settings. */
export interface AttentionSpec {
  kind: string;
  [setting: string]: unknown;
}

export type SettingValue = number | string;

export interface AttentionSetting {
  /** The field of the spec and of the block's options, e.g. 'ratio'. */
  key: string;
  /** e.g. '--se-ratio'. */
  flag: string;
  help: string;
  /** The value a run has when the flag is not given. */
  fallback: SettingValue;
  /** What "all" means in a sweep: the values of the kind's paper's ablation. */
  all: readonly SettingValue[];
  /** Checks one value given on the command line; throws naming the flag. */
  parse(text: string): SettingValue;
  /** The value in a sweep point's id, e.g. r16 or k3. */
  id(value: SettingValue): string;
}

export interface AttentionKind {
  kind: string;
  description: string;
  settings: readonly AttentionSetting[];
  /** The block, named `name`, with the spec's settings. */
  block(x: tfl.SymbolicTensor, name: string, settings: Record<string, unknown>): tfl.SymbolicTensor;
  /** A setting value as the spec records it; undefined leaves it to the block's default. */
  specValue?(key: string, value: SettingValue): unknown;
  /** Point ids start with the kind, except where a kind's ids predate others (SE's). */
  idPrefix: boolean;
}

/** The factory of `kind` with fixed settings. */
export function attentionOf(kind: AttentionKind, settings: Record<string, unknown>): Attention {
  return Object.assign((x: tfl.SymbolicTensor, at: string) => kind.block(x, `${at}_${kind.kind}`, settings), { kind: kind.kind });
}

export function oneOf<T extends string>(flag: string, allowed: readonly T[]): (text: string) => T {
  return (text) => {
    if ((allowed as readonly string[]).includes(text)) return text as T;
    throw new Error(`${flag}: "${text}" is not one of ${allowed.join(', ')}`);
  };
}

export function positiveInteger(flag: string, odd = false): (text: string) => number {
  return (text) => {
    const v = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(v) || v < 1 || (odd && v % 2 === 0)) {
      throw new Error(`${flag}: "${text}" is not a positive${odd ? ' odd' : ''} integer`);
    }
    return v;
  };
}

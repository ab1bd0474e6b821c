// Channel attention as a pluggable factory, in the manner of timm's `attn_layer` and torchvision's
// `norm_layer`: a model builder takes an `Attention` and calls it wherever its design puts
// attention, never naming SE or ECA itself. A run records the `AttentionSpec` (plain data), from
// which `attentionFrom` rebuilds the factory.
import type * as tfl from '@tensorflow/tfjs-layers';
import { ecaBlock, type ECAOptions } from './efficient-channel-attention.js';
import { GATE_ACTIVATIONS, seBlock, SQUEEZE_MODES, type SEOptions } from './squeeze-excitation.js';

/**
 * Adds attention to `x`, the output of the unit named `at` (e.g. "block1_conv1"); the block's
 * layer is named `${at}_${kind}`. The channel count comes from `x`.
 */
export interface Attention {
  (x: tfl.SymbolicTensor, at: string): tfl.SymbolicTensor;
  readonly kind: AttentionKind;
}

export const ATTENTION_KINDS = ['se', 'eca'] as const;
export type AttentionKind = (typeof ATTENTION_KINDS)[number];

export type AttentionSpec = ({ kind: 'se' } & SEOptions) | ({ kind: 'eca' } & ECAOptions);

function named<K extends AttentionKind>(kind: K, block: (x: tfl.SymbolicTensor, name: string) => tfl.SymbolicTensor): Attention {
  return Object.assign((x: tfl.SymbolicTensor, at: string) => block(x, `${at}_${kind}`), { kind });
}

/** Squeeze-and-Excitation (Hu et al. 2018). */
export function se(options: SEOptions = {}): Attention {
  return named('se', (x, name) => seBlock(x, { ...options, name }));
}

/** Efficient Channel Attention (Wang et al. 2020). */
export function eca(options: ECAOptions = {}): Attention {
  return named('eca', (x, name) => ecaBlock(x, { ...options, name }));
}

/** The factory a recorded spec describes; undefined for no attention. */
export function attentionFrom(spec: AttentionSpec | null): Attention | undefined {
  if (spec === null) return undefined;
  const { kind, ...options } = spec;
  switch (kind) {
    case 'se':
      return se(options as SEOptions);
    case 'eca':
      return eca(options as ECAOptions);
    default:
      throw new Error(`unknown attention "${String(kind)}": expected one of none, ${ATTENTION_KINDS.join(', ')}`);
  }
}

/** Short text for tables and logs, e.g. "se r8 sigmoid avg" or "eca k3". */
export function describeAttention(spec: AttentionSpec | null): string {
  if (spec === null) return 'none';
  if (spec.kind === 'se') return `se r${spec.ratio ?? 8} ${spec.gate ?? 'sigmoid'} ${spec.squeeze ?? 'avg'}`;
  return spec.kernelSize === undefined ? 'eca (adaptive k)' : `eca k${spec.kernelSize}`;
}

export { GATE_ACTIVATIONS, SQUEEZE_MODES };

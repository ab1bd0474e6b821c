// Channel attention as a pluggable factory, in the manner of timm's `attn_layer` and torchvision's
// `norm_layer`: a model builder takes an `Attention` and calls it wherever its design puts
// attention, never naming SE or ECA itself. A run records the `AttentionSpec` (plain data), from
// which `attentionFrom` rebuilds the factory. Each kind is one file exporting its AttentionKind,
// listed once below.
import { EFFICIENT_CHANNEL_ATTENTION } from './efficient-channel-attention.js';
import type { Attention, AttentionKind, AttentionSpec, SettingValue } from './kind.js';
import { SQUEEZE_EXCITATION } from './squeeze-excitation.js';

const KINDS: readonly AttentionKind[] = [SQUEEZE_EXCITATION, EFFICIENT_CHANNEL_ATTENTION];

export const ATTENTION_KINDS: readonly string[] = KINDS.map((k) => k.kind);

export function attentionKinds(): readonly AttentionKind[] {
  return KINDS;
}

export function getAttentionKind(kind: string, flag = '--attention'): AttentionKind {
  const found = KINDS.find((k) => k.kind === kind);
  if (!found) throw new Error(`${flag}: "${kind}" is not one of ${ATTENTION_KINDS.join(', ')}`);
  return found;
}

/** The spec of `kind` with these setting values (as parsed from flags or a sweep grid). */
export function attentionSpec(kind: AttentionKind, values: Record<string, SettingValue>): AttentionSpec {
  const spec: AttentionSpec = { kind: kind.kind };
  for (const s of kind.settings) {
    const v = kind.specValue ? kind.specValue(s.key, values[s.key] ?? s.fallback) : (values[s.key] ?? s.fallback);
    if (v !== undefined) spec[s.key] = v;
  }
  return spec;
}

/** The factory a recorded spec describes; undefined for no attention. */
export function attentionFrom(spec: AttentionSpec | null): Attention | undefined {
  if (spec === null) return undefined;
  const { kind, ...settings } = spec;
  const k = getAttentionKind(kind, 'attention');
  return Object.assign((x: Parameters<Attention>[0], at: string) => k.block(x, `${at}_${k.kind}`, settings), { kind: k.kind });
}

/** Each setting's value in the spec, with the kind's fallback where the spec leaves it out. */
export function settingValues(spec: AttentionSpec): Record<string, SettingValue> {
  const kind = getAttentionKind(spec.kind, 'attention');
  return Object.fromEntries(kind.settings.map((s) => [s.key, spec[s.key] === undefined ? s.fallback : (spec[s.key] as SettingValue)]));
}

/** e.g. "se r8-sigmoid-avg" or "eca adaptive": the kind and its settings' id forms. */
export function describeAttention(spec: AttentionSpec | null): string {
  if (spec === null) return 'none';
  const kind = getAttentionKind(spec.kind, 'attention');
  const values = settingValues(spec);
  return `${kind.kind} ${kind.settings.map((s) => s.id(values[s.key]!)).join('-')}`;
}

export { attentionOf } from './kind.js';
export type { Attention, AttentionKind, AttentionSetting, AttentionSpec, SettingValue } from './kind.js';
export { eca } from './efficient-channel-attention.js';
export { se } from './squeeze-excitation.js';

// What a sweep runs: the grid of attention settings (SE: ratio × gate × squeeze; ECA: kernel size;
// × integration in residual models) plus a baseline without attention, each point repeated with K
// seeds, each (point, seed) an ordinary run in OUT/sweep_<name>/<point-id>/seed_<k>/.
import { join } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { attentionFrom, attentionSpec, getAttentionKind, settingValues, type AttentionKind, type AttentionSetting, type AttentionSpec, type SettingValue } from '../attention/index.js';
import { createModel, modelOptions } from '../models/all.js';
import { SE_INTEGRATIONS, type SEIntegration } from '../models/resnet.js';

/** The values of each setting of one attention kind (plain data: a grid travels in queued jobs); the sweep takes their product. */
export interface KindGrid {
  kind: string;
  values: Record<string, SettingValue[]>;
}

export interface SweepGrid {
  attention: KindGrid[];
  /** Only for residual models; plain models have one place for attention. */
  integration: SEIntegration[];
}

export interface SweepPoint {
  /** Folder name: 'baseline', e.g. 'r16-sigmoid-avg-standard' (SE) or 'eca-k3-standard'. */
  id: string;
  /** null for the baseline without attention. */
  attention: AttentionSpec | null;
  integration?: SEIntegration;
}

export interface SweepModel {
  name: string;
  /** Whether attention can sit in the four places of a residual unit. */
  residual: boolean;
  build(point: SweepPoint, inputShape: [number, number, number]): Promise<tfl.LayersModel>;
}

/** A registered model that takes attention, e.g. plain10, resnet56, preresnet164, wrn16-8. */
export function sweepModel(name: string): SweepModel {
  let residual: boolean;
  try {
    const { entry } = modelOptions(name);
    if (entry.attention === 'none') throw new Error(`it has no place for channel attention`);
    residual = entry.attention === 'residual';
  } catch (e) {
    throw new Error(`--model: "${name}" is not a model with attention: ${(e as Error).message}`, { cause: e });
  }
  return {
    name,
    residual,
    build: (point, inputShape) => {
      const attention = attentionFrom(point.attention);
      return createModel(name, { inputShape, ...(attention ? { attention } : {}), ...(point.integration ? { integration: point.integration } : {}) });
    },
  };
}

export function pointId(point: Omit<SweepPoint, 'id'>): string {
  const spec = point.attention;
  if (!spec) return 'baseline';
  const kind = getAttentionKind(spec.kind, 'attention');
  const values = settingValues(spec);
  const parts = [...(kind.idPrefix ? [kind.kind] : []), ...kind.settings.map((s) => s.id(values[s.key]!))];
  return [...parts, ...(point.integration ? [point.integration] : [])].join('-');
}

/** Every combination of one kind's setting values, the first setting varying slowest. */
function combinations(kind: AttentionKind, grid: KindGrid): Record<string, SettingValue>[] {
  return kind.settings.reduce<Record<string, SettingValue>[]>(
    (acc, s) => acc.flatMap((partial) => (grid.values[s.key] ?? [s.fallback]).map((v) => ({ ...partial, [s.key]: v }))),
    [{}],
  );
}

/** The baseline (if asked for) then every attention setting, kind by kind, each at every integration. */
export function sweepPoints(grid: SweepGrid, options: { residual: boolean; baseline: boolean }): SweepPoint[] {
  const specs = grid.attention.flatMap((g) => {
    const kind = getAttentionKind(g.kind);
    return combinations(kind, g).map((values) => attentionSpec(kind, values));
  });
  const integrations: (SEIntegration | undefined)[] = options.residual ? grid.integration : [undefined];
  const points: SweepPoint[] = options.baseline ? [{ id: 'baseline', attention: null }] : [];
  for (const attention of specs) {
    for (const integration of integrations) {
      const point = integration ? { attention, integration } : { attention };
      points.push({ id: pointId(point), ...point });
    }
  }
  return points;
}

/** The sweep params recorded in run.json: the kind, every setting's value and the placement; empty for the baseline. */
export function pointParams(point: SweepPoint): Record<string, unknown> {
  if (!point.attention) return {};
  return { attention: point.attention.kind, ...settingValues(point.attention), ...(point.integration ? { integration: point.integration } : {}) };
}

/** Seed of repeat k (1-based): the sweep's base seed + k − 1, the same for every point. */
export function repeatSeed(baseSeed: number, k: number): number {
  return baseSeed + k - 1;
}

export function sweepRunDir(out: string, name: string, point: string, k: number): string {
  return join(out, `sweep_${name}`, point, `seed_${k}`);
}

export function checkSweepName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new Error(`--name: "${name}" must be letters, digits, '.', '_' or '-' (it becomes the folder sweep_<name>)`);
  }
  return name;
}

function parseList<T>(flag: string, value: string, parse: (item: string) => T): T[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (items.length === 0) throw new Error(`${flag}: expected a comma-separated list, got "${value}"`);
  const out = items.map(parse);
  if (new Set(out.map(String)).size !== out.length) throw new Error(`${flag}: "${value}" lists a value twice`);
  return out;
}

/** A setting's list of values for a sweep: "all" is its paper's ablation. */
export function parseSettingList(setting: AttentionSetting, value: string): SettingValue[] {
  return value.trim() === 'all' ? [...setting.all] : parseList(setting.flag, value, setting.parse);
}

export const parseAttentionKinds = (v: string): AttentionKind[] =>
  parseList('--attention', v, (s) => getAttentionKind(s).kind).map((kind) => getAttentionKind(kind));
export const parseIntegrations = (v: string): SEIntegration[] =>
  parseList('--integration', v, (s) => {
    if ((SE_INTEGRATIONS as readonly string[]).includes(s)) return s as SEIntegration;
    throw new Error(`--integration: "${s}" is not one of ${SE_INTEGRATIONS.join(', ')}`);
  });

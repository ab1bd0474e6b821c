// What a sweep runs: the grid of attention settings (SE: ratio × gate × squeeze; ECA: kernel size;
// × integration in residual models) plus a baseline without attention, each point repeated with K
// seeds, each (point, seed) an ordinary run in OUT/sweep_<name>/<point-id>/seed_<k>/.
import { join } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { attentionFrom, ATTENTION_KINDS, type AttentionKind, type AttentionSpec } from '../attention/index.js';
import { GATE_ACTIVATIONS, SQUEEZE_MODES, type GateActivation, type SqueezeMode } from '../attention/squeeze-excitation.js';
import { createModel, modelOptions } from '../models/all.js';
import { SE_INTEGRATIONS, type SEIntegration } from '../models/resnet.js';

/** The SE paper's ablation values (reduction ratio and excitation-gate studies). */
export const SWEEP_RATIOS = [2, 4, 8, 16, 32] as const;
export const SWEEP_GATES: readonly GateActivation[] = ['sigmoid', 'tanh', 'relu'];
/** ECA's kernel sizes in its paper's ablation (Wang et al. 2020, Fig. 4), besides the adaptive one. */
export const SWEEP_ECA_KERNELS = [3, 5, 7, 9] as const;

export type EcaKernel = number | 'adaptive';

export interface SweepGrid {
  attention: AttentionKind[];
  ratio: number[];
  gate: GateActivation[];
  squeeze: SqueezeMode[];
  ecaKernel: EcaKernel[];
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
  const a = point.attention;
  if (!a) return 'baseline';
  const parts = a.kind === 'se' ? [`r${a.ratio}`, a.gate, a.squeeze] : ['eca', a.kernelSize === undefined ? 'adaptive' : `k${a.kernelSize}`];
  return [...parts, ...(point.integration ? [point.integration] : [])].join('-');
}

/** The baseline (if asked for) then every attention setting: SE's with ratio varying slowest, then ECA's. */
export function sweepPoints(grid: SweepGrid, options: { residual: boolean; baseline: boolean }): SweepPoint[] {
  const specs: AttentionSpec[] = [];
  if (grid.attention.includes('se')) {
    for (const ratio of grid.ratio) for (const gate of grid.gate) for (const squeeze of grid.squeeze) specs.push({ kind: 'se', ratio, gate, squeeze });
  }
  if (grid.attention.includes('eca')) {
    for (const k of grid.ecaKernel) specs.push(k === 'adaptive' ? { kind: 'eca' } : { kind: 'eca', kernelSize: k });
  }
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

/** The sweep params recorded in run.json: the attention settings and placement, empty for the baseline. */
export function pointParams(point: SweepPoint): Record<string, unknown> {
  if (!point.attention) return {};
  const { kind, ...settings } = point.attention;
  const kernel = kind === 'eca' && point.attention.kernelSize === undefined ? { kernelSize: 'adaptive' } : {};
  return { attention: kind, ...settings, ...kernel, ...(point.integration ? { integration: point.integration } : {}) };
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

function oneOf<T extends string>(flag: string, allowed: readonly T[]): (s: string) => T {
  return (s) => {
    if ((allowed as readonly string[]).includes(s)) return s as T;
    throw new Error(`${flag}: "${s}" is not one of ${allowed.join(', ')}`);
  };
}

export const parseRatios = (v: string): number[] =>
  parseList('--se-ratio', v, (s) => {
    const r = Number(s);
    if (!Number.isInteger(r) || r < 1) throw new Error(`--se-ratio: "${s}" is not a positive integer`);
    return r;
  });
export const parseGates = (v: string): GateActivation[] => parseList('--se-gate', v, oneOf('--se-gate', GATE_ACTIVATIONS));
export const parseSqueezes = (v: string): SqueezeMode[] => parseList('--se-squeeze', v, oneOf('--se-squeeze', SQUEEZE_MODES));
export const parseIntegrations = (v: string): SEIntegration[] => parseList('--integration', v, oneOf('--integration', SE_INTEGRATIONS));
export const parseAttentionKinds = (v: string): AttentionKind[] => parseList('--attention', v, oneOf('--attention', ATTENTION_KINDS));
export const parseEcaKernels = (v: string): EcaKernel[] =>
  parseList('--eca-kernel', v, (s) => {
    if (s === 'adaptive') return s;
    const k = Number(s);
    if (!Number.isInteger(k) || k < 1 || k % 2 === 0) throw new Error(`--eca-kernel: "${s}" is not an odd positive integer or "adaptive"`);
    return k;
  });

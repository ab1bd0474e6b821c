// What a sweep runs: the grid of SE settings (ratio × gate × squeeze × integration) plus a
// baseline without SE, each point repeated with K seeds, each (point, seed) an ordinary run in
// OUT/sweep_<name>/<point-id>/seed_<k>/.
import { join } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { plain10 } from '../models/plain10.js';
import { cifarResNet, preactResNet, SE_INTEGRATIONS, type ResNetSEOptions, type SEIntegration } from '../models/resnet.js';
import { wideResNet } from '../models/wrn.js';
import { GATE_ACTIVATIONS, SQUEEZE_MODES, type GateActivation, type SqueezeMode } from '../attention/squeeze-excitation.js';

/** The SE paper's ablation values (reduction ratio and excitation-gate studies). */
export const SWEEP_RATIOS = [2, 4, 8, 16, 32] as const;
export const SWEEP_GATES: readonly GateActivation[] = ['sigmoid', 'tanh', 'relu'];

export interface SweepGrid {
  ratio: number[];
  gate: GateActivation[];
  squeeze: SqueezeMode[];
  /** Only for residual models; plain models have one place for SE. */
  integration: SEIntegration[];
}

export interface SESettings {
  ratio: number;
  gate: GateActivation;
  squeeze: SqueezeMode;
  integration?: SEIntegration;
}

export interface SweepPoint {
  /** Folder name: 'baseline' or e.g. 'r16-sigmoid-avg-standard'. */
  id: string;
  /** null for the baseline without SE. */
  se: SESettings | null;
}

export interface SweepModel {
  name: string;
  /** Whether SE can sit in the four places of a residual unit. */
  residual: boolean;
  build(se: SESettings | null, inputShape: [number, number, number]): tfl.LayersModel;
}

function residualOptions(se: SESettings | null): ResNetSEOptions {
  if (!se) return {};
  return { se: true, integration: se.integration ?? 'standard', seOptions: { ratio: se.ratio, gate: se.gate, squeeze: se.squeeze } };
}

/**
 * A sweepable model by name: plain10, resnet<6n+2> (basic units: resnet8, resnet20, …, resnet110),
 * resnet164 / preresnet<9n+2> (pre-activation bottlenecks), wrn<6n+4>-<k> (e.g. wrn16-8).
 */
export function sweepModel(name: string): SweepModel {
  if (name === 'plain10') {
    return {
      name, residual: false,
      build: (se, inputShape) => plain10({ inputShape, se: se !== null, seOptions: se ? { ratio: se.ratio, gate: se.gate, squeeze: se.squeeze } : {} }),
    };
  }
  let m: RegExpMatchArray | null;
  if (name === 'resnet164' || (m = /^preresnet(\d+)$/.exec(name))) {
    const depth = name === 'resnet164' ? 164 : Number(m![1]);
    return { name, residual: true, build: (se, inputShape) => preactResNet({ depth, inputShape, ...residualOptions(se) }) };
  }
  if ((m = /^resnet(\d+)$/.exec(name))) {
    const depth = Number(m[1]);
    return { name, residual: true, build: (se, inputShape) => cifarResNet({ depth, inputShape, ...residualOptions(se) }) };
  }
  if ((m = /^wrn(\d+)-(\d+)$/.exec(name))) {
    const depth = Number(m[1]);
    const width = Number(m[2]);
    return { name, residual: true, build: (se, inputShape) => wideResNet({ depth, width, inputShape, ...residualOptions(se) }) };
  }
  throw new Error(`--model: "${name}" is not a model with SE: expected plain10, resnet<6n+2> (resnet8, resnet20, resnet32, resnet56, resnet110), resnet164, preresnet<9n+2> or wrn<6n+4>-<k> (wrn16-8)`);
}

export function pointId(se: SESettings | null): string {
  if (!se) return 'baseline';
  return [`r${se.ratio}`, se.gate, se.squeeze, ...(se.integration ? [se.integration] : [])].join('-');
}

/** The baseline (if asked for) then every SE combination, ratio varying slowest. */
export function sweepPoints(grid: SweepGrid, options: { residual: boolean; baseline: boolean }): SweepPoint[] {
  const points: SweepPoint[] = options.baseline ? [{ id: 'baseline', se: null }] : [];
  const integrations: (SEIntegration | undefined)[] = options.residual ? grid.integration : [undefined];
  for (const ratio of grid.ratio) {
    for (const gate of grid.gate) {
      for (const squeeze of grid.squeeze) {
        for (const integration of integrations) {
          const se: SESettings = integration ? { ratio, gate, squeeze, integration } : { ratio, gate, squeeze };
          points.push({ id: pointId(se), se });
        }
      }
    }
  }
  return points;
}

/** The sweep params recorded in run.json: the SE settings, empty for the baseline. */
export function pointParams(point: SweepPoint): Record<string, unknown> {
  return point.se ? { ...point.se } : {};
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
  parseList('--ratio', v, (s) => {
    const r = Number(s);
    if (!Number.isInteger(r) || r < 1) throw new Error(`--ratio: "${s}" is not a positive integer`);
    return r;
  });
export const parseGates = (v: string): GateActivation[] => parseList('--gate', v, oneOf('--gate', GATE_ACTIVATIONS));
export const parseSqueezes = (v: string): SqueezeMode[] => parseList('--squeeze', v, oneOf('--squeeze', SQUEEZE_MODES));
export const parseIntegrations = (v: string): SEIntegration[] => parseList('--integration', v, oneOf('--integration', SE_INTEGRATIONS));

/**
 * The SE paper's CIFAR recipe (its CIFAR experiments follow He et al. 2016): 4-pixel zero pad + random 32×32 crop +
 * horizontal flip, per-channel mean/std normalisation, SGD with momentum 0.9, batch 128, weight decay
 * 1e-4, lr 0.1 divided by 10 at 32k and 48k iterations and stopped at 64k, i.e. epochs 82 and 123 of
 * 164 on the 50,000 training images.
 */
export const SE_CIFAR_RECIPE = {
  epochs: 164,
  batchSize: 128,
  optimizer: 'sgd-momentum',
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 1e-4,
  lrDecayEpochs: [82, 123],
  lrDecayFactor: 0.1,
  augment: true,
  normalize: true,
} as const;

/** The recipe's decay points scaled to another length: 82/164 and 123/164 of the epochs (once each when they round together). */
export function scaledDecayEpochs(epochs: number): number[] {
  return [...new Set(SE_CIFAR_RECIPE.lrDecayEpochs.map((e) => Math.round((e / SE_CIFAR_RECIPE.epochs) * epochs)))];
}

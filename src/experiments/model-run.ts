// `selab train --model NAME`: any registered model, with any channel attention, trained by the same
// runner into the same run files as the reference cases (OUT/<model>[-<attention>]/).
import { join } from 'node:path';
import { attentionFrom, describeAttention, type AttentionSpec } from '../attention/index.js';
import { existingRun } from '../engine/resume.js';
import type { SEIntegration } from '../models/resnet.js';
import { createModel, modelOptions } from '../models/all.js';
import { resolveConfig, type TrainConfig } from '../runs/config.js';
import { executeRuns, type Launch, type PlannedRun, type RunOutcome } from './plan.js';
import { trainingPreset } from './presets.js';

export interface ModelRunSpec {
  model: string;
  attention: AttentionSpec | null;
  integration: SEIntegration;
  /** A training preset id of presets.ts. */
  preset: string;
}

/** The folder name: the model, then the attention kind, then a non-standard placement. */
export function modelRunId(spec: ModelRunSpec): string {
  if (!spec.attention) return spec.model;
  return [spec.model, spec.attention.kind, ...(spec.integration === 'standard' ? [] : [spec.integration])].join('-');
}

/** Checks the model, its attention and the configuration; writes nothing. */
export async function planModelRun(spec: ModelRunSpec, overrides: Partial<TrainConfig>, out: string, resume: boolean): Promise<PlannedRun> {
  const attention = attentionFrom(spec.attention);
  const { entry, options } = modelOptions(spec.model, { ...(attention ? { attention } : {}), integration: spec.integration });
  if (spec.integration !== 'standard' && entry.attention !== 'residual') {
    throw new Error(`--integration ${spec.integration}: ${spec.model} has no residual units; --integration applies to resnet*, preresnet* and wrn* models`);
  }
  const [rows, cols] = options.inputShape;
  const upsample = rows / 32;
  if (rows !== cols || ![1, 2, 4].includes(upsample)) {
    throw new Error(`model ${spec.model}: input ${options.inputShape.join('×')} is not CIFAR-10's 32×32 upsampled by 1, 2 or 4`);
  }
  const id = modelRunId(spec);
  const previous = await existingRun(join(out, id), resume);
  const config = resolveConfig(previous?.config ?? { ...trainingPreset(spec.preset, overrides.epochs, overrides.protocol), upsample, inputShape: [...options.inputShape] }, overrides);
  const imagenet = entry.imagenet?.(options);
  if (config.weights === 'imagenet' && !imagenet) throw new Error(`--weights imagenet: Keras has no ImageNet weights for ${spec.model}; use --weights none or a file`);
  return {
    id,
    label: id,
    describe: {
      case: null,
      name: spec.attention ? `${spec.model} + ${describeAttention(spec.attention)}${spec.integration === 'standard' ? '' : ` (${spec.integration})`}` : spec.model,
      model: spec.model,
      additions: [],
      se: spec.attention?.kind === 'se',
      attention: spec.attention,
      training: config.weights === 'none' ? 'scratch' : 'transfer',
      sweep: null,
    },
    config,
    build: (loadBaseWeights) => createModel(spec.model, { ...options, ...(loadBaseWeights ? { loadBaseWeights } : {}) }),
    ...(imagenet ? { imagenet } : {}),
  };
}

export async function runModel(spec: ModelRunSpec, overrides: Partial<TrainConfig>, launch: Launch): Promise<RunOutcome[]> {
  return executeRuns([await planModelRun(spec, overrides, launch.out, launch.resume)], launch);
}

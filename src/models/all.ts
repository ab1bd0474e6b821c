// Every registered model: add one entry list per builder module here.
import { PLAIN10_MODELS } from './plain10.js';
import { REFERENCE_BACKBONE_MODELS } from './presets.js';
import { registerModel } from './registry.js';
import { RESNET_MODELS } from './resnet.js';
import { WRN_MODELS } from './wrn.js';

for (const entry of [...PLAIN10_MODELS, ...REFERENCE_BACKBONE_MODELS, ...RESNET_MODELS, ...WRN_MODELS]) registerModel(entry);

export { createModel, getModelEntry, modelEntries, modelOptions, registerModel, resolveModelName } from './registry.js';
export type { ModelEntry, ModelOptions, ModelOverrides } from './registry.js';

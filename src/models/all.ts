// Importing this module registers every model in src/models/registry.ts: add one import line per
// module that calls registerModel.
import './builtin.js';
import './resnet-registry.js';

export { registerModel, registeredModels, getRegisteredModel, type RegisteredModel } from './registry.js';

// Importing this module registers every model in src/models/registry.ts: add one import line per
// module that calls registerModel.
import './builtin.js';

export { registeredModels, getRegisteredModel } from './registry.js';

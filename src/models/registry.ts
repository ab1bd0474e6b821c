// Models beyond the seven reference cases (e.g. ResNets), listed by `selab models` and buildable
// by name. Modules register themselves at import time; import them from src/models/all.ts.
import type * as tfl from '@tensorflow/tfjs-layers';

export interface RegisteredModel {
  /** Unique id, e.g. 'resnet20'. */
  name: string;
  description: string;
  inputShape: readonly [number, number, number];
  build: () => tfl.LayersModel | Promise<tfl.LayersModel>;
}

const registry = new Map<string, RegisteredModel>();

export function registerModel(model: RegisteredModel): void {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(model.name)) {
    throw new Error(`registerModel: name must be lower-case letters, digits, '.', '_' or '-', got "${model.name}"`);
  }
  if (registry.has(model.name)) throw new Error(`registerModel: a model named "${model.name}" is already registered`);
  registry.set(model.name, model);
}

/** Registered models in registration order. */
export function registeredModels(): RegisteredModel[] {
  return [...registry.values()];
}

export function getRegisteredModel(name: string): RegisteredModel {
  const m = registry.get(name);
  if (!m) {
    const known = [...registry.keys()];
    throw new Error(`unknown model "${name}": expected one of ${known.length ? known.join(', ') : '(none registered)'}`);
  }
  return m;
}

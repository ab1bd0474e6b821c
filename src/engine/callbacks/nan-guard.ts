// Stops a run whose training loss is no longer a finite number (Keras' TerminateOnNaN): nothing
// good comes of the steps after it, and the last checkpoint stays as it was.
import type { Callback } from '../callbacks.js';

export class NonFiniteLossError extends Error {
  constructor(
    readonly step: number,
    readonly loss: number,
  ) {
    super(`the training loss became ${loss} at step ${step}`);
    this.name = 'NonFiniteLossError';
  }
}

export const nanGuard: Callback = {
  onStep(info) {
    if (!Number.isFinite(info.stepLoss)) throw new NonFiniteLossError(info.step, info.stepLoss);
  },
};

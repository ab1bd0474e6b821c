// Whether the tests that need the native oneDNN addon run. Without the addon they are skipped
// with the reason, except under SELAB_REQUIRE_NATIVE=1 (CI), where a missing addon fails the run.
import { addonLoadError } from '../src/backend/onednn/addon.js';

export function skipWithoutNative(available: boolean): false | string {
  if (available) return false;
  const why = `the onednn addon is not built (${addonLoadError()?.message.split('\n')[0]}); run node native/build.mjs`;
  if (process.env.SELAB_REQUIRE_NATIVE === '1') throw new Error(`SELAB_REQUIRE_NATIVE=1 but ${why}`);
  return why;
}

import assert from 'node:assert/strict';

/**
 * max |actual − expected| / max(floor, max |expected|): the error measure of the
 * differential tests. A floor of 1 makes it absolute for values below 1, where a relative
 * error would blow up on near-zero references.
 */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>, floor = 0): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let scale = floor;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

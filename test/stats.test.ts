import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapDiffCI, mean, quantileSorted, std, summarize, verdict, welchTTest } from '../src/report/stats.js';

const close = (actual: number, expected: number, tol: number, what: string): void => {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} is not within ${tol} of ${expected}`);
};

test('mean and sample standard deviation', () => {
  // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, population sd 2, sample variance 32/7.
  const xs = [2, 4, 4, 4, 5, 5, 7, 9];
  assert.equal(mean(xs), 5);
  close(std(xs), Math.sqrt(32 / 7), 1e-12, 'std');
  const s = summarize(xs);
  assert.deepEqual([s.n, s.min, s.max], [8, 2, 9]);
  assert.ok(Number.isNaN(std([1])), 'one value has no spread');
});

test("Welch's t-test matches R's t.test output", () => {
  // R 4.x, `t.test(ts1, ts2)` (Welch is R's default), output as printed on stats.stackexchange.com
  // ("Welch's t-test confidence interval"): t = -1.8325, df = 17.9, p-value = 0.08356,
  // 95 percent confidence interval: -2.1469104 0.1469104 (for mean(ts1) - mean(ts2)).
  // Cross-checked with mpmath's regularized incomplete beta at 30 digits:
  // t -1.832541665, df 17.90031015, p 0.08355979162, CI -2.146910366 .. 0.1469103661.
  const ts1 = [11, 9, 10, 11, 10, 12, 9, 11, 12, 9];
  const ts2 = [11, 13, 10, 13, 12, 9, 11, 12, 12, 11];
  // Our convention is treatment − baseline, so baseline = ts2, treatment = ts1 gives R's sign.
  const r = welchTTest(ts2, ts1)!;
  close(r.t, -1.832541665, 1e-8, 't');
  close(r.df, 17.90031015, 1e-7, 'df');
  close(r.p, 0.08355979162, 1e-9, 'p');
  close(r.ci[0], -2.1469104, 1e-6, 'ci low');
  close(r.ci[1], 0.1469104, 1e-6, 'ci high');
  assert.equal(verdict(r), 'within noise');
});

test("Welch's t-test matches the worked examples of Wikipedia's \"Welch's t-test\" article", () => {
  // Wikipedia, "Welch's t-test", section Examples (Welch columns: t, ν, p). Printed rounded; the
  // tighter expectations are mpmath values computed from the same data.
  const a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4];
  const a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4];
  let r = welchTTest(a2, a1)!; // t = -2.46, ν = 25.0, p = 0.021
  close(r.t, -2.455356398, 1e-8, 'ex1 t');
  close(r.df, 24.98852929, 1e-7, 'ex1 df');
  close(r.p, 0.02137800146, 1e-9, 'ex1 p');
  assert.equal(verdict(r), 'worse', 'a1 is significantly below a2');

  const b1 = [17.2, 20.9, 22.6, 18.1, 21.7, 21.4, 23.5, 24.2, 14.7, 21.8];
  const b2 = [21.5, 22.8, 21.0, 23.0, 21.6, 23.6, 22.5, 20.7, 23.4, 21.8, 20.7, 21.7, 21.5, 22.5, 23.6, 21.5, 22.5, 23.5, 21.5, 21.8];
  r = welchTTest(b2, b1)!; // t = -1.57, ν = 9.9, p = 0.149
  close(r.t, -1.565433524, 1e-8, 'ex2 t');
  close(r.df, 9.904741249, 1e-7, 'ex2 df');
  close(r.p, 0.1488416966, 1e-9, 'ex2 p');
  close(r.ci[0], -3.698421325, 1e-7, 'ex2 ci low');
  close(r.ci[1], 0.6484213254, 1e-7, 'ex2 ci high');
  assert.equal(verdict(r), 'within noise');

  const c1 = [19.8, 20.4, 19.6, 17.8, 18.5, 18.9, 18.3, 18.9, 19.5, 22.0];
  const c2 = [28.2, 26.6, 20.1, 23.3, 25.2, 22.1, 17.7, 27.6, 20.6, 13.7, 23.2, 17.5, 20.6, 18.0, 23.9, 21.6, 24.3, 20.4, 23.9, 13.3];
  r = welchTTest(c1, c2)!; // sign flipped: t = +2.22, ν = 24.5, p = 0.036
  close(r.t, 2.22551204, 1e-8, 'ex3 t');
  close(r.df, 24.52463494, 1e-7, 'ex3 df');
  close(r.p, 0.03548453083, 1e-9, 'ex3 p');
  assert.equal(verdict(r), 'better');
});

test('Welch needs two runs per side; identical runs give an exact difference', () => {
  assert.equal(welchTTest([0.5], [0.6, 0.7]), null);
  assert.equal(verdict(welchTTest([0.5], [0.6, 0.7])), 'too few runs');
  const same = welchTTest([0.5, 0.5], [0.6, 0.6])!;
  assert.deepEqual(same.ci, [same.diff, same.diff]);
  assert.equal(verdict(same), 'better');
  assert.equal(verdict(welchTTest([0.5, 0.5], [0.5, 0.5])), 'within noise');
  assert.throws(() => welchTTest([1, 2], [3, 4], 1.5), /confidence must be in \(0, 1\)/);
});

test('quantileSorted interpolates like numpy', () => {
  // numpy.quantile([1, 2, 3, 4], 0.25) = 1.75; 0.5 -> 2.5; 1 -> 4
  assert.equal(quantileSorted([1, 2, 3, 4], 0.25), 1.75);
  assert.equal(quantileSorted([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantileSorted([1, 2, 3, 4], 1), 4);
});

test('bootstrap CI is seeded, brackets the difference and agrees with Welch on a clear case', () => {
  const base = [0.90, 0.91, 0.905, 0.895, 0.902, 0.899];
  const se = [0.93, 0.935, 0.928, 0.932, 0.931, 0.929];
  const a = bootstrapDiffCI(base, se, { seed: 7, resamples: 4000 })!;
  const b = bootstrapDiffCI(base, se, { seed: 7, resamples: 4000 })!;
  const c = bootstrapDiffCI(base, se, { seed: 8, resamples: 4000 })!;
  assert.deepEqual(a, b, 'same seed, same interval');
  assert.notDeepEqual(a.ci, c.ci, 'another seed draws other resamples');
  close(a.diff, mean(se) - mean(base), 1e-15, 'diff');
  assert.ok(a.ci[0] < a.diff && a.diff < a.ci[1]);
  // Resampled means cannot leave the range of the data: the bounds of all possible differences.
  assert.ok(a.ci[0] >= Math.min(...se) - Math.max(...base) && a.ci[1] <= Math.max(...se) - Math.min(...base));
  assert.equal(verdict(a), 'better');
  assert.equal(verdict(welchTTest(base, se)), 'better');
  // A single value per side: every resample is the same, so the interval collapses to the difference.
  const one = bootstrapDiffCI([0.5], [0.6], { seed: 1, resamples: 10 })!;
  close(one.ci[0], 0.1, 1e-15, 'single low');
  close(one.ci[1], 0.1, 1e-15, 'single high');
});

// Statistics for repeated runs: is an SE gain real or noise?
// The t distribution comes from stdlib (incomplete-beta based CDF and quantile) rather than a
// hand-written series, and the bootstrap draws from a seeded Mersenne Twister so reports are
// reproducible.
import tCdf from '@stdlib/stats-base-dists-t-cdf';
import tQuantile from '@stdlib/stats-base-dists-t-quantile';
import mt19937 from '@stdlib/random-base-mt19937';

export type Verdict = 'better' | 'worse' | 'within noise' | 'too few runs';

export interface Summary {
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1 in the denominator); NaN for fewer than two values. */
  std: number;
  min: number;
  max: number;
}

export interface DifferenceTest {
  /** mean(treatment) − mean(baseline). */
  diff: number;
  /** Lower and upper ends of the confidence interval for `diff`. */
  ci: [number, number];
  confidence: number;
}

export interface WelchResult extends DifferenceTest {
  t: number;
  /** Welch–Satterthwaite degrees of freedom. */
  df: number;
  /** Two-sided p-value of H0: equal means. */
  p: number;
  /** Standard error of `diff`. */
  se: number;
}

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Unbiased sample variance; NaN below two values. */
export function variance(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return s / (xs.length - 1);
}

export function std(xs: readonly number[]): number {
  return Math.sqrt(variance(xs));
}

export function summarize(xs: readonly number[]): Summary {
  return {
    n: xs.length,
    mean: mean(xs),
    std: std(xs),
    min: xs.length ? Math.min(...xs) : NaN,
    max: xs.length ? Math.max(...xs) : NaN,
  };
}

function checkConfidence(confidence: number): void {
  if (!(confidence > 0 && confidence < 1)) throw new Error(`confidence must be in (0, 1), got ${confidence}`);
}

/**
 * Welch's unequal-variances t-test of treatment against baseline, with the confidence interval of the
 * difference of means from the t quantile at the Welch–Satterthwaite degrees of freedom (R's `t.test`).
 * Returns null when either side has fewer than two values: no spread, no test.
 */
export function welchTTest(
  baseline: readonly number[],
  treatment: readonly number[],
  confidence = 0.95,
): WelchResult | null {
  checkConfidence(confidence);
  const na = baseline.length;
  const nb = treatment.length;
  if (na < 2 || nb < 2) return null;
  const va = variance(baseline) / na;
  const vb = variance(treatment) / nb;
  const diff = mean(treatment) - mean(baseline);
  const se = Math.sqrt(va + vb);
  if (se === 0) {
    // Identical runs on both sides (e.g. a tiny subset where every seed lands on the same accuracy):
    // the difference is exact, there is nothing to be uncertain about.
    return { diff, ci: [diff, diff], confidence, t: diff === 0 ? 0 : Math.sign(diff) * Infinity, df: na + nb - 2, p: diff === 0 ? 1 : 0, se: 0 };
  }
  const df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1));
  const t = diff / se;
  const p = 2 * tCdf(-Math.abs(t), df);
  const q = tQuantile(1 - (1 - confidence) / 2, df);
  return { diff, ci: [diff - q * se, diff + q * se], confidence, t, df, p: Math.min(1, p), se };
}

/** A seeded source of uniform integers in [0, n). */
export function seededIndex(seed: number): (n: number) => number {
  const rand = mt19937.factory({ seed: (seed >>> 0) || 1 });
  return (n: number) => Math.floor((rand() / 4294967296) * n);
}

/**
 * Percentile bootstrap confidence interval of mean(treatment) − mean(baseline): each side resampled
 * with replacement on its own, `resamples` times, from a Mersenne Twister seeded with `seed`.
 * Returns null when either side is empty.
 */
export function bootstrapDiffCI(
  baseline: readonly number[],
  treatment: readonly number[],
  options: { confidence?: number; resamples?: number; seed?: number } = {},
): DifferenceTest | null {
  const confidence = options.confidence ?? 0.95;
  const resamples = options.resamples ?? 10000;
  checkConfidence(confidence);
  if (!Number.isInteger(resamples) || resamples < 1) throw new Error(`resamples must be a positive integer, got ${resamples}`);
  if (baseline.length === 0 || treatment.length === 0) return null;
  const pick = seededIndex(options.seed ?? 1);
  const resampledMean = (xs: readonly number[]): number => {
    let s = 0;
    for (let i = 0; i < xs.length; i++) s += xs[pick(xs.length)]!;
    return s / xs.length;
  };
  const diffs = new Float64Array(resamples);
  for (let i = 0; i < resamples; i++) diffs[i] = resampledMean(treatment) - resampledMean(baseline);
  diffs.sort();
  const alpha = (1 - confidence) / 2;
  return {
    diff: mean(treatment) - mean(baseline),
    ci: [quantileSorted(diffs, alpha), quantileSorted(diffs, 1 - alpha)],
    confidence,
  };
}

/** Linear-interpolation quantile of sorted values (numpy's default, R's type 7). */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/** Plain words for a confidence interval of a gain: it is better only if the whole interval is above 0. */
export function verdict(test: DifferenceTest | null): Verdict {
  if (!test) return 'too few runs';
  const [lo, hi] = test.ci;
  if (lo > 0) return 'better';
  if (hi < 0) return 'worse';
  return 'within noise';
}

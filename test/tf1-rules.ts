// TensorFlow 1's Adam and RMSProp update rules written out by hand, in float32 (Math.fround after
// every operation, in TF1's order), for the optimizer and protocol tests.
const f = Math.fround;

/**
 * TF1's Adam (training_ops.cc ApplyAdamNonCuda), step by step in float32:
 *   alpha = lr·sqrt(1 − β2^t)/(1 − β1^t); m += (g − m)(1 − β1); v += (g² − v)(1 − β2);
 *   w −= (m·alpha)/(sqrt(v) + ε), with β^t the float32 products of the beta_power variables.
 */
export function adamTf1ByHand(w0: number[], grads: number[][], lr: number, beta1 = 0.9, beta2 = 0.999, eps = 1e-8): number[][] {
  const b1 = f(beta1);
  const b2 = f(beta2);
  let p1 = b1;
  let p2 = b2;
  const w = w0.map(f);
  const m = w.map(() => 0);
  const v = w.map(() => 0);
  const out: number[][] = [];
  for (const g of grads) {
    const alpha = f(f(f(lr) * f(Math.sqrt(f(1 - p2)))) / f(1 - p1));
    for (let i = 0; i < w.length; i++) {
      const gi = f(g[i]!);
      m[i] = f(m[i]! + f(f(gi - m[i]!) * f(1 - b1)));
      v[i] = f(v[i]! + f(f(f(gi * gi) - v[i]!) * f(1 - b2)));
      w[i] = f(w[i]! - f(f(m[i]! * alpha) / f(f(Math.sqrt(v[i]!)) + f(eps))));
    }
    p1 = f(p1 * b1);
    p2 = f(p2 * b2);
    out.push([...w]);
  }
  return out;
}

/**
 * TF1's RMSProp (rmsprop.py: ms initialised to ones; training_ops.cc ApplyRMSProp), in float32:
 *   ms += (g² − ms)(1 − ρ); mom = mom·momentum + (g·lr)/sqrt(ms + ε); w −= mom.
 */
export function rmsPropTf1ByHand(w0: number[], grads: number[][], lr: number, rho = 0.9, momentum = 0, eps = 1e-10): number[][] {
  const w = w0.map(f);
  const ms = w.map(() => 1);
  const mom = w.map(() => 0);
  const out: number[][] = [];
  for (const g of grads) {
    for (let i = 0; i < w.length; i++) {
      const gi = f(g[i]!);
      ms[i] = f(ms[i]! + f(f(f(gi * gi) - ms[i]!) * f(1 - f(rho))));
      mom[i] = f(f(mom[i]! * f(momentum)) + f(f(gi * f(lr)) / f(Math.sqrt(f(ms[i]! + f(eps))))));
      w[i] = f(w[i]! - mom[i]!);
    }
    out.push([...w]);
  }
  return out;
}

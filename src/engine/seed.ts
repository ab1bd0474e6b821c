// Seeded weight initialisation. tfjs initialisers draw their seeds from Math.random() when none
// is given, and builders do not give one; swapping Math.random for a seeded generator while a
// model is built makes its initial weights a function of --seed.
import { deriveSeed, mulberry32 } from '../util/random.js';

const INIT_STREAM = 3;

export async function withSeededRandom<T>(seed: number, build: () => Promise<T> | T): Promise<T> {
  const original = Math.random;
  Math.random = mulberry32(deriveSeed(seed, 0, INIT_STREAM));
  try {
    return await build();
  } finally {
    Math.random = original;
  }
}

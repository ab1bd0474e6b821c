// Batch preparation on plain typed arrays, shared by the main thread and the prefetch worker
// (so it must not import tfjs). Everything random here is a pure function of (seed, epoch, step):
// a resumed run sees exactly the batches an uninterrupted one would have.
import { deriveSeed, mulberry32 } from '../util/random.js';

const ORDER_STREAM = 1;
const AUGMENT_STREAM = 2;

/** Indices 0..count-1, Fisher–Yates shuffled by (seed, epoch), or in order when !shuffle. */
export function epochOrder(count: number, seed: number, epoch: number, shuffle = true): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  if (!shuffle) return order;
  const rng = mulberry32(deriveSeed(seed, epoch, ORDER_STREAM));
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/**
 * uint8 → float32 lookup table, `channels × 256` entries: v/255, then (v/255 − mean[c]) / std[c]
 * when normalising. One table lookup per output value replaces the divide and the normalisation.
 */
export function makeLut(channels: number, normalize?: { mean: readonly number[]; std: readonly number[] }): Float32Array {
  const lut = new Float32Array(channels * 256);
  for (let c = 0; c < channels; c++) {
    for (let v = 0; v < 256; v++) {
      lut[c * 256 + v] = normalize ? (v / 255 - normalize.mean[c]!) / normalize.std[c]! : v / 255;
    }
  }
  return lut;
}

/** Everything the preparation needs besides the data; plain data so it can be posted to a worker. */
export interface PrepSpec {
  height: number;
  width: number;
  channels: number;
  numClasses: number;
  /** Integer nearest-neighbour upsampling factor k: output is (height·k) × (width·k). */
  upsample: number;
  lut: Float32Array;
  /** 4-pixel zero pad + random crop back to size + random horizontal flip, per image. */
  augment: boolean;
  seed: number;
}

export interface PreparedArrays {
  /** [B, height·k, width·k, channels], row-major. */
  xs: Float32Array;
  /** One-hot [B, numClasses]. */
  ys: Float32Array;
}

const PAD = 4;

/**
 * Gathers images `indices` from the NHWC uint8 RGB `images` into float32 arrays: augmentation
 * at the stored resolution (zero padding means raw pixel value 0, as torchvision pads before
 * normalising), then each pixel repeated k times along both axes (numpy `repeat` semantics).
 * Each output row is built once through a per-image column map, with one table lookup per value,
 * and copied k − 1 times. Writes into `out` when given (large enough for `indices.length`
 * images): first-touching fresh memory costs far more than the gather itself, so callers recycle
 * buffers. Returns views of exactly the batch's size.
 */
export function fillBatch(images: Uint8Array, labels: Uint8Array, spec: PrepSpec, indices: Uint32Array, epoch: number, step: number, out?: PreparedArrays): PreparedArrays {
  const { height: H, width: W, channels: C, upsample: k, lut, numClasses } = spec;
  if (C !== 3) throw new RangeError(`fillBatch: expected 3 channels (RGB), got ${C}`);
  const outW = W * k;
  const rowLen = outW * 3;
  const outImage = H * k * rowLen;
  const inImage = H * W * 3;
  const inRow = W * 3;
  const B = indices.length;
  const xs = out ? out.xs.subarray(0, B * outImage) : new Float32Array(B * outImage);
  const ys = out ? out.ys.subarray(0, B * numClasses).fill(0) : new Float32Array(B * numClasses);
  if (xs.length !== B * outImage || ys.length !== B * numClasses) throw new RangeError(`fillBatch: output buffers too small for ${B} images`);
  const l0 = lut.subarray(0, 256);
  const l1 = lut.subarray(256, 512);
  const l2 = lut.subarray(512, 768);
  const pad0 = l0[0]!;
  const pad1 = l1[0]!;
  const pad2 = l2[0]!;
  // cols[ox]: offset of the source pixel within its row, or -1 where the crop falls in the padding.
  const cols = new Int32Array(outW);
  const rng = spec.augment ? mulberry32(deriveSeed(spec.seed, epoch, step, AUGMENT_STREAM)) : undefined;
  let dy = 0;
  let dx = 0;
  let flip = false;
  for (let i = 0; i < B; i++) {
    const idx = indices[i]!;
    ys[i * numClasses + labels[idx]!] = 1;
    if (rng) {
      dy = Math.floor(rng() * (2 * PAD + 1)) - PAD;
      dx = Math.floor(rng() * (2 * PAD + 1)) - PAD;
      flip = rng() < 0.5;
    }
    for (let ox = 0; ox < outW; ox++) {
      const x = (ox / k) | 0;
      const sx = (flip ? W - 1 - x : x) + dx;
      cols[ox] = sx >= 0 && sx < W ? sx * 3 : -1;
    }
    const src = idx * inImage;
    let o = i * outImage;
    for (let y = 0; y < H; y++) {
      const sy = y + dy;
      const start = o;
      if (sy < 0 || sy >= H) {
        for (let ox = 0; ox < outW; ox++, o += 3) {
          xs[o] = pad0;
          xs[o + 1] = pad1;
          xs[o + 2] = pad2;
        }
      } else {
        const row = src + sy * inRow;
        for (let ox = 0; ox < outW; ox++, o += 3) {
          const c = cols[ox]!;
          if (c < 0) {
            xs[o] = pad0;
            xs[o + 1] = pad1;
            xs[o + 2] = pad2;
          } else {
            const s = row + c;
            xs[o] = l0[images[s]!]!;
            xs[o + 1] = l1[images[s + 1]!]!;
            xs[o + 2] = l2[images[s + 2]!]!;
          }
        }
      }
      for (let r = 1; r < k; r++, o += rowLen) xs.copyWithin(o, start, start + rowLen);
    }
  }
  return { xs, ys };
}

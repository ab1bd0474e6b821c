// Input preprocessing for `--preprocess scale | caffe | tf`, matching keras.applications'
// imagenet_utils.preprocess_input. The batch iterator already yields RGB pixels divided by 255,
// so these work on that [0, 1] scale by default (pass pixelMax 255 for raw 0..255 values).
import * as tf from '@tensorflow/tfjs-core';

export const PREPROCESS_MODES = ['scale', 'caffe', 'tf'] as const;
export type PreprocessMode = (typeof PREPROCESS_MODES)[number];

/** ImageNet channel means on the 0..255 scale, in BGR order, as Keras' caffe mode subtracts them. */
export const IMAGENET_BGR_MEANS = [103.939, 116.779, 123.68] as const;

export const PREPROCESS_DESCRIPTIONS: Record<PreprocessMode, string> = {
  scale: 'pixels / 255, in [0, 1] (the reference cases)',
  caffe: "Keras' VGG16 preprocessing: RGB → BGR, ImageNet means [103.939, 116.779, 123.68] subtracted on the 0..255 scale",
  tf: "Keras' MobileNet preprocessing: pixels / 127.5 − 1, in [−1, 1]",
};

export function parsePreprocess(value: string, flag = '--preprocess'): PreprocessMode {
  if ((PREPROCESS_MODES as readonly string[]).includes(value)) return value as PreprocessMode;
  throw new Error(`${flag}: unknown mode ${JSON.stringify(value)} (expected one of ${PREPROCESS_MODES.join(', ')})`);
}

export interface PreprocessOptions {
  /** The value of a full-intensity pixel in the input: 1 (default, pixels already / 255) or 255. */
  pixelMax?: number;
}

/**
 * Preprocesses an NHWC RGB float batch in place (channels last, 3 channels) and returns it.
 * `scale` leaves [0, 1] data as it is (and divides 0..255 data by 255).
 */
export function preprocessInPlace(mode: PreprocessMode, xs: Float32Array, options: PreprocessOptions = {}): Float32Array {
  const pixelMax = options.pixelMax ?? 1;
  if (xs.length % 3 !== 0) throw new Error(`preprocess ${mode}: batch length ${xs.length} is not a multiple of 3 channels (expected NHWC RGB)`);
  const to255 = 255 / pixelMax;
  if (mode === 'scale') {
    if (pixelMax !== 1) for (let i = 0; i < xs.length; i++) xs[i] = (xs[i] as number) / pixelMax;
  } else if (mode === 'tf') {
    const k = to255 / 127.5;
    for (let i = 0; i < xs.length; i++) xs[i] = (xs[i] as number) * k - 1;
  } else {
    const [mb, mg, mr] = IMAGENET_BGR_MEANS;
    for (let i = 0; i < xs.length; i += 3) {
      const r = (xs[i] as number) * to255;
      const g = (xs[i + 1] as number) * to255;
      const b = (xs[i + 2] as number) * to255;
      xs[i] = b - mb;
      xs[i + 1] = g - mg;
      xs[i + 2] = r - mr;
    }
  }
  return xs;
}

/** The same on a tensor [N, H, W, 3]; returns a new tensor (the input is not disposed). */
export function preprocessTensor(mode: PreprocessMode, x: tf.Tensor4D, options: PreprocessOptions = {}): tf.Tensor4D {
  const pixelMax = options.pixelMax ?? 1;
  if (x.shape[3] !== 3) throw new Error(`preprocess ${mode}: expected 3 channels (NHWC RGB), got shape [${x.shape.join(',')}]`);
  return tf.tidy(() => {
    if (mode === 'scale') return pixelMax === 1 ? x.clone() : tf.div(x, pixelMax);
    const x255 = tf.mul(x, 255 / pixelMax);
    if (mode === 'tf') return tf.sub(tf.div(x255, 127.5), 1);
    const bgr = tf.reverse(x255, 3);
    return tf.sub(bgr, tf.tensor1d(IMAGENET_BGR_MEANS as unknown as number[]));
  });
}

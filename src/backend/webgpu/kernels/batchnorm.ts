// BatchNormalization's training step in WGSL (SelabBatchNormTrain and its gradient, the contract
// in src/ops/kernel-names.ts), for channels-last float32 data seen as [rows, C]. Without them,
// tfjs-layers computes the batch statistics with tf.moments and differentiates them kernel by
// kernel; on webgpu each of those reductions over rows first transposes the whole activation so
// that the reduced axes come last, and on SwiftShader reductions and elementwise kernels were half
// of a MobileNet step. Here a per-channel sum is one pass that splits the rows into slices (one
// invocation per slice and channel, neighbouring invocations reading neighbouring channels) and a
// second that adds the slices up:
//   forward:  mean (2 passes), biased variance as the mean of (x − mean)² (2), y (1)
//   backward: Σ dy and Σ dy·(x − mean) (1), dOffset and dScale (2), dx (1)
// with dx = scale·s·(dy − Σdy/n − x̂·Σ(dy·x̂)/n), x̂ = (x − mean)·s, s = 1/√(variance + ε).
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD, type BatchNormTrainAttrs } from '../../../ops/kernel-names.js';
import { flat, flatProgram, type ProgramUniform, type WebGpuBackendLike } from '../program.js';

/** Invocations a per-channel partial sum aims for (slices × channels). */
const TARGET_INVOCATIONS = 2 ** 16;
/** Fewest rows one invocation adds. */
const MIN_ROWS = 16;

const ints = (...values: number[]): ProgramUniform[] => values.map((v) => ({ type: 'int32', data: [v] }));
const floats = (...values: number[]): ProgramUniform[] => values.map((v) => ({ type: 'float32', data: [v] }));

interface Slicing {
  rows: number;
  channels: number;
  slices: number;
  rowsPerSlice: number;
}

function slicing(x: TensorInfo): Slicing {
  const channels = x.shape[x.shape.length - 1]!;
  const rows = x.shape.reduce((a, b) => a * b, 1) / channels;
  const wanted = Math.max(1, Math.min(Math.ceil(TARGET_INVOCATIONS / channels), Math.ceil(rows / MIN_ROWS)));
  const rowsPerSlice = Math.max(1, Math.ceil(rows / wanted));
  return { rows, channels, slices: Math.max(1, Math.ceil(rows / rowsPerSlice)), rowsPerSlice };
}

const PARTIAL_UNIFORMS = 'channels : i32, rows : i32, rowsPerSlice : i32, width : i32,';

/**
 * partial[s, j] for slice s of the rows: j < C sums `term(c = j)`; with two terms, j ≥ C sums the
 * second for c = j − C. `terms` are WGSL expressions of `x` (X[r, c]), `d` (DY[r, c]) and `m`
 * (MEAN[c]) as the program's inputs provide them.
 */
function partialProgram(key: string, inputs: string[], s: Slicing, terms: string[]) {
  const width = s.channels * terms.length;
  const read = [
    inputs.includes('X') ? 'let x = X[r * uniforms.channels + c];' : '',
    inputs.includes('DY') ? 'let d = DY[r * uniforms.channels + c];' : '',
  ].join('\n          ');
  const body = terms.length === 1
    ? `sum = sum + ${terms[0]};`
    : `if (k == 0) { sum = sum + ${terms[0]}; } else { sum = sum + ${terms[1]}; }`;
  return flatProgram(`selab_bn_partial_${key}`, inputs, s.slices * width, PARTIAL_UNIFORMS, `
    fn main(index : i32) {
      if (index < uniforms.size) {
        let slice = index / uniforms.width;
        let j = index - slice * uniforms.width;
        let k = j / uniforms.channels;
        let c = j - k * uniforms.channels;
        ${inputs.includes('MEAN') ? 'let m = MEAN[c];' : ''}
        let first = slice * uniforms.rowsPerSlice;
        let last = min(first + uniforms.rowsPerSlice, uniforms.rows);
        var sum = 0.0;
        for (var r = first; r < last; r++) {
          ${read}
          ${body}
        }
        setOutputAtIndex(index, sum);
      }
    }`);
}

const FINALIZE_UNIFORMS = 'slices : i32, width : i32, offset : i32, factor : f32, epsilon : f32,';

/** out[c] = factor · Σ_s P[s, offset + c], times 1/√(VAR[c] + ε) when `perStd`. */
function finalizeProgram(key: string, channels: number, perStd: boolean) {
  return flatProgram(`selab_bn_final_${key}`, perStd ? ['P', 'VAR'] : ['P'], channels, FINALIZE_UNIFORMS, `
    fn main(index : i32) {
      if (index < uniforms.size) {
        var sum = 0.0;
        for (var s = 0; s < uniforms.slices; s++) {
          sum = sum + P[s * uniforms.width + uniforms.offset + index];
        }
        ${perStd ? 'sum = sum / sqrt(VAR[index] + uniforms.epsilon);' : ''}
        setOutputAtIndex(index, sum * uniforms.factor);
      }
    }`);
}

const NORMALIZE = `
  fn main(index : i32) {
    if (index < uniforms.size) {
      let c = index % uniforms.channels;
      setOutputAtIndex(index, (X[index] - MEAN[c]) / sqrt(VAR[c] + uniforms.epsilon) * SCALE[c] + OFFSET[c]);
    }
  }`;

const INPUT_GRADIENT = `
  fn main(index : i32) {
    if (index < uniforms.size) {
      let c = index % uniforms.channels;
      let s = 1.0 / sqrt(VAR[c] + uniforms.epsilon);
      let xhat = (X[index] - MEAN[c]) * s;
      setOutputAtIndex(index, SCALE[c] * s * (DY[index] - DOFF[c] * uniforms.invRows - xhat * DSCALE[c] * uniforms.invRows));
    }
  }`;

function channelVector(t: TensorInfo | undefined, channels: number, what: string): TensorInfo {
  if (!t || t.dtype !== 'float32' || t.shape.reduce((a, b) => a * b, 1) !== channels) throw new Error(`${what} must be a float32 vector of ${channels} channels`);
  return flat(t);
}

/** The activation is merged on onednn only (src/backend/onednn/layers.ts). */
function linearOnly(attrs: unknown, kernelName: string): number {
  const { varianceEpsilon, activation } = attrs as BatchNormTrainAttrs;
  if ((activation ?? 'linear') !== 'linear') throw new Error(`${kernelName} on webgpu applies no activation, got "${activation}"`);
  return varianceEpsilon;
}

const batchNormTrain: KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as unknown as WebGpuBackendLike;
  const { x, scale, offset } = inputs as Record<string, TensorInfo | undefined>;
  if (!x || x.dtype !== 'float32') throw new Error(`${BATCH_NORM_TRAIN} takes float32 x`);
  const eps = linearOnly(attrs, BATCH_NORM_TRAIN);
  const s = slicing(x);
  const C = s.channels;
  const [sc, of] = [channelVector(scale, C, `${BATCH_NORM_TRAIN} scale`), channelVector(offset, C, `${BATCH_NORM_TRAIN} offset`)];
  const xs = flat(x);
  const partialUniforms = ints(C, s.rows, s.rowsPerSlice, C);
  const temps: TensorInfo[] = [];
  try {
    const sums = gpu.runWebGPUProgram(partialProgram('sum', ['X'], s, ['x']), [xs], 'float32', partialUniforms);
    temps.push(sums);
    const mean = gpu.runWebGPUProgram(finalizeProgram('mean', C, false), [sums], 'float32', [...ints(s.slices, C, 0), ...floats(1 / s.rows, eps)]);
    const squares = gpu.runWebGPUProgram(partialProgram('sqdev', ['X', 'MEAN'], s, ['(x - m) * (x - m)']), [xs, mean], 'float32', partialUniforms);
    temps.push(squares);
    const variance = gpu.runWebGPUProgram(finalizeProgram('var', C, false), [squares], 'float32', [...ints(s.slices, C, 0), ...floats(1 / s.rows, eps)]);
    const y = gpu.runWebGPUProgram(flatProgram('selab_bn_normalize', ['X', 'MEAN', 'VAR', 'SCALE', 'OFFSET'], s.rows * C, 'channels : i32, epsilon : f32,', NORMALIZE),
      [xs, mean, variance, sc, of], 'float32', [...ints(C), ...floats(eps)]);
    return [{ ...y, shape: [...x.shape] }, { ...mean, shape: [C] }, { ...variance, shape: [C] }];
  } finally {
    for (const t of temps) gpu.disposeData(t.dataId);
  }
};

const batchNormTrainGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const gpu = backend as unknown as WebGpuBackendLike;
  const { x, dy, mean, variance, scale } = inputs as Record<string, TensorInfo | undefined>;
  if (!x || !dy || x.dtype !== 'float32' || dy.dtype !== 'float32') throw new Error(`${BATCH_NORM_TRAIN_GRAD} takes float32 x and dy`);
  const eps = linearOnly(attrs, BATCH_NORM_TRAIN_GRAD);
  const s = slicing(x);
  const C = s.channels;
  const [m, v, sc] = [mean, variance, scale].map((t, k) => channelVector(t, C, `${BATCH_NORM_TRAIN_GRAD} ${['mean', 'variance', 'scale'][k]}`)) as [TensorInfo, TensorInfo, TensorInfo];
  const [xs, dys] = [flat(x), flat(dy)];
  let sums: TensorInfo | undefined;
  try {
    sums = gpu.runWebGPUProgram(partialProgram('grad', ['X', 'DY', 'MEAN'], s, ['d', 'd * (x - m)']), [xs, dys, m], 'float32', ints(C, s.rows, s.rowsPerSlice, 2 * C));
    const dOffset = gpu.runWebGPUProgram(finalizeProgram('doffset', C, false), [sums], 'float32', [...ints(s.slices, 2 * C, 0), ...floats(1, eps)]);
    const dScale = gpu.runWebGPUProgram(finalizeProgram('dscale', C, true), [sums, v], 'float32', [...ints(s.slices, 2 * C, C), ...floats(1, eps)]);
    const dx = gpu.runWebGPUProgram(flatProgram('selab_bn_dx', ['X', 'DY', 'MEAN', 'VAR', 'SCALE', 'DOFF', 'DSCALE'], s.rows * C, 'channels : i32, epsilon : f32, invRows : f32,', INPUT_GRADIENT),
      [xs, dys, m, v, sc, dOffset, dScale], 'float32', [...ints(C), ...floats(eps, 1 / s.rows)]);
    return [{ ...dx, shape: [...x.shape] }, { ...dScale, shape: [C] }, { ...dOffset, shape: [C] }];
  } finally {
    if (sums) gpu.disposeData(sums.dataId);
  }
};

export const batchNormKernels: KernelConfig[] = [
  { kernelName: BATCH_NORM_TRAIN, backendName: 'webgpu', kernelFunc: batchNormTrain },
  { kernelName: BATCH_NORM_TRAIN_GRAD, backendName: 'webgpu', kernelFunc: batchNormTrainGrad },
];

// Adam, RMSProp (tfjs-core's and TF1's) and momentum SGD updates in WGSL: each new tensor (value and every state tensor)
// is one elementwise pass that reads the old value, state and gradient, where tfjs-core's
// optimizers run about a dozen (Adam), nine (RMSProp) or three (momentum) kernels per weight
// tensor, each with its own output buffer. tfjs-backend-webgpu's programs write a single output,
// so an update of k tensors is k programs that repeat the few multiplications they share. The
// arithmetic is tfjs-core's, in its order (as the onednn kernels, native/src/optimizer.cc).
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import {
  ADAM_TF1_UPDATE, ADAM_UPDATE, MOMENTUM_UPDATE, RMSPROP_TF1_UPDATE, RMSPROP_UPDATE,
  type AdamTf1UpdateAttrs, type AdamUpdateAttrs, type MomentumUpdateAttrs, type RmsPropTf1UpdateAttrs, type RmsPropUpdateAttrs,
} from '../../../ops/kernel-names.js';
import { flat, flatProgram, type WebGpuBackendLike } from '../program.js';

interface UpdateSpec {
  kernelName: string;
  /** The kernel's inputs, in order, and the WGSL array each is bound to. */
  inputs: [input: string, wgsl: string][];
  /** Uniform fields (all f32) and how each is computed from the attributes. */
  uniforms: [field: string, value: (attrs: never) => number][];
  /** WGSL statements over `index` that define one `let` per output. */
  body: string;
  /** The `let` each output (new value, then new state, as the kernel returns them) reads. */
  outputs: string[];
}

/** 1 − x computed in double and stored as float32, as tfjs-core's scalar(1 − x). */
const oneMinus = (x: number) => Math.fround(1 - x);

const SPECS: UpdateSpec[] = [
  {
    kernelName: ADAM_UPDATE,
    inputs: [['value', 'W'], ['m', 'M'], ['v', 'V'], ['gradient', 'G']],
    uniforms: [
      ['lr', (a: AdamUpdateAttrs) => a.lr],
      ['beta1', (a: AdamUpdateAttrs) => a.beta1],
      ['beta2', (a: AdamUpdateAttrs) => a.beta2],
      ['epsilon', (a: AdamUpdateAttrs) => a.epsilon],
      ['oneMinusBeta1', (a: AdamUpdateAttrs) => oneMinus(a.beta1)],
      ['oneMinusBeta2', (a: AdamUpdateAttrs) => oneMinus(a.beta2)],
      ['oneMinusAccBeta1', (a: AdamUpdateAttrs) => a.oneMinusAccBeta1],
      ['oneMinusAccBeta2', (a: AdamUpdateAttrs) => a.oneMinusAccBeta2],
    ],
    body: `
      let g = G[index];
      let m = M[index] * uniforms.beta1 + g * uniforms.oneMinusBeta1;
      let v = V[index] * uniforms.beta2 + (g * g) * uniforms.oneMinusBeta2;
      let w = (m / uniforms.oneMinusAccBeta1) / (sqrt(v / uniforms.oneMinusAccBeta2) + uniforms.epsilon) * -uniforms.lr + W[index];`,
    outputs: ['w', 'm', 'v'],
  },
  {
    kernelName: RMSPROP_UPDATE,
    inputs: [['value', 'W'], ['ms', 'MS'], ['mom', 'MOM'], ['gradient', 'G']],
    uniforms: [
      ['lr', (a: RmsPropUpdateAttrs) => a.lr],
      ['decay', (a: RmsPropUpdateAttrs) => a.decay],
      ['oneMinusDecay', (a: RmsPropUpdateAttrs) => oneMinus(a.decay)],
      ['momentum', (a: RmsPropUpdateAttrs) => a.momentum],
      ['epsilon', (a: RmsPropUpdateAttrs) => a.epsilon],
    ],
    body: `
      let g = G[index];
      let s = MS[index] * uniforms.decay + (g * g) * uniforms.oneMinusDecay;
      let m = MOM[index] * uniforms.momentum + (g * uniforms.lr) / sqrt(s + uniforms.epsilon);
      let w = W[index] - m;`,
    outputs: ['w', 's', 'm'],
  },
  {
    kernelName: ADAM_TF1_UPDATE,
    inputs: [['value', 'W'], ['m', 'M'], ['v', 'V'], ['gradient', 'G']],
    uniforms: [
      ['alpha', (a: AdamTf1UpdateAttrs) => a.alpha],
      ['oneMinusBeta1', (a: AdamTf1UpdateAttrs) => a.oneMinusBeta1],
      ['oneMinusBeta2', (a: AdamTf1UpdateAttrs) => a.oneMinusBeta2],
      ['epsilon', (a: AdamTf1UpdateAttrs) => a.epsilon],
    ],
    body: `
      let g = G[index];
      let m = M[index] + (g - M[index]) * uniforms.oneMinusBeta1;
      let v = V[index] + (g * g - V[index]) * uniforms.oneMinusBeta2;
      let w = W[index] - (m * uniforms.alpha) / (sqrt(v) + uniforms.epsilon);`,
    outputs: ['w', 'm', 'v'],
  },
  {
    kernelName: RMSPROP_TF1_UPDATE,
    inputs: [['value', 'W'], ['ms', 'MS'], ['mom', 'MOM'], ['gradient', 'G']],
    uniforms: [
      ['lr', (a: RmsPropTf1UpdateAttrs) => a.lr],
      ['oneMinusDecay', (a: RmsPropTf1UpdateAttrs) => a.oneMinusDecay],
      ['momentum', (a: RmsPropTf1UpdateAttrs) => a.momentum],
      ['epsilon', (a: RmsPropTf1UpdateAttrs) => a.epsilon],
    ],
    body: `
      let g = G[index];
      let s = MS[index] + (g * g - MS[index]) * uniforms.oneMinusDecay;
      let m = MOM[index] * uniforms.momentum + (g * uniforms.lr) / sqrt(s + uniforms.epsilon);
      let w = W[index] - m;`,
    outputs: ['w', 's', 'm'],
  },
  {
    kernelName: MOMENTUM_UPDATE,
    inputs: [['value', 'W'], ['acc', 'A'], ['gradient', 'G']],
    uniforms: [
      ['negLr', (a: MomentumUpdateAttrs) => -a.lr],
      ['momentum', (a: MomentumUpdateAttrs) => a.momentum],
    ],
    body: `
      let a = uniforms.momentum * A[index] + G[index];
      let w = uniforms.negLr * a + W[index];`,
    outputs: ['w', 'a'],
  },
];

function updateKernel(spec: UpdateSpec): KernelFunc {
  const fields = spec.uniforms.map(([f]) => `${f} : f32,`).join(' ');
  const names = spec.inputs.map(([, w]) => w);
  return ({ inputs, backend, attrs }) => {
    const gpu = backend as unknown as WebGpuBackendLike;
    const tensors = spec.inputs.map(([name]) => (inputs as Record<string, TensorInfo | undefined>)[name]);
    const first = tensors[0];
    const n = first ? first.shape.reduce((a, b) => a * b, 1) : 0;
    if (!first || tensors.some((t) => !t || t.dtype !== 'float32' || t.shape.reduce((a, b) => a * b, 1) !== n)) {
      throw new Error(`${spec.kernelName} takes float32 tensors of one shape (${spec.inputs.map(([name]) => name).join(', ')})`);
    }
    const flats = (tensors as TensorInfo[]).map(flat);
    const uniformData = spec.uniforms.map(([, value]) => ({ type: 'float32' as const, data: [value(attrs as never)] }));
    return spec.outputs.map((out) => {
      const program = flatProgram(`selab_${spec.kernelName}_${out}`, names, n, fields, `
        fn main(index : i32) {
          if (index < uniforms.size) {${spec.body}
            setOutputAtIndex(index, ${out});
          }
        }`);
      const result = gpu.runWebGPUProgram(program, flats, 'float32', uniformData);
      return { dataId: result.dataId, shape: first.shape, dtype: 'float32' };
    });
  };
}

export const optimizerKernels: KernelConfig[] = SPECS.map((spec) => ({ kernelName: spec.kernelName, backendName: 'webgpu', kernelFunc: updateKernel(spec) }));

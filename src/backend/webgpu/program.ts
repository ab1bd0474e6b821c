// The parts of tfjs-backend-webgpu that selab's WGSL kernels use, typed here so that the package
// stays optional (typechecking does not need it). A program follows the package's own
// (WebGPUProgram in dist/webgpu_program.d.ts): the backend declares the output buffer `result`,
// one read-only array per input (named as in variableNames), a uniform struct `uniforms` (shapes,
// `size`, then the program's own fields), and calls the user code's `fn main(index : i32)` once
// per output element of a flat dispatch.
import type { DataId, DataType, TensorInfo } from '@tensorflow/tfjs-core';

export interface WgslProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  /** Adds `uniforms.size`, the output's element count. */
  size?: boolean;
  /** WGSL fields appended to the uniform struct, e.g. 'lr : f32, beta1 : f32,'. */
  uniforms?: string;
  getUserCode(): string;
}

export interface ProgramUniform {
  type: 'float32' | 'int32' | 'uint32';
  data: number[];
}

/** WebGPUBackend's methods selab calls. */
export interface WebGpuBackendLike {
  runWebGPUProgram(program: WgslProgram, inputs: TensorInfo[], outputDtype: DataType, programDefinedUniform?: ProgramUniform[], output?: TensorInfo): TensorInfo;
  disposeData(dataId: DataId, force?: boolean): boolean;
}

export const WORKGROUP = 64;

/** A program over a flat output of `n` elements, one invocation per element. */
export function flatProgram(shaderKey: string, variableNames: string[], n: number, uniforms: string, userCode: string): WgslProgram {
  return {
    variableNames,
    outputShape: [n],
    shaderKey,
    dispatchLayout: { x: [0] },
    dispatch: [Math.ceil(n / WORKGROUP), 1, 1],
    workgroupSize: [WORKGROUP, 1, 1],
    size: true,
    uniforms,
    getUserCode: () => userCode,
  };
}

/** The same data seen as a flat vector (no copy: the backend finds buffers by dataId). */
export function flat(t: TensorInfo): TensorInfo {
  return { dataId: t.dataId, shape: [t.shape.reduce((a, b) => a * b, 1)], dtype: t.dtype };
}

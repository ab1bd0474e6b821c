import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { allocFloat32 } from '../memory.js';
import { addon, f32, kernel } from './native-args.js';
import { GATE_INPUT_GRAD } from '../../../ops/kernel-names.js';

declare module '../addon.js' {
  interface OneDnnAddon {
    gateInputGrad(dy: Float32Array, gate: Float32Array, squeezeGrad: Float32Array, images: number, channels: number, dx: Float32Array): void;
  }
}

export const gateKernels: KernelConfig[] = [
  kernel(GATE_INPUT_GRAD, (args) => {
    const backend = args.backend as MathBackendCPU;
    const { dy, gate, squeezeGrad } = args.inputs as Record<'dy' | 'gate' | 'squeezeGrad', TensorInfo>;
    const [n, c] = [dy.shape[0]!, dy.shape[dy.shape.length - 1]!];
    const [dyv, gv, sv] = [dy, gate, squeezeGrad].map((t) => f32(backend, t));
    const vectorShape = (t: TensorInfo) => t.shape.length === 2 && t.shape[0] === n && t.shape[1] === c;
    if (!dyv || !gv || !sv || dy.shape.length !== 4 || !vectorShape(gate) || !vectorShape(squeezeGrad)) {
      throw new Error(`${GATE_INPUT_GRAD} takes float32 dy [N,H,W,C] with gate and squeezeGrad [N,C], got [${dy.shape}], [${gate.shape}], [${squeezeGrad.shape}]`);
    }
    const dx = allocFloat32(dyv.length);
    addon().gateInputGrad(dyv, gv, sv, n, c, dx);
    return backend.makeTensorInfo(dy.shape, 'float32', dx);
  }),
];

/**
 * Fused activations that run as oneDNN post-ops; the codes are AppendActivation's in
 * native/src/dnnl_util.h. 'prelu' needs a weights tensor and stays on the cpu kernel.
 */
const ACTIVATION_CODES: Record<string, number> = {
  linear: 0,
  relu: 1,
  relu6: 2,
  leakyrelu: 3,
  sigmoid: 4,
  elu: 5,
};

/** The post-op code for a fused kernel's activation attribute, or undefined to fall back. */
export function activationCode(activation: unknown): number | undefined {
  return ACTIVATION_CODES[typeof activation === 'string' ? activation : 'linear'];
}

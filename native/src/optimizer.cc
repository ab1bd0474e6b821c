// One pass per weight tensor for an Adam, RMSProp or momentum SGD step (and one for a
// BatchNorm layer's moving averages), where tfjs-core's
// optimizers run about a dozen (Adam), nine (RMSProp) or three (momentum) full-size
// elementwise kernels, and as many output tensors, per weight. The arithmetic is tfjs-core's, in the same float32 order, so the result
// matches the cpu backend's optimizers.
#include <cmath>

#include "registry.h"
#include "tensor_args.h"

// No fused multiply-adds here: tfjs rounds after every multiply, and so must this.
#pragma GCC optimize("fp-contract=off")

namespace selab {
namespace {

// adamUpdate(value, m, v, gradient, newValue, newM, newV,
//            lr, beta1, beta2, epsilon, oneMinusAccBeta1, oneMinusAccBeta2)
Napi::Value AdamUpdate(const Napi::CallbackInfo& info) {
  const F32 value = ArgF32(info, 0);
  const float* m = ArgF32(info, 1).data;
  const float* v = ArgF32(info, 2).data;
  const float* g = ArgF32(info, 3).data;
  float* newValue = ArgF32(info, 4).data;
  float* newM = ArgF32(info, 5).data;
  float* newV = ArgF32(info, 6).data;
  const float lr = static_cast<float>(ArgNum(info, 7));
  const float beta1 = static_cast<float>(ArgNum(info, 8));
  const float beta2 = static_cast<float>(ArgNum(info, 9));
  const float epsilon = static_cast<float>(ArgNum(info, 10));
  const float oneMinusAccBeta1 = static_cast<float>(ArgNum(info, 11));
  const float oneMinusAccBeta2 = static_cast<float>(ArgNum(info, 12));
  // tfjs multiplies by the float32 scalars 1 − β (computed in double, then stored as float32).
  const float oneMinusBeta1 = static_cast<float>(1.0 - static_cast<double>(ArgNum(info, 8)));
  const float oneMinusBeta2 = static_cast<float>(1.0 - static_cast<double>(ArgNum(info, 9)));
  const int64_t n = static_cast<int64_t>(value.size);
#pragma omp parallel for simd num_threads(ThreadsFor(n)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = m[i] * beta1 + gi * oneMinusBeta1;
    const float vi = v[i] * beta2 + (gi * gi) * oneMinusBeta2;
    newM[i] = mi;
    newV[i] = vi;
    newValue[i] = (mi / oneMinusAccBeta1) / (std::sqrt(vi / oneMinusAccBeta2) + epsilon) * -lr + value.data[i];
  }
  return info.Env().Undefined();
}

// rmsPropUpdate(value, ms, mom, gradient, newValue, newMs, newMom, lr, decay, momentum, epsilon):
// tfjs-core's plain (not centered) RMSProp.
Napi::Value RmsPropUpdate(const Napi::CallbackInfo& info) {
  const F32 value = ArgF32(info, 0);
  const float* ms = ArgF32(info, 1).data;
  const float* mom = ArgF32(info, 2).data;
  const float* g = ArgF32(info, 3).data;
  float* newValue = ArgF32(info, 4).data;
  float* newMs = ArgF32(info, 5).data;
  float* newMom = ArgF32(info, 6).data;
  const float lr = static_cast<float>(ArgNum(info, 7));
  const float decay = static_cast<float>(ArgNum(info, 8));
  const float momentum = static_cast<float>(ArgNum(info, 9));
  const float epsilon = static_cast<float>(ArgNum(info, 10));
  const float oneMinusDecay = static_cast<float>(1.0 - ArgNum(info, 8));
  const int64_t n = static_cast<int64_t>(value.size);
#pragma omp parallel for simd num_threads(ThreadsFor(n)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float si = ms[i] * decay + (gi * gi) * oneMinusDecay;
    const float mi = mom[i] * momentum + (gi * lr) / std::sqrt(si + epsilon);
    newMs[i] = si;
    newMom[i] = mi;
    newValue[i] = value.data[i] - mi;
  }
  return info.Env().Undefined();
}

// momentumUpdate(value, acc, gradient, newValue, newAcc, lr, momentum): tfjs-core's momentum
// SGD without Nesterov, acc' = momentum·acc + g, value' = (−lr)·acc' + value.
Napi::Value MomentumUpdate(const Napi::CallbackInfo& info) {
  const F32 value = ArgF32(info, 0);
  const float* acc = ArgF32(info, 1).data;
  const float* g = ArgF32(info, 2).data;
  float* newValue = ArgF32(info, 3).data;
  float* newAcc = ArgF32(info, 4).data;
  const float negLr = static_cast<float>(-ArgNum(info, 5));
  const float momentum = static_cast<float>(ArgNum(info, 6));
  const int64_t n = static_cast<int64_t>(value.size);
#pragma omp parallel for simd num_threads(ThreadsFor(n)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float a = momentum * acc[i] + g[i];
    newAcc[i] = a;
    newValue[i] = negLr * a + value.data[i];
  }
  return info.Env().Undefined();
}

// adamTf1Update(value, m, v, gradient, newValue, newM, newV, alpha, oneMinusBeta1, oneMinusBeta2,
// epsilon): TensorFlow 1's ApplyAdam (tensorflow/core/kernels/training_ops.cc,
// ApplyAdamNonCuda; the XLA lowering the TPU ran, tf2xla/kernels/training_ops.cc, is the same
// expression): m += (g − m)·(1 − β1); v += (g² − v)·(1 − β2); var −= (m·alpha) / (√v + ε), with
// alpha = lr·√(1 − β2^t) / (1 − β1^t) computed once per step by the caller.
Napi::Value AdamTf1Update(const Napi::CallbackInfo& info) {
  const F32 value = ArgF32(info, 0);
  const float* m = ArgF32(info, 1).data;
  const float* v = ArgF32(info, 2).data;
  const float* g = ArgF32(info, 3).data;
  float* newValue = ArgF32(info, 4).data;
  float* newM = ArgF32(info, 5).data;
  float* newV = ArgF32(info, 6).data;
  const float alpha = static_cast<float>(ArgNum(info, 7));
  const float oneMinusBeta1 = static_cast<float>(ArgNum(info, 8));
  const float oneMinusBeta2 = static_cast<float>(ArgNum(info, 9));
  const float epsilon = static_cast<float>(ArgNum(info, 10));
  const int64_t n = static_cast<int64_t>(value.size);
#pragma omp parallel for simd num_threads(ThreadsFor(n)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = m[i] + (gi - m[i]) * oneMinusBeta1;
    const float vi = v[i] + (gi * gi - v[i]) * oneMinusBeta2;
    newM[i] = mi;
    newV[i] = vi;
    newValue[i] = value.data[i] - (mi * alpha) / (std::sqrt(vi) + epsilon);
  }
  return info.Env().Undefined();
}

// rmsPropTf1Update(value, ms, mom, gradient, newValue, newMs, newMom, lr, oneMinusDecay, momentum,
// epsilon): TensorFlow 1's ApplyRMSProp (tensorflow/core/kernels/training_ops.cc):
// ms += (g² − ms)·(1 − ρ); mom = mom·momentum + (g·lr) / √(ms + ε); var −= mom. (TF1 starts ms
// at one; that is the caller's slot, not this kernel's business.)
Napi::Value RmsPropTf1Update(const Napi::CallbackInfo& info) {
  const F32 value = ArgF32(info, 0);
  const float* ms = ArgF32(info, 1).data;
  const float* mom = ArgF32(info, 2).data;
  const float* g = ArgF32(info, 3).data;
  float* newValue = ArgF32(info, 4).data;
  float* newMs = ArgF32(info, 5).data;
  float* newMom = ArgF32(info, 6).data;
  const float lr = static_cast<float>(ArgNum(info, 7));
  const float oneMinusDecay = static_cast<float>(ArgNum(info, 8));
  const float momentum = static_cast<float>(ArgNum(info, 9));
  const float epsilon = static_cast<float>(ArgNum(info, 10));
  const int64_t n = static_cast<int64_t>(value.size);
#pragma omp parallel for simd num_threads(ThreadsFor(n)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float si = ms[i] + (gi * gi - ms[i]) * oneMinusDecay;
    const float mi = mom[i] * momentum + (gi * lr) / std::sqrt(si + epsilon);
    newMs[i] = si;
    newMom[i] = mi;
    newValue[i] = value.data[i] - mi;
  }
  return info.Env().Undefined();
}

// movingAverages(movingMean, movingVariance, mean, variance, decay, newMean, newVariance):
// BatchNormalization's moving averages after a training batch, moving − (moving − batch)·decay,
// as tfjs-layers computes them (three float32 kernels per average there, six kernel calls per
// layer and step).
Napi::Value MovingAverages(const Napi::CallbackInfo& info) {
  const F32 movingMean = ArgF32(info, 0);
  const float* movingVariance = ArgF32(info, 1).data;
  const float* mean = ArgF32(info, 2).data;
  const float* variance = ArgF32(info, 3).data;
  const float decay = static_cast<float>(ArgNum(info, 4));
  float* newMean = ArgF32(info, 5).data;
  float* newVariance = ArgF32(info, 6).data;
  for (size_t c = 0; c < movingMean.size; ++c) {
    newMean[c] = movingMean.data[c] - (movingMean.data[c] - mean[c]) * decay;
    newVariance[c] = movingVariance[c] - (movingVariance[c] - variance[c]) * decay;
  }
  return info.Env().Undefined();
}

SELAB_EXPORT("movingAverages", MovingAverages);
SELAB_EXPORT("adamUpdate", AdamUpdate);
SELAB_EXPORT("adamTf1Update", AdamTf1Update);
SELAB_EXPORT("rmsPropTf1Update", RmsPropTf1Update);
SELAB_EXPORT("momentumUpdate", MomentumUpdate);
SELAB_EXPORT("rmsPropUpdate", RmsPropUpdate);

}  // namespace
}  // namespace selab

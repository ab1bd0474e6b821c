// Batch normalisation over the last (channel) axis of a [rows, C] view: the forward pass
// and the whole FusedBatchNorm gradient in two passes over x and dy, where tfjs-core's
// gradient takes about ten full-size kernels (including a Tile of 1/sqrt(var) to x's shape).
#include <cmath>
#include <vector>

#include "registry.h"
#include "tensor_args.h"

namespace selab {
namespace {

// batchNormForward(x, mean, variance, offset|null, scale|null, eps, C, out)
Napi::Value BatchNormForward(const Napi::CallbackInfo& info) {
  const F32 x = ArgF32(info, 0);
  const float* mean = ArgF32(info, 1).data;
  const float* var = ArgF32(info, 2).data;
  const float* offset = ArgF32(info, 3).data;
  const float* scale = ArgF32(info, 4).data;
  const float eps = static_cast<float>(ArgNum(info, 5));
  const int64_t C = ArgInt(info, 6);
  float* out = ArgF32(info, 7).data;
  std::vector<float> a(C), b(C);
  for (int64_t c = 0; c < C; ++c) {
    a[c] = (scale ? scale[c] : 1.f) / std::sqrt(var[c] + eps);
    b[c] = (offset ? offset[c] : 0.f) - mean[c] * a[c];
  }
  const int64_t rows = static_cast<int64_t>(x.size) / C;
  const float* pa = a.data();
  const float* pb = b.data();
#pragma omp parallel for num_threads(ThreadsFor(x.size)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x.data + r * C;
    float* orow = out + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) orow[c] = xr[c] * pa[c] + pb[c];
  }
  return info.Env().Undefined();
}

// batchNormGrad(x, dy, mean, variance, scale|null, eps, C, dx, dMean, dVariance, dScale, dOffset)
// Outputs may be null when that gradient is not needed. Same maths as tfjs-core's
// FusedBatchNorm gradient: mean and variance are treated as independent inputs.
Napi::Value BatchNormGrad(const Napi::CallbackInfo& info) {
  const F32 x = ArgF32(info, 0);
  const float* dy = ArgF32(info, 1).data;
  const float* mean = ArgF32(info, 2).data;
  const float* var = ArgF32(info, 3).data;
  const float* scale = ArgF32(info, 4).data;
  const float eps = static_cast<float>(ArgNum(info, 5));
  const int64_t C = ArgInt(info, 6);
  float* dx = ArgF32(info, 7).data;
  float* dMean = ArgF32(info, 8).data;
  float* dVar = ArgF32(info, 9).data;
  float* dScale = ArgF32(info, 10).data;
  float* dOffset = ArgF32(info, 11).data;
  const int64_t rows = static_cast<int64_t>(x.size) / C;
  std::vector<float> rstd(C);
  for (int64_t c = 0; c < C; ++c) rstd[c] = 1.f / std::sqrt(var[c] + eps);

  if (dMean || dVar || dScale || dOffset) {
    // Per-thread float partials over row blocks, combined in double: sum(dy), sum(dy·(x−mean)).
    const int threads = ThreadsFor(x.size);
    std::vector<double> sumDy(C, 0.0), sumDyXm(C, 0.0);
#pragma omp parallel num_threads(threads)
    {
      std::vector<float> sDy(C, 0.f), sDyXm(C, 0.f);
      std::vector<double> dDy(C, 0.0), dDyXm(C, 0.0);
      float* s1 = sDy.data();
      float* s2 = sDyXm.data();
      int64_t begin, end;
      Split(rows, omp_get_num_threads(), omp_get_thread_num(), &begin, &end);
      int64_t block = 0;
      for (int64_t r = begin; r < end; ++r) {
        const float* xr = x.data + r * C;
        const float* dr = dy + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          s1[c] += dr[c];
          s2[c] += dr[c] * (xr[c] - mean[c]);
        }
        // Flush the float partials to double every 256 rows to bound rounding error.
        if (++block == 256 || r + 1 == end) {
          for (int64_t c = 0; c < C; ++c) {
            dDy[c] += s1[c];
            dDyXm[c] += s2[c];
            s1[c] = 0.f;
            s2[c] = 0.f;
          }
          block = 0;
        }
      }
#pragma omp critical
      for (int64_t c = 0; c < C; ++c) {
        sumDy[c] += dDy[c];
        sumDyXm[c] += dDyXm[c];
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      const float g = scale ? scale[c] : 1.f;
      const float r = rstd[c];
      if (dMean) dMean[c] = static_cast<float>(-r * g * sumDy[c]);
      if (dVar) dVar[c] = static_cast<float>(-0.5 * r * r * r * g * sumDyXm[c]);
      if (dScale) dScale[c] = static_cast<float>(r * sumDyXm[c]);
      if (dOffset) dOffset[c] = static_cast<float>(sumDy[c]);
    }
  }
  if (dx) {
    std::vector<float> k(C);
    for (int64_t c = 0; c < C; ++c) k[c] = (scale ? scale[c] : 1.f) * rstd[c];
    const float* pk = k.data();
#pragma omp parallel for num_threads(ThreadsFor(x.size)) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* dr = dy + r * C;
      float* o = dx + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] = dr[c] * pk[c];
    }
  }
  return info.Env().Undefined();
}

SELAB_EXPORT("batchNormForward", BatchNormForward);
SELAB_EXPORT("batchNormGrad", BatchNormGrad);

}  // namespace
}  // namespace selab

// Batch normalisation over the last (channel) axis of a [rows, C] view: the forward pass
// and the whole FusedBatchNorm gradient in two passes over x and dy, where tfjs-core's
// gradient takes about ten full-size kernels (including a Tile of 1/sqrt(var) to x's shape).
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "registry.h"
#include "tensor_args.h"

namespace selab {
namespace {

// Two per-channel sums over the rows of a [rows, C] view: rowSums(r, s1, s2) adds row r's terms
// to float partials, which are flushed to double every 256 rows (bounding the rounding error)
// and combined across threads in double.
template <class RowSums>
void ChannelSums(int64_t rows, int64_t C, double* sum1, double* sum2, RowSums rowSums) {
  std::fill(sum1, sum1 + C, 0.0);
  std::fill(sum2, sum2 + C, 0.0);
#pragma omp parallel num_threads(ThreadsFor(rows * C))
  {
    std::vector<float> p1(C, 0.f), p2(C, 0.f);
    std::vector<double> d1(C, 0.0), d2(C, 0.0);
    int64_t begin, end;
    Split(rows, omp_get_num_threads(), omp_get_thread_num(), &begin, &end);
    int64_t block = 0;
    for (int64_t r = begin; r < end; ++r) {
      rowSums(r, p1.data(), p2.data());
      if (++block == 256 || r + 1 == end) {
        for (int64_t c = 0; c < C; ++c) {
          d1[c] += p1[c];
          d2[c] += p2[c];
          p1[c] = 0.f;
          p2[c] = 0.f;
        }
        block = 0;
      }
    }
#pragma omp critical
    for (int64_t c = 0; c < C; ++c) {
      sum1[c] += d1[c];
      sum2[c] += d2[c];
    }
  }
}

// The activation a training-mode batch-norm may apply to its own output (attr `activation`:
// 0 linear, 1 relu, 2 relu6), and its derivative, 1 where it passes the gradient and 0 elsewhere,
// as tf.relu and tf.relu6 define it: on (0, ∞) and on (0, 6]. The gradient multiplies dy by the
// derivative, as tfjs does (a NaN in dy stays NaN), rather than selecting dy: the select became a
// masked load of dy that waits for the comparison, and the gradient ran 1.5× slower. The
// derivative is taken at the normalised value z, recomputed in the gradient from x, so neither
// pass stores z or the activation's output a second time.
enum Activation { kLinear = 0, kRelu = 1, kRelu6 = 2 };

template <class Body>
void WithActivation(int activation, Body body) {
  switch (activation) {
    case kRelu: body([](float z) { return z < 0.f ? 0.f : z; }, [](float z) { return z > 0.f ? 1.f : 0.f; }); break;
    case kRelu6: body([](float z) { return z < 0.f ? 0.f : (z > 6.f ? 6.f : z); }, [](float z) { return z > 0.f && z <= 6.f ? 1.f : 0.f; }); break;
    default: body([](float z) { return z; }, [](float) { return 1.f; }); break;
  }
}

// The batch-norm as the affine map z = x·a[c] + b[c], a = scale/√(var + eps), b = offset − mean·a:
// what every batch-norm forward ends in, given its statistics.
void Affine(int64_t C, const float* mean, const float* var, const float* scale, const float* offset, float eps, float* a, float* b) {
  for (int64_t c = 0; c < C; ++c) {
    a[c] = (scale ? scale[c] : 1.f) / std::sqrt(var[c] + eps);
    b[c] = (offset ? offset[c] : 0.f) - mean[c] * a[c];
  }
}

// out = act(x·a[c] + b[c]) over the rows of a [rows, C] view.
void Normalize(const float* x, int64_t rows, int64_t C, const float* mean, const float* var, const float* scale,
               const float* offset, float eps, int activation, float* out) {
  std::vector<float> a(C), b(C);
  Affine(C, mean, var, scale, offset, eps, a.data(), b.data());
  const float* pa = a.data();
  const float* pb = b.data();
  WithActivation(activation, [&](auto act, auto) {
#pragma omp parallel for num_threads(ThreadsFor(rows * C)) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * C;
      float* orow = out + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) orow[c] = act(xr[c] * pa[c] + pb[c]);
    }
  });
}

// Per channel, sum(dy) and sum(dy·(x − mean)): the two reductions of every batch-norm gradient.
void GradientSums(const float* x, const float* dy, const float* mean, int64_t rows, int64_t C, double* sumDy, double* sumDyXm) {
  ChannelSums(rows, C, sumDy, sumDyXm, [&](int64_t r, float* s1, float* s2) {
    const float* xr = x + r * C;
    const float* dr = dy + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      s1[c] += dr[c];
      s2[c] += dr[c] * (xr[c] - mean[c]);
    }
  });
}

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
  Normalize(x.data, static_cast<int64_t>(x.size) / C, C, mean, var, scale, offset, eps, kLinear, out);
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
    std::vector<double> sumDy(C), sumDyXm(C);
    GradientSums(x.data, dy, mean, rows, C, sumDy.data(), sumDyXm.data());
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

// Rows seen so far, and per channel their mean and sum of squared deviations from it.
struct ChannelMoments {
  double n = 0;
  std::vector<double> mean, m2;
  // Chan et al.'s pairwise update: adds `rows` rows whose per-channel mean and sum of squared
  // deviations are meanOf(c) and m2Of(c).
  template <class Mean, class M2>
  void Add(double rows, Mean meanOf, M2 m2Of) {
    const double total = n + rows;
    const double weight = rows / total;
    for (size_t c = 0; c < mean.size(); ++c) {
      const double delta = meanOf(c) - mean[c];
      mean[c] += delta * weight;
      m2[c] += m2Of(c) + delta * delta * n * weight;
    }
    n = total;
  }
};

// Calls block(width, c0) for consecutive blocks of `width` channels covering [0, C), the width a
// std::integral_constant so that the block's arrays have a compile-time size.
template <class Block>
void ChannelBlocks(int64_t C, Block block) {
  int64_t c0 = 0;
  for (; c0 + 64 <= C; c0 += 64) block(std::integral_constant<int64_t, 64>(), c0);
  if (c0 + 32 <= C) block(std::integral_constant<int64_t, 32>(), c0), c0 += 32;
  if (c0 + 16 <= C) block(std::integral_constant<int64_t, 16>(), c0), c0 += 16;
  if (c0 + 8 <= C) block(std::integral_constant<int64_t, 8>(), c0), c0 += 8;
  for (; c0 < C; ++c0) block(std::integral_constant<int64_t, 1>(), c0);
}

// Per-channel mean and biased variance of a [rows, C] view, as tf.moments defines them, in one
// read of x from memory: each tile of rows small enough to stay in cache gets its own two-pass
// mean and sum of squared deviations, and the tiles are merged in double by Chan et al.'s pairwise
// update. Plain running sums of x and x² (or sums shifted by one row) lose precision when the
// mean is large against the spread; the tiles keep tf.moments' accuracy. A tile is taken a block
// of up to 64 channels at a time, the block's sums in registers over the tile's rows: the same
// sums in the same order as adding whole rows into C-long arrays, which loaded and stored them at
// every row and read MobileNet's activations at 15–24 GB/s, where the normalisation after them
// runs at 66–94. Each thread merges its own tiles and the threads are merged in a fixed order, so
// the result does not depend on timing.
void Moments(const float* x, int64_t rows, int64_t C, float* mean, float* var) {
  const int64_t tileRows = std::max<int64_t>(1, std::min<int64_t>(256, 8192 / C));
  const int threads = ThreadsFor(rows * C);
  std::vector<ChannelMoments> partials(threads);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    ChannelMoments& p = partials[t];
    p.mean.assign(C, 0.0);
    p.m2.assign(C, 0.0);
    std::vector<float> tileMean(C), tileSq(C);
    int64_t begin, end;
    Split(rows, omp_get_num_threads(), t, &begin, &end);
    for (int64_t r0 = begin; r0 < end; r0 += tileRows) {
      const int64_t r1 = std::min(end, r0 + tileRows);
      const float n = static_cast<float>(r1 - r0);
      ChannelBlocks(C, [&](auto width, int64_t c0) {
        constexpr int64_t W = decltype(width)::value;
        float sum[W] = {}, m[W], sq[W] = {};
        for (int64_t r = r0; r < r1; ++r) {
          const float* xr = x + r * C + c0;
#pragma omp simd
          for (int64_t j = 0; j < W; ++j) sum[j] += xr[j];
        }
#pragma omp simd
        for (int64_t j = 0; j < W; ++j) m[j] = sum[j] / n;
        for (int64_t r = r0; r < r1; ++r) {
          const float* xr = x + r * C + c0;
#pragma omp simd
          for (int64_t j = 0; j < W; ++j) {
            const float d = xr[j] - m[j];
            sq[j] += d * d;
          }
        }
        std::copy(m, m + W, tileMean.begin() + c0);
        std::copy(sq, sq + W, tileSq.begin() + c0);
      });
      p.Add(n, [&](size_t c) { return static_cast<double>(tileMean[c]); }, [&](size_t c) { return static_cast<double>(tileSq[c]); });
    }
  }
  ChannelMoments all = std::move(partials[0]);
  for (int t = 1; t < threads; ++t) {
    const ChannelMoments& p = partials[t];
    if (p.n > 0) all.Add(p.n, [&](size_t c) { return p.mean[c]; }, [&](size_t c) { return p.m2[c]; });
  }
  for (int64_t c = 0; c < C; ++c) {
    mean[c] = static_cast<float>(all.mean[c]);
    var[c] = static_cast<float>(all.m2[c] / all.n);
  }
}

// batchNormTrainForward(x, scale|null, offset|null, eps, C, out, mean, variance, activation):
// batch-norm in training mode, as tfjs-layers computes it (tf.moments, then the affine map), in
// two passes over x instead of five kernels, with the activation of the layer after it applied
// in the last pass.
Napi::Value BatchNormTrainForward(const Napi::CallbackInfo& info) {
  const F32 x = ArgF32(info, 0);
  const float* scale = ArgF32(info, 1).data;
  const float* offset = ArgF32(info, 2).data;
  const float eps = static_cast<float>(ArgNum(info, 3));
  const int64_t C = ArgInt(info, 4);
  float* out = ArgF32(info, 5).data;
  float* mean = ArgF32(info, 6).data;
  float* var = ArgF32(info, 7).data;
  const int activation = static_cast<int>(ArgInt(info, 8));
  const int64_t rows = static_cast<int64_t>(x.size) / C;
  Moments(x.data, rows, C, mean, var);
  Normalize(x.data, rows, C, mean, var, scale, offset, eps, activation, out);
  return info.Env().Undefined();
}

// batchNormTrainGrad(x, dy, mean, variance, scale|null, offset|null, eps, C, dx, dScale, dOffset,
// activation): the gradient of batchNormTrainForward with the batch statistics' own dependence on
// x included, dx = γ/σ · (dz − mean(dz) − (x−μ)·mean(dz·(x−μ))/σ²) with σ² = var + eps and dz the
// gradient dy of the output masked by the activation's derivative at z (recomputed from x), in
// two passes, where tfjs differentiates tf.moments, the normalisation and the activation kernel
// by kernel (about nine full-size kernels).
Napi::Value BatchNormTrainGrad(const Napi::CallbackInfo& info) {
  const F32 x = ArgF32(info, 0);
  const float* dy = ArgF32(info, 1).data;
  const float* mean = ArgF32(info, 2).data;
  const float* var = ArgF32(info, 3).data;
  const float* scale = ArgF32(info, 4).data;
  const float* offset = ArgF32(info, 5).data;
  const float eps = static_cast<float>(ArgNum(info, 6));
  const int64_t C = ArgInt(info, 7);
  float* dx = ArgF32(info, 8).data;
  float* dScale = ArgF32(info, 9).data;
  float* dOffset = ArgF32(info, 10).data;
  const int activation = static_cast<int>(ArgInt(info, 11));
  const int64_t rows = static_cast<int64_t>(x.size) / C;
  std::vector<float> a(C), b(C);
  Affine(C, mean, var, scale, offset, eps, a.data(), b.data());
  const float* pa = a.data();
  const float* pb = b.data();
  std::vector<double> sumDz(C), sumDzXm(C);
  WithActivation(activation, [&](auto, auto derivative) {
    ChannelSums(rows, C, sumDz.data(), sumDzXm.data(), [&](int64_t r, float* s1, float* s2) {
      const float* xr = x.data + r * C;
      const float* dr = dy + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const float dz = dr[c] * derivative(xr[c] * pa[c] + pb[c]);
        s1[c] += dz;
        s2[c] += dz * (xr[c] - mean[c]);
      }
    });
  });
  std::vector<float> k(C), meanDz(C), slope(C);
  for (int64_t c = 0; c < C; ++c) {
    const double rstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
    k[c] = static_cast<float>((scale ? scale[c] : 1.f) * rstd);
    meanDz[c] = static_cast<float>(sumDz[c] / static_cast<double>(rows));
    slope[c] = static_cast<float>(sumDzXm[c] / static_cast<double>(rows) * rstd * rstd);
    dScale[c] = static_cast<float>(sumDzXm[c] * rstd);
    dOffset[c] = static_cast<float>(sumDz[c]);
  }
  const float* pk = k.data();
  const float* pm = meanDz.data();
  const float* ps = slope.data();
  WithActivation(activation, [&](auto, auto derivative) {
#pragma omp parallel for num_threads(ThreadsFor(x.size)) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x.data + r * C;
      const float* dr = dy + r * C;
      float* o = dx + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const float dz = dr[c] * derivative(xr[c] * pa[c] + pb[c]);
        o[c] = pk[c] * (dz - pm[c] - (xr[c] - mean[c]) * ps[c]);
      }
    }
  });
  return info.Env().Undefined();
}

SELAB_EXPORT("batchNormForward", BatchNormForward);
SELAB_EXPORT("batchNormTrainForward", BatchNormTrainForward);
SELAB_EXPORT("batchNormTrainGrad", BatchNormTrainGrad);
SELAB_EXPORT("batchNormGrad", BatchNormGrad);

}  // namespace
}  // namespace selab

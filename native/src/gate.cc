// The input gradient of a Squeeze-and-Excitation block in one pass: dx = dy·s[n,c] + g[n,c],
// where s is the gate and g the squeeze's (global average pool's) share of the gradient. tfjs
// differentiates the block op by op: dy·s written in full, g tiled to the input's shape, then
// the two added, four passes over memory more than this one.
#include <cstdint>

#include "registry.h"
#include "tensor_args.h"

// The product and the sum are rounded each, as tfjs' Multiply and Add kernels round them.
#pragma GCC optimize("fp-contract=off")

namespace selab {
namespace {

// gateInputGrad(dy, s, g, images, channels, dx): dy and dx are [images, rows, channels].
Napi::Value GateInputGrad(const Napi::CallbackInfo& info) {
  const F32 dy = ArgF32(info, 0);
  const float* s = ArgF32(info, 1).data;
  const float* g = ArgF32(info, 2).data;
  const int64_t images = ArgInt(info, 3);
  const int64_t channels = ArgInt(info, 4);
  float* dx = ArgF32(info, 5).data;
  const int64_t rows = static_cast<int64_t>(dy.size) / (images * channels);
#pragma omp parallel for collapse(2) num_threads(ThreadsFor(static_cast<int64_t>(dy.size))) schedule(static)
  for (int64_t n = 0; n < images; ++n) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* sn = s + n * channels;
      const float* gn = g + n * channels;
      const int64_t offset = (n * rows + r) * channels;
#pragma omp simd
      for (int64_t c = 0; c < channels; ++c) dx[offset + c] = dy.data[offset + c] * sn[c] + gn[c];
    }
  }
  return info.Env().Undefined();
}

SELAB_EXPORT("gateInputGrad", GateInputGrad);

}  // namespace
}  // namespace selab

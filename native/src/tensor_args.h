// Argument helpers shared by the elementwise, reduction and batch-norm kernels: every kernel
// reads the cpu backend's Float32Arrays in place and writes into an output array allocated
// on the JS side, so no data is copied across the boundary.
#pragma once
#include <napi.h>
#include <omp.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

namespace selab {

struct F32 {
  float* data = nullptr;
  size_t size = 0;
};

inline F32 ArgF32(const Napi::CallbackInfo& info, size_t i) {
  if (info[i].IsNull() || info[i].IsUndefined()) return {};
  Napi::Float32Array a = info[i].As<Napi::Float32Array>();
  return {a.Data(), a.ElementLength()};
}

inline int32_t* ArgI32(const Napi::CallbackInfo& info, size_t i) {
  return info[i].As<Napi::Int32Array>().Data();
}

inline std::vector<int64_t> ArgDims(const Napi::CallbackInfo& info, size_t i) {
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t k = 0; k < a.Length(); ++k) out[k] = a.Get(k).As<Napi::Number>().Int64Value();
  return out;
}

inline int64_t ArgInt(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int64Value(); }
inline double ArgNum(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().DoubleValue(); }

// Below this many elements a loop runs on one thread (SELAB_PARALLEL_MIN; default 4 MiB of
// floats). On an idle machine a second thread pays from ~32K elements, but when the cores are
// shared, waking a sleeping OpenMP worker costs a scheduler time slice (10-40 ms measured here)
// against ~0.5 ms for a single-threaded pass over 1M elements; Adam alone makes ~400 such calls
// per plain10 step.
inline int64_t& ParallelMin() {
  static int64_t value = [] {
    const char* env = std::getenv("SELAB_PARALLEL_MIN");
    const long long v = env ? std::atoll(env) : 0;
    return v > 0 ? static_cast<int64_t>(v) : int64_t{1} << 20;
  }();
  return value;
}

inline int ThreadsFor(int64_t work) { return work < ParallelMin() ? 1 : omp_get_max_threads(); }

// Splits [0, n) into `parts` contiguous ranges; returns range `k`.
inline void Split(int64_t n, int parts, int k, int64_t* begin, int64_t* end) {
  const int64_t base = n / parts, rest = n % parts;
  *begin = k * base + (k < rest ? k : rest);
  *end = *begin + base + (k < rest ? 1 : 0);
}

}  // namespace selab

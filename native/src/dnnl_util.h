// Shared oneDNN plumbing for the kernel files: one engine and stream for the process, a
// cache of primitives keyed by shape and parameters, and helpers to view JS Float32Arrays
// as oneDNN memory without copying.
#pragma once
#include <dnnl.hpp>
#include <napi.h>
#include <omp.h>

#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace selab {

inline dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

inline dnnl::stream& Stream() {
  static dnnl::stream stream(Engine());
  return stream;
}

// Builds a cache key from any streamable values: MakeKey("conv", n, h, w).
template <typename... Args>
std::string MakeKey(const Args&... args) {
  std::ostringstream out;
  ((out << args << ','), ...);
  return out.str();
}

// Entries of type T (a struct holding a primitive and its memory descs) created once per
// key. A training run sees a few dozen shapes; the cap only guards against a caller that
// feeds ever-new shapes.
template <typename T>
class Cache {
 public:
  static constexpr size_t kMaxEntries = 512;

  // make() returns std::unique_ptr<T>; a null result is not cached (oneDNN rejected it).
  template <typename Make>
  static T* Get(const std::string& baseKey, Make&& make) {
    // Primitives are bound to the thread count they were created with (setThreads may change it).
    const std::string key = baseKey + "threads=" + std::to_string(omp_get_max_threads());
    auto& map = Map();
    auto it = map.find(key);
    if (it != map.end()) return it->second.get();
    std::unique_ptr<T> entry = make();
    if (!entry) return nullptr;
    if (map.size() >= kMaxEntries) map.clear();
    T* raw = entry.get();
    map.emplace(key, std::move(entry));
    return raw;
  }

  static size_t Size() { return Map().size(); }

 private:
  static std::unordered_map<std::string, std::unique_ptr<T>>& Map() {
    static std::unordered_map<std::string, std::unique_ptr<T>> map;
    return map;
  }
};

// The addon is compiled without C++ exceptions, where dnnl.hpp aborts on any error. Primitive
// descriptors are therefore created through the C API, so a configuration oneDNN rejects
// returns false (the TS side then falls back to the cpu kernel) instead of killing Node.
template <typename PD, typename OpDesc>
bool CreatePd(const OpDesc& op, const dnnl::primitive_attr& attr, PD* out,
              const_dnnl_primitive_desc_t hint = nullptr) {
  dnnl_primitive_desc_t pd = nullptr;
  if (dnnl_primitive_desc_create(&pd, &op, attr.get(), Engine().get(), hint) != dnnl_success) return false;
  *out = PD(pd);
  return true;
}

// Limits OpenMP to one thread while in scope when `single` is set. Waking the second thread
// costs a scheduler time slice whenever the machine is busy (10-40 ms measured under load
// here), far more than a small reorder or matmul takes alone. oneDNN binds a primitive to
// the thread count it was created with, so small primitives are created and executed
// inside one of these (and Cache keys include the thread count).
class ThreadLimit {
 public:
  explicit ThreadLimit(bool single) : saved_(single ? omp_get_max_threads() : 0) {
    if (single) omp_set_num_threads(1);
  }
  ~ThreadLimit() {
    if (saved_) omp_set_num_threads(saved_);
  }
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;

 private:
  int saved_;
};

// Up to this many multiply-adds (or elements moved) a primitive runs on one thread.
constexpr int64_t kSingleThreadWork = int64_t{1} << 21;

using Dims = dnnl::memory::dims;

inline dnnl::memory::desc F32Desc(const Dims& dims, const Dims& strides) {
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
}

inline dnnl::memory::desc F32Desc(const Dims& dims, dnnl::memory::format_tag tag) {
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, tag);
}

// Raw pointer into a JS Float32Array (no copy); nullptr for null/undefined.
inline float* F32Ptr(const Napi::Value& v) {
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  return v.As<Napi::Float32Array>().Data();
}

// The caller-allocated output array (recycled storage from src/backend/onednn/memory.ts,
// contents unspecified); nullptr when it does not hold exactly `elements` floats.
inline float* OutPtr(const Napi::Value& v, int64_t elements) {
  if (!v.IsTypedArray()) return nullptr;
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  return static_cast<int64_t>(a.ElementLength()) == elements ? a.Data() : nullptr;
}

// Kernels report whether they ran; false sends the TS side to the cpu kernel.
inline Napi::Value Done(Napi::Env env, bool ok) { return Napi::Boolean::New(env, ok); }

// Reads a JS array (or Int32Array) of integers.
inline std::vector<int64_t> IntList(const Napi::Value& v) {
  std::vector<int64_t> out;
  if (v.IsTypedArray()) {
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    out.assign(a.Data(), a.Data() + a.ElementLength());
    return out;
  }
  Napi::Array a = v.As<Napi::Array>();
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).As<Napi::Number>().Int64Value());
  return out;
}

// Post-op activations shared by fused conv and matmul. Codes match ACTIVATIONS in
// src/backend/onednn/kernels/activation.ts: linear, relu, relu6, leakyrelu, sigmoid, elu.
inline void AppendActivation(dnnl::post_ops& ops, int code, float alpha) {
  using dnnl::algorithm;
  switch (code) {
    case 1: ops.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f); break;
    case 2: ops.append_eltwise(1.f, algorithm::eltwise_clip, 0.f, 6.f); break;
    case 3: ops.append_eltwise(1.f, algorithm::eltwise_relu, alpha, 0.f); break;
    case 4: ops.append_eltwise(1.f, algorithm::eltwise_logistic, 0.f, 0.f); break;
    case 5: ops.append_eltwise(1.f, algorithm::eltwise_elu, 1.f, 0.f); break;
    default: break;
  }
}

// A dnnl::memory whose data handle is swapped per call: user buffers are wrapped in place.
inline dnnl::memory UserMemory(const dnnl::memory::desc& desc) {
  return dnnl::memory(desc, Engine(), DNNL_MEMORY_NONE);
}

}  // namespace selab

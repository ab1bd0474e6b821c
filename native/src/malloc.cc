// Tensor storage: glibc told to keep freed memory, and cache-line aligned buffers.
//
// A training step frees and re-allocates the same multi-megabyte blocks every step (buffers
// the backend does not pool, oneDNN's scratch memory, Node's own buffers). By default glibc
// serves every block above its mmap threshold (128 KiB, adjusted upwards only after a free)
// with a fresh mapping and unmaps it on free, and trims the heap top, so each step pays page
// faults on first touch again. The same settings raise PyTorch's plain10 training here from
// ~50 to ~190 images/s (docs/backend.md, "The PyTorch peer").
#include <malloc.h>

#include <cstdint>
#include <cstdlib>

#include "registry.h"

namespace selab {
namespace {

constexpr size_t kTensorAlignment = 64;

// keepFreedMemory(): whether glibc took the settings (false on other C libraries).
Napi::Value KeepFreedMemory(const Napi::CallbackInfo& info) {
#ifdef __GLIBC__
  const bool ok = mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1 &&  // blocks up to 1 GiB come from the heap
                  mallopt(M_TRIM_THRESHOLD, 0x7fffffff) == 1 &&  // free heap top is not returned before 2 GiB
                  mallopt(M_TOP_PAD, 256 << 20) == 1;  // the heap grows 256 MiB at a time
  return Napi::Boolean::New(info.Env(), ok);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

SELAB_EXPORT("keepFreedMemory", KeepFreedMemory);

// alignedBuffer(bytes) -> an ArrayBuffer over 64-byte aligned memory, contents unspecified; null
// when out of memory. V8's own array buffers are only 16-byte aligned, so three tensors in four
// started mid cache line and every 512-bit load of oneDNN's kernels straddled two lines
// (MobileNet's depthwise convolutions ran ~1.4× slower on such storage). V8 is told of the
// memory, so that garbage it holds still prompts a collection.
Napi::Value AlignedBuffer(const Napi::CallbackInfo& info) {
  const size_t bytes = static_cast<size_t>(info[0].As<Napi::Number>().Int64Value());
  void* data = nullptr;
  if (posix_memalign(&data, kTensorAlignment, bytes) != 0) return info.Env().Null();
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), static_cast<int64_t>(bytes));
  return Napi::ArrayBuffer::New(info.Env(), data, bytes, [bytes](Napi::Env env, void* p) {
    std::free(p);
    Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(bytes));
  });
}

// isAligned(array) -> whether the array's first element is 64-byte aligned (for tests).
Napi::Value IsAligned(const Napi::CallbackInfo& info) {
  const auto address = reinterpret_cast<uintptr_t>(info[0].As<Napi::Float32Array>().Data());
  return Napi::Boolean::New(info.Env(), address % kTensorAlignment == 0);
}

SELAB_EXPORT("alignedBuffer", AlignedBuffer);
SELAB_EXPORT("isAligned", IsAligned);

}  // namespace
}  // namespace selab

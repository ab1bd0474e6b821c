// Makes glibc keep freed memory in the process instead of handing it back to the kernel.
//
// A training step frees and re-allocates the same multi-megabyte blocks every step (V8's
// array buffers below the backend's 1 MiB pool floor and for tensors it never pools, oneDNN's
// scratchpads, Node's own buffers). By default glibc serves every block above its mmap
// threshold (128 KiB, adjusted upwards only after a free) with a fresh mapping and unmaps it
// on free, and trims the heap top, so each step pays page faults on first touch again. The
// same settings raise PyTorch's plain10 training here from ~50 to ~190 images/s
// (docs/backend.md, "The PyTorch peer").
#include <malloc.h>

#include "registry.h"

namespace selab {
namespace {

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

}  // namespace
}  // namespace selab

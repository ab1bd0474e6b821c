#include <dnnl.hpp>
#include <omp.h>

#include "registry.h"
#include "tensor_args.h"

namespace selab {

std::vector<ExportEntry>& Exports() {
  static std::vector<ExportEntry> entries;
  return entries;
}

namespace {

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const dnnl_version_t* v = dnnl_version();
  Napi::Object out = Napi::Object::New(env);
  out.Set("dnnl", std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
  out.Set("cpuRuntime", v->cpu_runtime == DNNL_RUNTIME_OMP ? "omp" : "other");
  out.Set("threads", omp_get_max_threads());
  return out;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  omp_set_num_threads(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// setParallelMin(n): the element count from which elementwise loops use every thread (for measuring).
Napi::Value SetParallelMin(const Napi::CallbackInfo& info) {
  ParallelMin() = info[0].As<Napi::Number>().Int64Value();
  return info.Env().Undefined();
}

SELAB_EXPORT("info", Info);
SELAB_EXPORT("setParallelMin", SetParallelMin);
SELAB_EXPORT("setThreads", SetThreads);

}  // namespace
}  // namespace selab

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  for (const selab::ExportEntry& e : selab::Exports()) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
  return exports;
}

NODE_API_MODULE(selab_onednn, InitAddon)

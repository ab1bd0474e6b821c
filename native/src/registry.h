// Each kernel file registers its exported functions through a static Registrar, so
// adding a kernel file never means editing addon.cc.
#pragma once
#include <napi.h>
#include <vector>

namespace selab {

struct ExportEntry {
  const char* name;
  Napi::Value (*fn)(const Napi::CallbackInfo&);
};

std::vector<ExportEntry>& Exports();

struct Registrar {
  Registrar(const char* name, Napi::Value (*fn)(const Napi::CallbackInfo&)) {
    Exports().push_back({name, fn});
  }
};

}  // namespace selab

#define SELAB_EXPORT(name, fn) static ::selab::Registrar selab_registrar_##fn(name, fn)

// Batched matrix products (BatchMatMul, _FusedMatMul) with oneDNN matmul. Transposes are
// expressed as strides of the memory descriptors, so no operand is copied.
//
// Geometry: [batchA, batchB, M, K, N, transposeA, transposeB]; each batch is the product of
// the operand's leading dimensions and is 1 or the output batch (oneDNN broadcasts 1).
#include <algorithm>

#include "dnnl_util.h"
#include "registry.h"

namespace selab {
namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;

struct MatMul {
  dnnl::matmul prim;
  memory a, b, bias, out;
};

struct Shape {
  int64_t ba, bb, m, k, n;
  bool ta, tb;
};

std::unique_ptr<MatMul> MakeMatMul(const Shape& p, bool hasBias, int act, float alpha) {
  std::unique_ptr<MatMul> out;
  // A is [ba, M, K] (stored [ba, K, M] when transposed); B is [bb, K, N] (stored [bb, N, K]).
  memory::desc aDesc = F32Desc({p.ba, p.m, p.k}, p.ta ? Dims{p.m * p.k, 1, p.m} : Dims{p.m * p.k, p.k, 1});
  memory::desc bDesc = F32Desc({p.bb, p.k, p.n}, p.tb ? Dims{p.k * p.n, 1, p.k} : Dims{p.k * p.n, p.n, 1});
  memory::desc biasDesc = hasBias ? F32Desc({1, 1, p.n}, tag::abc) : memory::desc();
  memory::desc outDesc = F32Desc({std::max(p.ba, p.bb), p.m, p.n}, tag::abc);
  dnnl_matmul_desc_t op;
  if (dnnl_matmul_desc_init(&op, &aDesc.data, &bDesc.data, hasBias ? &biasDesc.data : nullptr, &outDesc.data) != dnnl_success) {
    return out;
  }
  dnnl::primitive_attr attr;
  dnnl::post_ops ops;
  AppendActivation(ops, act, alpha);
  attr.set_post_ops(ops);
  dnnl::matmul::primitive_desc pd;
  if (!CreatePd(op, attr, &pd)) return out;
  out = std::make_unique<MatMul>();
  out->prim = dnnl::matmul(pd);
  out->a = UserMemory(aDesc);
  out->b = UserMemory(bDesc);
  out->out = UserMemory(outDesc);
  if (hasBias) out->bias = UserMemory(biasDesc);
  return out;
}

// matmul(a, b, bias | null, geometry, activation, alpha, out) -> false when oneDNN rejects it
Napi::Value MatMulFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<int64_t> g = IntList(info[3]);
  if (g.size() != 7) return Done(env, false);
  const Shape p{g[0], g[1], g[2], g[3], g[4], g[5] != 0, g[6] != 0};
  const int64_t batch = std::max(p.ba, p.bb);
  float* result = OutPtr(info[6], batch * p.m * p.n);
  if (!result) return Done(env, false);
  float* bias = F32Ptr(info[2]);
  const int act = info[4].As<Napi::Number>().Int32Value();
  const float alpha = info[5].As<Napi::Number>().FloatValue();
  ThreadLimit limit(batch * p.m * p.k * p.n <= kSingleThreadWork);
  MatMul* e = Cache<MatMul>::Get(MakeKey("matmul", p.ba, p.bb, p.m, p.k, p.n, p.ta, p.tb, bias != nullptr, act, alpha),
                                 [&] { return MakeMatMul(p, bias != nullptr, act, alpha); });
  if (!e) return Done(env, false);
  e->a.set_data_handle(F32Ptr(info[0]));
  e->b.set_data_handle(F32Ptr(info[1]));
  e->out.set_data_handle(result);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->out}};
  if (bias) {
    e->bias.set_data_handle(bias);
    args.emplace(DNNL_ARG_BIAS, e->bias);
  }
  e->prim.execute(Stream(), args);
  Stream().wait();
  return Done(env, true);
}

SELAB_EXPORT("matmul", MatMulFn);

}  // namespace
}  // namespace selab

// Elementwise kernels on float32: broadcasting binary ops, unary ops, fills, casts and AddN.
// Loops are written so GCC vectorises the inner dimension (-O3 -march=native) and OpenMP
// splits the outer one; small tensors stay on one thread.
#include <cmath>
#include <cstring>
#include <vector>

#include "registry.h"
#include "tensor_args.h"

namespace selab {
namespace {

enum BinaryOp {
  kAdd, kSub, kMul, kDiv, kMax, kMin, kSquaredDiff,
  // Gradients fused into one pass: f(dy, x).
  kReluGrad, kRelu6Grad, kSquareGrad, kSigmoidGradFromY, kClipGrad,
  // ReLU6's gradient from its output y: 1 on 0 < y < 6 (y alone cannot tell x = 6 from x > 6).
  kRelu6GradFromY,
};

// `b` advances with stride sb (0 or 1) and `a` with sa; the four combinations are
// separate loops so each one vectorises.
template <class F>
inline void Row(const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n, F f) {
  if (sa && sb) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
  } else if (sa) {
    const float bv = b[0];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], bv);
  } else if (sb) {
    const float av = a[0];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = f(av, b[i]);
  } else {
    const float v = f(a[0], b[0]);
    for (int64_t i = 0; i < n; ++i) out[i] = v;
  }
}

// dims/sa/sb describe the (already collapsed) output shape and each input's strides in
// elements, 0 where the input is broadcast. The innermost stride is 0 or 1.
template <class F>
void Broadcast(const float* a, const float* b, float* out, const std::vector<int64_t>& dims,
               const std::vector<int64_t>& sa, const std::vector<int64_t>& sb, F f) {
  const int r = static_cast<int>(dims.size());
  const int64_t inner = dims[r - 1];
  int64_t rows = 1;
  for (int k = 0; k < r - 1; ++k) rows *= dims[k];
  const int64_t total = rows * inner;
  const int threads = ThreadsFor(total);
  if (rows == 1) {
#pragma omp parallel num_threads(threads)
    {
      int64_t begin, end;
      Split(inner, omp_get_num_threads(), omp_get_thread_num(), &begin, &end);
      Row(a + begin * sa[r - 1], sa[r - 1], b + begin * sb[r - 1], sb[r - 1], out + begin, end - begin, f);
    }
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    int64_t rem = row, oa = 0, ob = 0;
    for (int k = r - 2; k >= 0; --k) {
      const int64_t idx = rem % dims[k];
      rem /= dims[k];
      oa += idx * sa[k];
      ob += idx * sb[k];
    }
    Row(a + oa, sa[r - 1], b + ob, sb[r - 1], out + row * inner, inner, f);
  }
}

// binary(op, a, b, out, dims, aStrides, bStrides[, lo, hi])
Napi::Value Binary(const Napi::CallbackInfo& info) {
  const int op = static_cast<int>(ArgInt(info, 0));
  const float* a = ArgF32(info, 1).data;
  const float* b = ArgF32(info, 2).data;
  float* out = ArgF32(info, 3).data;
  const auto dims = ArgDims(info, 4), sa = ArgDims(info, 5), sb = ArgDims(info, 6);
  const float lo = info.Length() > 8 ? static_cast<float>(ArgNum(info, 7)) : 0.f;
  const float hi = info.Length() > 8 ? static_cast<float>(ArgNum(info, 8)) : 0.f;
  switch (op) {
    case kAdd: Broadcast(a, b, out, dims, sa, sb, [](float x, float y) { return x + y; }); break;
    case kSub: Broadcast(a, b, out, dims, sa, sb, [](float x, float y) { return x - y; }); break;
    case kMul: Broadcast(a, b, out, dims, sa, sb, [](float x, float y) { return x * y; }); break;
    case kDiv: Broadcast(a, b, out, dims, sa, sb, [](float x, float y) { return x / y; }); break;
    // Like Math.max/min: a NaN on either side gives NaN.
    case kMax: Broadcast(a, b, out, dims, sa, sb, [](float x, float y) { return (x > y || x != x) ? x : y; }); break;
    case kMin: Broadcast(a, b, out, dims, sa, sb, [](float x, float y) { return (x < y || x != x) ? x : y; }); break;
    case kSquaredDiff: Broadcast(a, b, out, dims, sa, sb, [](float x, float y) { return (x - y) * (x - y); }); break;
    case kReluGrad: Broadcast(a, b, out, dims, sa, sb, [](float dy, float x) { return x > 0.f ? dy : 0.f; }); break;
    case kRelu6Grad:
      Broadcast(a, b, out, dims, sa, sb, [](float dy, float x) { return (x > 0.f && x <= 6.f) ? dy : 0.f; });
      break;
    case kSquareGrad: Broadcast(a, b, out, dims, sa, sb, [](float dy, float x) { return dy * (x * 2.f); }); break;
    case kSigmoidGradFromY: Broadcast(a, b, out, dims, sa, sb, [](float dy, float y) { return dy * (y * (1.f - y)); }); break;
    case kClipGrad:
      Broadcast(a, b, out, dims, sa, sb, [lo, hi](float dy, float x) { return (x >= lo && x <= hi) ? dy : 0.f; });
      break;
    case kRelu6GradFromY:
      Broadcast(a, b, out, dims, sa, sb, [](float dy, float y) { return (y > 0.f && y < 6.f) ? dy : 0.f; });
      break;
    default: Napi::Error::New(info.Env(), "selab binary: unknown op").ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

enum UnaryOp { kRelu, kRelu6, kStep, kSigmoid, kSqrt, kRsqrt, kSquare, kNeg, kExp, kLog, kAbs, kTanh, kReciprocal, kLeakyRelu, kClip };

template <class F>
void Map(const float* x, float* out, int64_t n, F f) {
#pragma omp parallel for simd num_threads(ThreadsFor(n)) schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = f(x[i]);
}

// unary(op, x, out, alpha[, beta])
Napi::Value Unary(const Napi::CallbackInfo& info) {
  const int op = static_cast<int>(ArgInt(info, 0));
  const F32 x = ArgF32(info, 1);
  float* out = ArgF32(info, 2).data;
  const float alpha = static_cast<float>(ArgNum(info, 3));
  const float beta = info.Length() > 4 ? static_cast<float>(ArgNum(info, 4)) : 0.f;
  const int64_t n = static_cast<int64_t>(x.size);
  const float* p = x.data;
  switch (op) {
    // NaN passes through, as in the cpu backend.
    case kRelu: Map(p, out, n, [](float v) { return v < 0.f ? 0.f : v; }); break;
    case kRelu6: Map(p, out, n, [](float v) { return v < 0.f ? 0.f : (v > 6.f ? 6.f : v); }); break;
    case kStep: Map(p, out, n, [alpha](float v) { return v != v ? v : (v > 0.f ? 1.f : alpha); }); break;
    case kSigmoid: Map(p, out, n, [](float v) { return 1.f / (1.f + std::exp(-v)); }); break;
    case kSqrt: Map(p, out, n, [](float v) { return std::sqrt(v); }); break;
    case kRsqrt: Map(p, out, n, [](float v) { return 1.f / std::sqrt(v); }); break;
    case kSquare: Map(p, out, n, [](float v) { return v * v; }); break;
    case kNeg: Map(p, out, n, [](float v) { return -v; }); break;
    case kExp: Map(p, out, n, [](float v) { return std::exp(v); }); break;
    case kLog: Map(p, out, n, [](float v) { return std::log(v); }); break;
    case kAbs: Map(p, out, n, [](float v) { return std::fabs(v); }); break;
    case kTanh: Map(p, out, n, [](float v) { return std::tanh(v); }); break;
    case kReciprocal: Map(p, out, n, [](float v) { return 1.f / v; }); break;
    case kLeakyRelu: Map(p, out, n, [alpha](float v) { return v < 0.f ? alpha * v : v; }); break;
    case kClip: Map(p, out, n, [alpha, beta](float v) { return v > beta ? beta : (v < alpha ? alpha : v); }); break;
    default: Napi::Error::New(info.Env(), "selab unary: unknown op").ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

// scaleShift(x, scale, shift, out, channels, activation, gate | null): x viewed as [N, P, C],
// out = act(x · scale[c] · gate[n, c] + shift[c]) with gate [N, C] optional and activation 0
// linear, 1 relu, 2 relu6 (NaN passes through). BatchNorm's inference map and its activation in
// one pass, with an SE gate before it when there is one (src/backend/onednn/layers.ts).
Napi::Value ScaleShift(const Napi::CallbackInfo& info) {
  const F32 x = ArgF32(info, 0);
  const float* scale = ArgF32(info, 1).data;
  const float* shift = ArgF32(info, 2).data;
  float* out = ArgF32(info, 3).data;
  const int64_t C = ArgInt(info, 4);
  const int act = static_cast<int>(ArgInt(info, 5));
  const F32 gate = ArgF32(info, 6);
  const int64_t total = static_cast<int64_t>(x.size), rows = total / C;
  const int64_t n = gate.data ? static_cast<int64_t>(gate.size) / C : 1, perSample = rows / n;
  auto run = [&](auto activate) {
#pragma omp parallel num_threads(ThreadsFor(total))
    {
      std::vector<float> a(scale, scale + C);
      int64_t begin, end;
      Split(rows, omp_get_num_threads(), omp_get_thread_num(), &begin, &end);
      int64_t sample = -1;
      for (int64_t r = begin; r < end; ++r) {
        if (gate.data && r / perSample != sample) {
          sample = r / perSample;
          const float* g = gate.data + sample * C;
          for (int64_t c = 0; c < C; ++c) a[c] = scale[c] * g[c];
        }
        const float* xr = x.data + r * C;
        float* o = out + r * C;
        const float* ap = a.data();
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) o[c] = activate(xr[c] * ap[c] + shift[c]);
      }
    }
  };
  switch (act) {
    case 1: run([](float v) { return v < 0.f ? 0.f : v; }); break;
    case 2: run([](float v) { return v < 0.f ? 0.f : (v > 6.f ? 6.f : v); }); break;
    default: run([](float v) { return v; }); break;
  }
  return info.Env().Undefined();
}

// fill(out, value)
Napi::Value Fill(const Napi::CallbackInfo& info) {
  const F32 out = ArgF32(info, 0);
  const float v = static_cast<float>(ArgNum(info, 1));
  const int64_t n = static_cast<int64_t>(out.size);
#pragma omp parallel for simd num_threads(ThreadsFor(n)) schedule(static)
  for (int64_t i = 0; i < n; ++i) out.data[i] = v;
  return info.Env().Undefined();
}

// castF32ToI32(x, out): truncation toward zero, like Int32Array.from on the cpu backend.
Napi::Value CastF32ToI32(const Napi::CallbackInfo& info) {
  const F32 x = ArgF32(info, 0);
  int32_t* out = ArgI32(info, 1);
  const int64_t n = static_cast<int64_t>(x.size);
#pragma omp parallel for simd num_threads(ThreadsFor(n)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x.data[i];
    out[i] = (v != v || std::isinf(v)) ? 0 : static_cast<int32_t>(v);
  }
  return info.Env().Undefined();
}

// castI32ToF32(x, out)
Napi::Value CastI32ToF32(const Napi::CallbackInfo& info) {
  Napi::Int32Array xa = info[0].As<Napi::Int32Array>();
  const int32_t* x = xa.Data();
  float* out = ArgF32(info, 1).data;
  const int64_t n = static_cast<int64_t>(xa.ElementLength());
#pragma omp parallel for simd num_threads(ThreadsFor(n)) schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(x[i]);
  return info.Env().Undefined();
}

// addN([x0, x1, ...], out)
Napi::Value AddN(const Napi::CallbackInfo& info) {
  Napi::Array list = info[0].As<Napi::Array>();
  const F32 out = ArgF32(info, 1);
  std::vector<const float*> xs(list.Length());
  for (uint32_t k = 0; k < list.Length(); ++k) xs[k] = list.Get(k).As<Napi::Float32Array>().Data();
  const int64_t n = static_cast<int64_t>(out.size);
  const int m = static_cast<int>(xs.size());
#pragma omp parallel num_threads(ThreadsFor(n * m))
  {
    int64_t begin, end;
    Split(n, omp_get_num_threads(), omp_get_thread_num(), &begin, &end);
    float* o = out.data;
    const float* x0 = xs[0];
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) o[i] = x0[i];
    for (int k = 1; k < m; ++k) {
      const float* xk = xs[k];
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) o[i] += xk[i];
    }
  }
  return info.Env().Undefined();
}

SELAB_EXPORT("binary", Binary);
SELAB_EXPORT("unary", Unary);
SELAB_EXPORT("fill", Fill);
SELAB_EXPORT("scaleShift", ScaleShift);
SELAB_EXPORT("castF32ToI32", CastF32ToI32);
SELAB_EXPORT("castI32ToF32", CastI32ToF32);
SELAB_EXPORT("addN", AddN);

}  // namespace
}  // namespace selab

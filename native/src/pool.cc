// Max and average pooling on NHWC tensors, and their gradients.
//
// Geometry (from tfjs's computePool2DInfo on the TS side, src/backend/onednn/kernels/pool.ts):
//   [N, H, W, C, KH, KW, Ho, Wo, strideH, strideW, padTop, padLeft, padBottom, padRight]
#include <algorithm>
#include <limits>

#include "dnnl_util.h"
#include "registry.h"

namespace selab {
namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;

struct Geometry {
  int64_t n, h, w, c, kh, kw, ho, wo, sh, sw, pt, pl, pb, pr;
};

bool ReadGeometry(const Napi::Value& v, Geometry* g) {
  std::vector<int64_t> p = IntList(v);
  if (p.size() != 14) return false;
  *g = {p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13]};
  return true;
}

std::string GeometryKey(const Geometry& g) {
  return MakeKey(g.n, g.h, g.w, g.c, g.kh, g.kw, g.ho, g.wo, g.sh, g.sw, g.pt, g.pl, g.pb, g.pr);
}

// tfjs's AvgPool divides by the number of window elements inside the input, but its
// AvgPoolGrad (cpu and webgl alike) spreads dy/(KH·KW) over the window; the native kernels
// reproduce both so onednn trains exactly like cpu.
dnnl_alg_kind_t Algorithm(int kind, bool backward) {
  if (kind == 0) return dnnl_pooling_max;
  return backward ? dnnl_pooling_avg_include_padding : dnnl_pooling_avg_exclude_padding;
}

bool ForwardPd(const Geometry& g, dnnl_alg_kind_t alg, dnnl::pooling_v2_forward::primitive_desc* pd) {
  memory::desc src = F32Desc({g.n, g.c, g.h, g.w}, tag::nhwc), dst = F32Desc({g.n, g.c, g.ho, g.wo}, tag::nhwc);
  dnnl_dims_t strides{g.sh, g.sw}, kernel{g.kh, g.kw}, dilation{0, 0}, padL{g.pt, g.pl}, padR{g.pb, g.pr};
  dnnl_pooling_v2_desc_t op;
  if (dnnl_pooling_v2_forward_desc_init(&op, dnnl_forward_inference, alg, &src.data, &dst.data, strides, kernel, dilation, padL,
                                        padR) != dnnl_success) {
    return false;
  }
  return CreatePd(op, dnnl::primitive_attr(), pd);
}

struct PoolForward {
  dnnl::pooling_v2_forward prim;
  memory src, dst;
};

struct PoolBackward {
  dnnl::pooling_v2_backward prim;
  memory diffDst, diffSrc;
};

// poolForward(x, geometry, kind: 0 max | 1 avg, y) -> false when oneDNN rejects it
Napi::Value PoolForwardFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Geometry g;
  if (!ReadGeometry(info[1], &g)) return Done(env, false);
  float* y = OutPtr(info[3], g.n * g.ho * g.wo * g.c);
  if (!y) return Done(env, false);
  const int kind = info[2].As<Napi::Number>().Int32Value();
  ThreadLimit limit(g.n * g.ho * g.wo * g.c * g.kh * g.kw <= kSingleThreadWork);
  PoolForward* e = Cache<PoolForward>::Get(MakeKey("pool_fwd", GeometryKey(g), kind), [&] {
    std::unique_ptr<PoolForward> out;
    dnnl::pooling_v2_forward::primitive_desc pd;
    if (!ForwardPd(g, Algorithm(kind, false), &pd)) return out;
    out = std::make_unique<PoolForward>();
    out->prim = dnnl::pooling_v2_forward(pd);
    out->src = UserMemory(pd.src_desc());
    out->dst = UserMemory(pd.dst_desc());
    return out;
  });
  if (!e) return Done(env, false);
  e->src.set_data_handle(F32Ptr(info[0]));
  e->dst.set_data_handle(y);
  e->prim.execute(Stream(), {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_DST, e->dst}});
  Stream().wait();
  return Done(env, true);
}

// avgPoolBackward(dy, geometry, dx) -> false when oneDNN rejects it
Napi::Value AvgPoolBackwardFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Geometry g;
  if (!ReadGeometry(info[1], &g)) return Done(env, false);
  float* dx = OutPtr(info[2], g.n * g.h * g.w * g.c);
  if (!dx) return Done(env, false);
  ThreadLimit limit(g.n * g.ho * g.wo * g.c * g.kh * g.kw <= kSingleThreadWork);
  PoolBackward* e = Cache<PoolBackward>::Get(MakeKey("avg_bwd", GeometryKey(g)), [&] {
    std::unique_ptr<PoolBackward> out;
    const dnnl_alg_kind_t alg = Algorithm(1, true);
    dnnl::pooling_v2_forward::primitive_desc hint;
    if (!ForwardPd(g, alg, &hint)) return out;
    memory::desc diffSrc = F32Desc({g.n, g.c, g.h, g.w}, tag::nhwc), diffDst = F32Desc({g.n, g.c, g.ho, g.wo}, tag::nhwc);
    dnnl_dims_t strides{g.sh, g.sw}, kernel{g.kh, g.kw}, dilation{0, 0}, padL{g.pt, g.pl}, padR{g.pb, g.pr};
    dnnl_pooling_v2_desc_t op;
    if (dnnl_pooling_v2_backward_desc_init(&op, alg, &diffSrc.data, &diffDst.data, strides, kernel, dilation, padL, padR) !=
        dnnl_success) {
      return out;
    }
    dnnl::pooling_v2_backward::primitive_desc pd;
    if (!CreatePd(op, dnnl::primitive_attr(), &pd, hint.get())) return out;
    out = std::make_unique<PoolBackward>();
    out->prim = dnnl::pooling_v2_backward(pd);
    out->diffDst = UserMemory(pd.diff_dst_desc());
    out->diffSrc = UserMemory(pd.diff_src_desc());
    return out;
  });
  if (!e) return Done(env, false);
  e->diffDst.set_data_handle(F32Ptr(info[0]));
  e->diffSrc.set_data_handle(dx);
  e->prim.execute(Stream(), {{DNNL_ARG_DIFF_DST, e->diffDst}, {DNNL_ARG_DIFF_SRC, e->diffSrc}});
  Stream().wait();
  return Done(env, true);
}

// maxPoolBackward(dy, x, geometry, dx) -> true. Routes each dy to the first strictly largest
// element of its window, as tfjs's maxPoolPositions does: oneDNN's workspace would need the
// forward pass kept, and tfjs hands the gradient only x and y. Images are independent,
// so they are split across threads; channels are innermost and vectorise.
Napi::Value MaxPoolBackwardFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Geometry g;
  if (!ReadGeometry(info[2], &g)) return Done(env, false);
  float* dx = OutPtr(info[3], g.n * g.h * g.w * g.c);
  if (!dx) return Done(env, false);
  const float* dy = F32Ptr(info[0]);
  const float* x = F32Ptr(info[1]);
  const int64_t C = g.c;
#pragma omp parallel if (g.n * g.ho * g.wo * g.c * g.kh * g.kw > kSingleThreadWork)
  {
    std::vector<float> best(C);
    std::vector<int64_t> where(C);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.n; ++n) {
      const float* xn = x + n * g.h * g.w * C;
      float* dxn = dx + n * g.h * g.w * C;
      std::fill(dxn, dxn + g.h * g.w * C, 0.f);
      for (int64_t oh = 0; oh < g.ho; ++oh) {
        const int64_t h0 = oh * g.sh - g.pt;
        const int64_t hBegin = std::max<int64_t>(h0, 0), hEnd = std::min(h0 + g.kh, g.h);
        for (int64_t ow = 0; ow < g.wo; ++ow) {
          const int64_t w0 = ow * g.sw - g.pl;
          const int64_t wBegin = std::max<int64_t>(w0, 0), wEnd = std::min(w0 + g.kw, g.w);
          std::fill(best.begin(), best.end(), -std::numeric_limits<float>::infinity());
          std::fill(where.begin(), where.end(), -1);
          for (int64_t ih = hBegin; ih < hEnd; ++ih) {
            for (int64_t iw = wBegin; iw < wEnd; ++iw) {
              const int64_t base = (ih * g.w + iw) * C;
              const float* px = xn + base;
              for (int64_t c = 0; c < C; ++c) {
                const bool larger = px[c] > best[c];
                best[c] = larger ? px[c] : best[c];
                where[c] = larger ? base + c : where[c];
              }
            }
          }
          const float* pdy = dy + ((n * g.ho + oh) * g.wo + ow) * C;
          for (int64_t c = 0; c < C; ++c) {
            if (where[c] >= 0) dxn[where[c]] += pdy[c];
          }
        }
      }
    }
  }
  return Done(env, true);
}

SELAB_EXPORT("poolForward", PoolForwardFn);
SELAB_EXPORT("avgPoolBackward", AvgPoolBackwardFn);
SELAB_EXPORT("maxPoolBackward", MaxPoolBackwardFn);

}  // namespace
}  // namespace selab

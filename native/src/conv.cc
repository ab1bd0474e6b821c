// 2-D convolutions (plain, grouped/depthwise) forward, backward-data and backward-weights
// on NHWC activations and tfjs filters ([fh,fw,in,out], or [fh,fw,C,mult] for depthwise).
//
// Every entry point takes a geometry array computed by tfjs's computeConv2DInfo on the TS
// side (see src/backend/onednn/kernels/conv.ts):
//   [N, H, W, C, KH, KW, O, Ho, Wo, strideH, strideW, dilationH, dilationW,
//    padTop, padLeft, padBottom, padRight, groups]
// groups is 1 for a plain convolution and C for a depthwise one (O = C * multiplier).
#include <cstdlib>
#include <cstring>

#include "dnnl_util.h"
#include "registry.h"

namespace selab {
namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;

struct Geometry {
  int64_t n, h, w, c, kh, kw, o, ho, wo, sh, sw, dh, dw, pt, pl, pb, pr, groups;
};

bool ReadGeometry(const Napi::Value& v, Geometry* g) {
  std::vector<int64_t> p = IntList(v);
  if (p.size() != 18) return false;
  *g = {p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15], p[16], p[17]};
  return g->groups >= 1 && g->c % g->groups == 0 && g->o % g->groups == 0;
}

int64_t MultiplyAdds(const Geometry& g) { return g.n * g.ho * g.wo * g.o * g.kh * g.kw * (g.c / g.groups); }

std::string GeometryKey(const Geometry& g) {
  return MakeKey(g.n, g.h, g.w, g.c, g.kh, g.kw, g.o, g.ho, g.wo, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, g.pb, g.pr, g.groups);
}

// Whether convolutions let oneDNN choose a blocked weight layout (and reorder the tfjs
// filter into it on every call) or run directly on the hwio filter. Blocked is the default:
// measured faster on the plain10 layers (docs/backend.md, "Native kernels").
bool& BlockedWeights() {
  static bool blocked = [] {
    const char* env = std::getenv("SELAB_ONEDNN_WEIGHTS");
    return !(env && std::strcmp(env, "direct") == 0);
  }();
  return blocked;
}

memory::desc ActivationDesc(int64_t n, int64_t c, int64_t h, int64_t w) { return F32Desc({n, c, h, w}, tag::nhwc); }

// The tfjs filter as oneDNN sees it: {O, I, KH, KW} over hwio memory, or for groups
// {G, O/G, I/G, KH, KW} over [KH, KW, C, mult] memory.
memory::desc UserWeightsDesc(const Geometry& g) {
  if (g.groups == 1) return F32Desc({g.o, g.c, g.kh, g.kw}, tag::hwio);
  const int64_t og = g.o / g.groups, ig = g.c / g.groups;
  // Element (kh, kw, c, m) of the tfjs filter lives at ((kh*KW + kw)*C + c)*mult + m with c = gi*ig + i.
  return F32Desc({g.groups, og, ig, g.kh, g.kw}, {ig * og, 1, og, g.kw * g.c * og, g.c * og});
}

memory::desc AnyWeightsDesc(const Geometry& g) {
  if (g.groups == 1) return F32Desc({g.o, g.c, g.kh, g.kw}, tag::any);
  return F32Desc({g.groups, g.o / g.groups, g.c / g.groups, g.kh, g.kw}, tag::any);
}

struct Params {
  dnnl_dims_t strides, dilates, padL, padR;
};

Params ConvParams(const Geometry& g) {
  Params p{};
  p.strides[0] = g.sh;
  p.strides[1] = g.sw;
  // oneDNN counts dilation from 0 (0 = dense), tfjs from 1.
  p.dilates[0] = g.dh - 1;
  p.dilates[1] = g.dw - 1;
  p.padL[0] = g.pt;
  p.padL[1] = g.pl;
  p.padR[0] = g.pb;
  p.padR[1] = g.pr;
  return p;
}

bool ForwardPd(const Geometry& g, const memory::desc& weights, const memory::desc& bias, const dnnl::primitive_attr& attr,
               dnnl::prop_kind prop, dnnl::convolution_forward::primitive_desc* pd) {
  memory::desc src = ActivationDesc(g.n, g.c, g.h, g.w), dst = ActivationDesc(g.n, g.o, g.ho, g.wo);
  Params p = ConvParams(g);
  dnnl_convolution_desc_t op;
  if (dnnl_dilated_convolution_forward_desc_init(&op, static_cast<dnnl_prop_kind_t>(prop), dnnl_convolution_direct, &src.data,
                                                 &weights.data, bias.is_zero() ? nullptr : &bias.data, &dst.data, p.strides, p.dilates,
                                                 p.padL, p.padR) != dnnl_success) {
    return false;
  }
  return CreatePd(op, attr, pd);
}

// Wraps the user's weights, plus (when oneDNN prefers another layout) a buffer in that
// layout and the reorder between the two.
struct WeightsSlot {
  memory user;
  memory prim;
  dnnl::reorder reorder;
  bool reordered = false;
  bool single = false;  // a small reorder runs on one thread (dnnl_util.h, ThreadLimit)

  void Init(const memory::desc& userDesc, const memory::desc& primDesc, bool toPrim) {
    user = UserMemory(userDesc);
    if (primDesc == userDesc) return;
    reordered = true;
    prim = memory(primDesc, Engine());
    single = static_cast<int64_t>(userDesc.get_size() / sizeof(float)) <= kSingleThreadWork;
    ThreadLimit limit(single);
    reorder = toPrim ? dnnl::reorder(user, prim) : dnnl::reorder(prim, user);
  }

  // Copies between the user and the primitive layout, in the given direction.
  void Run(dnnl::stream& s, bool toPrim) {
    ThreadLimit limit(single);
    reorder.execute(s, toPrim ? user : prim, toPrim ? prim : user);
    s.wait();
  }
  const memory& Arg() const { return reordered ? prim : user; }
};

struct ConvForward {
  dnnl::convolution_forward prim;
  memory src, bias, dst;
  WeightsSlot weights;
};

struct ConvBackwardData {
  dnnl::convolution_backward_data prim;
  memory diffDst, diffSrc;
  WeightsSlot weights;
};

struct ConvBackwardWeights {
  dnnl::convolution_backward_weights prim;
  memory src, diffDst;
  WeightsSlot diffWeights;
};

// convForward(x, filter, bias | null, geometry, activation, alpha, y) -> false when oneDNN rejects it
Napi::Value ConvForwardFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Geometry g;
  if (!ReadGeometry(info[3], &g)) return Done(env, false);
  float* y = OutPtr(info[6], g.n * g.ho * g.wo * g.o);
  if (!y) return Done(env, false);
  float* x = F32Ptr(info[0]);
  float* w = F32Ptr(info[1]);
  float* b = F32Ptr(info[2]);
  const int act = info[4].As<Napi::Number>().Int32Value();
  const float alpha = info[5].As<Napi::Number>().FloatValue();
  ThreadLimit limit(MultiplyAdds(g) <= kSingleThreadWork);
  const bool blocked = BlockedWeights();
  ConvForward* e = Cache<ConvForward>::Get(MakeKey("fwd", GeometryKey(g), b != nullptr, act, alpha, blocked), [&] {
    std::unique_ptr<ConvForward> out;
    memory::desc userW = UserWeightsDesc(g);
    memory::desc biasDesc = b ? F32Desc({g.o}, tag::a) : memory::desc();
    dnnl::primitive_attr attr;
    dnnl::post_ops ops;
    AppendActivation(ops, act, alpha);
    attr.set_post_ops(ops);
    dnnl::convolution_forward::primitive_desc pd;
    if (!ForwardPd(g, blocked ? AnyWeightsDesc(g) : userW, biasDesc, attr, dnnl::prop_kind::forward_training, &pd)) return out;
    out = std::make_unique<ConvForward>();
    out->prim = dnnl::convolution_forward(pd);
    out->src = UserMemory(pd.src_desc());
    out->dst = UserMemory(pd.dst_desc());
    if (b) out->bias = UserMemory(biasDesc);
    out->weights.Init(userW, pd.weights_desc(), true);
    return out;
  });
  if (!e) return Done(env, false);
  e->src.set_data_handle(x);
  e->dst.set_data_handle(y);
  e->weights.user.set_data_handle(w);
  dnnl::stream& s = Stream();
  if (e->weights.reordered) e->weights.Run(s, true);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, e->weights.Arg()}, {DNNL_ARG_DST, e->dst}};
  if (b) {
    e->bias.set_data_handle(b);
    args.emplace(DNNL_ARG_BIAS, e->bias);
  }
  e->prim.execute(s, args);
  s.wait();
  return Done(env, true);
}

// convBackwardData(dy, filter, geometry, dx) -> false when oneDNN rejects it
Napi::Value ConvBackwardDataFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Geometry g;
  if (!ReadGeometry(info[2], &g)) return Done(env, false);
  float* dx = OutPtr(info[3], g.n * g.h * g.w * g.c);
  if (!dx) return Done(env, false);
  float* dy = F32Ptr(info[0]);
  float* w = F32Ptr(info[1]);
  ThreadLimit limit(MultiplyAdds(g) <= kSingleThreadWork);
  const bool blocked = BlockedWeights();
  ConvBackwardData* e = Cache<ConvBackwardData>::Get(MakeKey("bwd_data", GeometryKey(g), blocked), [&] {
    std::unique_ptr<ConvBackwardData> out;
    memory::desc userW = UserWeightsDesc(g);
    memory::desc weights = blocked ? AnyWeightsDesc(g) : userW;
    dnnl::convolution_forward::primitive_desc hint;
    if (!ForwardPd(g, weights, memory::desc(), dnnl::primitive_attr(), dnnl::prop_kind::forward_training, &hint)) return out;
    memory::desc diffSrc = ActivationDesc(g.n, g.c, g.h, g.w), diffDst = ActivationDesc(g.n, g.o, g.ho, g.wo);
    Params p = ConvParams(g);
    dnnl_convolution_desc_t op;
    if (dnnl_dilated_convolution_backward_data_desc_init(&op, dnnl_convolution_direct, &diffSrc.data, &weights.data, &diffDst.data,
                                                         p.strides, p.dilates, p.padL, p.padR) != dnnl_success) {
      return out;
    }
    dnnl::convolution_backward_data::primitive_desc pd;
    if (!CreatePd(op, dnnl::primitive_attr(), &pd, hint.get())) return out;
    out = std::make_unique<ConvBackwardData>();
    out->prim = dnnl::convolution_backward_data(pd);
    out->diffDst = UserMemory(pd.diff_dst_desc());
    out->diffSrc = UserMemory(pd.diff_src_desc());
    out->weights.Init(userW, pd.weights_desc(), true);
    return out;
  });
  if (!e) return Done(env, false);
  e->diffDst.set_data_handle(dy);
  e->diffSrc.set_data_handle(dx);
  e->weights.user.set_data_handle(w);
  dnnl::stream& s = Stream();
  if (e->weights.reordered) e->weights.Run(s, true);
  e->prim.execute(s, {{DNNL_ARG_DIFF_DST, e->diffDst}, {DNNL_ARG_WEIGHTS, e->weights.Arg()}, {DNNL_ARG_DIFF_SRC, e->diffSrc}});
  s.wait();
  return Done(env, true);
}

// convBackwardWeights(x, dy, geometry, dW in the tfjs filter layout) -> false when oneDNN rejects it
Napi::Value ConvBackwardWeightsFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Geometry g;
  if (!ReadGeometry(info[2], &g)) return Done(env, false);
  float* dw = OutPtr(info[3], g.kh * g.kw * (g.c / g.groups) * g.o);
  if (!dw) return Done(env, false);
  float* x = F32Ptr(info[0]);
  float* dy = F32Ptr(info[1]);
  ThreadLimit limit(MultiplyAdds(g) <= kSingleThreadWork);
  const bool blocked = BlockedWeights();
  ConvBackwardWeights* e = Cache<ConvBackwardWeights>::Get(MakeKey("bwd_weights", GeometryKey(g), blocked), [&] {
    std::unique_ptr<ConvBackwardWeights> out;
    memory::desc userW = UserWeightsDesc(g);
    memory::desc weights = blocked ? AnyWeightsDesc(g) : userW;
    dnnl::convolution_forward::primitive_desc hint;
    if (!ForwardPd(g, weights, memory::desc(), dnnl::primitive_attr(), dnnl::prop_kind::forward_training, &hint)) return out;
    memory::desc src = ActivationDesc(g.n, g.c, g.h, g.w), diffDst = ActivationDesc(g.n, g.o, g.ho, g.wo);
    Params p = ConvParams(g);
    dnnl_convolution_desc_t op;
    if (dnnl_dilated_convolution_backward_weights_desc_init(&op, dnnl_convolution_direct, &src.data, &weights.data, nullptr,
                                                            &diffDst.data, p.strides, p.dilates, p.padL, p.padR) != dnnl_success) {
      return out;
    }
    dnnl::convolution_backward_weights::primitive_desc pd;
    if (!CreatePd(op, dnnl::primitive_attr(), &pd, hint.get())) return out;
    out = std::make_unique<ConvBackwardWeights>();
    out->prim = dnnl::convolution_backward_weights(pd);
    out->src = UserMemory(pd.src_desc());
    out->diffDst = UserMemory(pd.diff_dst_desc());
    out->diffWeights.Init(userW, pd.diff_weights_desc(), false);
    return out;
  });
  if (!e) return Done(env, false);
  e->src.set_data_handle(x);
  e->diffDst.set_data_handle(dy);
  e->diffWeights.user.set_data_handle(dw);
  dnnl::stream& s = Stream();
  e->prim.execute(s, {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_DIFF_DST, e->diffDst}, {DNNL_ARG_DIFF_WEIGHTS, e->diffWeights.Arg()}});
  if (e->diffWeights.reordered) e->diffWeights.Run(s, false);
  s.wait();
  return Done(env, true);
}

// setConvWeightsLayout('blocked' | 'direct'): for measuring both; SELAB_ONEDNN_WEIGHTS sets the default.
Napi::Value SetConvWeightsLayout(const Napi::CallbackInfo& info) {
  BlockedWeights() = info[0].As<Napi::String>().Utf8Value() != "direct";
  return info.Env().Undefined();
}

SELAB_EXPORT("convForward", ConvForwardFn);
SELAB_EXPORT("convBackwardData", ConvBackwardDataFn);
SELAB_EXPORT("convBackwardWeights", ConvBackwardWeightsFn);
SELAB_EXPORT("setConvWeightsLayout", SetConvWeightsLayout);

}  // namespace
}  // namespace selab

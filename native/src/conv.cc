// 2-D convolutions (plain, grouped/depthwise) forward, backward-data and backward-weights
// on NHWC activations and tfjs filters ([fh,fw,in,out], or [fh,fw,C,mult] for depthwise).
//
// Every entry point takes a geometry array computed by tfjs's computeConv2DInfo on the TS
// side (see src/backend/onednn/kernels/conv.ts):
//   [N, H, W, C, KH, KW, O, Ho, Wo, strideH, strideW, dilationH, dilationW,
//    padTop, padLeft, padBottom, padRight, groups]
// groups is 1 for a plain convolution and C for a depthwise one (O = C * multiplier).
//
// Dense 3x3 stride-1 convolutions may run as oneDNN's Winograd F(4x4, 3x3) primitives, which
// need 2.25x fewer multiplications but take their activations in a blocked layout (nChw16c):
// the NHWC arrays are reordered into process-wide scratch buffers around the primitive. See
// UseWinograd for which layers, and SELAB_ONEDNN_WINOGRAD=auto|on|off.
#include <cstdlib>
#include <cstring>
#include <unordered_map>

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

enum class WinogradMode { kOff, kOn, kAuto };

WinogradMode& Winograd() {
  static WinogradMode mode = [] {
    const char* env = std::getenv("SELAB_ONEDNN_WINOGRAD");
    if (env && std::strcmp(env, "off") == 0) return WinogradMode::kOff;
    if (env && std::strcmp(env, "on") == 0) return WinogradMode::kOn;
    return WinogradMode::kAuto;
  }();
  return mode;
}

enum class Pass { kForward, kBackwardData, kBackwardWeights };

// Whether a convolution runs as Winograd. `on` tries it for every dense 3x3 stride-1 layer
// (oneDNN may still refuse, then it runs direct). `auto` keeps the layers where Winograd,
// its reorders included, measured faster than the direct NHWC primitive on the plain10 and
// VGG16 layers (bench/onednn-winograd.cc; docs/benchmarks.md, "Winograd convolutions"):
// equal input and output channels, at least 64 of them. The channel-changing layers (64->128,
// 128->256) gain nothing, and the 3-channel input layer loses.
bool UseWinograd(const Geometry& g, Pass pass) {
  const WinogradMode mode = Winograd();
  if (mode == WinogradMode::kOff) return false;
  const bool eligible = g.groups == 1 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
                        g.pt <= 1 && g.pl <= 1 && g.pb <= 1 && g.pr <= 1;
  if (!eligible || mode == WinogradMode::kOn) return eligible;
  (void)pass;
  return g.c >= 32 && g.o >= 32 && MultiplyAdds(g) > kSingleThreadWork;
}

enum class PointwiseMode { kConvolution, kGemm };

// How 1x1 convolutions run their backward passes; SELAB_ONEDNN_POINTWISE=conv (or
// setConvPointwise) keeps oneDNN's convolution primitives, for measuring both (see UseGemm).
PointwiseMode& Pointwise() {
  static PointwiseMode mode = [] {
    const char* env = std::getenv("SELAB_ONEDNN_POINTWISE");
    return env && std::strcmp(env, "conv") == 0 ? PointwiseMode::kConvolution : PointwiseMode::kGemm;
  }();
  return mode;
}

// Whether a backward pass runs as one row-major matrix product (dnnl_sgemm) instead of a
// convolution primitive. A 1x1, stride-1, unpadded, ungrouped convolution over NHWC is the
// product of the activations as an [N*H*W, C] matrix with the hwio filter as a [C, O] one, so
// the product needs neither the NHWC primitives (which oneDNN runs slower than its blocked ones)
// nor the reorders of the filter and its gradient to and from oneDNN's blocked weights.
// Measured on MobileNet's pointwise layers (bench/onednn_pointwise.cc; docs/benchmarks.md,
// "Pointwise convolutions as matrix products"): the weight gradient is faster as a product on
// every layer; the data gradient only while the activations outnumber the filter's weights
// (N*H*W >= C*O), below that the primitive with its reorder is faster.
bool UseGemm(const Geometry& g, Pass pass) {
  if (Pointwise() != PointwiseMode::kGemm) return false;
  const bool pointwise = g.groups == 1 && g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.pt == 0 &&
                         g.pl == 0 && g.pb == 0 && g.pr == 0;
  if (!pointwise) return false;
  return pass == Pass::kBackwardWeights || g.n * g.h * g.w >= g.c * g.o;
}

// Blocked activations of the Winograd primitives live in process-wide buffers, grown as needed
// and reused by every layer (primitives run one at a time): slot 0 holds dy for both backward
// passes of one layer, slot 1 the pass's other input or its output, slot 2 the forward output;
// slot 3 holds scaled weights (convForward's `scale`); slot 4 is the primitives' scratchpad.
constexpr int kScratchDy = 0, kScratchA = 1, kScratchB = 2, kScratchWeights = 3, kScratchPad = 4;

void* Scratch(int slot, size_t bytes) {
  static void* data[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
  static size_t size[5] = {0, 0, 0, 0, 0};
  if (size[slot] < bytes) {
    std::free(data[slot]);
    const size_t rounded = (bytes + 4095) & ~size_t{4095};
    data[slot] = std::aligned_alloc(64, rounded);
    size[slot] = data[slot] ? rounded : 0;
  }
  return data[slot];
}

// Every convolution primitive is given the one scratchpad buffer (slot 4) instead of owning
// one, as PyTorch hands oneDNN its own: the per-thread partial sums then sit in memory the
// previous layer just used, still in cache. MobileNet's convolutions took 146 ms of a training
// step with a scratchpad per primitive, 141 ms with the shared one.
dnnl::primitive_attr SharedScratchpad(dnnl::primitive_attr attr = dnnl::primitive_attr()) {
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

void BindScratchpad(std::unordered_map<int, memory>& args, const memory::desc& desc) {
  if (desc.get_size() > 0) args.emplace(DNNL_ARG_SCRATCHPAD, memory(desc, Engine(), Scratch(kScratchPad, desc.get_size())));
}

// What slot 0 holds: dy of the backward pass with this token (0: nothing reusable) in this layout.
struct BlockedDy {
  uint64_t token = 0;
  memory::desc desc;
  const float* source = nullptr;
};

BlockedDy& HeldDy() {
  static BlockedDy held;
  return held;
}

// An NHWC user array and, for a primitive that wants another layout, a scratch buffer in that
// layout and the reorder between them.
struct ActivationSlot {
  memory user;
  memory prim;
  dnnl::reorder reorder;
  bool reordered = false;

  void Init(const memory::desc& userDesc, const memory::desc& primDesc, bool toPrim) {
    user = UserMemory(userDesc);
    if (primDesc == userDesc) return;
    reordered = true;
    prim = UserMemory(primDesc);
    reorder = toPrim ? dnnl::reorder(user, prim) : dnnl::reorder(prim, user);
  }
  // Points the primitive side at scratch `slot`; returns the memory the primitive uses.
  const memory& Bind(float* data, int slot) {
    user.set_data_handle(data);
    if (!reordered) return user;
    prim.set_data_handle(Scratch(slot, prim.get_desc().get_size()));
    return prim;
  }
  void ToPrim(dnnl::stream& s) { reorder.execute(s, user, prim); }
  void FromPrim(dnnl::stream& s) { reorder.execute(s, prim, user); }
};

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

// Activations of a primitive: NHWC as tfjs stores them, or `any` (blocked) for Winograd.
memory::desc PrimActivationDesc(int64_t n, int64_t c, int64_t h, int64_t w, bool wino) {
  return wino ? F32Desc({n, c, h, w}, tag::any) : ActivationDesc(n, c, h, w);
}

dnnl_alg_kind_t ConvAlgorithm(bool wino) { return wino ? dnnl_convolution_winograd : dnnl_convolution_direct; }

bool ForwardPd(const Geometry& g, const memory::desc& weights, const memory::desc& bias, const dnnl::primitive_attr& attr,
               dnnl::prop_kind prop, dnnl::convolution_forward::primitive_desc* pd, bool wino = false) {
  memory::desc src = PrimActivationDesc(g.n, g.c, g.h, g.w, wino), dst = PrimActivationDesc(g.n, g.o, g.ho, g.wo, wino);
  Params p = ConvParams(g);
  dnnl_convolution_desc_t op;
  if (dnnl_dilated_convolution_forward_desc_init(&op, static_cast<dnnl_prop_kind_t>(prop), ConvAlgorithm(wino), &src.data,
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
  // Copies the user weights into `dst`, memory in the primitive layout.
  void RunInto(dnnl::stream& s, memory& dst) {
    ThreadLimit limit(single);
    reorder.execute(s, user, dst);
    s.wait();
  }
  const memory& Arg() const { return reordered ? prim : user; }
};

struct ConvForward {
  dnnl::convolution_forward prim;
  memory::desc scratchpad;
  memory bias;
  ActivationSlot src, dst;
  WeightsSlot weights;
};

struct ConvBackwardData {
  dnnl::convolution_backward_data prim;
  memory::desc scratchpad;
  ActivationSlot diffDst, diffSrc;
  WeightsSlot weights;
};

struct ConvBackwardWeights {
  dnnl::convolution_backward_weights prim;
  memory::desc scratchpad;
  ActivationSlot src, diffDst;
  memory diffBias;
  WeightsSlot diffWeights;
};

// Binds dy (slot 0) for a backward pass and reorders it unless slot 0 already holds this dy in
// this layout: the other backward pass of the same layer ran just before with the same token.
const memory& BindDy(ActivationSlot& slot, float* dy, uint64_t token, dnnl::stream& s) {
  const memory& m = slot.Bind(dy, kScratchDy);
  if (!slot.reordered) return m;
  BlockedDy& held = HeldDy();
  if (token == 0 || held.token != token || held.source != dy || !(held.desc == slot.prim.get_desc())) {
    slot.ToPrim(s);
    held.token = token;
    held.source = dy;
    held.desc = slot.prim.get_desc();
  }
  return m;
}

void ForgetDy() { HeldDy().token = 0; }

// Weights in a primitive's layout kept across inference calls: by the id the JS side gives the
// weights tensor (never reused, dropped by forgetWeights when the tensor is released), with the
// variant of the BatchNorm scale folded into them. A validation pass then reorders each layer's
// weights once instead of once per batch (MobileNet: 27 reorders, ~12 % of a batch of 32).
struct HeldWeights {
  uint64_t variant = 0;
  memory mem;
};

std::unordered_map<uint64_t, HeldWeights>& HeldWeightsById() {
  static std::unordered_map<uint64_t, HeldWeights> held;
  return held;
}

uint64_t OptionalId(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsNumber() ? static_cast<uint64_t>(info[i].As<Napi::Number>().Int64Value()) : 0;
}

// convForward(x, filter, bias | null, geometry, activation, alpha, y[, scale[, weightsId, variant]])
// -> false when oneDNN rejects it. `scale` ([O] floats) multiplies each output channel's weights
// first: BatchNorm folded into the convolution for inference (src/backend/onednn/layers.ts).
// A non-zero weightsId keeps the reordered weights for the next call with the same id and variant.
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
  const float* scale = info.Length() > 7 ? F32Ptr(info[7]) : nullptr;
  const uint64_t weightsId = OptionalId(info, 8), variant = OptionalId(info, 9);
  if (scale && info[7].As<Napi::Float32Array>().ElementLength() != static_cast<size_t>(g.o)) return Done(env, false);
  // Element i of the filter ([KH, KW, C, O], or [KH, KW, C, mult] with o = c * mult + m) belongs to output channel i % O.
  auto userWeights = [&]() -> float* {
    if (!scale) return w;
    const int64_t count = g.kh * g.kw * (g.c / g.groups) * g.o;
    float* scaled = static_cast<float*>(Scratch(kScratchWeights, count * sizeof(float)));
    for (int64_t i = 0; i < count; i += g.o) {
#pragma omp simd
      for (int64_t o = 0; o < g.o; ++o) scaled[i + o] = w[i + o] * scale[o];
    }
    return scaled;
  };
  ThreadLimit limit(MultiplyAdds(g) <= kSingleThreadWork);
  const bool blocked = BlockedWeights();
  ConvForward* e = Cache<ConvForward>::Get(MakeKey("fwd", GeometryKey(g), b != nullptr, act, alpha, blocked, int(Winograd())), [&] {
    std::unique_ptr<ConvForward> out;
    memory::desc userW = UserWeightsDesc(g);
    memory::desc biasDesc = b ? F32Desc({g.o}, tag::a) : memory::desc();
    dnnl::primitive_attr attr = SharedScratchpad();
    dnnl::post_ops ops;
    AppendActivation(ops, act, alpha);
    attr.set_post_ops(ops);
    dnnl::convolution_forward::primitive_desc pd;
    const memory::desc weights = blocked ? AnyWeightsDesc(g) : userW;
    const bool wino = UseWinograd(g, Pass::kForward) &&
                      ForwardPd(g, AnyWeightsDesc(g), biasDesc, attr, dnnl::prop_kind::forward_training, &pd, true);
    if (!wino && !ForwardPd(g, weights, biasDesc, attr, dnnl::prop_kind::forward_training, &pd)) return out;
    out = std::make_unique<ConvForward>();
    out->prim = dnnl::convolution_forward(pd);
    out->scratchpad = pd.scratchpad_desc();
    out->src.Init(ActivationDesc(g.n, g.c, g.h, g.w), pd.src_desc(), true);
    out->dst.Init(ActivationDesc(g.n, g.o, g.ho, g.wo), pd.dst_desc(), false);
    if (b) out->bias = UserMemory(biasDesc);
    out->weights.Init(userW, pd.weights_desc(), true);
    return out;
  });
  if (!e) return Done(env, false);
  dnnl::stream& s = Stream();
  const memory& src = e->src.Bind(x, kScratchA);
  const memory& dst = e->dst.Bind(y, kScratchB);
  const memory* weights = &e->weights.Arg();
  if (weightsId != 0 && e->weights.reordered) {
    HeldWeights& held = HeldWeightsById()[weightsId];
    const memory::desc desc = e->weights.prim.get_desc();
    if (!held.mem || held.variant != variant || !(held.mem.get_desc() == desc)) {
      if (!held.mem || !(held.mem.get_desc() == desc)) held.mem = memory(desc, Engine());
      e->weights.user.set_data_handle(userWeights());
      e->weights.RunInto(s, held.mem);
      held.variant = variant;
    }
    weights = &held.mem;
  } else {
    e->weights.user.set_data_handle(userWeights());
    if (e->weights.reordered) e->weights.Run(s, true);
  }
  if (e->src.reordered) e->src.ToPrim(s);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, *weights}, {DNNL_ARG_DST, dst}};
  if (b) {
    e->bias.set_data_handle(b);
    args.emplace(DNNL_ARG_BIAS, e->bias);
  }
  BindScratchpad(args, e->scratchpad);
  e->prim.execute(s, args);
  if (e->dst.reordered) e->dst.FromPrim(s);
  s.wait();
  return Done(env, true);
}

// heldWeights() -> how many weights convForward keeps (for tests).
Napi::Value HeldWeightsCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(HeldWeightsById().size()));
}

// forgetWeights(weightsId): drops the weights convForward kept for this id.
Napi::Value ForgetWeights(const Napi::CallbackInfo& info) {
  HeldWeightsById().erase(OptionalId(info, 0));
  return info.Env().Undefined();
}

// convBackwardData(dy, filter, geometry, dx[, token]) -> false when oneDNN rejects it. Calls of
// convBackwardData and convBackwardWeights for one layer and one dy may share a non-zero token,
// so that a Winograd layer reorders dy once for both.
Napi::Value ConvBackwardDataFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Geometry g;
  if (!ReadGeometry(info[2], &g)) return Done(env, false);
  float* dx = OutPtr(info[3], g.n * g.h * g.w * g.c);
  if (!dx) return Done(env, false);
  float* dy = F32Ptr(info[0]);
  float* w = F32Ptr(info[1]);
  const uint64_t token = info.Length() > 4 && info[4].IsNumber() ? static_cast<uint64_t>(info[4].As<Napi::Number>().Int64Value()) : 0;
  ThreadLimit limit(MultiplyAdds(g) <= kSingleThreadWork);
  if (UseGemm(g, Pass::kBackwardData)) {
    // dx[NHW, C] = dy[NHW, O] · filter[C, O]ᵀ
    return Done(env, dnnl_sgemm('N', 'T', g.n * g.h * g.w, g.c, g.o, 1.f, dy, g.o, w, g.o, 0.f, dx, g.c) == dnnl_success);
  }
  const bool blocked = BlockedWeights();
  ConvBackwardData* e = Cache<ConvBackwardData>::Get(MakeKey("bwd_data", GeometryKey(g), blocked, int(Winograd())), [&] {
    std::unique_ptr<ConvBackwardData> out;
    memory::desc userW = UserWeightsDesc(g);
    Params p = ConvParams(g);
    auto make = [&](bool wino) -> bool {
      memory::desc weights = wino || blocked ? AnyWeightsDesc(g) : userW;
      dnnl::convolution_forward::primitive_desc hint;
      if (!ForwardPd(g, weights, memory::desc(), dnnl::primitive_attr(), dnnl::prop_kind::forward_training, &hint, wino)) return false;
      memory::desc diffSrc = PrimActivationDesc(g.n, g.c, g.h, g.w, wino), diffDst = PrimActivationDesc(g.n, g.o, g.ho, g.wo, wino);
      dnnl_convolution_desc_t op;
      if (dnnl_dilated_convolution_backward_data_desc_init(&op, ConvAlgorithm(wino), &diffSrc.data, &weights.data, &diffDst.data, p.strides,
                                                           p.dilates, p.padL, p.padR) != dnnl_success) {
        return false;
      }
      dnnl::convolution_backward_data::primitive_desc pd;
      if (!CreatePd(op, SharedScratchpad(), &pd, hint.get())) return false;
      out = std::make_unique<ConvBackwardData>();
      out->prim = dnnl::convolution_backward_data(pd);
      out->scratchpad = pd.scratchpad_desc();
      out->diffDst.Init(ActivationDesc(g.n, g.o, g.ho, g.wo), pd.diff_dst_desc(), true);
      out->diffSrc.Init(ActivationDesc(g.n, g.c, g.h, g.w), pd.diff_src_desc(), false);
      out->weights.Init(userW, pd.weights_desc(), true);
      return true;
    };
    if (!(UseWinograd(g, Pass::kBackwardData) && make(true))) make(false);
    return out;
  });
  if (!e) return Done(env, false);
  dnnl::stream& s = Stream();
  e->weights.user.set_data_handle(w);
  if (e->weights.reordered) e->weights.Run(s, true);
  const memory& diffDst = BindDy(e->diffDst, dy, token, s);
  const memory& diffSrc = e->diffSrc.Bind(dx, kScratchA);
  std::unordered_map<int, memory> args{{DNNL_ARG_DIFF_DST, diffDst}, {DNNL_ARG_WEIGHTS, e->weights.Arg()}, {DNNL_ARG_DIFF_SRC, diffSrc}};
  BindScratchpad(args, e->scratchpad);
  e->prim.execute(s, args);
  if (e->diffSrc.reordered) e->diffSrc.FromPrim(s);
  s.wait();
  return Done(env, true);
}

// convBackwardWeights(x, dy, geometry, dW in the tfjs filter layout[, token[, dBias]]) -> false when
// oneDNN rejects it. With dBias ([O] floats) the bias gradient (dy summed over N, H, W) comes
// from the same primitive.
Napi::Value ConvBackwardWeightsFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Geometry g;
  if (!ReadGeometry(info[2], &g)) return Done(env, false);
  float* dw = OutPtr(info[3], g.kh * g.kw * (g.c / g.groups) * g.o);
  if (!dw) return Done(env, false);
  float* x = F32Ptr(info[0]);
  float* dy = F32Ptr(info[1]);
  const uint64_t token = info.Length() > 4 && info[4].IsNumber() ? static_cast<uint64_t>(info[4].As<Napi::Number>().Int64Value()) : 0;
  float* db = nullptr;
  if (info.Length() > 5 && !info[5].IsNull() && !info[5].IsUndefined()) {
    db = OutPtr(info[5], g.o);
    if (!db) return Done(env, false);
  }
  ThreadLimit limit(MultiplyAdds(g) <= kSingleThreadWork);
  if (!db && UseGemm(g, Pass::kBackwardWeights)) {
    // dW[C, O] = x[NHW, C]ᵀ · dy[NHW, O]
    return Done(env, dnnl_sgemm('T', 'N', g.c, g.o, g.n * g.h * g.w, 1.f, x, g.c, dy, g.o, 0.f, dw, g.o) == dnnl_success);
  }
  const bool blocked = BlockedWeights();
  ConvBackwardWeights* e = Cache<ConvBackwardWeights>::Get(MakeKey("bwd_weights", GeometryKey(g), blocked, db != nullptr, int(Winograd())), [&] {
    std::unique_ptr<ConvBackwardWeights> out;
    memory::desc userW = UserWeightsDesc(g);
    memory::desc biasDesc = db ? F32Desc({g.o}, tag::a) : memory::desc();
    Params p = ConvParams(g);
    auto make = [&](bool wino) -> bool {
      memory::desc weights = wino || blocked ? AnyWeightsDesc(g) : userW;
      dnnl::convolution_forward::primitive_desc hint;
      if (!ForwardPd(g, weights, biasDesc, dnnl::primitive_attr(), dnnl::prop_kind::forward_training, &hint, wino)) return false;
      memory::desc src = PrimActivationDesc(g.n, g.c, g.h, g.w, wino), diffDst = PrimActivationDesc(g.n, g.o, g.ho, g.wo, wino);
      dnnl_convolution_desc_t op;
      if (dnnl_dilated_convolution_backward_weights_desc_init(&op, ConvAlgorithm(wino), &src.data, &weights.data,
                                                              db ? &biasDesc.data : nullptr, &diffDst.data, p.strides, p.dilates, p.padL,
                                                              p.padR) != dnnl_success) {
        return false;
      }
      dnnl::convolution_backward_weights::primitive_desc pd;
      if (!CreatePd(op, SharedScratchpad(), &pd, hint.get())) return false;
      out = std::make_unique<ConvBackwardWeights>();
      out->prim = dnnl::convolution_backward_weights(pd);
      out->scratchpad = pd.scratchpad_desc();
      out->src.Init(ActivationDesc(g.n, g.c, g.h, g.w), pd.src_desc(), true);
      out->diffDst.Init(ActivationDesc(g.n, g.o, g.ho, g.wo), pd.diff_dst_desc(), true);
      if (db) out->diffBias = UserMemory(biasDesc);
      out->diffWeights.Init(userW, pd.diff_weights_desc(), false);
      return true;
    };
    if (!(UseWinograd(g, Pass::kBackwardWeights) && make(true))) make(false);
    return out;
  });
  if (!e) return Done(env, false);
  dnnl::stream& s = Stream();
  e->diffWeights.user.set_data_handle(dw);
  const memory& diffDst = BindDy(e->diffDst, dy, token, s);
  const memory& src = e->src.Bind(x, kScratchA);
  if (e->src.reordered) e->src.ToPrim(s);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diffDst}, {DNNL_ARG_DIFF_WEIGHTS, e->diffWeights.Arg()}};
  if (db) {
    e->diffBias.set_data_handle(db);
    args.emplace(DNNL_ARG_DIFF_BIAS, e->diffBias);
  }
  BindScratchpad(args, e->scratchpad);
  e->prim.execute(s, args);
  if (e->diffWeights.reordered) e->diffWeights.Run(s, false);
  s.wait();
  return Done(env, true);
}

// setConvWeightsLayout('blocked' | 'direct'): for measuring both; SELAB_ONEDNN_WEIGHTS sets the default.
Napi::Value SetConvWeightsLayout(const Napi::CallbackInfo& info) {
  BlockedWeights() = info[0].As<Napi::String>().Utf8Value() != "direct";
  return info.Env().Undefined();
}

// setConvWinograd('auto' | 'on' | 'off'): for measuring; SELAB_ONEDNN_WINOGRAD sets the default.
Napi::Value SetConvWinograd(const Napi::CallbackInfo& info) {
  const std::string mode = info[0].As<Napi::String>().Utf8Value();
  Winograd() = mode == "off" ? WinogradMode::kOff : mode == "on" ? WinogradMode::kOn : WinogradMode::kAuto;
  ForgetDy();
  return info.Env().Undefined();
}

// setConvPointwise('gemm' | 'conv'): for measuring; SELAB_ONEDNN_POINTWISE sets the default.
Napi::Value SetConvPointwise(const Napi::CallbackInfo& info) {
  Pointwise() = info[0].As<Napi::String>().Utf8Value() == "conv" ? PointwiseMode::kConvolution : PointwiseMode::kGemm;
  return info.Env().Undefined();
}

SELAB_EXPORT("convForward", ConvForwardFn);
SELAB_EXPORT("forgetWeights", ForgetWeights);
SELAB_EXPORT("heldWeights", HeldWeightsCount);
SELAB_EXPORT("setConvWinograd", SetConvWinograd);
SELAB_EXPORT("setConvPointwise", SetConvPointwise);
SELAB_EXPORT("convBackwardData", ConvBackwardDataFn);
SELAB_EXPORT("convBackwardWeights", ConvBackwardWeightsFn);
SELAB_EXPORT("setConvWeightsLayout", SetConvWeightsLayout);

}  // namespace
}  // namespace selab

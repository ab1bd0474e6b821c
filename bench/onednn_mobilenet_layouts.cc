// MobileNet's convolutions (case 6: 128×128 inputs, alpha 1) in oneDNN with the activations in
// the layout oneDNN prefers (format_tag::any: blocked, nChw16c/nChw8c) against NHWC, the layout
// selab's tfjs tensors and PyTorch's channels-last share: what keeping activations blocked
// between the native kernels could gain on the convolutions, reorders not timed. Weights are
// `any` in both. Then, per pointwise layer, what reordering around its backward passes would
// cost instead: the time to reorder its x and dy from NHWC to nChw16c, and the implementation
// oneDNN picks when only one of them is blocked.
//   g++ -O2 -std=c++17 bench/onednn_mobilenet_layouts.cc -ldnnl -o /tmp/onednn_mobilenet_layouts
//   OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive /tmp/onednn_mobilenet_layouts 32 7
#include <cstdio>
#include <cstdlib>
#include <dnnl.hpp>
#include <string>
#include <vector>

#include "onednn_timing.h"

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

struct Layer {
  int64_t side, ic, oc, k, stride;
  bool depthwise, first;
};

static std::vector<Layer> MobileNet() {
  std::vector<Layer> layers{{128, 3, 32, 3, 2, false, true}};
  int64_t side = 64, c = 32;
  const int64_t blocks[][2] = {{64, 1}, {128, 2}, {128, 1}, {256, 2}, {256, 1}, {512, 2}, {512, 1}, {512, 1},
                               {512, 1}, {512, 1}, {512, 1}, {1024, 2}, {1024, 1}};
  for (const auto& b : blocks) {
    layers.push_back({side, c, c, 3, b[1], true, false});
    side /= b[1];
    layers.push_back({side, c, b[0], 1, 1, false, false});
    c = b[0];
  }
  return layers;
}

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoi(argv[1]) : 32;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 7;
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  const std::vector<Layer> layers = MobileNet();
  // [layout][depthwise][pass]
  double totals[2][2][3] = {};
  for (int layout = 0; layout < 2; ++layout) {
    const tag act = layout == 0 ? tag::any : tag::nhwc;
    for (const Layer& l : layers) {
      const int64_t out = l.side / l.stride;
      // Keras pads stride-2 layers by one at the bottom and right only, stride 1 'same' by one all round.
      const memory::dims strides{l.stride, l.stride}, padL{l.k == 3 && l.stride == 1 ? 1 : 0, l.k == 3 && l.stride == 1 ? 1 : 0},
          padR{l.k == 3 ? 1 : 0, l.k == 3 ? 1 : 0};
      memory::desc src({n, l.ic, l.side, l.side}, dt::f32, act), dst({n, l.oc, out, out}, dt::f32, act);
      memory::desc wei = l.depthwise ? memory::desc({l.ic, 1, 1, l.k, l.k}, dt::f32, tag::any) : memory::desc({l.oc, l.ic, l.k, l.k}, dt::f32, tag::any);
      // The first layer's input is the data: no input gradient.
      const std::vector<double> t = TimeConvolutionPasses(eng, s, src, wei, dst, strides, padL, padR, !l.first, reps);
      std::printf("%-5s %s %4ldx%-4ld %4ld->%-4ld s%ld: fwd %6.2f  bwd_data %6.2f  bwd_weights %6.2f ms\n", layout == 0 ? "any" : "nhwc",
                  l.depthwise ? "dw" : (l.k == 1 ? "pw" : "3x3"), l.side, l.side, l.ic, l.oc, l.stride, t[0] * 1e3, t[1] * 1e3, t[2] * 1e3);
      for (int k = 0; k < 3; ++k) totals[layout][l.depthwise][k] += t[k];
    }
  }
  for (int layout = 0; layout < 2; ++layout) {
    for (int depthwise = 0; depthwise < 2; ++depthwise) {
      const double* t = totals[layout][depthwise];
      std::printf("total %-4s %-20s fwd %6.1f  bwd_data %6.1f  bwd_weights %6.1f  all %6.1f ms per step\n", layout == 0 ? "any" : "nhwc",
                  depthwise ? "depthwise" : "pointwise and first", t[0] * 1e3, t[1] * 1e3, t[2] * 1e3, (t[0] + t[1] + t[2]) * 1e3);
    }
  }
  for (const Layer& l : layers) {
    if (l.depthwise || l.first) continue;
    const memory::dims strides{1, 1}, pad{0, 0};
    const memory::desc wei({l.oc, l.ic, 1, 1}, dt::f32, tag::any);
    auto act = [&](int64_t c, tag t) { return memory::desc({n, c, l.side, l.side}, dt::f32, t); };
    std::string mixed;
    for (const auto& [x, dy] : {std::pair{tag::nChw16c, tag::nhwc}, std::pair{tag::nhwc, tag::nChw16c}}) {
      convolution_forward::primitive_desc fwd({prop_kind::forward_training, algorithm::convolution_direct, act(l.ic, x), wei, act(l.oc, dy), strides, pad, pad}, eng);
      convolution_backward_weights::primitive_desc bwdW({algorithm::convolution_direct, act(l.ic, x), wei, act(l.oc, dy), strides, pad, pad}, eng, fwd);
      mixed += std::string(mixed.empty() ? "" : ", ") + bwdW.impl_info_str();
    }
    double t[2];
    for (int k = 0; k < 2; ++k) {
      const int64_t c = k == 0 ? l.ic : l.oc;
      memory from(act(c, tag::nhwc), eng), to(act(c, tag::nChw16c), eng);
      FillRandom(from);
      reorder r(from, to);
      t[k] = Time([&] { r.execute(s, from, to); }, s, reps);
    }
    std::printf("pw %4ldx%-4ld %4ld->%-4ld: reorder x %.2f ms, dy %.2f ms; backward weights with one of them blocked: %s\n", l.side, l.side,
                l.ic, l.oc, t[0] * 1e3, t[1] * 1e3, mixed.c_str());
  }
  return 0;
}

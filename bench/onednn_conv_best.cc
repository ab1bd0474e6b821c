// oneDNN's own best on plain10's convolutions, for comparison with selab's native kernels
// (bench/onednn-conv.ts): every tensor in the layout oneDNN prefers (format_tag::any, so
// activations blocked as nChw16c), reorders not timed. Also times NHWC activations with
// `any` weights, which is what the tfjs-facing kernels use.
//   g++ -O2 -std=c++17 bench/onednn_conv_best.cc -ldnnl -o /tmp/onednn_conv_best && /tmp/onednn_conv_best 128 5
#include <cstdio>
#include <cstdlib>
#include <dnnl.hpp>
#include <vector>

#include "onednn_timing.h"

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoi(argv[1]) : 128;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  const int64_t layers[][3] = {{32, 3, 64}, {32, 64, 64}, {16, 64, 128}, {16, 128, 128}, {8, 128, 256}, {8, 256, 256}};
  const int count[] = {1, 2, 1, 2, 1, 2};
  double totals[2][3] = {};
  for (int layout = 0; layout < 2; ++layout) {
    const tag act = layout == 0 ? tag::any : tag::nhwc;
    const char* name = layout == 0 ? "best(any)" : "nhwc";
    for (int li = 0; li < 6; ++li) {
      const int64_t hw = layers[li][0], ic = layers[li][1], oc = layers[li][2];
      memory::desc src({n, ic, hw, hw}, dt::f32, act), dst({n, oc, hw, hw}, dt::f32, act);
      memory::desc wei({oc, ic, 3, 3}, dt::f32, tag::any);
      const memory::dims strides{1, 1}, pad{1, 1};
      const double flops = 2.0 * n * hw * hw * oc * 9 * ic;
      const std::vector<double> t = TimeConvolutionPasses(eng, s, src, wei, dst, strides, pad, pad, li != 0, reps);
      std::printf("%s %ldx%ld %ld->%ld: fwd %.1f ms %.0f GFLOPS | bwd_data %.1f ms %.0f GFLOPS | bwd_weights %.1f ms %.0f GFLOPS\n", name,
                  hw, hw, ic, oc, t[0] * 1e3, flops / t[0] / 1e9, t[1] * 1e3, t[1] > 0 ? flops / t[1] / 1e9 : 0, t[2] * 1e3,
                  flops / t[2] / 1e9);
      for (int k = 0; k < 3; ++k) totals[layout][k] += t[k] * count[li];
    }
  }
  for (int layout = 0; layout < 2; ++layout) {
    std::printf("total %s: fwd %.1f ms, bwd_data %.1f ms, bwd_weights %.1f ms per batch\n", layout == 0 ? "best(any)" : "nhwc",
                totals[layout][0] * 1e3, totals[layout][1] * 1e3, totals[layout][2] * 1e3);
  }
  return 0;
}

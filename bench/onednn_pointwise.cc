// MobileNet's pointwise (1x1, stride 1) convolutions (case 6: 128x128 inputs) on NHWC
// activations, each training pass three ways: oneDNN's convolution primitive with the weights in
// the layout it prefers (and the reorders selab runs around it: the hwio filter into that layout
// for the data gradient, the weight gradient back to hwio), oneDNN's matmul primitive, and
// dnnl_sgemm. The activations as an [N*H*W, C] matrix and the hwio filter as a [C, O] one make
// every pass a matrix product without any reorder.
//   g++ -O2 -std=c++17 bench/onednn_pointwise.cc -ldnnl -o /tmp/onednn_pointwise
//   OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive /tmp/onednn_pointwise 32 21
#include <cstdio>
#include <cstdlib>
#include <dnnl.hpp>
#include <vector>

#include "onednn_timing.h"

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

struct Layer {
  int64_t side, ic, oc;
};

static std::vector<Layer> MobileNetPointwise() {
  std::vector<Layer> layers;
  int64_t side = 64, c = 32;
  const int64_t blocks[][2] = {{64, 1}, {128, 2}, {128, 1}, {256, 2}, {256, 1}, {512, 2}, {512, 1}, {512, 1},
                               {512, 1}, {512, 1}, {512, 1}, {1024, 2}, {1024, 1}};
  for (const auto& b : blocks) {
    side /= b[1];
    layers.push_back({side, c, b[0]});
    c = b[0];
  }
  return layers;
}

// Seconds of the convolution primitives' three passes, with the weight reorders selab runs.
static std::vector<double> Convolution(engine& eng, stream& s, const Layer& l, int64_t n, int reps) {
  const memory::dims one{1, 1}, zero{0, 0};
  const memory::desc src({n, l.ic, l.side, l.side}, dt::f32, tag::nhwc), dst({n, l.oc, l.side, l.side}, dt::f32, tag::nhwc);
  const memory::desc any({l.oc, l.ic, 1, 1}, dt::f32, tag::any), hwio({l.oc, l.ic, 1, 1}, dt::f32, tag::hwio);
  std::vector<double> t = TimeConvolutionPasses(eng, s, src, any, dst, one, zero, zero, true, reps);
  convolution_forward::primitive_desc fwd({prop_kind::forward_training, algorithm::convolution_direct, src, any, dst, one, zero, zero}, eng);
  convolution_backward_data::primitive_desc bwdD({algorithm::convolution_direct, src, any, dst, one, zero, zero}, eng, fwd);
  convolution_backward_weights::primitive_desc bwdW({algorithm::convolution_direct, src, any, dst, one, zero, zero}, eng, fwd);
  memory user(hwio, eng), forData(bwdD.weights_desc(), eng), gradient(bwdW.diff_weights_desc(), eng);
  FillRandom(user);
  FillRandom(gradient);
  reorder toData(user, forData), fromGradient(gradient, user);
  t[1] += Time([&] { toData.execute(s, user, forData); }, s, reps);
  t[2] += Time([&] { fromGradient.execute(s, gradient, user); }, s, reps);
  return t;
}

// The same passes as oneDNN matmul primitives (transposes as strides) and as dnnl_sgemm calls.
static void Products(engine& eng, stream& s, const Layer& l, int64_t n, int reps, std::vector<double>* matmuls, std::vector<double>* gemms) {
  const int64_t m = n * l.side * l.side, c = l.ic, o = l.oc;
  const memory::desc x({m, c}, dt::f32, {c, 1}), w({c, o}, dt::f32, {o, 1}), y({m, o}, dt::f32, {o, 1});
  const memory::desc wT({o, c}, dt::f32, {1, o}), xT({c, m}, dt::f32, {1, c});
  matmul forward(matmul::primitive_desc({x, w, y}, eng)), data(matmul::primitive_desc({y, wT, x}, eng)),
      weights(matmul::primitive_desc({xT, y, w}, eng));
  memory xs(x, eng), ws(w, eng), ys(y, eng), dx(x, eng), dy(y, eng), dw(w, eng);
  for (memory* mem : {&xs, &ws, &dy}) FillRandom(*mem);
  *matmuls = {
      Time([&] { forward.execute(s, {{DNNL_ARG_SRC, xs}, {DNNL_ARG_WEIGHTS, ws}, {DNNL_ARG_DST, ys}}); }, s, reps),
      Time([&] { data.execute(s, {{DNNL_ARG_SRC, dy}, {DNNL_ARG_WEIGHTS, ws}, {DNNL_ARG_DST, dx}}); }, s, reps),
      Time([&] { weights.execute(s, {{DNNL_ARG_SRC, xs}, {DNNL_ARG_WEIGHTS, dy}, {DNNL_ARG_DST, dw}}); }, s, reps),
  };
  auto* px = static_cast<float*>(xs.get_data_handle());
  auto* pw = static_cast<float*>(ws.get_data_handle());
  auto* py = static_cast<float*>(ys.get_data_handle());
  auto* pdx = static_cast<float*>(dx.get_data_handle());
  auto* pdy = static_cast<float*>(dy.get_data_handle());
  auto* pdw = static_cast<float*>(dw.get_data_handle());
  *gemms = {
      Time([&] { dnnl_sgemm('N', 'N', m, o, c, 1.f, px, c, pw, o, 0.f, py, o); }, s, reps),
      Time([&] { dnnl_sgemm('N', 'T', m, c, o, 1.f, pdy, o, pw, o, 0.f, pdx, c); }, s, reps),
      Time([&] { dnnl_sgemm('T', 'N', c, o, m, 1.f, px, c, pdy, o, 0.f, pdw, o); }, s, reps),
  };
}

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoi(argv[1]) : 32;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 9;
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  const char* names[3] = {"convolution", "matmul", "sgemm"};
  double totals[3][3] = {};
  std::printf("ms per pass: forward, data gradient, weight gradient\n");
  for (const Layer& l : MobileNetPointwise()) {
    std::vector<double> t[3];
    t[0] = Convolution(eng, s, l, n, reps);
    Products(eng, s, l, n, reps, &t[1], &t[2]);
    std::printf("%4ldx%-4ld %4ld->%-4ld (N*H*W %s C*O)", l.side, l.side, l.ic, l.oc, n * l.side * l.side >= l.ic * l.oc ? ">=" : "< ");
    for (int way = 0; way < 3; ++way) {
      std::printf(" | %s %5.2f %5.2f %5.2f", names[way], t[way][0] * 1e3, t[way][1] * 1e3, t[way][2] * 1e3);
      for (int pass = 0; pass < 3; ++pass) totals[way][pass] += t[way][pass];
    }
    std::printf("\n");
  }
  for (int way = 0; way < 3; ++way) {
    const double* t = totals[way];
    std::printf("total %-11s forward %5.1f  data gradient %5.1f  weight gradient %5.1f  all %6.1f ms per step\n", names[way], t[0] * 1e3,
                t[1] * 1e3, t[2] * 1e3, (t[0] + t[1] + t[2]) * 1e3);
  }
}

// What the standalone oneDNN bench programs share: the median time of a primitive run, and
// random contents for its inputs.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <dnnl.hpp>
#include <vector>

inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/** Median seconds of `reps` runs of `run` (each waited for on `s`) after one untimed run. */
template <typename F>
double Time(F&& run, dnnl::stream& s, int reps) {
  run();
  s.wait();
  std::vector<double> samples;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    run();
    s.wait();
    samples.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return Median(samples);
}

/** Fills float32 memory with values in [−0.5, 0.5). */
inline void FillRandom(dnnl::memory& m) {
  float* p = static_cast<float*>(m.get_data_handle());
  for (size_t i = 0; i < m.get_desc().get_size() / sizeof(float); ++i) p[i] = (std::rand() % 1000) / 1000.f - 0.5f;
}

/**
 * Median seconds of a convolution's three training passes (forward, backward data, backward
 * weights) on random data, the formats oneDNN picks where a desc says `any`; backward data is 0
 * when `withData` is false (a first layer, whose input is the data).
 */
inline std::vector<double> TimeConvolutionPasses(dnnl::engine& eng, dnnl::stream& s, const dnnl::memory::desc& src, const dnnl::memory::desc& wei,
                                                 const dnnl::memory::desc& dst, const dnnl::memory::dims& strides, const dnnl::memory::dims& padL,
                                                 const dnnl::memory::dims& padR, bool withData, int reps) {
  using namespace dnnl;
  convolution_forward::primitive_desc fwd({prop_kind::forward_training, algorithm::convolution_direct, src, wei, dst, strides, padL, padR}, eng);
  convolution_backward_data::primitive_desc bwdD({algorithm::convolution_direct, fwd.src_desc(), wei, fwd.dst_desc(), strides, padL, padR}, eng, fwd);
  convolution_backward_weights::primitive_desc bwdW({algorithm::convolution_direct, fwd.src_desc(), wei, fwd.dst_desc(), strides, padL, padR}, eng, fwd);
  memory x(fwd.src_desc(), eng), y(fwd.dst_desc(), eng), w(fwd.weights_desc(), eng);
  memory dx(bwdD.diff_src_desc(), eng), dy(bwdD.diff_dst_desc(), eng), wd(bwdD.weights_desc(), eng);
  memory dw(bwdW.diff_weights_desc(), eng), xw(bwdW.src_desc(), eng), dyw(bwdW.diff_dst_desc(), eng);
  for (memory* m : {&x, &w, &dy, &wd, &xw, &dyw}) FillRandom(*m);
  convolution_forward f(fwd);
  convolution_backward_data bd(bwdD);
  convolution_backward_weights bw(bwdW);
  return {
      Time([&] { f.execute(s, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, y}}); }, s, reps),
      withData ? Time([&] { bd.execute(s, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, wd}, {DNNL_ARG_DIFF_SRC, dx}}); }, s, reps) : 0.0,
      Time([&] { bw.execute(s, {{DNNL_ARG_SRC, xw}, {DNNL_ARG_DIFF_DST, dyw}, {DNNL_ARG_DIFF_WEIGHTS, dw}}); }, s, reps),
  };
}

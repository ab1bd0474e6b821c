// Reductions over a contiguous block of axes, transposes and tiles on float32.
#include <algorithm>
#include <cmath>
#include <limits>

#include "registry.h"
#include "tensor_args.h"

namespace selab {
namespace {

enum ReduceOp { kSum, kMean, kMax, kMin };

struct SumOp {
  static float Init() { return 0.f; }
  static float Apply(float acc, float v) { return acc + v; }
};
struct MaxOp {
  static float Init() { return -std::numeric_limits<float>::infinity(); }
  static float Apply(float acc, float v) { return (v > acc || v != v) ? v : acc; }
};
struct MinOp {
  static float Init() { return std::numeric_limits<float>::infinity(); }
  static float Apply(float acc, float v) { return (v < acc || v != v) ? v : acc; }
};

// x viewed as [outer, R, inner]; out is [outer, inner].
template <class Op>
void ReduceBlock(const float* x, float* out, int64_t outer, int64_t R, int64_t inner) {
  const int threads = ThreadsFor(outer * R * inner);
  if (inner == 1) {
    // Each output is one contiguous run; 16 lanes of partial results keep it vectorised.
    auto run = [](const float* p, int64_t n) {
      float lanes[16];
      for (float& l : lanes) l = Op::Init();
      int64_t i = 0;
      for (; i + 16 <= n; i += 16)
#pragma omp simd
        for (int l = 0; l < 16; ++l) lanes[l] = Op::Apply(lanes[l], p[i + l]);
      float acc = Op::Init();
      for (float l : lanes) acc = Op::Apply(acc, l);
      for (; i < n; ++i) acc = Op::Apply(acc, p[i]);
      return acc;
    };
    if (outer >= threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
      for (int64_t o = 0; o < outer; ++o) out[o] = run(x + o * R, R);
      return;
    }
    for (int64_t o = 0; o < outer; ++o) {
      std::vector<float> part(threads, Op::Init());
#pragma omp parallel num_threads(threads)
      {
        int64_t begin, end;
        Split(R, omp_get_num_threads(), omp_get_thread_num(), &begin, &end);
        part[omp_get_thread_num()] = run(x + o * R + begin, end - begin);
      }
      float acc = Op::Init();
      for (float p : part) acc = Op::Apply(acc, p);
      out[o] = acc;
    }
    return;
  }
  auto rows = [inner](const float* p, int64_t n, float* acc) {
    for (int64_t r = 0; r < n; ++r) {
      const float* row = p + r * inner;
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) acc[i] = Op::Apply(acc[i], row[i]);
    }
  };
  if (outer >= threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t o = 0; o < outer; ++o) {
      float* acc = out + o * inner;
      std::fill(acc, acc + inner, Op::Init());
      rows(x + o * R * inner, R, acc);
    }
    return;
  }
  // Few outputs (e.g. reducing all but the channel axis): split R between threads, each
  // with its own accumulator row, then combine.
  std::vector<float> part(static_cast<size_t>(threads) * inner);
  for (int64_t o = 0; o < outer; ++o) {
    std::fill(part.begin(), part.end(), Op::Init());
#pragma omp parallel num_threads(threads)
    {
      int64_t begin, end;
      Split(R, omp_get_num_threads(), omp_get_thread_num(), &begin, &end);
      rows(x + (o * R + begin) * inner, end - begin, part.data() + omp_get_thread_num() * inner);
    }
    float* acc = out + o * inner;
    std::copy(part.begin(), part.begin() + inner, acc);
    for (int t = 1; t < threads; ++t) {
      const float* p = part.data() + t * inner;
      for (int64_t i = 0; i < inner; ++i) acc[i] = Op::Apply(acc[i], p[i]);
    }
  }
}

// reduce(op, x, out, outer, R, inner)
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  const int op = static_cast<int>(ArgInt(info, 0));
  const float* x = ArgF32(info, 1).data;
  const F32 out = ArgF32(info, 2);
  const int64_t outer = ArgInt(info, 3), R = ArgInt(info, 4), inner = ArgInt(info, 5);
  switch (op) {
    case kSum:
    case kMean:
      ReduceBlock<SumOp>(x, out.data, outer, R, inner);
      if (op == kMean) {
        const float scale = 1.f / static_cast<float>(R);
        for (size_t i = 0; i < out.size; ++i) out.data[i] *= scale;
      }
      break;
    case kMax: ReduceBlock<MaxOp>(x, out.data, outer, R, inner); break;
    case kMin: ReduceBlock<MinOp>(x, out.data, outer, R, inner); break;
    default: Napi::Error::New(info.Env(), "selab reduce: unknown op").ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

// mulReduce(a, b, out, outer, R, inner): out[o, i] = sum over r of a[o, r, i] * b[o, r, i], the
// two inputs viewed as [outer, R, inner]. The gradient of a broadcast product for its broadcast
// operand (an SE gate's: dy * x summed over H and W) in one pass, without the full-size product.
Napi::Value MulReduce(const Napi::CallbackInfo& info) {
  const float* a = ArgF32(info, 0).data;
  const float* b = ArgF32(info, 1).data;
  float* out = ArgF32(info, 2).data;
  const int64_t outer = ArgInt(info, 3), R = ArgInt(info, 4), inner = ArgInt(info, 5);
  const int threads = ThreadsFor(outer * R * inner);
  if (inner == 1) {
    auto dot = [](const float* p, const float* q, int64_t n) {
      float lanes[16] = {};
      int64_t i = 0;
      for (; i + 16 <= n; i += 16)
#pragma omp simd
        for (int l = 0; l < 16; ++l) lanes[l] += p[i + l] * q[i + l];
      float acc = 0.f;
      for (float l : lanes) acc += l;
      for (; i < n; ++i) acc += p[i] * q[i];
      return acc;
    };
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t o = 0; o < outer; ++o) out[o] = dot(a + o * R, b + o * R, R);
    return info.Env().Undefined();
  }
  auto rows = [inner](const float* p, const float* q, int64_t n, float* acc) {
    for (int64_t r = 0; r < n; ++r) {
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) acc[i] += p[r * inner + i] * q[r * inner + i];
    }
  };
  if (outer >= threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t o = 0; o < outer; ++o) {
      float* acc = out + o * inner;
      std::fill(acc, acc + inner, 0.f);
      rows(a + o * R * inner, b + o * R * inner, R, acc);
    }
    return info.Env().Undefined();
  }
  std::vector<float> part(static_cast<size_t>(threads) * inner);
  for (int64_t o = 0; o < outer; ++o) {
    std::fill(part.begin(), part.end(), 0.f);
#pragma omp parallel num_threads(threads)
    {
      int64_t begin, end;
      Split(R, omp_get_num_threads(), omp_get_thread_num(), &begin, &end);
      const int64_t off = (o * R + begin) * inner;
      rows(a + off, b + off, end - begin, part.data() + omp_get_thread_num() * inner);
    }
    float* acc = out + o * inner;
    std::copy(part.begin(), part.begin() + inner, acc);
    for (int t = 1; t < threads; ++t)
      for (int64_t i = 0; i < inner; ++i) acc[i] += part[t * inner + i];
  }
  return info.Env().Undefined();
}

// transpose(x, out, inShape, perm): walks the output in order; the input offset moves by
// the permuted strides.
Napi::Value Transpose(const Napi::CallbackInfo& info) {
  const float* x = ArgF32(info, 0).data;
  const F32 out = ArgF32(info, 1);
  const auto shape = ArgDims(info, 2), perm = ArgDims(info, 3);
  const int r = static_cast<int>(shape.size());
  std::vector<int64_t> inStride(r), outDims(r), stride(r);
  inStride[r - 1] = 1;
  for (int k = r - 2; k >= 0; --k) inStride[k] = inStride[k + 1] * shape[k + 1];
  for (int k = 0; k < r; ++k) {
    outDims[k] = shape[perm[k]];
    stride[k] = inStride[perm[k]];
  }
  const int64_t inner = outDims[r - 1], innerStride = stride[r - 1];
  const int64_t rows = static_cast<int64_t>(out.size) / std::max<int64_t>(inner, 1);
#pragma omp parallel for num_threads(ThreadsFor(out.size)) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    int64_t rem = row, off = 0;
    for (int k = r - 2; k >= 0; --k) {
      off += (rem % outDims[k]) * stride[k];
      rem /= outDims[k];
    }
    float* o = out.data + row * inner;
    const float* p = x + off;
    if (innerStride == 1) {
      std::copy(p, p + inner, o);
    } else {
      for (int64_t i = 0; i < inner; ++i) o[i] = p[i * innerStride];
    }
  }
  return info.Env().Undefined();
}

// tile(x, out, inShape, reps)
Napi::Value Tile(const Napi::CallbackInfo& info) {
  const float* x = ArgF32(info, 0).data;
  const F32 out = ArgF32(info, 1);
  const auto shape = ArgDims(info, 2), reps = ArgDims(info, 3);
  const int r = static_cast<int>(shape.size());
  std::vector<int64_t> inStride(r), outDims(r);
  inStride[r - 1] = 1;
  for (int k = r - 2; k >= 0; --k) inStride[k] = inStride[k + 1] * shape[k + 1];
  for (int k = 0; k < r; ++k) outDims[k] = shape[k] * reps[k];
  const int64_t inner = shape[r - 1], outInner = outDims[r - 1];
  const int64_t rows = static_cast<int64_t>(out.size) / std::max<int64_t>(outInner, 1);
#pragma omp parallel for num_threads(ThreadsFor(out.size)) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    int64_t rem = row, off = 0;
    for (int k = r - 2; k >= 0; --k) {
      off += ((rem % outDims[k]) % shape[k]) * inStride[k];
      rem /= outDims[k];
    }
    float* o = out.data + row * outInner;
    const float* p = x + off;
    if (inner == 1) {
      std::fill(o, o + outInner, p[0]);
    } else {
      for (int64_t k = 0; k < reps[r - 1]; ++k) std::copy(p, p + inner, o + k * inner);
    }
  }
  return info.Env().Undefined();
}

// slice(x, out, inShape, begin, size): each output row is one contiguous run of the input.
Napi::Value Slice(const Napi::CallbackInfo& info) {
  const float* x = ArgF32(info, 0).data;
  const F32 out = ArgF32(info, 1);
  const auto shape = ArgDims(info, 2), begin = ArgDims(info, 3), size = ArgDims(info, 4);
  const int r = static_cast<int>(shape.size());
  std::vector<int64_t> inStride(r);
  inStride[r - 1] = 1;
  for (int k = r - 2; k >= 0; --k) inStride[k] = inStride[k + 1] * shape[k + 1];
  const int64_t inner = size[r - 1];
  const int64_t rows = static_cast<int64_t>(out.size) / std::max<int64_t>(inner, 1);
#pragma omp parallel for num_threads(ThreadsFor(out.size)) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    int64_t rem = row, off = begin[r - 1];
    for (int k = r - 2; k >= 0; --k) {
      off += (begin[k] + rem % size[k]) * inStride[k];
      rem /= size[k];
    }
    std::copy(x + off, x + off + inner, out.data + row * inner);
  }
  return info.Env().Undefined();
}

// pad(x, out, inShape, before, outShape, value)
Napi::Value Pad(const Napi::CallbackInfo& info) {
  const F32 x = ArgF32(info, 0);
  const F32 out = ArgF32(info, 1);
  const auto shape = ArgDims(info, 2), before = ArgDims(info, 3), outShape = ArgDims(info, 4);
  const float value = static_cast<float>(ArgNum(info, 5));
  const int r = static_cast<int>(shape.size());
  std::vector<int64_t> outStride(r);
  outStride[r - 1] = 1;
  for (int k = r - 2; k >= 0; --k) outStride[k] = outStride[k + 1] * outShape[k + 1];
  const int threads = ThreadsFor(out.size);
  const int64_t n = static_cast<int64_t>(out.size);
#pragma omp parallel for simd num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) out.data[i] = value;
  const int64_t inner = shape[r - 1];
  const int64_t rows = static_cast<int64_t>(x.size) / std::max<int64_t>(inner, 1);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    int64_t rem = row, off = before[r - 1];
    for (int k = r - 2; k >= 0; --k) {
      off += (before[k] + rem % shape[k]) * outStride[k];
      rem /= shape[k];
    }
    std::copy(x.data + row * inner, x.data + (row + 1) * inner, out.data + off);
  }
  return info.Env().Undefined();
}

SELAB_EXPORT("slice", Slice);
SELAB_EXPORT("pad", Pad);
SELAB_EXPORT("reduce", Reduce);
SELAB_EXPORT("mulReduce", MulReduce);
SELAB_EXPORT("transpose", Transpose);
SELAB_EXPORT("tile", Tile);

}  // namespace
}  // namespace selab

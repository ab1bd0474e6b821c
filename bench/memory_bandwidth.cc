// The machine's memory bandwidth as the BatchNorm kernels see it: streams of floats over arrays
// far larger than the caches, every thread on its own contiguous share, 256-bit vectors and
// several accumulators (no dependency chain limits the reads). The ceilings against which
// bench/onednn-batchnorm.ts's passes are read: a statistics pass reads one stream, a gradient's
// sums two, a normalisation reads one and writes one, a gradient's dx pass reads two and writes
// one. Bytes count what the loop reads and writes, not the write-allocate reads of the caches.
//   g++ -O3 -march=native -fopenmp bench/memory_bandwidth.cc -o /tmp/memory_bandwidth && OMP_NUM_THREADS=2 /tmp/memory_bandwidth [MiB per array] [runs]
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

namespace {

// Median GB/s of `runs` calls of pass(begin, end) over [0, n) split among the threads.
double MedianGBs(size_t n, double bytesPerElement, int runs, const std::function<float(size_t, size_t)>& pass) {
  std::vector<double> rates;
  float sink = 0;
  for (int run = 0; run < runs + 1; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : sink)
    {
      const size_t share = n / omp_get_num_threads() / 32 * 32;
      const size_t begin = share * omp_get_thread_num();
      sink += pass(begin, begin + share);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (run > 0) rates.push_back(n * bytesPerElement / s / 1e9);
  }
  if (sink == -1.f) std::puts("");
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

float Sum(__m256 a, __m256 b, __m256 c, __m256 d) {
  float lanes[8];
  _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d)));
  float total = 0;
  for (float v : lanes) total += v;
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = static_cast<size_t>(argc > 1 ? std::atoi(argv[1]) : 256) << 18;  // floats per array
  const int runs = argc > 2 ? std::atoi(argv[2]) : 7;
  float* x = static_cast<float*>(std::aligned_alloc(64, n * 4));
  float* y = static_cast<float*>(std::aligned_alloc(64, n * 4));
  float* out = static_cast<float*>(std::aligned_alloc(64, n * 4));
#pragma omp parallel for
  for (size_t i = 0; i < n; ++i) x[i] = y[i] = out[i] = 1.f;

  const double read1 = MedianGBs(n, 4, runs, [&](size_t begin, size_t end) {
    __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
    for (size_t i = begin; i < end; i += 32) {
      a = _mm256_add_ps(a, _mm256_load_ps(x + i));
      b = _mm256_add_ps(b, _mm256_load_ps(x + i + 8));
      c = _mm256_add_ps(c, _mm256_load_ps(x + i + 16));
      d = _mm256_add_ps(d, _mm256_load_ps(x + i + 24));
    }
    return Sum(a, b, c, d);
  });
  const double read2 = MedianGBs(n, 8, runs, [&](size_t begin, size_t end) {
    __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
    for (size_t i = begin; i < end; i += 16) {
      a = _mm256_add_ps(a, _mm256_load_ps(x + i));
      b = _mm256_add_ps(b, _mm256_load_ps(x + i + 8));
      c = _mm256_add_ps(c, _mm256_load_ps(y + i));
      d = _mm256_add_ps(d, _mm256_load_ps(y + i + 8));
    }
    return Sum(a, b, c, d);
  });
  const double read1write1 = MedianGBs(n, 8, runs, [&](size_t begin, size_t end) {
    const __m256 k = _mm256_set1_ps(1.5f);
    for (size_t i = begin; i < end; i += 8) _mm256_store_ps(out + i, _mm256_mul_ps(_mm256_load_ps(x + i), k));
    return out[begin];
  });
  const double read2write1 = MedianGBs(n, 12, runs, [&](size_t begin, size_t end) {
    const __m256 k = _mm256_set1_ps(1.5f);
    for (size_t i = begin; i < end; i += 8) _mm256_store_ps(out + i, _mm256_fmadd_ps(_mm256_load_ps(x + i), k, _mm256_load_ps(y + i)));
    return out[begin];
  });
  std::printf("%d threads, %zu MiB per array, median of %d: read 1 stream %.1f GB/s, read 2 streams %.1f GB/s, read 1 + write 1 %.1f GB/s, read 2 + write 1 %.1f GB/s\n",
              omp_get_max_threads(), n >> 18, runs, read1, read2, read1write1, read2write1);
  std::free(x);
  std::free(y);
  std::free(out);
}

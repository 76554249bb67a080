// The streaming read the decode kernels are measured against: a sum over a buffer far larger than the last-level
// cache, one contiguous part per thread, with the widest vector loads the CPU has (the loads the Linear kernels
// use). memory_bandwidth_bench times it alone; linear_bench's decode_against_read/ interleaves it, over other
// copies of the same weights and over a separate buffer, with decode GEMVs of the same byte count, so both see
// the same memory at the same minute.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "blip/kernels/detail/cpu_dispatch.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace blip_bench {

inline constexpr std::size_t kHugePage = std::size_t{2} << 20;

// Sixteen independent partial sums, so the adds vectorise and their latency hides.
inline float sum_portable(const float* data, std::size_t count) {
  float partial[16] = {};
  for (std::size_t i = 0; i + 16 <= count; i += 16)
    for (int lane = 0; lane < 16; ++lane) partial[lane] += data[i + lane];
  float total = 0;
  for (float value : partial) total += value;
  return total;
}

#if BLIP_X86_DISPATCH
// Four accumulators hide the add latency; the loads are the bottleneck. `data` 64-byte aligned.
BLIP_TARGET_AVX512 inline float sum_avx512(const float* data, std::size_t count) {
  __m512 sum0 = _mm512_setzero_ps(), sum1 = sum0, sum2 = sum0, sum3 = sum0;
  for (std::size_t i = 0; i + 64 <= count; i += 64) {
    sum0 = _mm512_add_ps(sum0, _mm512_load_ps(data + i));
    sum1 = _mm512_add_ps(sum1, _mm512_load_ps(data + i + 16));
    sum2 = _mm512_add_ps(sum2, _mm512_load_ps(data + i + 32));
    sum3 = _mm512_add_ps(sum3, _mm512_load_ps(data + i + 48));
  }
  float lanes[16];
  _mm512_storeu_ps(lanes, _mm512_add_ps(_mm512_add_ps(sum0, sum1), _mm512_add_ps(sum2, sum3)));
  float total = 0;
  for (float lane : lanes) total += lane;
  return total;
}

// The same with 32-byte loads, for AVX2 CPUs (a default build compiles sum_portable for SSE2 only).
BLIP_TARGET_AVX2 inline float sum_avx2(const float* data, std::size_t count) {
  __m256 sum0 = _mm256_setzero_ps(), sum1 = sum0, sum2 = sum0, sum3 = sum0;
  for (std::size_t i = 0; i + 32 <= count; i += 32) {
    sum0 = _mm256_add_ps(sum0, _mm256_load_ps(data + i));
    sum1 = _mm256_add_ps(sum1, _mm256_load_ps(data + i + 8));
    sum2 = _mm256_add_ps(sum2, _mm256_load_ps(data + i + 16));
    sum3 = _mm256_add_ps(sum3, _mm256_load_ps(data + i + 24));
  }
  float lanes[8];
  _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(sum0, sum1), _mm256_add_ps(sum2, sum3)));
  float total = 0;
  for (float lane : lanes) total += lane;
  return total;
}
#endif

// Σ data[0, count), count a multiple of 64, data 64-byte aligned.
inline float sum(const float* data, std::size_t count) {
#if BLIP_X86_DISPATCH
  using blip::kernels::KernelPath;
  if (blip::kernels::kernel_path_supported(KernelPath::Avx512)) return sum_avx512(data, count);
  if (blip::kernels::kernel_path_supported(KernelPath::Avx2)) return sum_avx2(data, count);
#endif
  return sum_portable(data, count);
}

// Σ data[0, count) read by `threads` threads, one contiguous part each (as the decode driver shares out its runs of
// panels); count a multiple of 64 · threads, data 64-byte aligned.
inline float parallel_sum(const float* data, std::size_t count, int threads) {
  float total = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : total)
#endif
  {
#ifdef _OPENMP
    const std::size_t thread = static_cast<std::size_t>(omp_get_thread_num());
    const std::size_t team = static_cast<std::size_t>(omp_get_num_threads());
#else
    (void)threads;
    const std::size_t thread = 0, team = 1;
#endif
    const std::size_t begin = count * thread / team / 64 * 64, end = count * (thread + 1) / team / 64 * 64;
    total += sum(data + begin, end - begin);
  }
  return total;
}

// Σ data[0, count) as `items` contiguous parts that `threads` threads take in turn (a dynamic schedule, as the
// decode driver shares out its runs of panels: linear.hpp, kDecodeItemsPerThread), so that a read compared with a
// decode step splits the bytes as the step does and a slower stretch of memory holds back neither more than the
// other. count a multiple of 64 · items, data 64-byte aligned.
inline float parallel_sum_in_items(const float* data, std::size_t count, int threads, std::size_t items) {
  float total = 0;
  const std::size_t item_floats = count / items / 64 * 64;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) reduction(+ : total)
#else
  (void)threads;
#endif
  for (std::size_t item = 0; item < items; ++item) total += sum(data + item * item_floats, item_floats);
  return total;
}

// A zeroed buffer of whole huge pages, every page touched before any timing. With huge_pages it asks for
// transparent huge pages (madvise), as LinearWeights does for its packed weights: the hardware prefetchers do not
// cross 4 KiB page boundaries, so that is the fair ceiling for the kernels.
struct StreamingBuffer {
  std::unique_ptr<float, void (*)(void*)> data{nullptr, std::free};
  std::size_t count = 0;  // floats

  StreamingBuffer(std::size_t bytes, bool huge_pages) {
    bytes = std::max(kHugePage, bytes / kHugePage * kHugePage);
    data.reset(static_cast<float*>(std::aligned_alloc(kHugePage, bytes)));
    if (!data) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (huge_pages) madvise(data.get(), bytes, MADV_HUGEPAGE);
#else
    (void)huge_pages;
#endif
    std::memset(data.get(), 0, bytes);
    count = bytes / sizeof(float);
  }
  std::size_t bytes() const { return count * sizeof(float); }
};

}  // namespace blip_bench

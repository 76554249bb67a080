// The machine's streaming-read bandwidth: the ceiling for memory-bound kernels
// such as the decode GEMV (1 row × weights), which must read every weight once.
//
// A sum over a buffer far larger than the last-level cache (512 MiB vs 32 MiB
// L3 on the reference machine; BLIP_BANDWIDTH_BUFFER_MIB sets another size, for
// machines with a bigger L3), split into one contiguous half per thread, read with the widest
// vector loads the CPU has (the same loads the Linear kernel uses). Reported as
// the counter "bytes" (bytes read per second). Measured with 4 KiB pages and
// with transparent huge pages requested (madvise), since the hardware
// prefetchers do not cross 4 KiB page boundaries; LinearWeights requests huge
// pages for its packed weights, so the "huge pages" figure is the fair ceiling.
//
// Run: memory_bandwidth_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "blip/core/threading.hpp"
#include "blip/kernels/detail/cpu_dispatch.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;

// 512 MiB, or BLIP_BANDWIDTH_BUFFER_MIB (rounded to whole huge pages).
std::size_t buffer_bytes() {
  static const std::size_t bytes = [] {
    const char* mib = std::getenv("BLIP_BANDWIDTH_BUFFER_MIB");
    const std::size_t requested = (mib ? std::max(2L, std::atol(mib)) : 512L) * (std::size_t{1} << 20);
    return requested / kHugePage * kHugePage;
  }();
  return bytes;
}

// Sixteen independent partial sums, so the adds vectorise and their latency hides.
float sum_portable(const float* data, std::size_t count) {
  float partial[16] = {};
  for (std::size_t i = 0; i + 16 <= count; i += 16)
    for (int lane = 0; lane < 16; ++lane) partial[lane] += data[i + lane];
  float total = 0;
  for (float value : partial) total += value;
  return total;
}

#if BLIP_X86_DISPATCH
// Four accumulators hide the add latency; the loads are the bottleneck.
BLIP_TARGET_AVX512 float sum_avx512(const float* data, std::size_t count) {
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
#endif

float sum(const float* data, std::size_t count) {
#if BLIP_X86_DISPATCH
  if (blip::kernels::kernel_path_supported(blip::kernels::KernelPath::Avx512)) return sum_avx512(data, count);
#endif
  return sum_portable(data, count);
}

struct Buffer {
  std::unique_ptr<float, void (*)(void*)> data{nullptr, std::free};
  std::size_t count = 0;
};

Buffer make_buffer(bool huge_pages) {
  Buffer buffer;
  const std::size_t bytes = buffer_bytes();
  buffer.data.reset(static_cast<float*>(std::aligned_alloc(kHugePage, bytes)));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (huge_pages) madvise(buffer.data.get(), bytes, MADV_HUGEPAGE);
#else
  (void)huge_pages;
#endif
  std::memset(buffer.data.get(), 0, bytes);  // touch every page before timing
  buffer.count = bytes / sizeof(float);
  return buffer;
}

void streaming_read(benchmark::State& state, bool huge_pages) {
  const int threads = static_cast<int>(state.range(0));
  const Buffer buffer = make_buffer(huge_pages);
  const float* data = buffer.data.get();
  const std::size_t count = buffer.count;
  float total = 0;
  for (auto _ : state) {
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
#ifdef _OPENMP
      const std::size_t thread = static_cast<std::size_t>(omp_get_thread_num());
      const std::size_t team = static_cast<std::size_t>(omp_get_num_threads());
#else
      const std::size_t thread = 0, team = 1;
#endif
      const std::size_t begin = count * thread / team / 64 * 64, end = count * (thread + 1) / team / 64 * 64;
      total += sum(data + begin, end - begin);
    }
    benchmark::DoNotOptimize(total);
  }
  state.counters["bytes"] =
      benchmark::Counter(static_cast<double>(buffer_bytes()), benchmark::Counter::kIsIterationInvariantRate);
}

void streaming_read_4k_pages(benchmark::State& state) { streaming_read(state, false); }
void streaming_read_huge_pages(benchmark::State& state) { streaming_read(state, true); }

}  // namespace

// One thread, and as many as the kernels use (OMP_NUM_THREADS; 2 on the reference machine).
int main(int argc, char** argv) {
  const int threads = blip::num_threads();
  for (auto* benchmark : {benchmark::RegisterBenchmark("streaming_read/4k_pages", streaming_read_4k_pages),
                          benchmark::RegisterBenchmark("streaming_read/huge_pages", streaming_read_huge_pages)}) {
    benchmark->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);
    if (threads > 1) benchmark->Arg(threads);
    benchmark->ArgName("threads");
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

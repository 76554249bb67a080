// The machine's streaming-read bandwidth: the ceiling for memory-bound kernels
// such as the decode GEMV (1 row × weights), which must read every weight once.
//
// A sum over a buffer far larger than the last-level cache (512 MiB vs 32 MiB
// L3 on the reference machine; BLIP_BANDWIDTH_BUFFER_MIB sets another size, for
// machines with a bigger L3), split into one contiguous part per thread, read with the widest
// vector loads the CPU has (the same loads the Linear kernel uses; streaming_read.hpp). Reported as
// the counter "bytes" (bytes read per second). Measured with 4 KiB pages and
// with transparent huge pages requested (madvise), since the hardware
// prefetchers do not cross 4 KiB page boundaries; LinearWeights requests huge
// pages for its packed weights, so the "huge pages" figure is the fair ceiling.
// Measured alone, minutes apart from the kernels, over one buffer: on a shared host, linear_bench's
// decode_against_read/ (the same read loop over the weight copies themselves, interleaved with decode calls) is
// the figure to compare against; on the Zen 5 VMs separate buffers read up to 1.4x apart (docs/kernels.md).
//
// Run: memory_bandwidth_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "blip/core/threading.hpp"
#include "streaming_read.hpp"

namespace {

// 512 MiB, or BLIP_BANDWIDTH_BUFFER_MIB.
std::size_t buffer_bytes() {
  static const std::size_t bytes = [] {
    const char* mib = std::getenv("BLIP_BANDWIDTH_BUFFER_MIB");
    return static_cast<std::size_t>(mib ? std::max(2L, std::atol(mib)) : 512L) * (std::size_t{1} << 20);
  }();
  return bytes;
}

void streaming_read(benchmark::State& state, bool huge_pages) {
  const int threads = static_cast<int>(state.range(0));
  const blip_bench::StreamingBuffer buffer(buffer_bytes(), huge_pages);
  for (auto _ : state) benchmark::DoNotOptimize(blip_bench::parallel_sum(buffer.data.get(), buffer.count, threads));
  state.counters["bytes"] =
      benchmark::Counter(static_cast<double>(buffer.bytes()), benchmark::Counter::kIsIterationInvariantRate);
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

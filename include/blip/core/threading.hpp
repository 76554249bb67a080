// blip/core/threading.hpp: how the library uses threads.
//
// Kernels parallelise with plain OpenMP pragmas. Built without OpenMP they run
// serially and give the same results. The thread count is OpenMP's (the
// OMP_NUM_THREADS environment variable, or set_num_threads), capped at
// kMaxThreads; physical cores are the right choice for these compute-bound
// kernels, hyper-threads rarely help. Every parallel region asks for
// num_threads() threads explicitly, so the cap holds in any thread, including
// ones the caller starts.
#pragma once

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace blip {

// The most threads a parallel region uses, whatever OMP_NUM_THREADS says:
// libgomp crashes trying to start 100,000 threads. (The programs' --threads
// takes at most this too.)
inline constexpr int kMaxThreads = 1024;

// Sets the number of threads kernels use from now on (in this thread and the
// threads it starts), at most kMaxThreads. n <= 0 means one per processor.
inline void set_num_threads(int n) {
#ifdef _OPENMP
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(std::min(n, kMaxThreads));
#else
  (void)n;
#endif
}

// Threads a parallel region started now would use (1 without OpenMP):
// OpenMP's count, capped at kMaxThreads.
inline int num_threads() {
#ifdef _OPENMP
  return std::min(omp_get_max_threads(), kMaxThreads);
#else
  return 1;
#endif
}

// The thread count OpenMP asks for before the cap (OMP_NUM_THREADS when set),
// for messages that explain the cap.
inline int requested_num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Calls body(i) for i in [begin, end), spread over the threads when the
// iterations are worth it (`min_per_thread` iterations each at least).
template <class Body>
inline void parallel_for(std::int64_t begin, std::int64_t end, Body&& body, std::int64_t min_per_thread = 1) {
#ifdef _OPENMP
  const std::int64_t count = end - begin;
  const std::int64_t most = count / std::max<std::int64_t>(min_per_thread, 1);  // min_per_thread iterations each
  const int threads = static_cast<int>(std::min<std::int64_t>(num_threads(), most));
  if (threads > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::int64_t i = begin; i < end; ++i) body(i);
    return;
  }
#else
  (void)min_per_thread;
#endif
  for (std::int64_t i = begin; i < end; ++i) body(i);
}

}  // namespace blip

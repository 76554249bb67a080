// blip/core/threading.hpp: how the library uses threads.
//
// Kernels parallelise with plain OpenMP pragmas. Built without OpenMP they run
// serially and give the same results. The thread count is OpenMP's (the
// OMP_NUM_THREADS environment variable, or set_num_threads); physical cores are
// the right choice for these compute-bound kernels, hyper-threads rarely help.
#pragma once

#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace blip {

// Sets the number of threads kernels use from now on (in this thread and the
// threads it starts). n <= 0 restores the OpenMP default.
inline void set_num_threads(int n) {
#ifdef _OPENMP
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

// Threads a parallel region started now would use (1 without OpenMP).
inline int num_threads() {
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
  const int threads = num_threads();
  if (threads > 1 && count >= 2 * min_per_thread && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
    for (std::int64_t i = begin; i < end; ++i) body(i);
    return;
  }
#else
  (void)min_per_thread;
#endif
  for (std::int64_t i = begin; i < end; ++i) body(i);
}

}  // namespace blip

// bench/process_memory.hpp: this process's resident memory and the machine's
// load, as the end-to-end benchmarks report them (the same fields
// bench/pytorch_blip2_baseline.py reads).
#pragma once

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace blip::bench {

// A "Vm...: N kB" field of /proc/self/status in MiB: VmRSS (now), VmHWM (the
// peak). Where /proc is absent, the peak from getrusage for either.
inline double status_mib(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  const std::size_t length = std::strlen(field);
  while (std::getline(status, line)) {
    if (line.compare(0, length, field) == 0 && line.size() > length && line[length] == ':')
      return std::stod(line.substr(length + 1)) / 1024.0;
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

inline double rss_mib() { return status_mib("VmRSS"); }
inline double peak_rss_mib() { return status_mib("VmHWM"); }

// Sets the peak (VmHWM) to the current RSS (Linux >= 4.0), so a later
// peak_rss_mib() covers only what ran since. False where that is not possible.
inline bool reset_peak_rss() {
  std::FILE* clear_refs = std::fopen("/proc/self/clear_refs", "w");
  if (clear_refs == nullptr) return false;
  const bool written = std::fputs("5", clear_refs) >= 0;
  return std::fclose(clear_refs) == 0 && written;
}

// The 1-minute load average (-1 where unknown): with 2 cores, any other work
// on the machine distorts every figure, so the benchmarks print it.
inline double load_average() {
  double averages[1] = {-1.0};
  return getloadavg(averages, 1) == 1 ? averages[0] : -1.0;
}

}  // namespace blip::bench

// examples/support/program.hpp: how every example program ends, in one place:
// the exit statuses, the catch-all around main, a message instead of a
// bus error when a mapped model file is truncated under the program, and
// what --version prints.
//
// Exit status, the same for every program (each --help ends with it):
//   0  success;
//   1  a runtime error: a missing, unreadable or malformed file, a bad image or
//      input line, a model that produces NaN, out of memory, output that could
//      not be written;
//   2  a usage error: an unknown option, a missing or invalid option value,
//      wrong arguments. These are found before any model is loaded.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <new>
#include <string>
#include <utility>

#include "blip/core/error.hpp"
#include "blip/core/mapped_file.hpp"
#include "blip/kernels/detail/cpu_dispatch.hpp"

// CMake's project version (project(blip VERSION ...)), defined for every program by blip_program_options.
#ifndef BLIP_PROJECT_VERSION
#error "BLIP_PROJECT_VERSION is not defined: build the programs through CMake (it defines it from project(VERSION))"
#endif

namespace blip::examples {

inline constexpr const char* kProjectVersion = BLIP_PROJECT_VERSION;

inline constexpr int kExitSuccess = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

inline constexpr const char* kExitStatusHelp =
    "Exit status: 0 success; 1 runtime error (a missing or malformed file, image or input line, out of memory,\n"
    "output that cannot be written); 2 usage error (an unknown option, a missing or invalid value, wrong\n"
    "arguments), reported before any model is loaded. Limits on inputs: docs/reliability.md.\n";

// What every program's --help ends with, before the exit statuses.
inline constexpr const char* kCommonOptionsHelp =
    "Every option that takes a value accepts both --name VALUE and --name=VALUE.\n"
    "--version prints the program's name and blipcpp's version (and which kernels this CPU gets).\n";

// The instruction set the code outside the run-time-dispatched kernels was compiled for:
// BLIP_NATIVE=ON (-march=native) binds the whole program to CPUs like the build machine's.
inline const char* compiled_instruction_set() {
#if defined(__AVX512F__)
  return "AVX-512 (-march=native or similar: runs only on CPUs with AVX-512)";
#elif defined(__AVX2__)
  return "AVX2 (-march=native or similar: runs only on CPUs with AVX2)";
#elif defined(__x86_64__)
  return "the x86-64 baseline (runs on any x86-64 CPU)";
#else
  return "this architecture's baseline";
#endif
}

// --version: "<program> <version>" on the first line, as GNU programs print it, then how this
// build runs on this CPU. The Linear kernels are picked at run time (kernels/detail/cpu_dispatch.hpp),
// so a portable build still gets AVX-512 where the CPU has it.
inline void print_version(const char* name) {
  std::printf("%s %s\n", name, kProjectVersion);
  std::string kernel_line = kernels::kernel_path_name(kernels::best_kernel_path());
  kernel_line += " (picked at run time: the fastest this CPU runs)";
  if (kernels::kernel_path_supported(kernels::KernelPath::Amx))  // not picked by itself yet (cpu_dispatch.hpp)
    kernel_line += "; AMX tiles for bf16 activations with BLIP_KERNEL=amx (not yet measured)";
  if (const char* forced = std::getenv("BLIP_KERNEL"); forced != nullptr && *forced != '\0')
    kernel_line += std::string("; BLIP_KERNEL asks for ") + clip(forced);
  std::printf("kernels: %s\n", kernel_line.c_str());
  std::printf("compiled for: %s\n", compiled_instruction_set());
#if defined(_OPENMP)
  std::printf("OpenMP: yes\n");
#else
  std::printf("OpenMP: no (kernels run serially)\n");
#endif
}

// A mistake in the command line: exit status 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

template <class... Parts>
[[noreturn]] void usage_fail(Parts&&... parts) {
  throw UsageError(detail::concat(std::forward<Parts>(parts)...));
}

// Runs a program's body (which returns its exit status) and turns every way
// out of it into a message on stderr, "<name>: <message>", and a status:
// UsageError 2, anything else thrown 1 (std::bad_alloc as "out of memory").
// Output that could not be written (a full disk) is a failure too.
template <class Body>
int run_main(const char* name, Body&& body) {
  // A model file truncated or overwritten while mapped: a message, not "Bus error" (core/mapped_file.hpp).
  report_mapped_file_faults(name);
  int status = kExitFailure;
  try {
    status = body();
  } catch (const UsageError& error) {
    std::fprintf(stderr, "%s: %s (see --help)\n", name, error.what());
    return kExitUsage;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: out of memory (see docs/reliability.md for the input limits)\n", name);
    return kExitFailure;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: %s\n", name, error.what());
    return kExitFailure;
  } catch (...) {
    std::fprintf(stderr, "%s: unknown error\n", name);
    return kExitFailure;
  }
  std::cout.flush();
  if (std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout) {
    std::fprintf(stderr, "%s: writing standard output failed (%s)\n", name, std::strerror(errno));
    return kExitFailure;
  }
  return status;
}

}  // namespace blip::examples

// examples/support/program.hpp: how every example program ends, in one place:
// the exit statuses, the catch-all around main, and a message instead of a
// bus error when a mapped model file is truncated under the program.
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
#include <cstring>
#include <exception>
#include <iostream>
#include <new>
#include <utility>

#include "blip/core/error.hpp"
#include "blip/core/mapped_file.hpp"

namespace blip::examples {

inline constexpr int kExitSuccess = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

inline constexpr const char* kExitStatusHelp =
    "Exit status: 0 success; 1 runtime error (a missing or malformed file, image or input line, out of memory,\n"
    "output that cannot be written); 2 usage error (an unknown option, a missing or invalid value, wrong\n"
    "arguments), reported before any model is loaded. Limits on inputs: docs/reliability.md.\n";

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

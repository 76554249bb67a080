// Skipping honestly: a check that cannot run here (its fixture, asset or tool is
// absent) calls skip(reason) and returns. The test program then ends with
// kSkipExitCode once every test case that ran has passed (doctest_main.cpp), and
// CTest, told SKIP_RETURN_CODE 77 (tests/CMakeLists.txt), reports the whole
// program as "Skipped", never "Passed": a green run means every check ran.
// .ci/run fails its release stage on any skipped test.
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <string>

namespace blip::test {

// The exit status automake and CTest use for "skipped".
inline constexpr int kSkipExitCode = 77;

// How many checks of this program skipped (test cases may run on several threads).
inline std::atomic<int>& skipped_checks() {
  static std::atomic<int> count{0};
  return count;
}

// Records a skipped check, and says what and why in doctest's report (under the test case's name).
inline void skip(const std::string& reason) {
  ++skipped_checks();
  MESSAGE("SKIPPED: ", reason);
}

}  // namespace blip::test

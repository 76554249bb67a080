// The one translation unit that holds doctest's runner; every test program links it.
// Its main is doctest's, plus the skip rule of skip.hpp: when every test case passed
// but some check skipped, the program exits with 77 and CTest shows it as skipped.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "skip.hpp"

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int status = context.run();
  if (status != 0 || context.shouldExit()) return status;  // failures (or --help, --list-test-cases)
  const int skipped = blip::test::skipped_checks().load();
  if (skipped == 0) return 0;
  std::printf("SKIPPED: %d check%s could not run here (see the SKIPPED lines above); every check that ran passed. "
              "Exit status %d: CTest reports this test as skipped, not passed.\n",
              skipped, skipped == 1 ? "" : "s", blip::test::kSkipExitCode);
  return blip::test::kSkipExitCode;
}

// The Catch2 v2 main of both suites: as Catch's own, except that a run in which something was skipped
// (ALUMIA_SKIP, tests/support/skip.hpp) and nothing failed exits with the skip code, so that CTest
// reports the test as skipped rather than passed.
#define CATCH_CONFIG_RUNNER
#include "support/skip.hpp"

#include <catch2/catch.hpp>

#include <iostream>

int main(int argc, char* argv[]) {
  const int failed = Catch::Session().run(argc, argv);
  const int skipped = alumia::test::skipped_count().load();
  if (failed == 0 && skipped > 0) {
    std::cerr << skipped << " test case(s) or section(s) skipped\n";
    return alumia::test::k_skip_exit_code;
  }
  return failed;
}

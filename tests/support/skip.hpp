#pragma once
// Skipping a test that cannot run here (Catch2 v2 has no skip of its own). ALUMIA_SKIP counts the skip,
// says why (WARN) and leaves the test case; the test main (tests/catch_main.cpp) then exits with
// k_skip_exit_code when nothing failed, which CTest reports as "Skipped" (SKIP_RETURN_CODE), not
// "Passed". ALUMIA_SKIP_UNLESS_REQUIRED fails instead when the named environment variable is set:
// `make test` sets ALUMIA_REQUIRE_OAUTH_PEER, so a missing OAuth peer fails it.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>

namespace alumia::test {

inline constexpr int k_skip_exit_code = 77;  // the automake convention; tests/CMakeLists.txt uses it

inline std::atomic<int>& skipped_count() {
  static std::atomic<int> n{0};
  return n;
}

}  // namespace alumia::test

#define ALUMIA_SKIP(reason)                   \
  do {                                        \
    ++::alumia::test::skipped_count();        \
    WARN("skipped: " << reason); /* NOLINT */ \
    SUCCEED();                                \
    return;                                   \
  } while (false)

#define ALUMIA_SKIP_UNLESS_REQUIRED(env_var, reason)                                                        \
  do {                                                                                                      \
    if (std::getenv(env_var) != nullptr) FAIL(reason << " (" << env_var << " is set: this test must run)"); \
    ALUMIA_SKIP(reason);                                                                                    \
  } while (false)

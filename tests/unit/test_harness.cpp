// The functional harness's own rules (tests/support/process.hpp): which lines of a daemon's log count
// as unexpected errors when the daemon goes.
#include "process.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using alumia::test::error_lines_except;
using alumia::test::log_level_of;

TEST_CASE("harness: the level of a daemon log line", "[harness]") {
  CHECK(log_level_of("2026-12-06T19:31:43.123Z error ingest failed: disk full") == "error");
  CHECK(log_level_of("2026-12-06T19:31:43.123Z critical out of memory") == "critical");
  CHECK(log_level_of("2026-12-06T19:31:43.123Z info listening on http://127.0.0.1:7465") == "info");
  CHECK(log_level_of("2026-12-06T19:31:43.123Z warning") == "warning");
  CHECK(log_level_of("fatal: no HOME") == "no");  // not a log line: a level no check looks for
  CHECK(log_level_of("oneword").empty());
}

TEST_CASE("harness: error and critical lines are unexpected unless declared", "[harness]") {
  const std::string log =
      "2026-12-06T19:31:43.100Z info listening\n"
      "2026-12-06T19:31:43.200Z warning intake log slow\n"
      "2026-12-06T19:31:43.300Z error ingest failed: disk full\n"
      "2026-12-06T19:31:43.400Z info the word error in an info line\n"
      "2026-12-06T19:31:43.500Z critical internal error 42 on GET /x\n";
  CHECK(error_lines_except(log, {}) ==
        std::vector<std::string>{"2026-12-06T19:31:43.300Z error ingest failed: disk full",
                                 "2026-12-06T19:31:43.500Z critical internal error 42 on GET /x"});
  CHECK(error_lines_except(log, {"disk full"}) ==
        std::vector<std::string>{"2026-12-06T19:31:43.500Z critical internal error 42 on GET /x"});
  CHECK(error_lines_except(log, {"disk full", "internal error"}).empty());
  CHECK(error_lines_except("", {}).empty());
}

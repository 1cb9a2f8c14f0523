// The shared string helpers (alumia/base/strings.hpp): ASCII only, so a header name never matches
// through a locale's case mapping.
#include <alumia/base/strings.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

TEST_CASE("to_lower, iequals, trim and join", "[base][strings]") {
  CHECK(alumia::to_lower("Content-TYPE: Application/JSON") == "content-type: application/json");
  CHECK(alumia::to_lower("\xc3\x89") == "\xc3\x89");  // bytes past ASCII stay as they are

  CHECK(alumia::iequals("Authorization", "authorization"));
  CHECK(alumia::iequals("", ""));
  CHECK_FALSE(alumia::iequals("Bearer", "Bearer "));
  CHECK_FALSE(alumia::iequals("cookie", "cookies"));
  CHECK_FALSE(alumia::iequals("[", "{"));  // '[' + 32 is '{': only A-Z fold

  CHECK(alumia::trim(" \t\r\n\f\vtoken \n") == "token");
  CHECK(alumia::trim("   ").empty());
  CHECK(alumia::trim("a b") == "a b");
  CHECK(alumia::is_ascii_space('\v'));
  CHECK_FALSE(alumia::is_ascii_space('\0'));

  CHECK(alumia::join({"repo", "read:user"}, " ") == "repo read:user");
  CHECK(alumia::join({"one"}, ",") == "one");
  CHECK(alumia::join({}, ",").empty());
}

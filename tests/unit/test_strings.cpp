// The shared string helpers (alumia/base/strings.hpp): ASCII only, so a header name never matches
// through a locale's case mapping.
#include <alumia/base/strings.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

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

TEST_CASE("append_json_string_ascii writes what nlohmann's dump() writes, for every ASCII byte", "[base][strings]") {
  std::string all;
  for (int c = 0; c < 0x80; ++c) all += static_cast<char>(c);
  const std::vector<std::string> samples = {"",  "x-github-delivery",         "a\"b\\c/d",   "tab\there\r\n",
                                            all, std::string("nul\0byte", 8), "\x7f\x1f\x01"};
  for (const auto& s : samples) {
    std::string out = "prefix";
    REQUIRE(alumia::append_json_string_ascii(out, s));
    CHECK(out == "prefix" + nlohmann::json(s).dump());
  }
  // Past ASCII it appends nothing: the caller hands the text to nlohmann (UTF-8 checks and replacement).
  std::string out = "prefix";
  CHECK_FALSE(alumia::append_json_string_ascii(out, "caf\xc3\xa9"));
  CHECK_FALSE(alumia::append_json_string_ascii(out, "bad \xff"));
  CHECK(out == "prefix");
}

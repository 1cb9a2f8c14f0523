// judge_head: the listeners' strict rules for a request head (issue 13 item 2), as a table.
#include "http_head.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

using alumia::ErrorCode;
using alumia::daemon::judge_head;
using Headers = std::vector<std::pair<std::string, std::string>>;

TEST_CASE("judge_head: one Host, one numeric Content-Length on POST/PUT/PATCH, no Transfer-Encoding", "[http][head]") {
  const std::pair<std::string, std::string> host{"Host", "127.0.0.1:7465"};
  struct Row {
    const char* name;
    std::string method;
    Headers headers;
    std::optional<ErrorCode> refused;  // nullopt: admitted
    std::size_t length = 0;
  };
  Headers many{host};
  for (int i = 0; i < 100; ++i) many.emplace_back("x-" + std::to_string(i), "v");
  Headers just_enough(many.begin(), many.end() - 1);
  const std::vector<Row> rows{
      {"GET", "GET", {host}, std::nullopt},
      {"GET, Content-Length 0", "GET", {host, {"Content-Length", "0"}}, std::nullopt},
      {"POST with a length", "POST", {host, {"content-length", "42"}}, std::nullopt, 42},
      {"PATCH with 0", "PATCH", {host, {"Content-Length", "0"}}, std::nullopt},
      {"no Host", "GET", {}, ErrorCode::bad_request},
      {"two Hosts", "GET", {host, host}, ErrorCode::bad_request},
      {"two Hosts, other case", "GET", {host, {"HOST", "x"}}, ErrorCode::bad_request},
      {"POST without a length", "POST", {host}, ErrorCode::length_required},
      {"PUT without a length", "PUT", {host}, ErrorCode::length_required},
      {"chunked", "POST", {host, {"Transfer-Encoding", "chunked"}}, ErrorCode::length_required},
      {"CL then TE",
       "POST",
       {host, {"Content-Length", "5"}, {"transfer-encoding", "chunked"}},
       ErrorCode::length_required},
      {"TE identity on GET", "GET", {host, {"Transfer-Encoding", "identity"}}, ErrorCode::length_required},
      {"two equal lengths", "POST", {host, {"Content-Length", "5"}, {"Content-Length", "5"}}, ErrorCode::bad_request},
      {"two lengths", "POST", {host, {"Content-Length", "5"}, {"content-length", "48"}}, ErrorCode::bad_request},
      {"a sign", "POST", {host, {"Content-Length", "+5"}}, ErrorCode::bad_request},
      {"negative", "POST", {host, {"Content-Length", "-1"}}, ErrorCode::bad_request},
      {"trailing junk", "POST", {host, {"Content-Length", "5x"}}, ErrorCode::bad_request},
      {"a list", "POST", {host, {"Content-Length", "5, 5"}}, ErrorCode::bad_request},
      {"empty", "POST", {host, {"Content-Length", ""}}, ErrorCode::bad_request},
      {"hex", "POST", {host, {"Content-Length", "0x10"}}, ErrorCode::bad_request},
      {"overflow", "POST", {host, {"Content-Length", "99999999999999999999999"}}, ErrorCode::bad_request},
      {"GET with a body", "GET", {host, {"Content-Length", "5"}}, ErrorCode::bad_request},
      {"HEAD with a body", "HEAD", {host, {"Content-Length", "5"}}, ErrorCode::bad_request},
      {"DELETE with a body", "DELETE", {host, {"Content-Length", "1"}}, ErrorCode::bad_request},
      {"OPTIONS with a body", "OPTIONS", {host, {"Content-Length", "1"}}, ErrorCode::bad_request},
      {"space in a name", "POST", {host, {"Content-Length ", "5"}}, ErrorCode::bad_request},
      {"empty name", "GET", {host, {"", "5"}}, ErrorCode::bad_request},
      {"100 lines", "GET", just_enough, std::nullopt},
      {"101 lines", "GET", many, ErrorCode::headers_too_large},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    const auto v = judge_head(r.method, r.headers);
    if (r.refused) {
      REQUIRE_FALSE(v.has_value());
      CHECK(v.error().code == *r.refused);
      CHECK_FALSE(v.error().message.empty());
    } else {
      REQUIRE(v.has_value());
      CHECK(v->content_length == r.length);
    }
  }
}

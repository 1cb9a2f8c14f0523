// docs/API.md is generated from the route table and committed; this catches drift. To refresh:
// `build/bin/alumia-connectd --print-api-md > docs/API.md`.
#include "api_doc.hpp"
#include "routes.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

namespace {

std::string read_source_file(const std::string& rel) {
  std::ifstream in(std::string(ALUMIA_SOURCE_DIR) + "/" + rel);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

}  // namespace

TEST_CASE("committed docs/API.md matches the route table", "[api-doc]") {
  INFO("regenerate with `build/bin/alumia-connectd --print-api-md > docs/API.md`");
  CHECK(read_source_file("docs/API.md") == alumia::daemon::api_markdown());
}

TEST_CASE("docs/API.md has one row per route, with its scope, cap and listeners", "[api-doc]") {
  using namespace alumia::daemon;
  const std::string md = api_markdown();
  std::size_t rows = 0;
  for (std::size_t pos = 0; (pos = md.find("\n| ", pos)) != std::string::npos; ++pos) ++rows;
  CHECK(rows == route_table().size() + 1);  // and the header row
  for (const Route& r : route_table()) {
    const std::string start = "| " + std::string(r.method) + " | `" + std::string(r.pattern) + "` | ";
    const auto at = md.find(start);
    REQUIRE(at != std::string::npos);
    const std::string row = md.substr(at, md.find('\n', at) - at);
    INFO(row);
    CHECK(row.find(" | " + r.scope.describe() + " | ") != std::string::npos);
    CHECK(row.find(r.listeners & k_on_public ? "public" : "control |") != std::string::npos);
    std::string summary;  // as a table cell: '|' escaped
    for (char c : r.summary) summary += c == '|' ? std::string("\\|") : std::string(1, c);
    CHECK(row.find(summary) != std::string::npos);
    if (r.admit_body) CHECK(row.find("maxBodyBytes, at most 25 MiB") != std::string::npos);
    else CHECK(row.find(r.body_cap == k_json_body_cap ? "128 KiB" : "MiB") != std::string::npos);
  }
}

// The URL policies of common/net/url.cpp, as they are today: the public base URL (SPEC §8: an https
// origin providers can reach) and outbound calls (https anywhere, plain http only to a loopback IP
// literal). Rows marked "today:" record behaviour a later issue (the URL policy rewrite) should
// reconsider; they pin what the code does now so that the rewrite changes it on purpose.
#include <alumia/net/url.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

struct Row {
  const char* url;
  bool base_ok;      // check_public_base_url
  bool outbound_ok;  // check_outbound_url
};

// clang-format off
const std::vector<Row> k_rows = {
    // Public https origins.
    {"https://hooks.example.com", true, true},
    {"https://hooks.example.com:8443", true, true},
    {"https://hooks.example.com/alumia", true, true},
    {"https://HOOKS.Example.COM", true, true},
    {"https://example.com.", true, true},                   // trailing dot: the same name
    {"https://8.8.8.8", true, true},
    {"https://93.184.216.34:443/base", true, true},
    {"https://[2606:4700:4700::1111]", true, true},
    {"https://[2001:db8::1]", true, true},                  // today: documentation prefix accepted
    {"https://172.32.0.1", true, true},                     // just outside 172.16.0.0/12
    {"https://100.128.0.1", true, true},                    // just outside 100.64.0.0/10
    {"https://169.255.0.1", true, true},                    // just outside 169.254.0.0/16
    {"https://192.0.2.1", true, true},                      // today: TEST-NET-1 accepted
    {"https://198.18.0.1", true, true},                     // today: benchmarking range accepted
    {"https://2130706433", true, true},                     // today: a decimal IPv4 is a name to uriparser
    {"https://127.1", true, true},                          // today: short IPv4 forms are names too
    {"https://localhost.example.com", true, true},          // only the label suffix counts
    {"https://mylocal", true, true},
    // Not https.
    {"http://hooks.example.com", false, false},
    {"ftp://hooks.example.com", false, false},
    {"ws://hooks.example.com", false, false},
    // Credentials in the URL.
    {"https://user:pass@hooks.example.com", false, true},
    // Local names.
    {"https://localhost", false, true},
    {"https://LOCALHOST:7465", false, true},
    {"https://localhost.", false, true},
    {"https://app.localhost", false, true},
    {"https://printer.local", false, true},
    {"https://local", false, true},
    {"https://svc.internal", false, true},
    {"https://nas.lan", false, true},
    {"https://router.home.arpa", false, true},
    // Non-public IPv4.
    {"https://127.0.0.1", false, true},
    {"https://127.255.255.254", false, true},
    {"https://10.0.0.1", false, true},
    {"https://172.16.0.1", false, true},
    {"https://172.31.255.255", false, true},
    {"https://192.168.1.1", false, true},
    {"https://169.254.169.254", false, true},               // cloud metadata
    {"https://100.64.0.1", false, true},                    // carrier-grade NAT
    {"https://0.0.0.0", false, true},
    {"https://224.0.0.1", false, true},
    {"https://255.255.255.255", false, true},
    // Non-public IPv6.
    {"https://[::1]", false, true},
    {"https://[::]", false, true},
    {"https://[fd00::1]", false, true},
    {"https://[fc00::1]", false, true},
    {"https://[fe80::1]", false, true},
    {"https://[ff02::1]", false, true},
    {"https://[::ffff:127.0.0.1]", false, true},
    {"https://[::ffff:10.1.2.3]", false, true},
    {"https://[::ffff:8.8.8.8]", true, true},
    {"https://[fec0::1]", true, true},                      // today: deprecated site-local accepted
    {"https://[64:ff9b::a00:1]", true, true},               // today: NAT64 of 10.0.0.1 accepted
    // A path ending in '/'.
    {"https://hooks.example.com/alumia/", false, true},
    {"https://hooks.example.com/", true, true},             // the root path alone is fine
    // Plain http for outbound calls: loopback IP literals only.
    {"http://127.0.0.1:8080/token", false, true},
    {"http://127.0.0.53/", false, true},
    {"http://[::1]:9000/jwks", false, true},
    {"http://localhost:8080/token", false, false},         // a name, even localhost: refused
    {"http://10.0.0.1/token", false, false},
    {"http://[::ffff:127.0.0.1]/", false, false},          // today: only the literal ::1 counts as v6 loopback
    {"http://[0:0:0:0:0:0:0:1]/", false, false},           // today: likewise
    // Not URLs.
    {"", false, false},
    {"hooks.example.com", false, false},
    {"https://", false, false},
    {"https://exa mple.com", false, false},
    {"https://example.com:0", false, false},
    {"https://example.com:65536", false, false},
    {"https://example.com:http", false, false},
};
// clang-format on

}  // namespace

TEST_CASE("URL policy: the base URL and the outbound check, row by row", "[url]") {
  REQUIRE(k_rows.size() >= 40);
  for (const Row& row : k_rows) {
    INFO(row.url);
    const auto base = alumia::url::check_public_base_url(row.url);
    CHECK(base.has_value() == row.base_ok);
    if (!base) CHECK(base.error().code == alumia::ErrorCode::validation_error);
    const auto out = alumia::url::check_outbound_url(row.url);
    CHECK(out.has_value() == row.outbound_ok);
    if (!out) CHECK(out.error().code == alumia::ErrorCode::validation_error);
  }
}

TEST_CASE("URL policy: refusals say what is wrong", "[url]") {
  auto message = [](const char* url) { return alumia::url::check_public_base_url(url).error().message; };
  CHECK_THAT(message("http://hooks.example.com"), Catch::Contains("is not https"));
  CHECK_THAT(message("https://printer.local"), Catch::Contains("printer.local is a local name"));
  CHECK_THAT(message("https://10.0.0.1"), Catch::Contains("10.0.0.1 is not a public address"));
  CHECK_THAT(message("https://[fd00::1]"), Catch::Contains("is not a public address"));
  CHECK_THAT(message("https://a:b@hooks.example.com"), Catch::Contains("must not carry credentials"));
  CHECK_THAT(message("https://hooks.example.com/x/"), Catch::Contains("must not end with '/'"));
  CHECK_THAT(message("https://example.com:99999"), Catch::Contains("port is out of range"));
  CHECK_THAT(alumia::url::check_outbound_url("http://example.com").error().message,
             Catch::Contains("plain http is allowed only for loopback IP literals"));
}

TEST_CASE("URL parsing: origin, port and path", "[url]") {
  auto u = alumia::url::parse("HTTPS://Hooks.Example.com/a/b?x=1");
  REQUIRE(u);
  CHECK(u->scheme == "https");
  CHECK(u->host == "hooks.example.com");
  CHECK(u->port == 443);
  CHECK_FALSE(u->explicit_port);
  CHECK(u->path == "/a/b");
  CHECK(u->query == "x=1");
  CHECK(u->origin() == "https://hooks.example.com");
  auto v6 = alumia::url::parse("http://[::1]:8080");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->host_is_ipv6);
  CHECK(v6->path == "/");
  CHECK(v6->origin() == "http://[::1]:8080");
  CHECK(v6->host_port() == "[::1]:8080");
  CHECK(alumia::url::is_loopback_host(*v6));
  auto named = alumia::url::parse("http://localhost");
  REQUIRE(named);
  CHECK(alumia::url::is_loopback_host(*named));
  CHECK(named->port == 80);
}

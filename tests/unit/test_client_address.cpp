// net::client_address and TrustedProxies (setting trusted-proxies): X-Forwarded-For believed only from a
// trusted peer, read from the right, up to the first hop that is not a trusted proxy.
#include <alumia/net/client_address.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using alumia::net::client_address;
using alumia::net::TrustedProxies;

namespace {

TrustedProxies trusted(const char* list) {
  auto t = TrustedProxies::parse(list);
  REQUIRE(t.has_value());
  return *t;
}

}  // namespace

TEST_CASE("client address: a table of peers, X-Forwarded-For lines and trusted lists", "[net][client-address]") {
  struct Row {
    const char* peer;
    std::vector<std::string> xff;
    const char* trusted;
    const char* client;
  };
  const std::vector<Row> rows{
      // No trusted proxy: the header is ignored, whatever it says.
      {"127.0.0.1", {"203.0.113.9"}, "", "127.0.0.1"},
      {"198.51.100.7", {}, "", "198.51.100.7"},
      // A peer that is not trusted: ignored too.
      {"198.51.100.7", {"203.0.113.9"}, "127.0.0.1", "198.51.100.7"},
      // The trusted proxy's own hop.
      {"127.0.0.1", {"203.0.113.9"}, "127.0.0.1", "203.0.113.9"},
      // A forged prefix is the client's own text: the rightmost untrusted hop wins.
      {"127.0.0.1", {"6.6.6.6, 203.0.113.9"}, "127.0.0.1", "203.0.113.9"},
      // Two trusted proxies in a chain (CDN → nginx → us), by block.
      {"10.0.0.2", {"203.0.113.9, 10.0.0.1"}, "10.0.0.0/8", "203.0.113.9"},
      {"10.0.0.2", {"6.6.6.6", "203.0.113.9, 10.0.0.1"}, "10.0.0.0/8", "203.0.113.9"},  // two header lines
      // Trusted peer without the header: the peer.
      {"127.0.0.1", {}, "127.0.0.1", "127.0.0.1"},
      // Nothing but trusted hops: the leftmost.
      {"10.0.0.2", {"10.0.0.9, 10.0.0.1"}, "10.0.0.0/8", "10.0.0.9"},
      // A malformed hop stops the walk at the last good one.
      {"127.0.0.1", {"203.0.113.9, not-an-ip"}, "127.0.0.1", "127.0.0.1"},
      {"10.0.0.2", {"garbage, 10.0.0.1"}, "10.0.0.0/8", "10.0.0.1"},
      {"127.0.0.1", {""}, "127.0.0.1", "127.0.0.1"},
      // Forms a proxy writes: ports, brackets, IPv6, mapped IPv4 peers.
      {"127.0.0.1", {"203.0.113.9:5512"}, "127.0.0.1", "203.0.113.9"},
      {"127.0.0.1", {"[2001:db8::1]:443"}, "127.0.0.1", "2001:db8::1"},
      {"127.0.0.1", {"2001:DB8:0:0::1"}, "127.0.0.1", "2001:db8::1"},
      {"::ffff:127.0.0.1", {"203.0.113.9"}, "127.0.0.1", "203.0.113.9"},
      {"::1", {"203.0.113.9"}, "::1, 127.0.0.1", "203.0.113.9"},
      {"::1", {"203.0.113.9"}, "127.0.0.1", "::1"},
      {"fd00::5", {"203.0.113.9"}, "fd00::/8", "203.0.113.9"},
      {"fe00::5", {"203.0.113.9"}, "fd00::/8", "fe00::5"},
      // Prefix edges.
      {"192.168.1.255", {"203.0.113.9"}, "192.168.1.0/24", "203.0.113.9"},
      {"192.168.2.0", {"203.0.113.9"}, "192.168.1.0/24", "192.168.2.0"},
      {"192.168.1.1", {"203.0.113.9"}, "0.0.0.0/0", "203.0.113.9"},
      {"192.168.1.1", {"203.0.113.9"}, "192.168.1.0/23", "203.0.113.9"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.peer, r.xff, r.trusted);
    CHECK(client_address(r.peer, r.xff, trusted(r.trusted)) == r.client);
  }
}

TEST_CASE("trusted proxies: the list parses addresses and blocks, and names what it refuses", "[net][client-address]") {
  CHECK(trusted("").empty());
  CHECK(trusted("  ").empty());
  const auto t = trusted(" 127.0.0.1 , 10.0.0.0/8,fd00::/8 ");
  CHECK(t.contains("127.0.0.1"));
  CHECK(t.contains("10.200.3.4"));
  CHECK(t.contains("fd12::1"));
  CHECK_FALSE(t.contains("127.0.0.2"));
  CHECK_FALSE(t.contains("11.0.0.1"));
  CHECK_FALSE(t.contains("not an address"));
  for (const char* bad : {"localhost", "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/x", "1.2.3", "127.0.0.1,,x",
                          "[::1]", "127.0.0.1:80"}) {
    CAPTURE(bad);
    auto r = TrustedProxies::parse(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == alumia::ErrorCode::bad_request);
    CHECK_THAT(r.error().message, Catch::Contains("trusted proxy"));
  }
}

TEST_CASE("canonical address: one text per address", "[net][client-address]") {
  using alumia::net::canonical_address;
  CHECK(canonical_address("127.0.0.1") == "127.0.0.1");
  CHECK(canonical_address("::ffff:10.1.2.3") == "10.1.2.3");
  CHECK(canonical_address("0:0:0:0:0:0:0:1") == "::1");
  CHECK(canonical_address("[::1]:80") == "::1");
  CHECK(canonical_address("1.2.3.4:80") == "1.2.3.4");
  CHECK(canonical_address("[1.2.3.4]") == "");
  CHECK(canonical_address("1.2.3.4:99999") == "");
  CHECK(canonical_address("example.com") == "");
  CHECK(canonical_address("") == "");
}

// The URL policies of common/net: the public base URL (SPEC §8, public_base_url.cpp: an https URL
// providers reach from the internet, judged in every notation) and outbound calls (url.cpp: https
// anywhere, plain http only to a loopback IP literal).
#include <alumia/net/url.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace {

struct Row {
  const char* url;
  // Accepted: the normal form public_base_url() gives (it starts with "https://"). Refused: a piece of
  // the message that names the rule broken.
  const char* base;
  bool outbound_ok;  // check_outbound_url
};

// clang-format off
const std::vector<Row> k_rows = {
    // Public https URLs, and their normal form.
    {"https://hooks.example.com", "https://hooks.example.com", true},
    {"https://hooks.example.com:8443", "https://hooks.example.com:8443", true},
    {"https://hooks.example.com:443", "https://hooks.example.com", true},
    {"https://hooks.example.com:1", "https://hooks.example.com:1", true},
    {"https://hooks.example.com:65535/x", "https://hooks.example.com:65535/x", true},
    {"https://hooks.example.com/alumia", "https://hooks.example.com/alumia", true},
    {"https://hooks.example.com/alumia/", "https://hooks.example.com/alumia", true},     // trailing '/' dropped
    {"https://hooks.example.com/", "https://hooks.example.com", true},
    {"https://hooks.example.com/a/b-c/d_e~f", "https://hooks.example.com/a/b-c/d_e~f", true},
    {"HTTPS://HOOKS.Example.COM", "https://hooks.example.com", true},
    {"https://example.com.", "https://example.com", true},                              // trailing dot: the same name
    {"https://localhost.example.com", "https://localhost.example.com", true},           // only the label suffix counts
    {"https://local-hooks.example.com", "https://local-hooks.example.com", true},
    {"https://internal.example.com", "https://internal.example.com", true},
    {"https://xn--bcher-kva.example", "https://xn--bcher-kva.example", true},
    {"https://bücher.example/hooks", "https://xn--bcher-kva.example/hooks", false},    // IDN: judged as its A-label
    {"https://BÜCHER.example:8443", "https://xn--bcher-kva.example:8443", false},
    {"https://faß.de", "https://xn--fa-hia.de", false},                                // nontransitional: ß stays
    {"https://8.8.8.8", "https://8.8.8.8", true},
    {"https://93.184.216.34:443/base", "https://93.184.216.34/base", true},
    {"https://8.8.8.8.", "https://8.8.8.8", true},
    {"https://172.32.0.1", "https://172.32.0.1", true},                                 // just outside 172.16.0.0/12
    {"https://100.128.0.1", "https://100.128.0.1", true},                               // just outside 100.64.0.0/10
    {"https://169.255.0.1", "https://169.255.0.1", true},                               // just outside 169.254.0.0/16
    {"https://198.20.0.1", "https://198.20.0.1", true},                                 // just outside 198.18.0.0/15
    {"https://223.255.255.255", "https://223.255.255.255", true},                       // just under multicast
    {"https://[2606:4700:4700::1111]", "https://[2606:4700:4700::1111]", true},
    {"https://[2606:4700:4700:0:0:0:0:1111]:8443", "https://[2606:4700:4700::1111]:8443", true},
    {"https://[2002:808:808::1]", "https://[2002:808:808::1]", true},                   // 6to4 of 8.8.8.8
    {"https://[2001:200::1]", "https://[2001:200::1]", true},                           // just past 2001::/23
    // Not https.
    {"http://hooks.example.com", "must be https, not http", false},
    {"ftp://hooks.example.com", "must be https, not ftp", false},
    {"ws://hooks.example.com", "must be https, not ws", false},
    {"hooks.example.com", "has no scheme", false},
    // Userinfo, query, fragment: even empty.
    {"https://user:pass@hooks.example.com", "userinfo", true},
    {"https://@hooks.example.com", "userinfo", true},
    {"https://hooks.example.com/?a=1", "query", true},
    {"https://hooks.example.com?", "query", true},
    {"https://hooks.example.com#top", "fragment", true},
    {"https://hooks.example.com/x#", "fragment", true},
    // Ports.
    {"https://example.com:", "empty port", true},
    {"https://example.com:0", "port 0 is not a number from 1 to 65535", false},
    {"https://example.com:65536", "port 65536 is not a number from 1 to 65535", false},
    // Paths.
    {"https://hooks.example.com//x", "empty, '.' or '..' segments", true},
    {"https://hooks.example.com/a/../b", "empty, '.' or '..' segments", true},
    {"https://hooks.example.com/a%20b", "path must not be percent-encoded", true},
    // Local names, bare and as suffixes, any case, with a trailing dot.
    {"https://localhost", "local name", true},
    {"https://LOCALHOST:7465", "local name", true},
    {"https://localhost.", "local name", true},
    {"https://app.localhost", "local name (under .localhost)", true},
    {"https://printer.local", "local name (under .local)", true},
    {"https://local", "local name", true},
    {"https://svc.internal", "local name (under .internal)", true},
    {"https://nas.lan", "local name (under .lan)", true},
    {"https://router.home.arpa", "local name (under .home.arpa)", true},
    {"https://Router.Home.Arpa.", "local name (under .home.arpa)", true},
    {"https://ｌｏｃａｌｈｏｓｔ", "local name", false},                                  // fullwidth: maps to localhost
    {"https://bücher.local", "xn--bcher-kva.local (written bücher.local) is a local name", false},
    // Odd names.
    {"https://mylocal", "single-label name", true},
    {"https://foo_bar.example.com", "not a DNS name", true},
    {"https://-foo.example.com", "not a valid internationalised domain name", true},
    {"https://a..example.com", "empty label", true},
    {"https://example.com..", "empty label", true},
    {"https://.example.com", "empty label", true},
    {"https://example.com。", "https://example.com", false},                           // an ideographic full stop
    {"https://xn--zz.example.com", "not a valid internationalised domain name", true},
    {"https://b%C3%BCcher.example", "percent-encoded", true},
    {"https://%6c%6f%63%61%6c%68%6f%73%74", "percent-encoded", true},
    {"https://evil.com／x.example", "not a DNS name after IDNA conversion", false},    // fullwidth '/' maps to '/'
    // IPv4 in every notation: judged as the address it is.
    {"https://127.0.0.1", "127.0.0.1 is a loopback address", true},
    {"https://127.255.255.254", "loopback", true},
    {"https://127.1", "127.1 is the IPv4 address 127.0.0.1, a loopback address", true},
    {"https://2130706433", "is the IPv4 address 127.0.0.1, a loopback", true},
    {"https://0177.0.0.1", "is the IPv4 address 127.0.0.1, a loopback", true},
    {"https://0x7f.1", "is the IPv4 address 127.0.0.1, a loopback", true},
    {"https://0x7F000001", "is the IPv4 address 127.0.0.1, a loopback", true},
    {"https://127.000.000.001", "is the IPv4 address 127.0.0.1, a loopback", true},
    {"https://１２７.０.０.１", "127.0.0.1 is a loopback address", false},               // fullwidth digits
    {"https://0xa.1", "is the IPv4 address 10.0.0.1, a private address", true},
    {"https://167772161", "is the IPv4 address 10.0.0.1, a private address", true},
    {"https://134744072", "8.8.8.8 in a non-standard notation; write it as 8.8.8.8", true},
    {"https://1.2.3.4.5", "ends in a number but is not a valid IPv4 address", true},
    {"https://foo.123", "ends in a number but is not a valid IPv4 address", true},
    {"https://foo.0x", "ends in a number but is not a valid IPv4 address", true},
    {"https://08.8.8.8", "ends in a number but is not a valid IPv4 address", true},
    {"https://10.0.0.1", "10.0.0.1 is a private address (10.0.0.0/8)", true},
    {"https://172.16.0.1", "private address (172.16.0.0/12)", true},
    {"https://172.31.255.255", "private address (172.16.0.0/12)", true},
    {"https://192.168.1.1", "private address (192.168.0.0/16)", true},
    {"https://169.254.169.254", "link-local", true},                                    // cloud metadata
    {"https://100.64.0.1", "carrier-grade NAT", true},
    {"https://100.127.255.255", "carrier-grade NAT", true},
    {"https://0.0.0.0", "unspecified", true},
    {"https://0.1.2.3", "unspecified 'this network'", true},
    {"https://224.0.0.1", "multicast", true},
    {"https://239.255.255.250", "multicast", true},
    {"https://255.255.255.255", "broadcast", true},
    {"https://240.0.0.1", "reserved address (240.0.0.0/4)", true},
    {"https://192.0.0.8", "reserved address (IETF protocol assignments", true},
    {"https://192.0.2.1", "documentation address (TEST-NET-1", true},
    {"https://198.51.100.7", "documentation address (TEST-NET-2", true},
    {"https://203.0.113.9", "documentation address (TEST-NET-3", true},
    {"https://198.18.0.1", "benchmarking", true},
    {"https://198.19.255.255", "benchmarking", true},
    {"https://192.88.99.1", "6to4 relay anycast", true},
    // IPv6, and the IPv6 forms of IPv4 addresses.
    {"https://[::1]", "the loopback address (::1)", true},
    {"https://[0:0:0:0:0:0:0:1]", "the loopback address (::1)", true},
    {"https://[::]", "the unspecified address", true},
    {"https://[fd00::1]", "unique-local", true},
    {"https://[fc00::1]", "unique-local", true},
    {"https://[fe80::1]", "link-local", true},
    {"https://[FEBF::1]", "link-local", true},
    {"https://[fec0::1]", "site-local", true},
    {"https://[ff02::1]", "multicast", true},
    {"https://[::ffff:127.0.0.1]", "IPv4-mapped address (::ffff:0:0/96) of 127.0.0.1", true},
    {"https://[::ffff:10.0.0.1]", "IPv4-mapped address (::ffff:0:0/96) of 10.0.0.1", true},
    {"https://[::ffff:8.8.8.8]", "IPv4-mapped", true},                                   // even a public one
    {"https://[::ffff:7f00:1]", "IPv4-mapped address (::ffff:0:0/96) of 127.0.0.1", true},
    {"https://[::127.0.0.1]", "IPv4-compatible", true},
    {"https://[::8.8.8.8]", "IPv4-compatible", true},
    {"https://[::ffff:0:a00:1]", "IPv4-translated", true},
    {"https://[64:ff9b::a00:1]", "NAT64 address (64:ff9b::/96) of 10.0.0.1", true},
    {"https://[64:ff9b::8.8.8.8]", "NAT64", true},
    {"https://[64:ff9b:1::1]", "local-use NAT64", true},
    {"https://[2002:7f00:1::1]", "6to4 address (2002::/16) of 127.0.0.1, a loopback address", true},
    {"https://[2002:c0a8:101::1]", "6to4 address (2002::/16) of 192.168.1.1, a private", true},
    {"https://[2001:db8::1]", "documentation address (2001:db8::/32)", true},
    {"https://[3fff::1]", "documentation address (3fff::/20)", true},
    {"https://[2001::1]", "Teredo", true},
    {"https://[100::1]", "discard-only", true},
    {"https://[4000::1]", "outside the global unicast range", true},
    {"https://[fe80::1%25eth0]", "zone id", false},
    {"https://[v1.fe]", "IPvFuture", true},
    // Plain http for outbound calls: loopback IP literals only.
    {"http://127.0.0.1:8080/token", "must be https", true},
    {"http://127.0.0.53/", "must be https", true},
    {"http://[::1]:9000/jwks", "must be https", true},
    {"http://[0:0:0:0:0:0:0:1]/", "must be https", true},                               // any spelling of ::1
    {"http://[::ffff:127.0.0.1]/", "must be https", true},                              // the mapped IPv4 loopback
    {"http://[::ffff:10.0.0.1]/", "must be https", false},
    {"http://[::2]/", "must be https", false},
    {"http://localhost:8080/token", "must be https", false},                            // a name, even localhost
    {"http://127.1/", "must be https", false},                                          // not a literal to uriparser
    {"http://10.0.0.1/token", "must be https", false},
    // Not URLs.
    {"", "no scheme", false},
    {"https://", "no host", false},
    {"https://exa mple.com", "not a valid URL", false},
    {"https://example.com:http", "not a valid URL", false},
};
// clang-format on

}  // namespace

TEST_CASE("URL policy: the base URL and the outbound check, row by row", "[url]") {
  REQUIRE(k_rows.size() >= 60);
  int accepted = 0;
  int refused = 0;
  for (const Row& row : k_rows) {
    INFO(row.url);
    const std::string_view expect = row.base;
    const auto base = alumia::url::public_base_url(row.url);
    CHECK(alumia::url::check_public_base_url(row.url).has_value() == base.has_value());
    if (expect.starts_with("https://")) {
      ++accepted;
      REQUIRE(base.has_value());
      CHECK(*base == expect);
      // The normal form is itself accepted, unchanged.
      CHECK(alumia::url::public_base_url(*base) == *base);
    } else {
      ++refused;
      REQUIRE_FALSE(base.has_value());
      CHECK(base.error().code == alumia::ErrorCode::validation_error);
      CHECK_THAT(base.error().message, Catch::StartsWith("base URL ") && Catch::Contains(row.base));
    }
    const auto out = alumia::url::check_outbound_url(row.url);
    CHECK(out.has_value() == row.outbound_ok);
    if (!out) CHECK(out.error().code == alumia::ErrorCode::validation_error);
  }
  CHECK(accepted >= 25);
  CHECK(refused >= 60);
}

TEST_CASE("URL policy: a refusal never repeats what may be a credential", "[url]") {
  for (const char* url : {"https://user:s3cr3t@hooks.example.com", "https://hooks.example.com/?token=s3cr3t",
                          "https://hooks.example.com/#s3cr3t", "http://hooks.example.com/s3cr3t"}) {
    INFO(url);
    const auto r = alumia::url::public_base_url(url);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, !Catch::Contains("s3cr3t"));
  }
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

TEST_CASE("URL policy: every spelling of the IPv6 loopback is loopback", "[url]") {
  for (const char* url :
       {"http://[::1]", "http://[0:0:0:0:0:0:0:1]", "http://[::0:1]", "http://[0::1]",
        "http://[0000:0000:0000:0000:0000:0000:0000:0001]", "http://[::ffff:127.0.0.1]", "http://[::ffff:7f00:1]",
        "http://[::ffff:127.1.2.3]", "http://127.0.0.1", "http://localhost."}) {
    INFO(url);
    auto u = alumia::url::parse(url);
    REQUIRE(u);
    CHECK(alumia::url::is_loopback_host(*u));
  }
  for (const char* url : {"http://[::2]", "http://[::]", "http://[::ffff:10.0.0.1]", "http://[::127.0.0.1]",
                          "http://[1::1]", "http://128.0.0.1", "http://localhost.example.com"}) {
    INFO(url);
    auto u = alumia::url::parse(url);
    REQUIRE(u);
    CHECK_FALSE(alumia::url::is_loopback_host(*u));
  }
}

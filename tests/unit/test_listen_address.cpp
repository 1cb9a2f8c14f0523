// daemon::parse_listen: HOST:PORT and [v6]:PORT for --listen and --public-listen, through the one
// host:port parser of common/net (net::parse_host_port, also used by the CLI's daemon URL and URL ports).
// Also listener_limits(): the http-* and trusted-proxies settings as each listener takes them.
#include "server.hpp"

#include <alumia/config/config.hpp>
#include <alumia/net/host_port.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <string>
#include <utility>

using alumia::daemon::parse_listen;

TEST_CASE("listen address: accepted forms", "[listen]") {
  using P = std::pair<std::string, int>;
  CHECK(parse_listen("127.0.0.1:7465") == P{"127.0.0.1", 7465});
  CHECK(parse_listen("127.0.0.1:0") == P{"127.0.0.1", 0});  // any free port (tests)
  CHECK(parse_listen("0.0.0.0:65535") == P{"0.0.0.0", 65535});
  CHECK(parse_listen("localhost:8080") == P{"localhost", 8080});
  CHECK(parse_listen("[::1]:7465") == P{"::1", 7465});
  CHECK(parse_listen("[::]:443") == P{"::", 443});
  CHECK(parse_listen("[fe80::1%eth0]:80") == P{"fe80::1%eth0", 80});
}

TEST_CASE("listen address: refused forms name the address", "[listen]") {
  for (const char* bad :
       {"", "7465", "127.0.0.1", "127.0.0.1:", "127.0.0.1:-1", "127.0.0.1:65536", "127.0.0.1:http", "127.0.0.1:80 ",
        "[::1]", "[::1]7465", "[::1:7465", "[::1]:", ":7465", "::1:7465", "::7465", "fe80::1:80", "[]:80"}) {
    INFO(bad);
    auto r = parse_listen(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == alumia::ErrorCode::bad_request);
    CHECK_THAT(r.error().message, Catch::Contains("listen"));
  }
}

TEST_CASE("host:port parser: brackets, port range and errors naming the text", "[listen]") {
  using alumia::net::parse_host_port;
  using alumia::net::parse_port;
  auto v6 = parse_host_port("[::1]:8080", "the daemon address", 1);
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 8080);
  CHECK(v6->bracketed);
  auto v4 = parse_host_port("127.0.0.1:1", "the daemon address", 1);
  REQUIRE(v4);
  CHECK_FALSE(v4->bracketed);
  // The lowest port is the caller's: 0 (any free port) for a listener, 1 for an address to call.
  CHECK(parse_host_port("127.0.0.1:0", "listen address"));
  auto zero = parse_host_port("127.0.0.1:0", "the daemon address", 1);
  REQUIRE_FALSE(zero);
  CHECK(zero.error().message == "the daemon address '127.0.0.1:0' must end in a port from 1 to 65535, not '0'");
  auto bare = parse_host_port("[::1]", "listen address");
  REQUIRE_FALSE(bare);
  CHECK(bare.error().message == "listen address '[::1]' must look like [::1]:PORT");
  auto none = parse_host_port("7465", "listen address");
  REQUIRE_FALSE(none);
  CHECK_THAT(none.error().message, Catch::StartsWith("listen address '7465' must be HOST:PORT"));
  auto no_host = parse_host_port(":7465", "listen address");
  REQUIRE_FALSE(no_host);
  CHECK(no_host.error().message == "listen address ':7465' has no host; write 127.0.0.1:PORT (or [::1]:PORT)");
  auto unbracketed = parse_host_port("::1:7465", "listen address");
  REQUIRE_FALSE(unbracketed);
  CHECK(unbracketed.error().message ==
        "listen address '::1:7465' is ambiguous: write an IPv6 address in brackets, as [::1]:PORT");
  CHECK(parse_port("65535", "the URL", 1) == uint16_t{65535});
  for (const char* bad : {"", "0", "65536", "+1", "-1", " 1", "1 ", "0x10", "99999999999"}) {
    INFO(bad);
    auto r = parse_port(bad, "the URL", 1);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == alumia::ErrorCode::bad_request);
    CHECK_THAT(r.error().message, Catch::Contains("the URL") && Catch::Contains("1 to 65535"));
  }
}

TEST_CASE("listener limits: from the settings; the control listener has only the total cap and trusts no proxy",
          "[listen]") {
  using alumia::daemon::listener_limits;
  using Kind = alumia::http::ListenerKind;
  const auto settings = [](std::map<std::string, std::string> env) {
    auto s = alumia::Settings::resolve(
        {},
        [env](std::string_view name) -> std::optional<std::string> {
          auto it = env.find(std::string(name));
          return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
        },
        "/nonexistent/alumia-config.json");
    REQUIRE(s);
    return *s;
  };
  const auto s = settings({{"ALUMIA_HTTP_MAX_CONNECTIONS", "2500"},
                           {"ALUMIA_HTTP_MAX_CONNECTIONS_PER_IP", "300"},
                           {"ALUMIA_HTTP_HEADER_TIMEOUT_MS", "250"},
                           {"ALUMIA_TRUSTED_PROXIES", "10.0.0.0/8"}});
  const auto pub = listener_limits(s, Kind::public_);
  REQUIRE(pub);
  CHECK(pub->max_connections == 2500);
  CHECK(pub->max_connections_per_ip == 300);
  CHECK(pub->header_timeout_ms == 250);
  CHECK(pub->idle_timeout_seconds == 5);
  CHECK(pub->body_min_rate == 1024);
  CHECK(pub->body_budget == 64 << 20);
  CHECK(pub->trusted_proxies == "10.0.0.0/8");
  const auto ctl = listener_limits(s, Kind::control);
  REQUIRE(ctl);
  CHECK(ctl->max_connections_per_ip == 2500);
  CHECK(ctl->trusted_proxies.empty());

  const auto bad = listener_limits(settings({{"ALUMIA_TRUSTED_PROXIES", "10.0.0.0/8, proxy.example"}}), Kind::public_);
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("trusted-proxies") && Catch::Contains("ALUMIA_TRUSTED_PROXIES") &&
                                      Catch::Contains("proxy.example"));
}

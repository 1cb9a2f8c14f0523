#pragma once
// URL parsing (uriparser) and the policies we judge URLs by.
#include <alumia/base/error.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace alumia::url {

struct Url {
  std::string scheme;  // lower-case
  std::string host;    // lower-case, without brackets for IPv6
  bool host_is_ipv4 = false;
  bool host_is_ipv6 = false;
  std::array<unsigned char, 4> ip4{};   // the address uriparser parsed, when host_is_ipv4
  std::array<unsigned char, 16> ip6{};  // the address uriparser parsed, when host_is_ipv6
  uint16_t port = 0;                    // explicit port, or the scheme default
  bool explicit_port = false;
  std::string path;   // as written (still percent-encoded), "/" when empty
  std::string query;  // raw, without '?'
  std::string userinfo;

  std::string origin() const;     // scheme://host[:port] (port omitted when default)
  std::string host_port() const;  // host or [v6]:port
};

Result<Url> parse(std::string_view text);

bool is_loopback_host(const Url& u);  // 127.0.0.0/8, ::1, localhost
// SPEC §8: https, host not localhost / loopback / private / link-local / ULA / unspecified literal,
// and no special-use suffix. VALIDATION_ERROR explains the rule.
Status check_public_base_url(std::string_view text);
// Outbound calls: https anywhere, http only to a loopback host (test peers).
Status check_outbound_url(std::string_view text);

}  // namespace alumia::url

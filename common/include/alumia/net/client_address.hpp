#pragma once
// The client address of a request, and the trusted-proxy list that decides it (setting
// trusted-proxies). Behind a reverse proxy every connection comes from the proxy; the proxy appends the
// address it saw to X-Forwarded-For. Only a proxy we trust may say who the client is, and only its own
// hop counts: a client can write any X-Forwarded-For it likes, so the list is read from the right and
// the first address that is not one of our proxies is the client (nginx's real_ip_recursive, in one
// pure function). Without a trusted proxy, X-Forwarded-For is ignored.
#include <alumia/base/error.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace alumia::net {

// An IPv4 or IPv6 address in its one canonical text ("127.0.0.1", "::1"; an IPv4-mapped IPv6 address
// is its IPv4 form), or nullopt-like empty string when `text` is not an address. Accepts the forms a
// proxy writes: a bare address, "[v6]", "[v6]:port" and "v4:port".
std::string canonical_address(std::string_view text);

// Addresses and CIDR blocks ("10.0.0.0/8", "::1", "fd00::/8"), the proxies whose X-Forwarded-For is
// believed.
class TrustedProxies {
 public:
  TrustedProxies() = default;
  // Comma-separated, spaces allowed around items; empty text = no trusted proxy. BAD_REQUEST names
  // the first item that is not an address or a block, and says the form it expects.
  static Result<TrustedProxies> parse(std::string_view list);
  bool empty() const { return m_blocks.empty(); }
  // Whether `address` (any form canonical_address takes) is in one of the blocks.
  bool contains(std::string_view address) const;

 private:
  struct Block {
    std::array<uint8_t, 16> bytes{};  // IPv4 in the first 4
    bool v4 = false;
    int prefix = 0;
  };
  std::vector<Block> m_blocks;
};

// The client's address: `peer` (the connection's address) when it is not a trusted proxy; otherwise
// X-Forwarded-For (`forwarded_for`: each header line's value, in order; each a comma-separated list)
// read from the right, skipping trusted proxies, up to the first address that is not one: that one. A
// malformed entry stops the walk at the last good hop (the proxy to its right); a list of nothing but
// trusted proxies gives the leftmost. Always canonical text (canonical_address).
std::string client_address(std::string_view peer, const std::vector<std::string>& forwarded_for,
                           const TrustedProxies& trusted);

}  // namespace alumia::net

#pragma once
// HOST:PORT and [IPv6]:PORT, parsed once for every place that takes one: --listen and
// --public-listen (daemon), the daemon URL (CLI) and URL ports.
#include <alumia/base/error.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace alumia::net {

struct HostPort {
  std::string host;  // without brackets; never empty
  uint16_t port = 0;
  bool bracketed = false;  // written as [IPv6]:PORT
};

// A decimal port from `min_port` to 65535, nothing else (no sign, no spaces). BAD_REQUEST names
// `what` and the text.
Result<uint16_t> parse_port(std::string_view text, std::string_view what, uint16_t min_port = 0);

// HOST:PORT or [IPv6]:PORT. BAD_REQUEST names `what` and the text, and says the form it expects; an
// empty host (":7465") and an unbracketed IPv6 address ("::1:7465", ambiguous) are refused.
Result<HostPort> parse_host_port(std::string_view text, std::string_view what, uint16_t min_port = 0);

}  // namespace alumia::net

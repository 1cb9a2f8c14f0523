#include <alumia/net/host_port.hpp>

#include <charconv>
#include <optional>

namespace alumia::net {
namespace {

std::unexpected<Error> refuse(std::string_view what, std::string_view text, std::string_view rule) {
  return fail(ErrorCode::bad_request, std::string(what) + " '" + std::string(text) + "' " + std::string(rule));
}

// Decimal digits only (from_chars of an unsigned takes no sign), within [min_port, 65535].
std::optional<uint16_t> port_number(std::string_view text, uint16_t min_port) {
  unsigned port = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || ec != std::errc{} || p != text.data() + text.size() || port < min_port || port > 65535)
    return std::nullopt;
  return static_cast<uint16_t>(port);
}

}  // namespace

Result<uint16_t> parse_port(std::string_view text, std::string_view what, uint16_t min_port) {
  if (auto port = port_number(text, min_port)) return *port;
  return fail(ErrorCode::bad_request, "port is out of range in " + std::string(what) + ": '" + std::string(text) +
                                          "' is not a number from " + std::to_string(min_port) + " to 65535");
}

Result<HostPort> parse_host_port(std::string_view text, std::string_view what, uint16_t min_port) {
  HostPort out;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close == 1 || close + 1 >= text.size() || text[close + 1] != ':')
      return refuse(what, text, "must look like [::1]:PORT");
    out.host = std::string(text.substr(1, close - 1));
    out.bracketed = true;
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return refuse(what, text, "must be HOST:PORT (an IPv6 address as [::1]:PORT)");
    out.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (out.host.empty()) return refuse(what, text, "has no host; write 127.0.0.1:PORT (or [::1]:PORT)");
    // "::1:7465" could be the address ::1:7465 or ::1 and a port: IPv6 takes brackets.
    if (out.host.find(':') != std::string::npos)
      return refuse(what, text, "is ambiguous: write an IPv6 address in brackets, as [" + out.host + "]:PORT");
  }
  const auto port = port_number(port_text, min_port);
  if (!port)
    return refuse(
        what, text,
        "must end in a port from " + std::to_string(min_port) + " to 65535, not '" + std::string(port_text) + "'");
  out.port = *port;
  return out;
}

}  // namespace alumia::net

// The client address behind trusted proxies (client_address.hpp).
#include <alumia/base/strings.hpp>
#include <alumia/net/client_address.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>

namespace alumia::net {
namespace {

struct Parsed {
  std::array<uint8_t, 16> bytes{};
  bool v4 = false;
};

std::optional<Parsed> parse_literal(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  const std::string s(text);
  Parsed p;
  if (::inet_pton(AF_INET, s.c_str(), p.bytes.data()) == 1) {
    p.v4 = true;
    return p;
  }
  if (::inet_pton(AF_INET6, s.c_str(), p.bytes.data()) != 1) return std::nullopt;
  static constexpr uint8_t k_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(p.bytes.data(), k_mapped, sizeof k_mapped) == 0) {
    std::memmove(p.bytes.data(), p.bytes.data() + 12, 4);
    std::fill(p.bytes.begin() + 4, p.bytes.end(), uint8_t{0});
    p.v4 = true;
  }
  return p;
}

bool is_port(std::string_view s) {
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return !s.empty() && ec == std::errc{} && ptr == s.data() + s.size() && v <= 65535;
}

// A bare address, "[v6]", "[v6]:port" or "v4:port".
std::optional<Parsed> parse_address(std::string_view text) {
  text = trim(text);
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !is_port(rest.substr(1)))) return std::nullopt;
    auto p = parse_literal(text.substr(1, close - 1));
    if (p && p->v4 && text.substr(1, close - 1).find(':') == std::string_view::npos) return std::nullopt;  // [1.2.3.4]
    return p;
  }
  if (auto p = parse_literal(text)) return p;
  const auto colon = text.find(':');
  if (colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos &&
      is_port(text.substr(colon + 1))) {
    auto p = parse_literal(text.substr(0, colon));
    if (p && p->v4) return p;
  }
  return std::nullopt;
}

std::string to_text(const Parsed& p) {
  char out[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(p.v4 ? AF_INET : AF_INET6, p.bytes.data(), out, sizeof out);
  return out;
}

bool in_block(const Parsed& a, const std::array<uint8_t, 16>& bytes, bool v4, int prefix) {
  if (a.v4 != v4) return false;
  int bits = prefix;
  for (std::size_t i = 0; bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((a.bytes[i] & mask) != (bytes[i] & mask)) return false;
  }
  return true;
}

}  // namespace

std::string canonical_address(std::string_view text) {
  auto p = parse_address(text);
  return p ? to_text(*p) : std::string();
}

Result<TrustedProxies> TrustedProxies::parse(std::string_view list) {
  TrustedProxies out;
  while (!trim(list).empty()) {
    const auto comma = list.find(',');
    const std::string_view item = trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    const auto slash = item.find('/');
    auto addr = parse_literal(item.substr(0, slash));
    Block b;
    bool ok = addr.has_value();
    if (ok) {
      b.bytes = addr->bytes;
      b.v4 = addr->v4;
      b.prefix = b.v4 ? 32 : 128;
      if (slash != std::string_view::npos) {
        const std::string_view bits = item.substr(slash + 1);
        auto [ptr, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), b.prefix);
        ok = !bits.empty() && ec == std::errc{} && ptr == bits.data() + bits.size() && b.prefix >= 0 &&
             b.prefix <= (b.v4 ? 32 : 128);
      }
    }
    if (!ok)
      return fail(ErrorCode::bad_request,
                  "trusted proxy \"" + std::string(item) +
                      "\" is not an address or CIDR block; write e.g. 127.0.0.1, 10.0.0.0/8 or fd00::/8, "
                      "comma-separated");
    out.m_blocks.push_back(b);
  }
  return out;
}

bool TrustedProxies::contains(std::string_view address) const {
  if (m_blocks.empty()) return false;
  auto a = parse_address(address);
  if (!a) return false;
  return std::any_of(m_blocks.begin(), m_blocks.end(),
                     [&](const Block& b) { return in_block(*a, b.bytes, b.v4, b.prefix); });
}

std::string client_address(std::string_view peer, const std::vector<std::string>& forwarded_for,
                           const TrustedProxies& trusted) {
  std::string client = canonical_address(peer);
  if (client.empty()) client = std::string(peer);
  if (!trusted.contains(client)) return client;
  // Every hop, left to right, over all the header lines in order.
  std::vector<std::string_view> hops;
  for (const std::string& line : forwarded_for) {
    std::string_view rest = line;
    while (true) {
      const auto comma = rest.find(',');
      hops.push_back(trim(rest.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    const std::string hop = canonical_address(*it);
    if (hop.empty()) return client;  // malformed: believe no further
    client = hop;
    if (!trusted.contains(hop)) return client;
  }
  return client;
}

}  // namespace alumia::net

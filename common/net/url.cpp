#include "uriparser_util.hpp"

#include <alumia/base/try.hpp>
#include <alumia/net/host_port.hpp>
#include <alumia/net/http.hpp>
#include <alumia/net/url.hpp>

#include <algorithm>
#include <array>

namespace alumia::url {
using detail::range;

std::string Url::origin() const {
  std::string o = scheme + "://";
  if (host_is_ipv6) o.append("[").append(host).append("]");
  else o += host;
  const bool default_port = (scheme == "https" && port == 443) || (scheme == "http" && port == 80);
  if (!default_port) o.append(":").append(std::to_string(port));
  return o;
}

std::string Url::host_port() const { return (host_is_ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port); }

Result<Url> parse(std::string_view text) {
  const std::string s(text);
  const auto parsed = detail::parse_uri(s);
  if (!parsed)
    return fail(ErrorCode::validation_error,
                "not a valid URL (error at character " + std::to_string(parsed.error()) + ")");
  const UriUriA* uri = parsed->get();
  Url u;
  u.scheme = http::to_lower(range(uri->scheme));
  if (u.scheme.empty()) return fail(ErrorCode::validation_error, "URL has no scheme");
  u.userinfo = range(uri->userInfo);
  u.host = http::to_lower(range(uri->hostText));
  u.host_is_ipv4 = uri->hostData.ip4 != nullptr;
  u.host_is_ipv6 = uri->hostData.ip6 != nullptr;
  if (u.host_is_ipv4) std::copy_n(uri->hostData.ip4->data, u.ip4.size(), u.ip4.begin());
  if (u.host_is_ipv6) std::copy_n(uri->hostData.ip6->data, u.ip6.size(), u.ip6.begin());
  if (u.host.empty()) return fail(ErrorCode::validation_error, "URL has no host");
  const std::string port_text = range(uri->portText);
  if (!port_text.empty()) {
    auto port = net::parse_port(port_text, "the URL", 1);
    if (!port) return fail(ErrorCode::validation_error, port.error().message);
    u.port = *port;
    u.explicit_port = true;
  } else if (u.scheme == "https") {
    u.port = 443;
  } else if (u.scheme == "http") {
    u.port = 80;
  }
  for (auto* seg = uri->pathHead; seg != nullptr; seg = seg->next) u.path.append(1, '/').append(range(seg->text));
  if (u.path.empty()) u.path.push_back('/');
  u.query = range(uri->query);
  return u;
}

bool is_loopback_host(const Url& u) {
  if (u.host_is_ipv4) return u.ip4[0] == 127;
  if (u.host_is_ipv6) {
    // Every spelling of ::1 (0:0:0:0:0:0:0:1, ::0:1, ...) and the IPv4-mapped 127/8 (::ffff:127.x.y.z),
    // which a dual-stack socket delivers to the IPv4 loopback.
    const auto& a = u.ip6;
    const bool zeros10 = std::all_of(a.begin(), a.begin() + 10, [](unsigned char b) { return b == 0; });
    if (zeros10 && a[10] == 0 && a[11] == 0 && a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] == 1) return true;
    return zeros10 && a[10] == 0xff && a[11] == 0xff && a[12] == 127;
  }
  return u.host == "localhost" || u.host == "localhost.";
}

Status check_outbound_url(std::string_view text) {
  auto parsed = TRY(parse(text));
  if (parsed.scheme == "https") return {};
  if (parsed.scheme == "http" && (parsed.host_is_ipv4 || parsed.host_is_ipv6) && is_loopback_host(parsed)) return {};
  return fail(ErrorCode::validation_error,
              "URL " + std::string(text) + " must be https (plain http is allowed only for loopback IP literals)");
}

}  // namespace alumia::url

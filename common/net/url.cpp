#include <alumia/base/try.hpp>
#include <alumia/net/host_port.hpp>
#include <alumia/net/http.hpp>
#include <alumia/net/url.hpp>

#include <uriparser/Uri.h>

#include <algorithm>
#include <array>
#include <memory>

namespace alumia::url {
namespace {

std::string range(const UriTextRangeA& r) {
  if (r.first == nullptr || r.afterLast == nullptr) return {};
  return std::string(r.first, static_cast<std::size_t>(r.afterLast - r.first));
}

struct UriFree {
  void operator()(UriUriA* u) const {
    uriFreeUriMembersA(u);
    delete u;
  }
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Classifies an IP literal the base-URL policy refuses.
bool is_non_public_ipv4(const std::array<unsigned char, 4>& a) {
  return a[0] == 0 || a[0] == 10 || a[0] == 127 || (a[0] == 169 && a[1] == 254) ||
         (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) || (a[0] == 100 && (a[1] & 0xc0) == 64) ||
         a[0] >= 224;
}

bool is_non_public_ipv6(const std::array<unsigned char, 16>& a) {
  bool all_zero_but_last = true;
  for (int i = 0; i < 15; ++i) all_zero_but_last = all_zero_but_last && a[i] == 0;
  if (all_zero_but_last && (a[15] == 0 || a[15] == 1)) return true;  // :: and ::1
  if ((a[0] & 0xfe) == 0xfc) return true;                            // fc00::/7 unique local
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return true;            // fe80::/10 link-local
  if (a[0] == 0xff) return true;                                     // multicast
  bool v4mapped = a[10] == 0xff && a[11] == 0xff;
  for (int i = 0; i < 10; ++i) v4mapped = v4mapped && a[i] == 0;
  if (v4mapped) return is_non_public_ipv4({a[12], a[13], a[14], a[15]});
  return false;
}

}  // namespace

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
  std::unique_ptr<UriUriA, UriFree> uri(new UriUriA{});
  const char* error_pos = nullptr;
  if (uriParseSingleUriA(uri.get(), s.c_str(), &error_pos) != URI_SUCCESS) {
    const auto at = error_pos ? static_cast<std::size_t>(error_pos - s.c_str()) : 0;
    return fail(ErrorCode::validation_error, "not a valid URL (error at character " + std::to_string(at) + ")");
  }
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
  if (u.host == "localhost") return true;
  if (u.host_is_ipv4) return u.ip4[0] == 127;
  if (u.host_is_ipv6) return u.host == "::1";
  return false;
}

Status check_public_base_url(std::string_view text) {
  const Url u = TRY(parse(text));
  const std::string rule =
      " — the public base URL must be an https origin that providers can reach: not localhost, a "
      "loopback, private, link-local, unique-local or unspecified IP, nor a name under .localhost, "
      ".local, .internal, .lan or .home.arpa (use --allow-insecure-base-url only for development)";
  if (u.scheme != "https")
    return fail(ErrorCode::validation_error, "base URL " + std::string(text) + " is not https" + rule);
  if (!u.userinfo.empty()) return fail(ErrorCode::validation_error, "base URL must not carry credentials" + rule);
  std::string host = u.host;
  while (!host.empty() && host.back() == '.') host.pop_back();
  for (std::string_view bad : {".localhost", ".local", ".internal", ".lan", ".home.arpa"})
    if (host == bad.substr(1) || ends_with(host, bad))
      return fail(ErrorCode::validation_error, "base URL host " + host + " is a local name" + rule);
  if (host == "localhost") return fail(ErrorCode::validation_error, "base URL host is localhost" + rule);
  if ((u.host_is_ipv4 && is_non_public_ipv4(u.ip4)) || (u.host_is_ipv6 && is_non_public_ipv6(u.ip6)))
    return fail(ErrorCode::validation_error, "base URL host " + host + " is not a public address" + rule);
  if (u.path != "/" && !u.path.empty() && u.path.back() == '/')
    return fail(ErrorCode::validation_error, "base URL must not end with '/' after a path");
  return {};
}

Status check_outbound_url(std::string_view text) {
  auto parsed = TRY(parse(text));
  if (parsed.scheme == "https") return {};
  if (parsed.scheme == "http" && (parsed.host_is_ipv4 || parsed.host_is_ipv6) && is_loopback_host(parsed)) return {};
  return fail(ErrorCode::validation_error,
              "URL " + std::string(text) + " must be https (plain http is allowed only for loopback IP literals)");
}

}  // namespace alumia::url

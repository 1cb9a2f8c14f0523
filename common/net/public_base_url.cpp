// The public base URL (SPEC §8): what providers are told to deliver to, so it must be an https URL whose
// host they reach from the internet. Every way of spelling a host is judged as what it means, not as
// the text it is: uriparser only recognises dotted quads as IPv4, so a reg-name that libc's
// inet_aton() reads as an address (2130706433, 0177.0.0.1, 0x7f.1, 127.1) is judged as that address,
// and one whose last label is a number but is no address is refused (WHATWG's "ends in a number");
// an IDN is judged after IDNA conversion (libidn2, UTS #46 nontransitional), in its A-label form;
// IPv6 forms that carry an IPv4 address (mapped, compatible, translated, NAT64, 6to4) are refused,
// 6to4 only when the address it embeds is not public.
//
// Accepted: https://HOST[:PORT][/PATH] with HOST a public DNS name (at least two labels of letters,
// digits and '-') or a public IP literal, PORT 1-65535, PATH a prefix of plain segments. A trailing
// '/' is dropped (https://x.example/hooks/ is https://x.example/hooks), as is a trailing dot of
// the name; the normal form is what receiveUrls are built on.
#include "uriparser_util.hpp"

#include <alumia/base/shared_library.hpp>
#include <alumia/base/strings.hpp>
#include <alumia/base/try.hpp>
#include <alumia/net/host_port.hpp>
#include <alumia/net/url.hpp>

#include <arpa/inet.h>
#include <idn2.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>

namespace alumia::url {
namespace {

constexpr std::string_view k_tail =
    " — the public base URL must be an https URL that providers reach from the internet (SPEC §8)";

std::unexpected<Error> refuse(std::string message) {
  return fail(ErrorCode::validation_error, "base URL " + message + std::string(k_tail));
}

using detail::range;

// ---- IP addresses ----

struct V4Range {
  uint32_t net;
  int bits;
  std::string_view what;
};

constexpr uint32_t v4(unsigned a, unsigned b, unsigned c, unsigned d) { return a << 24 | b << 16 | c << 8 | d; }

// IANA's IPv4 special-purpose registry, the ranges not globally reachable; the more specific first.
constexpr std::array k_v4_ranges{
    V4Range{v4(0, 0, 0, 0), 32, "the unspecified address (0.0.0.0)"},
    V4Range{v4(0, 0, 0, 0), 8, "an unspecified 'this network' address (0.0.0.0/8)"},
    V4Range{v4(10, 0, 0, 0), 8, "a private address (10.0.0.0/8)"},
    V4Range{v4(100, 64, 0, 0), 10, "a shared (carrier-grade NAT) address (100.64.0.0/10)"},
    V4Range{v4(127, 0, 0, 0), 8, "a loopback address (127.0.0.0/8)"},
    V4Range{v4(169, 254, 0, 0), 16, "a link-local address (169.254.0.0/16)"},
    V4Range{v4(172, 16, 0, 0), 12, "a private address (172.16.0.0/12)"},
    V4Range{v4(192, 0, 0, 0), 24, "a reserved address (IETF protocol assignments, 192.0.0.0/24)"},
    V4Range{v4(192, 0, 2, 0), 24, "a documentation address (TEST-NET-1, 192.0.2.0/24)"},
    V4Range{v4(192, 88, 99, 0), 24, "a reserved address (6to4 relay anycast, 192.88.99.0/24)"},
    V4Range{v4(192, 168, 0, 0), 16, "a private address (192.168.0.0/16)"},
    V4Range{v4(198, 18, 0, 0), 15, "a benchmarking address (198.18.0.0/15)"},
    V4Range{v4(198, 51, 100, 0), 24, "a documentation address (TEST-NET-2, 198.51.100.0/24)"},
    V4Range{v4(203, 0, 113, 0), 24, "a documentation address (TEST-NET-3, 203.0.113.0/24)"},
    V4Range{v4(224, 0, 0, 0), 4, "a multicast address (224.0.0.0/4)"},
    V4Range{v4(255, 255, 255, 255), 32, "the broadcast address (255.255.255.255)"},
    V4Range{v4(240, 0, 0, 0), 4, "a reserved address (240.0.0.0/4)"},
};

// What a non-public IPv4 address is, or nullopt for a public one.
std::optional<std::string_view> classify_v4(uint32_t addr) {
  for (const V4Range& r : k_v4_ranges) {
    const uint32_t mask = r.bits == 0 ? 0 : ~uint32_t{0} << (32 - r.bits);
    if ((addr & mask) == r.net) return r.what;
  }
  return std::nullopt;
}

std::string v4_text(uint32_t addr) {
  return std::to_string(addr >> 24) + "." + std::to_string(addr >> 16 & 0xff) + "." + std::to_string(addr >> 8 & 0xff) +
         "." + std::to_string(addr & 0xff);
}

using V6 = std::array<unsigned char, 16>;

bool in_prefix(const V6& a, std::initializer_list<unsigned char> prefix, int bits) {
  V6 p{};
  std::copy(prefix.begin(), prefix.end(), p.begin());
  for (int i = 0; i < bits / 8; ++i)
    if (a[i] != p[i]) return false;
  if (bits % 8 == 0) return true;
  const auto mask = static_cast<unsigned char>(0xff << (8 - bits % 8));
  return (a[bits / 8] & mask) == (p[bits / 8] & mask);
}

uint32_t v4_at(const V6& a, int at) {
  return uint32_t{a[at]} << 24 | uint32_t{a[at + 1]} << 16 | uint32_t{a[at + 2]} << 8 | a[at + 3];
}

// What a non-public (or IPv4-carrying) IPv6 address is, or nullopt for a public one. IANA's IPv6
// special-purpose registry, and anything outside the global unicast range 2000::/3.
std::optional<std::string> classify_v6(const V6& a) {
  using S = std::optional<std::string>;
  if (in_prefix(a, {}, 127)) return S(a[15] == 0 ? "the unspecified address (::)" : "the loopback address (::1)");
  if (in_prefix(a, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96))
    return "an IPv4-mapped address (::ffff:0:0/96) of " + v4_text(v4_at(a, 12)) + "; use a public name";
  if (in_prefix(a, {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0}, 96))
    return "an IPv4-translated address (::ffff:0:0:0/96) of " + v4_text(v4_at(a, 12)) + "; use a public name";
  if (in_prefix(a, {}, 96))
    return "an IPv4-compatible address (::/96, deprecated) of " + v4_text(v4_at(a, 12)) + "; use a public name";
  if (in_prefix(a, {0, 0x64, 0xff, 0x9b}, 96))
    return "a NAT64 address (64:ff9b::/96) of " + v4_text(v4_at(a, 12)) + "; use a public name";
  if (in_prefix(a, {0, 0x64, 0xff, 0x9b, 0, 1}, 48)) return S("a local-use NAT64 address (64:ff9b:1::/48)");
  if (in_prefix(a, {1, 0}, 64)) return S("a reserved address (discard-only, 100::/64)");
  if (in_prefix(a, {0x20, 0x01, 0x0d, 0xb8}, 32)) return S("a documentation address (2001:db8::/32)");
  if (in_prefix(a, {0x20, 0x01, 0, 0}, 23))
    return S("a reserved address (IETF protocol assignments: Teredo, benchmarking, ORCHID; 2001::/23)");
  if (in_prefix(a, {0x20, 0x02}, 16)) {
    const uint32_t embedded = v4_at(a, 2);
    if (auto what = classify_v4(embedded))
      return "a 6to4 address (2002::/16) of " + v4_text(embedded) + ", " + std::string(*what);
    return std::nullopt;
  }
  if (in_prefix(a, {0x3f, 0xff}, 20)) return S("a documentation address (3fff::/20)");
  if (in_prefix(a, {0x5f, 0x00}, 16)) return S("a reserved address (SRv6 SIDs, 5f00::/16)");
  if (in_prefix(a, {0xfc}, 7)) return S("a unique-local address (fc00::/7)");
  if (in_prefix(a, {0xfe, 0x80}, 10)) return S("a link-local address (fe80::/10)");
  if (in_prefix(a, {0xfe, 0xc0}, 10)) return S("a site-local address (fec0::/10, deprecated)");
  if (in_prefix(a, {0xff}, 8)) return S("a multicast address (ff00::/8)");
  if (!in_prefix(a, {0x20}, 3)) return S("a reserved address (outside the global unicast range 2000::/3)");
  return std::nullopt;
}

// ---- names ----

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// Letters, digits and '-' in dot-separated labels of 1 to 63 characters, no label starting or ending
// in '-', at most 253 characters (the name without its trailing dot, lower-case).
bool is_ldh_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t dot = std::min(name.find('.', start), name.size());
    const std::string_view label = name.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    start = dot + 1;
  }
  return true;
}

// WHATWG: the last label is a number (decimal digits, or 0x and hex digits), so the host is an IPv4
// address in some notation, or invalid.
bool ends_in_number(std::string_view name) {
  const std::string_view last = name.substr(name.rfind('.') == std::string_view::npos ? 0 : name.rfind('.') + 1);
  if (last.empty()) return false;
  if (std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; })) return true;
  if (last.size() >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X'))
    return std::all_of(last.begin() + 2, last.end(),
                       [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
  return false;
}

// libidn2 is loaded when the first name is judged, never at program start: a daemon started without a
// public base URL never maps it, nor libunistring which it brings (~200 KiB of idle RSS;
// docs/ARCHITECTURE.md, "Memory at idle"). Its two functions are used through this table (idn2.h still
// gives their types), loaded as libpq's are (alumia/base/shared_library.hpp). A failure is kept, so every
// judgement gives the same answer.
struct Libidn2 {
  decltype(&::idn2_to_ascii_8z) to_ascii_8z;
  decltype(&::idn2_strerror) strerror;
};

constexpr const char* k_libidn2_soname = "libidn2.so.0";

Result<const Libidn2*> load_libidn2() {
  auto so = TRY(SharedLibrary::open(k_libidn2_soname, "the IDNA library", "libidn2-0"));
  static Libidn2 lib{};
  so.resolve("idn2_to_ascii_8z", lib.to_ascii_8z);
  so.resolve("idn2_strerror", lib.strerror);
  if (!so.missing().empty()) return std::unexpected(so.lacks("libidn2 2.0 or later is needed"));
  return &lib;
}

// Thread-safe: a function-local static.
const Result<const Libidn2*>& libidn2() {
  static const Result<const Libidn2*> loaded = load_libidn2();
  return loaded;
}

// UTS #46 nontransitional processing: the A-label form of a name, lower-case.
Result<std::string> to_a_labels(const std::string& name, std::string_view shown) {
  const Libidn2& idn2 = *TRY(libidn2());
  char* out = nullptr;
  const int rc = idn2.to_ascii_8z(name.c_str(), &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
  std::unique_ptr<char, decltype(&std::free)> owned(out, &std::free);
  if (rc != IDN2_OK)
    return refuse("host " + std::string(shown) +
                  " is not a valid internationalised domain name (IDNA: " + idn2.strerror(rc) + ")");
  return to_lower(out);
}

constexpr std::array<std::string_view, 5> k_local_suffixes{"localhost", "local", "internal", "lan", "home.arpa"};

// A reg-name host as uriparser gave it, its trailing dot gone: the normal form of the host.
Result<std::string> judge_name(const std::string& written, const std::string& original) {
  if (written.find('%') != std::string::npos)
    return refuse("host " + written + " is percent-encoded; write the name itself (an IDN may be written in Unicode)");
  std::string name = to_lower(written);
  if (!name.empty() && name.back() == '.') name.pop_back();
  if (name.empty() || name.front() == '.' || name.back() == '.' || name.find("..") != std::string::npos)
    return refuse("host " + written + " has an empty label");
  name = TRY(to_a_labels(name, original.empty() ? written : original));
  if (!name.empty() && name.back() == '.') name.pop_back();
  // The judged name is the A-label form; a host written otherwise is shown as written too.
  const std::string as_written = original.empty() ? to_lower(written) : original;
  std::string shown = name;
  if (as_written != name && as_written != name + ".") shown += " (written " + as_written + ")";

  if (ends_in_number(name)) {
    in_addr addr{};
    if (::inet_aton(name.c_str(), &addr) == 0)
      return refuse("host " + shown + " ends in a number but is not a valid IPv4 address");
    const uint32_t a = ntohl(addr.s_addr);
    if (auto what = classify_v4(a))
      return refuse("host " + shown + " is the IPv4 address " + v4_text(a) + ", " + std::string(*what));
    if (name != v4_text(a))
      return refuse("host " + shown + " is the IPv4 address " + v4_text(a) +
                    " in a non-standard notation; write it as " + v4_text(a));
    return name;
  }
  if (!is_ldh_name(name))
    return refuse("host " + shown +
                  " is not a DNS name (labels of letters, digits and '-', 1 to 63 characters, at most 253 in all)");
  for (std::string_view local : k_local_suffixes)
    if (name == local || ends_with(name, "." + std::string(local)))
      return refuse("host " + shown + " is a local name (" + std::string(local == name ? "" : "under .") +
                    std::string(local) + "), which no provider can resolve");
  if (name.find('.') == std::string::npos)
    return refuse("host " + shown + " is a single-label name, which only a local resolver answers");
  return name;
}

// uriparser takes ASCII only: a host written in Unicode is turned into its A-label form first, in
// the text, so that the rest of the URL is parsed as written. `original` gets the Unicode host.
Result<std::string> with_ascii_host(std::string_view text, std::string& original) {
  const std::size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos || is_ascii(text)) return std::string(text);
  const std::size_t start = scheme_end + 3;
  const std::size_t end = std::min(text.find_first_of("/?#", start), text.size());
  const std::string_view authority = text.substr(start, end - start);
  if (authority.find('@') != std::string_view::npos || authority.starts_with('[')) return std::string(text);
  const std::size_t colon = authority.rfind(':');
  const std::string_view host = authority.substr(0, colon);
  if (is_ascii(host)) return std::string(text);
  original = std::string(host);
  std::string ascii = TRY(to_a_labels(original, original));
  // UTS #46 maps some characters to ASCII punctuation (a fullwidth '/' to '/'): only a name or an
  // address goes back into the URL.
  if (!std::all_of(ascii.begin(), ascii.end(),
                   [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'; }))
    return refuse("host " + original + " is not a DNS name after IDNA conversion (" + ascii + ")");
  return std::string(text.substr(0, start)) + ascii + std::string(authority.substr(host.size())) +
         std::string(text.substr(end));
}

}  // namespace

Result<std::string> public_base_url(std::string_view text) {
  std::string original;  // the host as written, when it was Unicode
  const std::string s = TRY(with_ascii_host(text, original));
  if (const auto open = s.find("://["); open != std::string::npos) {
    const auto close = s.find(']', open);
    if (s.substr(open, close - open).find('%') != std::string::npos)
      return refuse("host has an IPv6 zone id (%...), which names an interface of one machine");
  }
  const auto uri = detail::parse_uri(s);
  if (!uri) return refuse("is not a valid URL (error at character " + std::to_string(uri.error()) + ")");
  const UriUriA& u = **uri;
  const std::string scheme = to_lower(range(u.scheme));
  if (scheme.empty()) return refuse("has no scheme; it must be https://HOST");
  if (scheme != "https") return refuse("must be https, not " + scheme);
  if (u.hostText.first == nullptr || u.hostText.first == u.hostText.afterLast) return refuse("has no host");
  // Even an empty '@', '?' or '#': the base URL is a prefix, and the rest is ours to append.
  if (u.userInfo.first != nullptr) return refuse("must not carry userinfo (user:password@)");
  if (u.query.first != nullptr) return refuse("must not have a query ('?')");
  if (u.fragment.first != nullptr) return refuse("must not have a fragment ('#')");

  std::string host;
  if (u.hostData.ipFuture.first != nullptr) {
    return refuse("host [" + range(u.hostText) + "] is not an IPv6 address (IPvFuture)");
  } else if (u.hostData.ip4 != nullptr) {
    const auto* d = u.hostData.ip4->data;
    const uint32_t a = v4(d[0], d[1], d[2], d[3]);
    host = v4_text(a);
    if (auto what = classify_v4(a)) return refuse("host " + host + " is " + std::string(*what));
  } else if (u.hostData.ip6 != nullptr) {
    V6 a{};
    std::copy_n(u.hostData.ip6->data, a.size(), a.begin());
    char buf[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET6, a.data(), buf, sizeof buf);
    host = std::string("[") + buf + "]";
    if (auto what = classify_v6(a)) return refuse("host " + host + " is " + *what);
  } else {
    host = TRY(judge_name(range(u.hostText), original));
  }

  std::string port;
  if (u.portText.first != nullptr) {
    const std::string text_port = range(u.portText);
    if (text_port.empty()) return refuse("has an empty port (':' with no number)");
    auto number = net::parse_port(text_port, "the base URL", 1);
    if (!number) return refuse("port " + text_port + " is not a number from 1 to 65535");
    if (*number != 443) port = ":" + std::to_string(*number);
  }

  std::string path;
  for (const UriPathSegmentA* seg = u.pathHead; seg != nullptr; seg = seg->next) {
    const std::string segment = range(seg->text);
    if (segment.empty() && seg->next == nullptr) break;  // the trailing '/': dropped
    if (segment.empty() || segment == "." || segment == "..")
      return refuse("path must not have empty, '.' or '..' segments");
    if (segment.find('%') != std::string::npos) return refuse("path must not be percent-encoded");
    path += "/" + segment;
  }
  return "https://" + host + port + path;
}

Status check_public_base_url(std::string_view text) {
  TRY(public_base_url(text));
  return {};
}

Result<JudgedBaseUrl> judge_base_url(std::string_view text, bool allow_insecure) {
  auto judged = public_base_url(text);
  if (judged) return JudgedBaseUrl{std::move(*judged), {}};
  if (!allow_insecure) return std::unexpected(std::move(judged.error()));
  const auto parsed = parse(text);
  if (!parsed || (parsed->scheme != "http" && parsed->scheme != "https") || !parsed->userinfo.empty() ||
      text.find_first_of("?#") != std::string_view::npos)
    return fail(ErrorCode::validation_error,
                "base URL must be an http(s) URL without userinfo, query or fragment, even with "
                "--allow-insecure-base-url");
  std::string base(text);
  while (!base.empty() && base.back() == '/') base.pop_back();
  return JudgedBaseUrl{std::move(base), std::move(judged.error().message)};
}

}  // namespace alumia::url

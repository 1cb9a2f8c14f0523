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

// localhost, 127.0.0.0/8, ::1 in any spelling, ::ffff:127.0.0.0/104 (what a dual-stack socket sends
// to the IPv4 loopback).
bool is_loopback_host(const Url& u);

// The public base URL (SPEC §8; common/net/public_base_url.cpp says how each host is judged): an
// https URL, no userinfo, query or fragment (not even an empty '@', '?' or '#'), a public DNS name or
// IP literal as host (after IDNA conversion; in any IPv4 or IPv6 notation), an optional port 1-65535
// and an optional path prefix of plain segments. On success its normal form, on which receiveUrls are
// built: https://<A-label name | dotted quad | [compressed v6]>[:port unless 443][/path], with no
// trailing '/' or trailing dot. VALIDATION_ERROR "base URL ...": the rule broken and the part that
// broke it (never the whole text, which may hold a credential); callers prefix where the URL came from.
Result<std::string> public_base_url(std::string_view text);
// The same judgement, without the normal form.
Status check_public_base_url(std::string_view text);

// A base URL as the daemon uses it (the setting at start, a command's --base-url): judged by
// public_base_url(). With `allow_insecure` (--allow-insecure-base-url, development only) a refused one is
// still taken when it is an http(s) URL without userinfo, query or fragment, trailing '/' dropped, and
// `broken_rule` holds the refusal's message for the warning every use must carry. Errors never quote the
// text; callers prefix where it came from.
struct JudgedBaseUrl {
  std::string url;          // the normal form, or the insecure text as taken
  std::string broken_rule;  // empty when it is a safe public base URL
};
Result<JudgedBaseUrl> judge_base_url(std::string_view text, bool allow_insecure);
// Outbound calls: https anywhere, http only to a loopback host (test peers).
Status check_outbound_url(std::string_view text);

}  // namespace alumia::url

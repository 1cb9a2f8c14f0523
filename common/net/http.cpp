#include <alumia/base/strings.hpp>
#include <alumia/net/http.hpp>

#include <uriparser/Uri.h>

#include <algorithm>

namespace alumia::http {

std::string to_lower(std::string_view s) { return alumia::to_lower(s); }

std::optional<std::string> header_value(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return std::nullopt;
}

std::size_t header_count(const Headers& headers, std::string_view name) {
  std::size_t n = 0;
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) ++n;
  return n;
}

std::string url_encode(std::string_view s) {
  // uriparser keeps the RFC 3986 unreserved characters and writes %XX (upper case) for the rest;
  // it stops at a NUL, so each run between NULs is escaped on its own and a NUL written %00.
  std::string out;
  out.reserve(s.size());
  for (;;) {
    const auto nul = s.find('\0');
    const std::string_view part = s.substr(0, nul);
    const std::size_t at = out.size();
    out.resize(at + part.size() * 3 + 1);
    const char* end = uriEscapeExA(part.data(), part.data() + part.size(), out.data() + at, URI_FALSE, URI_FALSE);
    out.resize(static_cast<std::size_t>(end - out.data()));
    if (nul == std::string_view::npos) break;
    out += "%00";
    s.remove_prefix(nul + 1);
  }
  return out;
}

std::string url_decode(std::string_view s, bool plus_as_space) {
  // uriparser decodes a C string in place (a %XX that is not one stays as written) and stops at a
  // NUL, so each run between NULs (raw, or written %00) is decoded on its own and the NULs kept.
  std::string out;
  out.reserve(s.size());
  for (;;) {
    const auto raw = s.find('\0');
    const auto escaped = s.find("%00");
    const auto nul = std::min(raw, escaped);
    std::string part(s.substr(0, nul));
    const char* end = uriUnescapeInPlaceExA(part.data(), plus_as_space ? URI_TRUE : URI_FALSE, URI_BR_DONT_TOUCH);
    out.append(part.data(), static_cast<std::size_t>(end - part.data()));
    if (nul == std::string_view::npos) break;
    out += '\0';
    s.remove_prefix(nul + (nul == escaped ? 3 : 1));
  }
  return out;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    out += url_encode(k);
    out += '=';
    out += url_encode(v);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> form_decode(std::string_view body) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!body.empty()) {
    const auto amp = body.find('&');
    std::string_view part = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view{} : body.substr(amp + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    if (eq == std::string_view::npos) out.emplace_back(url_decode(part), "");
    else out.emplace_back(url_decode(part.substr(0, eq)), url_decode(part.substr(eq + 1)));
  }
  return out;
}

}  // namespace alumia::http

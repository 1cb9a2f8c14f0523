// The strict rules for a request head (http_head.hpp).
#include "http_head.hpp"

#include <alumia/base/strings.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace alumia::daemon {
namespace {

// RFC 9110 token characters.
bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
           std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
  });
}

}  // namespace

Result<HeadVerdict> judge_head(std::string_view method,
                               const std::vector<std::pair<std::string, std::string>>& headers) {
  if (headers.size() > k_max_header_lines)
    return fail(ErrorCode::headers_too_large,
                "more than " + std::to_string(k_max_header_lines) + " header lines; send fewer headers");
  int hosts = 0;
  int lengths = 0;
  std::string_view length_text;
  for (const auto& [name, value] : headers) {
    if (!is_token(name))
      return fail(ErrorCode::bad_request, "a header name that is not an HTTP token (a space before the colon?)");
    if (iequals(name, "host")) {
      ++hosts;
    } else if (iequals(name, "content-length")) {
      ++lengths;
      length_text = value;
    } else if (iequals(name, "transfer-encoding")) {
      return fail(ErrorCode::length_required, "Transfer-Encoding is refused (chunked bodies too); send Content-Length");
    }
  }
  if (hosts != 1) return fail(ErrorCode::bad_request, "send exactly one Host header");
  if (lengths > 1) return fail(ErrorCode::bad_request, "more than one Content-Length header; send exactly one");
  const bool body_method = method == "POST" || method == "PUT" || method == "PATCH";
  HeadVerdict v;
  if (lengths == 1) {
    const bool digits = !length_text.empty() && std::all_of(length_text.begin(), length_text.end(),
                                                            [](char c) { return c >= '0' && c <= '9'; });
    auto [p, ec] = std::from_chars(length_text.data(), length_text.data() + length_text.size(), v.content_length);
    if (!digits || ec != std::errc{} || p != length_text.data() + length_text.size())
      return fail(ErrorCode::bad_request, "Content-Length is not a decimal number");
    if (!body_method && v.content_length != 0)
      return fail(ErrorCode::bad_request,
                  "a " + std::string(method) + " request takes no body; send it without Content-Length");
  } else if (body_method) {
    return fail(ErrorCode::length_required, "send a Content-Length header (chunked uploads are refused)");
  }
  return v;
}

}  // namespace alumia::daemon

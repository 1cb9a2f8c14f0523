#pragma once
// The listeners' strict rules for a request head, judged once the head is complete and before any body
// byte is read (issue 13 item 2). A server that is lenient where a proxy in front of it is strict (or
// the other way round) lets one client's bytes be read as another request: two Content-Lengths, a
// Content-Length beside a Transfer-Encoding, a body on a GET that the server does not read, a header
// name with a space. So the head must say one thing only, or it is refused; and every refusal closes
// the connection (server.cpp), so an unread body can never be parsed as the next request.
#include <alumia/base/error.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alumia::daemon {

inline constexpr std::size_t k_max_header_lines = 100;

// What a head declares about its body, once it is admitted.
struct HeadVerdict {
  std::size_t content_length = 0;  // 0 when there is no body
};

// The rules, in order: at most k_max_header_lines header lines (HEADERS_TOO_LARGE); every name an HTTP
// token (so "Content-Length :" is refused, not ignored); no Transfer-Encoding at all (LENGTH_REQUIRED:
// send Content-Length); exactly one Host; at most one Content-Length, digits only (no sign, no
// spaces, no list, none twice even when equal); POST, PUT and PATCH need one (LENGTH_REQUIRED); any
// other method (GET, HEAD, DELETE, OPTIONS, ...) takes no body: a Content-Length other than 0 is refused
// (0 says the same as none, and some clients send it). BAD_REQUEST for the others; each message names the rule and what
// to send instead. `headers`: (name, value) in the order received, names as sent (case is ignored).
Result<HeadVerdict> judge_head(std::string_view method,
                               const std::vector<std::pair<std::string, std::string>>& headers);

}  // namespace alumia::daemon

#pragma once
// The fuzz targets' text form of an HTTP request (fuzz/README.md), so that a seed is readable and a finding
// can be pasted into a test:
//
//   POST /hook?token=abc        the request line: method, a space, the target (path + '?' + raw query)
//   x-github-event: push        header lines, "name: value" (names lower-cased as our listeners do)
//                               an empty line
//   {"zen":"..."}               the body, every byte to the end
//
// Lines end with "\n" (a trailing "\r" is dropped); a missing part is empty. The query is decoded as the
// listener decodes it (form rules), so what a verifier reads from req.query comes from the target.
#include <alumia/net/http.hpp>

#include <string>
#include <string_view>

namespace alumia::fuzz {

inline std::string_view take_line(std::string_view& rest) {
  const auto nl = rest.find('\n');
  std::string_view line = rest.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

inline http::Request parse_request(std::string_view text) {
  http::Request req;
  std::string_view rest = text;
  const std::string_view request_line = take_line(rest);
  const auto space = request_line.find(' ');
  req.method = std::string(request_line.substr(0, space));
  req.target = space == std::string_view::npos ? std::string("/") : std::string(request_line.substr(space + 1));
  const auto q = req.target.find('?');
  req.path = http::url_decode(std::string_view(req.target).substr(0, q), false);
  if (q != std::string::npos)
    for (auto& [name, value] : http::form_decode(std::string_view(req.target).substr(q + 1)))
      req.query.emplace(std::move(name), std::move(value));
  while (!rest.empty()) {
    const std::string_view line = take_line(rest);
    if (line.empty()) break;
    const auto colon = line.find(':');
    std::string_view value = colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    req.headers.emplace_back(http::to_lower(line.substr(0, colon)), std::string(value));
  }
  req.body = std::string(rest);
  req.remote_addr = "203.0.113.7";
  req.listener = http::ListenerKind::public_;
  return req;
}

}  // namespace alumia::fuzz

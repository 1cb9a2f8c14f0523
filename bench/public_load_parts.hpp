#pragma once
// bench_public_load's bookkeeping (bench/public_load.cpp): the tally of one kind of request, with
// percentiles that count unanswered requests, and the reading of an HTTP/1.1 response off a buffer.
#include <strings.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// Answers and failures of one kind of request.
struct Tally {
  long answered = 0, ok = 0, duplicates = 0, errors = 0, timeouts = 0, unsent = 0;
  std::map<int, long> codes;
  std::vector<double> ms;  // answered requests only

  void answer(int status, double latency_ms, bool duplicate) {
    answered++;
    codes[status]++;
    if (status >= 200 && status < 300) ok++;
    if (duplicate) duplicates++;
    ms.push_back(latency_ms);
  }
  long total() const { return answered + errors + timeouts + unsent; }
  // Nearest rank over every request; unanswered ones rank above any answer (infinity).
  double percentile(double p) {
    const long n = total();
    if (n == 0) return 0;
    std::sort(ms.begin(), ms.end());
    const auto rank = static_cast<std::size_t>(std::max(1.0, std::ceil(p * static_cast<double>(n))));
    return rank <= ms.size() ? ms[rank - 1] : INFINITY;
  }
  std::string codes_text() const {
    std::string s;
    for (const auto& [code, n] : codes) s += (s.empty() ? "" : ",") + std::to_string(code) + ":" + std::to_string(n);
    return s.empty() ? "-" : s;
  }
};

inline std::string ms_text(double v) {
  if (std::isinf(v)) return "unanswered";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}
inline std::string ms_value(double v) { return std::isinf(v) ? "inf" : ms_text(v); }

struct Response {
  int status = 0;
  bool close = false;
  bool duplicate = false;
};

enum class Parse { incomplete, complete, malformed };

inline bool header_is(std::string_view line, std::string_view name) {
  return line.size() > name.size() && line[name.size()] == ':' &&
         strncasecmp(line.data(), name.data(), name.size()) == 0;
}
inline std::string_view header_value(std::string_view line) {
  std::string_view v = line.substr(line.find(':') + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  return v;
}

// Takes one complete response off the front of `in`. The servers measured here always send a
// Content-Length; a chunked or otherwise framed answer is reported malformed rather than guessed at.
inline Parse take_response(std::string& in, Response& out) {
  const std::size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos) return in.size() > 65536 ? Parse::malformed : Parse::incomplete;
  const std::string_view head(in.data(), head_end);
  if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return Parse::malformed;
  out = Response{};
  out.status = std::atoi(head.data() + 9);
  out.close = head.substr(0, 8) == "HTTP/1.0";
  std::optional<std::size_t> length;
  for (std::size_t at = head.find("\r\n"); at != std::string_view::npos;) {
    const std::size_t next = head.find("\r\n", at + 2);
    const std::string_view line = head.substr(at + 2, next == std::string_view::npos ? next : next - at - 2);
    if (header_is(line, "Content-Length")) length = std::strtoul(std::string(header_value(line)).c_str(), nullptr, 10);
    if (header_is(line, "Transfer-Encoding")) return Parse::malformed;
    if (header_is(line, "Connection") && strncasecmp(header_value(line).data(), "close", 5) == 0) out.close = true;
    at = next;
  }
  const std::size_t body = length.value_or(0);
  if (in.size() < head_end + 4 + body) return Parse::incomplete;
  out.duplicate = std::string_view(in).substr(head_end + 4, body).find("\"duplicate\":true") != std::string_view::npos;
  in.erase(0, head_end + 4 + body);
  return Parse::complete;
}

}  // namespace bench

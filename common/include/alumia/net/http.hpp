#pragma once
// Our own HTTP request/response types. Handlers and verifiers work on these, never on
// httplib types, so unit tests call them without sockets.
#include <alumia/base/error.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alumia::http {

// Header lines in the order received; names lower-cased; duplicates kept (PROVIDERS §0.4).
using Headers = std::vector<std::pair<std::string, std::string>>;

std::string to_lower(std::string_view s);
// First value of a header (name compared case-insensitively), or nullopt.
std::optional<std::string> header_value(const Headers& headers, std::string_view name);
std::size_t header_count(const Headers& headers, std::string_view name);

enum class ListenerKind { control, public_ };  // which listener a request came in on

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // decoded path without query
  std::string target;  // the request target exactly as received (path + '?' + raw query)
  Headers headers;
  std::multimap<std::string, std::string> query;  // decoded query parameters
  std::map<std::string, std::string> params;      // path parameters from the route pattern
  std::string body;                               // raw bytes, exactly as received
  std::string remote_addr;
  ListenerKind listener = ListenerKind::control;

  std::optional<std::string> header(std::string_view name) const { return header_value(headers, name); }
  std::optional<std::string> query_param(const std::string& name) const {
    auto it = query.find(name);
    if (it == query.end()) return std::nullopt;
    return it->second;
  }
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  Headers headers;  // extra headers
  std::string body;
  // Answer no sooner than this after it is ready (a refused API key is held, SPEC §2). The listener
  // keeps the connection suspended meanwhile and holds no worker: its sweeper resumes it when due.
  std::chrono::milliseconds hold{0};
};

// ---- outbound ----

struct OutboundRequest {
  std::string method = "GET";
  std::string url;
  Headers headers;
  std::string body;
  std::string content_type;  // empty: no body
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds timeout{10000};  // read/write timeout
  std::size_t max_response_bytes = 64 * 1024;
};

struct OutboundResponse {
  int status = 0;
  Headers headers;  // lower-cased names
  std::string body;
  std::optional<std::string> header(std::string_view name) const { return header_value(headers, name); }
};

// Outbound HTTP. The production client verifies TLS against the system store (plus an optional
// extra CA file), never follows redirects, caps the response body and allows plain http only to
// loopback literals. Transport failures come back as SERVICE_UNAVAILABLE.
class Client {
 public:
  virtual ~Client() = default;
  virtual Result<OutboundResponse> send(const OutboundRequest& request) = 0;
};

// Helpers for bodies.
std::string url_encode(std::string_view s);  // RFC 3986 unreserved kept, everything else %XX
std::string url_decode(std::string_view s, bool plus_as_space = true);
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);
// Parses application/x-www-form-urlencoded; keeps order and duplicates.
std::vector<std::pair<std::string, std::string>> form_decode(std::string_view body);

}  // namespace alumia::http

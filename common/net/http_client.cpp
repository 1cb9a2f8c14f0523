// Outbound HTTP over cpp-httplib: verified TLS, no redirects followed, bounded time and size.
#include <alumia/base/try.hpp>
#include <alumia/net/http_client.hpp>
#include <alumia/net/url.hpp>

#include <httplib.h>

namespace alumia::http {

Result<OutboundResponse> HttplibClient::send(const OutboundRequest& r) {
  TRY(url::check_outbound_url(r.url));
  auto u = TRY(url::parse(r.url));
  const std::string origin =
      u.scheme + "://" + (u.host_is_ipv6 ? "[" + u.host + "]" : u.host) + ":" + std::to_string(u.port);
  httplib::Client cli(origin);
  cli.set_follow_location(false);
  cli.enable_server_certificate_verification(true);
  if (!m_ca_file.empty()) cli.set_ca_cert_path(m_ca_file.c_str());
  cli.set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(r.connect_timeout));
  cli.set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(r.timeout));
  cli.set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(r.timeout));
  cli.set_keep_alive(false);
  httplib::Headers headers;
  for (const auto& [k, v] : r.headers) headers.emplace(k, v);
  std::string path = u.path + (u.query.empty() ? "" : "?" + u.query);

  httplib::Request req;
  req.method = r.method;
  req.path = path;
  req.headers = headers;
  req.body = r.body;
  if (!r.content_type.empty()) req.set_header("Content-Type", r.content_type);
  std::string body;
  bool too_big = false;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    if (body.size() + len > r.max_response_bytes) {
      too_big = true;
      return false;
    }
    body.append(data, len);
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  const bool ok = cli.send(req, res, err);
  if (too_big)
    return fail(ErrorCode::service_unavailable,
                "response from " + u.host + " exceeded " + std::to_string(r.max_response_bytes) + " bytes");
  if (!ok) return fail(ErrorCode::service_unavailable, "request to " + u.host + " failed: " + httplib::to_string(err));
  OutboundResponse out;
  out.status = res.status;
  for (const auto& [k, v] : res.headers) out.headers.emplace_back(to_lower(k), v);
  out.body = std::move(body);
  return out;
}

}  // namespace alumia::http

#include "server.hpp"

#include "routes.hpp"

#include <alumia/net/host_port.hpp>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <utility>

namespace alumia::daemon {
namespace {

void write_response(const http::Response& r, httplib::Response& res) {
  res.status = r.status;
  for (const auto& [k, v] : r.headers) res.set_header(k, v);
  res.set_header("X-Content-Type-Options", "nosniff");
  if (r.status == 204 || (r.body.empty() && r.status == 200 && r.content_type.empty())) {
    res.body.clear();
    return;
  }
  res.set_content(r.body, r.content_type.empty() ? "text/plain" : r.content_type);
}

// The route the pre-routing handler matched and admitted, for the handler of the same request, so that
// a request is matched once. cpp-httplib (0.11) runs both on the connection's thread, one right after
// the other, and its Request has no slot of ours; the request's address tells a stale entry.
struct Routed {
  const httplib::Request* request = nullptr;
  RouteMatch match;
};
thread_local Routed t_routed;

// Takes the body: cpp-httplib hands the handler a const view of a request it owns (a local of its
// connection loop, not const) and reads no body after the handler, so the body moves, not copies.
http::Request to_request(const httplib::Request& req, http::ListenerKind kind) {
  http::Request r;
  r.method = req.method;
  r.path = req.path;
  r.target = req.target;
  for (const auto& [k, v] : req.headers) {
    if (k == "REMOTE_ADDR" || k == "REMOTE_PORT" || k == "LOCAL_ADDR" || k == "LOCAL_PORT") continue;
    r.headers.emplace_back(http::to_lower(k), v);
  }
  for (const auto& [k, v] : req.params) r.query.emplace(k, v);
  r.body = std::move(const_cast<httplib::Request&>(req).body);
  r.remote_addr = req.remote_addr;
  r.listener = kind;
  return r;
}

bool host_allowed(const std::vector<std::string>& allowed, const std::string& host) {
  const std::string h = http::to_lower(host);
  return std::find(allowed.begin(), allowed.end(), h) != allowed.end();
}

}  // namespace

Result<std::pair<std::string, int>> parse_listen(const std::string& text) {
  auto hp = net::parse_host_port(text, "listen address");
  if (!hp) return std::unexpected(hp.error());
  return std::make_pair(std::move(hp->host), int{hp->port});
}

Listener::Listener(http::ListenerKind kind) : m_kind(kind), m_server(std::make_unique<httplib::Server>()) {
  (void)route_table();  // built (and its scopes checked) at start, not on the first request
  auto& s = *m_server;
  s.set_tcp_nodelay(true);  // without it keep-alive POSTs stall on Nagle + delayed ACK
  s.set_read_timeout(10, 0);
  s.set_write_timeout(10, 0);
  s.set_keep_alive_max_count(1000);
  s.set_keep_alive_timeout(5);
  s.set_payload_max_length(k_webhook_body_cap);

  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    t_routed = Routed{};
    const auto& allowed = m_kind == http::ListenerKind::control ? m_ctx->control_hosts : m_ctx->public_hosts;
    auto reject = [&](ErrorCode code, std::string msg) {
      write_response(error_response(Error{code, std::move(msg), 0}), res);
      return httplib::Server::HandlerResponse::Handled;
    };
    if (req.get_header_value_count("Host") != 1 || !host_allowed(allowed, req.get_header_value("Host")))
      return reject(ErrorCode::forbidden, "Host header not allowed: this listener answers only to its own address");
    if (req.has_header("Origin")) {
      const std::string origin = req.get_header_value("Origin");
      bool same = false;
      for (const auto& h : allowed) same = same || origin == "http://" + h || origin == "https://" + h;
      if (!same) return reject(ErrorCode::forbidden, "cross-origin requests are not allowed");
    }
    const bool has_body_method = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
    if (req.has_header("Transfer-Encoding"))
      return reject(ErrorCode::length_required, "chunked bodies are refused; send Content-Length");
    if (has_body_method && !req.has_header("Content-Length"))
      return reject(ErrorCode::length_required, "send a Content-Length header (chunked uploads are refused)");
    std::size_t length = 0;
    if (req.has_header("Content-Length")) {
      const std::string cl = req.get_header_value("Content-Length");
      auto [p, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), length);
      if (ec != std::errc{} || p != cl.data() + cl.size())
        return reject(ErrorCode::bad_request, "Content-Length is not a number");
    }
    // The one match of this request, and the body-size rule on Content-Length, before the body is read.
    RouteMatch m = match_route(req.method, req.path, m_kind);
    if (auto st = admit_body(*m_ctx, m, length); !st) return reject(st.error().code, st.error().message);
    t_routed = Routed{&req, std::move(m)};
    return httplib::Server::HandlerResponse::Unhandled;
  });

  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    http::Request r = to_request(req, m_kind);
    Routed routed = std::exchange(t_routed, Routed{});
    write_response(routed.request == &req ? dispatch(*m_ctx, r, std::move(routed.match)) : dispatch(*m_ctx, r), res);
  };
  s.Get(".*", handler);
  s.Post(".*", handler);
  s.Put(".*", handler);
  s.Patch(".*", handler);
  s.Delete(".*", handler);
  s.Options(".*", handler);
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    ErrorCode code = ErrorCode::bad_request;
    if (res.status == 404) code = ErrorCode::not_found;
    else if (res.status == 413) code = ErrorCode::payload_too_large;
    else if (res.status == 411) code = ErrorCode::length_required;
    else if (res.status >= 500) code = ErrorCode::internal;
    const int status = res.status;
    write_response(
        error_response(Error{code, "request rejected by the HTTP layer (status " + std::to_string(status) + ")", 0}),
        res);
    res.status = status;
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    write_response(error_response(Error{ErrorCode::internal, "internal error (see the daemon log)", 0}), res);
  });
}

Listener::~Listener() { stop(); }

Result<int> Listener::bind(const std::string& host, int port) {
  if (port == 0) {
    m_port = m_server->bind_to_any_port(host);
  } else {
    m_port = m_server->bind_to_port(host, port) ? port : -1;
  }
  if (m_port <= 0)
    return fail(ErrorCode::service_unavailable, "cannot listen on " + host + ":" + std::to_string(port) +
                                                    " (address in use? another alumia-connectd may be running)");
  return m_port;
}

void Listener::start(DaemonContext& ctx) {
  m_ctx = &ctx;
  m_thread = std::thread([this] { m_server->listen_after_bind(); });
}

void Listener::stop() {
  if (m_server && m_server->is_running()) m_server->stop();
  if (m_thread.joinable()) m_thread.join();
}

}  // namespace alumia::daemon

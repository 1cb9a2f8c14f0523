#pragma once
// One listener: a GNU libmicrohttpd daemon (its own epoll thread) and its own pool of workers. The
// poll thread reads and parses and judges each request head (http_head.hpp, Host allow-list, Origin,
// match_route, the body cap) before any body byte is read; everything that may block (the store,
// verification, outbound calls) runs on a worker, the connection suspended meanwhile. So an idle or
// slow connection costs a few KiB and no thread, and neither listener can stall the other.
// docs/ARCHITECTURE.md ("The listeners") says why libmicrohttpd and gives the figures.
#include "context.hpp"

#include <alumia/net/http.hpp>

#include <memory>
#include <string>

namespace alumia::daemon {

// The transport limits of a listener (settings http-*, trusted-proxies).
struct ListenerLimits {
  int max_connections = 3000;         // open connections; the excess is accepted and closed at once
  int max_connections_per_ip = 512;   // per client address; a trusted proxy: requests in flight per client
  int64_t header_timeout_ms = 10000;  // head complete within this, else 408 and close
  int idle_timeout_seconds = 5;       // nothing sent or received this long: closed
  int64_t body_min_rate = 1024;       // bytes/s a body averages after header_timeout_ms, else 408; 0: none
  int64_t body_budget = 64 << 20;     // bytes of bodies buffered at once (declared lengths), else 503
  std::string trusted_proxies;        // comma-separated addresses/CIDRs (net::TrustedProxies)
  int workers = 16;                   // the pool; its queue holds max_connections (one request each)
};

// The limits the settings give (both listeners take the same; the control listener trusts no proxy).
// Fails naming the setting when trusted-proxies does not parse.
Result<ListenerLimits> listener_limits(const Settings& settings, http::ListenerKind kind);

// Bound first (the daemon's first start step, so that its address is known to everything built
// after), then started with the complete context once every service exists.
class Listener {
 public:
  explicit Listener(http::ListenerKind kind);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds host:port (port 0 picks one) and listens; returns the bound port.
  Result<int> bind(const std::string& host, int port);
  // Serves `ctx` on the listener's own threads, with the limits of ctx.settings.
  Status start(DaemonContext& ctx);
  void stop();  // stops accepting, lets requests in flight finish, joins
  int port() const { return m_port; }

  struct Impl;

 private:
  http::ListenerKind m_kind;
  int m_fd = -1;
  int m_port = 0;
  std::unique_ptr<Impl> m_impl;
};

// Parses "host:port" / "[v6]:port"; port may be 0.
Result<std::pair<std::string, int>> parse_listen(const std::string& text);

}  // namespace alumia::daemon

#pragma once
// One listener: a cpp-httplib server whose every request goes through transport checks (Host
// allow-list, Origin, Content-Length, body cap) and then dispatch() over the route table.
#include "context.hpp"

#include <alumia/net/http.hpp>

#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace alumia::daemon {

// Bound first (the daemon's first start step, so that its address is known to everything built
// after), then started with the complete context once every service exists.
class Listener {
 public:
  explicit Listener(http::ListenerKind kind);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds host:port (port 0 picks one); returns the bound port.
  Result<int> bind(const std::string& host, int port);
  void start(DaemonContext& ctx);  // serves `ctx` on a background thread
  void stop();                     // stops accepting, lets in-flight requests finish, joins
  int port() const { return m_port; }

 private:
  DaemonContext* m_ctx = nullptr;  // set by start(), before the first request
  http::ListenerKind m_kind;
  std::unique_ptr<httplib::Server> m_server;
  std::thread m_thread;
  int m_port = 0;
};

// Parses "host:port" / "[v6]:port"; port may be 0.
Result<std::pair<std::string, int>> parse_listen(const std::string& text);

}  // namespace alumia::daemon

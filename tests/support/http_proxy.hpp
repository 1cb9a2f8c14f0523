#pragma once
// A reverse proxy in the test process, standing in for the TLS proxy that puts a public origin in front of
// the daemon's public listener: it binds its own address (port 0) before the daemon starts, so the
// daemon can be given its URL as ALUMIA_OAUTH_REDIRECT_BASE, and learns the upstream afterwards.
// Requests are forwarded as they come (method, target, headers, body) with Host rewritten to the
// upstream, as nginx's default `proxy_set_header Host $proxy_host` does; answers come back as they are
// (status, every header including each Set-Cookie, body). No redirect is followed.
//
// With several upstreams it is the round-robin balancer of the cluster tests (several daemons on one
// PostgreSQL, issue 17): each request goes to the next upstream; one that refuses the connection (a
// killed daemon) is skipped for that request, as haproxy's `option redispatch` does, and counted.
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace alumia::test {

class HttpProxy {
 public:
  // Listens on bind_host:0; url() names it by url_host (e.g. localhost: another origin than 127.0.0.1).
  explicit HttpProxy(const std::string& bind_host = "127.0.0.1", const std::string& url_host = "");
  ~HttpProxy();
  HttpProxy(const HttpProxy&) = delete;
  HttpProxy& operator=(const HttpProxy&) = delete;

  // http://HOST:PORT of the proxy itself.
  const std::string& url() const { return m_url; }
  // http://HOST:PORT the requests go to; until it is set, the proxy answers 502.
  void set_upstream(const std::string& origin);
  // Several origins, taken in turn.
  void set_upstreams(std::vector<std::string> origins);
  // Requests each upstream answered (index as given to set_upstreams).
  std::vector<int> answered() const;

 private:
  std::unique_ptr<httplib::Server> m_server;
  std::thread m_thread;
  std::string m_url;
  mutable std::mutex m_mutex;
  std::vector<std::string> m_upstreams;
  std::vector<int> m_answered;
  std::size_t m_next = 0;
};

}  // namespace alumia::test

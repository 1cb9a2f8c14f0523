#include "http_proxy.hpp"

#include "process.hpp"

#include <alumia/net/http.hpp>

#include <httplib.h>

#include <chrono>

#include <stdexcept>

namespace alumia::test {

HttpProxy::HttpProxy(const std::string& bind_host, const std::string& url_host)
    : m_server(std::make_unique<httplib::Server>()) {
  auto forward = [this](const httplib::Request& in, httplib::Response& out) {
    std::vector<std::string> upstreams;
    std::size_t first = 0;
    {
      std::lock_guard lock(m_mutex);
      upstreams = m_upstreams;
      first = m_next++;
    }
    if (upstreams.empty()) {
      out.status = 502;
      out.set_content("no upstream yet", "text/plain");
      return;
    }
    httplib::Request req;
    req.method = in.method;
    req.path = in.target;  // the target exactly as received, query included
    for (const auto& [k, v] : in.headers) {
      const std::string name = alumia::http::to_lower(k);
      if (name == "host" || name == "content-length" || name == "connection" || name == "remote_addr" ||
          name == "remote_port" || name == "local_addr" || name == "local_port")
        continue;
      req.headers.emplace(k, v);
    }
    req.body = in.body;
    if (!in.body.empty()) req.set_header("Content-Length", std::to_string(in.body.size()));
    httplib::Response res;
    httplib::Error err = httplib::Error::Unknown;
    bool sent = false;
    for (std::size_t tried = 0; tried < upstreams.size() && !sent; ++tried) {
      const std::size_t at = (first + tried) % upstreams.size();
      httplib::Client cli(upstreams[at]);
      cli.set_connection_timeout(5);
      cli.set_read_timeout(30);
      sent = cli.send(req, res, err);
      if (sent) {
        std::lock_guard lock(m_mutex);
        if (at < m_answered.size()) ++m_answered[at];
      } else if (err != httplib::Error::Connection) {
        break;  // the upstream took the request and failed: not safe to send it elsewhere
      }
    }
    if (!sent) {
      out.status = 502;
      out.set_content("upstream failed: " + httplib::to_string(err), "text/plain");
      return;
    }
    out.status = res.status;
    std::string type;
    for (const auto& [k, v] : res.headers) {
      const std::string name = alumia::http::to_lower(k);
      if (name == "content-length" || name == "transfer-encoding" || name == "connection" || name == "keep-alive")
        continue;
      if (name == "content-type") {
        type = v;
        continue;
      }
      out.headers.emplace(k, v);
    }
    out.body = res.body;
    if (!type.empty()) out.set_header("Content-Type", type);
  };
  m_server->Get(".*", forward);
  m_server->Post(".*", forward);
  m_server->Put(".*", forward);
  m_server->Patch(".*", forward);
  m_server->Delete(".*", forward);
  const int port = m_server->bind_to_any_port(bind_host);
  if (port <= 0) throw std::runtime_error("test proxy cannot bind " + bind_host);
  m_url = "http://" + (url_host.empty() ? bind_host : url_host) + ":" + std::to_string(port);
  m_thread = std::thread([this] { m_server->listen_after_bind(); });  // the socket already listens
}

HttpProxy::~HttpProxy() {
  // stop() is a no-op until the listening thread runs: wait for it (bounded).
  (void)eventually([&] { return m_server->is_running(); }, std::chrono::seconds(10), std::chrono::milliseconds(1));
  m_server->stop();
  if (m_thread.joinable()) m_thread.join();
}

void HttpProxy::set_upstream(const std::string& origin) { set_upstreams({origin}); }

void HttpProxy::set_upstreams(std::vector<std::string> origins) {
  std::lock_guard lock(m_mutex);
  m_upstreams = std::move(origins);
  m_answered.assign(m_upstreams.size(), 0);
}

std::vector<int> HttpProxy::answered() const {
  std::lock_guard lock(m_mutex);
  return m_answered;
}

}  // namespace alumia::test

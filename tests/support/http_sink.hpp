#pragma once
// An HTTP server in the test process on 127.0.0.1:0, for what the daemon calls out to (a relay target):
// the routes a test gives it, served on a thread from construction to destruction. Each test keeps
// what it records in its own handlers; this owns only the server's life (bound before the first
// request, running before the constructor returns, stopped and joined by the destructor).
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace alumia::test {

class HttpSink {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  // POST routes: exact paths and their handlers.
  explicit HttpSink(std::vector<std::pair<std::string, Handler>> posts);
  ~HttpSink();
  HttpSink(const HttpSink&) = delete;
  HttpSink& operator=(const HttpSink&) = delete;

  // A relay target that answers 200 on /ok and 500 on /fail.
  static HttpSink ok_and_fail();

  int port() const { return m_port; }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(m_port) + path; }

 private:
  std::unique_ptr<httplib::Server> m_server;
  std::thread m_thread;
  int m_port = 0;
};

}  // namespace alumia::test

#include "http_sink.hpp"

#include "process.hpp"

#include <httplib.h>
#include <catch2/catch.hpp>

#include <chrono>

namespace alumia::test {

HttpSink::HttpSink(std::vector<std::pair<std::string, Handler>> posts) : m_server(std::make_unique<httplib::Server>()) {
  for (auto& [path, handler] : posts) m_server->Post(path, std::move(handler));
  // cpp-httplib gives each kept-alive connection a pool thread for its whole life (8 by default here): a
  // relay's connections beyond that would wait for a thread, and their requests reach the handler late.
  // A target must answer what it is sent, so the sink has a thread for every connection the tests open.
  m_server->new_task_queue = [] { return new httplib::ThreadPool(64); };
  m_port = m_server->bind_to_any_port("127.0.0.1");
  REQUIRE(m_port > 0);
  m_thread = std::thread([this] { m_server->listen_after_bind(); });
  REQUIRE(eventually([&] { return m_server->is_running(); }, std::chrono::seconds(5)));
}

HttpSink HttpSink::ok_and_fail() {
  return HttpSink({{"/ok", [](const httplib::Request&, httplib::Response& res) { res.status = 200; }},
                   {"/fail", [](const httplib::Request&, httplib::Response& res) { res.status = 500; }}});
}

HttpSink::~HttpSink() {
  m_server->stop();
  if (m_thread.joinable()) m_thread.join();
}

}  // namespace alumia::test

#pragma once
// What the local fakes of provider APIs (fake_github.hpp, fake_stripe.hpp, fake_telegram.hpp) share: an
// httplib server on 127.0.0.1:0 served from its own thread, one lock, every call recorded (method, path,
// query, headers, body), scripted answers for the next calls, and a page size for listings. A fake
// derives from FakeApi, registers its routes on server() wrapped in recorded(), calls start() at the end
// of its constructor and stop() first in its destructor (so that no handler runs while the fake's own
// state is being destroyed). Handlers run under the lock; so must every accessor of the fake's state.
#include "process.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace alumia::test {

struct FakeCall {
  std::string method;
  std::string path;
  std::string query;                           // raw, without '?'
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

inline FakeCall record_call(const httplib::Request& req) {
  FakeCall c{req.method, req.path, {}, {}, req.body};
  const auto q = req.target.find('?');
  if (q != std::string::npos) c.query = req.target.substr(q + 1);
  for (const auto& [k, v] : req.headers) {
    std::string name = k;
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
    c.headers[name] = v;
  }
  return c;
}

class FakeApi {
 public:
  // An answer given instead of the fake's own, once.
  struct Scripted {
    int status = 500;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
  };

  FakeApi(const FakeApi&) = delete;
  FakeApi& operator=(const FakeApi&) = delete;
  ~FakeApi() { stop(); }

  std::string base() const { return "http://127.0.0.1:" + std::to_string(m_port); }

  // Every call, in order; a request no route matched too, so that a test expecting no call sees it.
  std::vector<FakeCall> calls() {
    std::lock_guard lock(m_mutex);
    return m_calls;
  }
  std::size_t call_count() {
    std::lock_guard lock(m_mutex);
    return m_calls.size();
  }
  void clear_calls() {
    std::lock_guard lock(m_mutex);
    m_calls.clear();
  }
  // The next calls the fake lets be scripted (which those are is the fake's to say) answer this
  // instead, in order, one each.
  void script(Scripted s) { script_for({}, std::move(s)); }
  // Listings are cut into pages of at most this many, whatever the request asks.
  void set_page_size(std::size_t n) {
    std::lock_guard lock(m_mutex);
    m_page_size = n;
  }

 protected:
  // `content_type`: what the fake's JSON answers are labelled.
  explicit FakeApi(std::string content_type) : m_content_type(std::move(content_type)) {}

  httplib::Server& server() { return m_server; }

  // Serves the routes registered so far, on a port of its own.
  void start() {
    m_server.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // a route's own error answer, already recorded
      std::lock_guard lock(m_mutex);
      m_calls.push_back(record_call(req));
    });
    m_port = m_server.bind_to_any_port("127.0.0.1");
    REQUIRE(m_port > 0);
    m_thread = std::thread([this] { m_server.listen_after_bind(); });
    REQUIRE(eventually([this] { return m_server.is_running(); }));
  }
  void stop() {
    m_server.stop();
    if (m_thread.joinable()) m_thread.join();
  }

  // A route's handler behind the recording of the call, under the fake's one lock.
  template <class F>
  httplib::Server::Handler recorded(F handler) {
    return [this, handler](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(m_mutex);
      m_calls.push_back(record_call(req));
      handler(req, res);
    };
  }

  void reply(httplib::Response& res, int status, const nlohmann::json& body) const {
    res.status = status;
    res.set_content(body.dump(), m_content_type);
  }

  // Scripted answers are kept per key (a fake's method name, or none for script()).
  void script_for(const std::string& key, Scripted s) {
    std::lock_guard lock(m_mutex);
    m_scripted[key].push_back(std::move(s));
  }
  // Under the lock: answers the next scripted answer for `key`; false when there is none.
  bool answer_scripted(httplib::Response& res, const std::string& key = {}) {
    auto it = m_scripted.find(key);
    if (it == m_scripted.end() || it->second.empty()) return false;
    const Scripted s = std::move(it->second.front());
    it->second.pop_front();
    res.status = s.status;
    for (const auto& [k, v] : s.headers) res.set_header(k, v);
    res.set_content(s.body, m_content_type);
    return true;
  }

  // Under the lock.
  std::size_t page_size() const { return m_page_size; }

  std::mutex m_mutex;

 private:
  const std::string m_content_type;
  httplib::Server m_server;
  std::thread m_thread;
  int m_port = 0;
  std::vector<FakeCall> m_calls;
  std::map<std::string, std::deque<Scripted>> m_scripted;
  std::size_t m_page_size = 100;
};

}  // namespace alumia::test

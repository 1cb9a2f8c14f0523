#pragma once
// A local stand-in for the Telegram Bot API (the daemon's ALUMIA_TELEGRAM_API_BASE): getMe answers
// for the accepted bot tokens only and records every token it was asked about, on 127.0.0.1:0.
#include "process.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <catch2/catch.hpp>

#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace alumia::test {

class FakeTelegram {
 public:
  // `username` is the bot's name getMe reports (the connection's account label, after an @).
  explicit FakeTelegram(std::set<std::string> good_tokens, std::string username = "alumia_bot")
      : m_good(std::move(good_tokens)), m_username(std::move(username)) {
    m_server.Get(R"(/bot([^/]+)/getMe)", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string token = req.matches[1];
      {
        std::lock_guard lock(m_mutex);
        m_seen.push_back(token);
      }
      if (m_good.count(token)) {
        const nlohmann::json me{{"ok", true}, {"result", {{"id", 42}, {"is_bot", true}, {"username", m_username}}}};
        res.set_content(me.dump(), "application/json");
      } else {
        res.status = 401;
        res.set_content(R"({"ok":false,"error_code":401,"description":"Unauthorized"})", "application/json");
      }
    });
    m_port = m_server.bind_to_any_port("127.0.0.1");
    REQUIRE(m_port > 0);
    m_thread = std::thread([this] { m_server.listen_after_bind(); });
    REQUIRE(eventually([this] { return m_server.is_running(); }));
  }
  FakeTelegram(const FakeTelegram&) = delete;
  FakeTelegram& operator=(const FakeTelegram&) = delete;
  ~FakeTelegram() {
    m_server.stop();
    if (m_thread.joinable()) m_thread.join();
  }

  std::string base() const { return "http://127.0.0.1:" + std::to_string(m_port); }
  // The bot tokens getMe was called with, in order.
  std::vector<std::string> seen() {
    std::lock_guard lock(m_mutex);
    return m_seen;
  }

 private:
  const std::set<std::string> m_good;
  const std::string m_username;
  httplib::Server m_server;
  std::thread m_thread;
  int m_port = 0;
  std::mutex m_mutex;
  std::vector<std::string> m_seen;
};

}  // namespace alumia::test

#pragma once
// A local stand-in for the Telegram Bot API (the daemon's ALUMIA_TELEGRAM_API_BASE), on 127.0.0.1:0:
// getMe answers for the accepted bot tokens only and records every token it was asked about;
// setWebhook, getWebhookInfo and deleteWebhook keep one webhook per bot the way Telegram does and
// record every call (method, token, JSON body). fail_next() scripts an error answer (401, 400, 429
// with parameters.retry_after, 5xx) for the next call of a method.
#include "process.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <catch2/catch.hpp>

#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace alumia::test {

class FakeTelegram {
 public:
  struct Call {
    std::string method;  // "setWebhook", ...
    std::string token;
    nlohmann::json body;  // the JSON body (an empty object for a bodyless GET)
  };
  struct Webhook {
    std::string url;
    std::string secret_token;
    nlohmann::json allowed_updates = nlohmann::json::array();
    int pending_update_count = 0;
  };

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
        unauthorized(res);
      }
    });
    const auto webhook_method = [this](const httplib::Request& req, httplib::Response& res) {
      const std::string token = req.matches[1];
      const std::string method = req.matches[2];
      nlohmann::json body =
          req.body.empty() ? nlohmann::json::object() : nlohmann::json::parse(req.body, nullptr, false);
      std::lock_guard lock(m_mutex);
      m_calls.push_back({method, token, body});
      if (auto scripted = take_failure(method)) {
        res.status = scripted->first;
        res.set_content(scripted->second.dump(), "application/json");
        return;
      }
      if (!m_good.count(token)) return unauthorized(res);
      if (!body.is_object()) {
        res.status = 400;
        res.set_content(R"({"ok":false,"error_code":400,"description":"Bad Request: can't parse JSON"})",
                        "application/json");
        return;
      }
      Webhook& hook = m_hooks[token];
      nlohmann::json result = true;
      if (method == "setWebhook") {
        hook.url = body.value("url", "");
        hook.secret_token = body.value("secret_token", "");
        if (body.contains("allowed_updates")) hook.allowed_updates = body["allowed_updates"];
        if (body.value("drop_pending_updates", false)) hook.pending_update_count = 0;
      } else if (method == "deleteWebhook") {
        hook.url.clear();
        hook.secret_token.clear();
        if (body.value("drop_pending_updates", false)) hook.pending_update_count = 0;
      } else if (method == "getWebhookInfo") {
        result = {{"url", hook.url},
                  {"has_custom_certificate", false},
                  {"pending_update_count", hook.pending_update_count},
                  {"max_connections", 40}};
        if (!hook.url.empty() && !hook.allowed_updates.empty()) result["allowed_updates"] = hook.allowed_updates;
        if (m_last_error) {
          result["last_error_date"] = m_last_error->first;
          result["last_error_message"] = m_last_error->second;
        }
      } else {
        res.status = 404;
        res.set_content(R"({"ok":false,"error_code":404,"description":"Not Found"})", "application/json");
        return;
      }
      res.set_content(nlohmann::json{{"ok", true}, {"result", result}}.dump(), "application/json");
    };
    m_server.Post(R"(/bot([^/]+)/(setWebhook|deleteWebhook|getWebhookInfo))", webhook_method);
    m_server.Get(R"(/bot([^/]+)/(getWebhookInfo|deleteWebhook))", webhook_method);
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
  // The setWebhook / getWebhookInfo / deleteWebhook calls, in order.
  std::vector<Call> calls() {
    std::lock_guard lock(m_mutex);
    return m_calls;
  }
  std::vector<Call> calls_of(const std::string& method) {
    std::vector<Call> out;
    for (auto& c : calls())
      if (c.method == method) out.push_back(c);
    return out;
  }
  // The bot's webhook as Telegram would hold it now.
  Webhook webhook(const std::string& token) {
    std::lock_guard lock(m_mutex);
    return m_hooks[token];
  }
  void set_pending(const std::string& token, int count) {
    std::lock_guard lock(m_mutex);
    m_hooks[token].pending_update_count = count;
  }
  // getWebhookInfo reports this last delivery error (unix seconds, message) from now on.
  void set_last_error(int64_t unix_seconds, std::string message) {
    std::lock_guard lock(m_mutex);
    m_last_error.emplace(unix_seconds, std::move(message));
  }
  // The next call of `method` answers `status` with Telegram's error shape; `retry_after` adds
  // parameters.retry_after (429).
  void fail_next(const std::string& method, int status, const std::string& description,
                 std::optional<int> retry_after = std::nullopt) {
    nlohmann::json body{{"ok", false}, {"error_code", status}, {"description", description}};
    if (retry_after) body["parameters"] = {{"retry_after", *retry_after}};
    std::lock_guard lock(m_mutex);
    m_failures[method].emplace_back(status, std::move(body));
  }

 private:
  static void unauthorized(httplib::Response& res) {
    res.status = 401;
    res.set_content(R"({"ok":false,"error_code":401,"description":"Unauthorized"})", "application/json");
  }
  // Under m_mutex.
  std::optional<std::pair<int, nlohmann::json>> take_failure(const std::string& method) {
    auto it = m_failures.find(method);
    if (it == m_failures.end() || it->second.empty()) return std::nullopt;
    auto f = std::move(it->second.front());
    it->second.pop_front();
    return f;
  }

  const std::set<std::string> m_good;
  const std::string m_username;
  httplib::Server m_server;
  std::thread m_thread;
  int m_port = 0;
  std::mutex m_mutex;
  std::vector<std::string> m_seen;
  std::vector<Call> m_calls;
  std::map<std::string, Webhook> m_hooks;
  std::map<std::string, std::deque<std::pair<int, nlohmann::json>>> m_failures;
  std::optional<std::pair<int64_t, std::string>> m_last_error;
};

}  // namespace alumia::test

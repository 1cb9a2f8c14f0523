#pragma once
// A local stand-in for the Telegram Bot API (the daemon's ALUMIA_TELEGRAM_API_BASE), on 127.0.0.1:0:
// getMe answers for the accepted bot tokens only, and seen() lists every token it was asked about;
// setWebhook, getWebhookInfo and deleteWebhook keep one webhook per bot the way Telegram does, and
// calls() lists those calls (method, token, JSON body). fail_next() scripts an error answer (401, 400,
// 429 with parameters.retry_after, 5xx) for the next call of a method. The server, the lock and the
// recording are FakeApi's; only these views of the recorded calls are shown.
#include "fake_call.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace alumia::test {

class FakeTelegram : private FakeApi {
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
      : FakeApi("application/json"), m_good(std::move(good_tokens)), m_username(std::move(username)) {
    server().Get(
        R"(/bot([^/]+)/getMe)", recorded([this](const httplib::Request& req, httplib::Response& res) {
          if (!m_good.count(req.matches[1])) return unauthorized(res);
          reply(res, 200, {{"ok", true}, {"result", {{"id", 42}, {"is_bot", true}, {"username", m_username}}}});
        }));
    const auto webhook_method = recorded([this](const httplib::Request& req, httplib::Response& res) {
      const std::string token = req.matches[1];
      const std::string method = req.matches[2];
      if (answer_scripted(res, method)) return;
      if (!m_good.count(token)) return unauthorized(res);
      const nlohmann::json body = body_of(req.body);
      if (!body.is_object()) return failure(res, 400, "Bad Request: can't parse JSON");
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
        return failure(res, 404, "Not Found");
      }
      reply(res, 200, {{"ok", true}, {"result", result}});
    });
    server().Post(R"(/bot([^/]+)/(setWebhook|deleteWebhook|getWebhookInfo))", webhook_method);
    server().Get(R"(/bot([^/]+)/(getWebhookInfo|deleteWebhook))", webhook_method);
    start();
  }
  ~FakeTelegram() { stop(); }

  using FakeApi::base;
  // The bot tokens getMe was called with, in order.
  std::vector<std::string> seen() {
    std::vector<std::string> out;
    for (const auto& c : FakeApi::calls())
      if (const auto bot = bot_call(c.path); bot && bot->second == "getMe") out.push_back(bot->first);
    return out;
  }
  // The setWebhook / getWebhookInfo / deleteWebhook calls, in order.
  std::vector<Call> calls() {
    std::vector<Call> out;
    for (const auto& c : FakeApi::calls()) {
      const auto bot = bot_call(c.path);
      if (bot && (bot->second == "setWebhook" || bot->second == "getWebhookInfo" || bot->second == "deleteWebhook"))
        out.push_back({bot->second, bot->first, body_of(c.body)});
    }
    return out;
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
    script_for(method, {status, error_of(status, description, retry_after).dump(), {}});
  }

 private:
  // Telegram's error shape.
  static nlohmann::json error_of(int status, const std::string& description,
                                 std::optional<int> retry_after = std::nullopt) {
    nlohmann::json body{{"ok", false}, {"error_code", status}, {"description", description}};
    if (retry_after) body["parameters"] = {{"retry_after", *retry_after}};
    return body;
  }
  void failure(httplib::Response& res, int status, const std::string& description) const {
    reply(res, status, error_of(status, description));
  }
  void unauthorized(httplib::Response& res) const { failure(res, 401, "Unauthorized"); }
  // A Bot API body: JSON, or an empty object for a bodyless GET.
  static nlohmann::json body_of(const std::string& body) {
    return body.empty() ? nlohmann::json::object() : nlohmann::json::parse(body, nullptr, false);
  }
  // The bot token and Bot API method of a call to /bot<token>/<method>.
  static std::optional<std::pair<std::string, std::string>> bot_call(const std::string& path) {
    if (!path.starts_with("/bot")) return std::nullopt;
    const auto slash = path.find('/', 4);
    if (slash == std::string::npos || slash == 4 || path.find('/', slash + 1) != std::string::npos) return std::nullopt;
    return std::pair{path.substr(4, slash - 4), path.substr(slash + 1)};
  }

  const std::set<std::string> m_good;
  const std::string m_username;
  std::map<std::string, Webhook> m_hooks;
  std::optional<std::pair<int64_t, std::string>> m_last_error;
};

}  // namespace alumia::test

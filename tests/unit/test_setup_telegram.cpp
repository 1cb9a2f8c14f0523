// The telegram registrar (common/setup/telegram.cpp) against scripted Bot API answers: the calls it
// makes (setWebhook, getWebhookInfo, deleteWebhook), the report, its checks before any call, and the
// mapping of Bot API refusals to our codes (registrar.hpp), with the bot token in no message.
#include <alumia/setup/registrar.hpp>

#include "fakes.hpp"
#include "setup_test_util.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>

namespace {

using alumia::ErrorCode;
using alumia::setup::Registrar;
using alumia::setup::RegistrarContext;
using alumia::setup::SetupOptions;
using alumia::test::ScriptedHttp;
using nlohmann::json;

const std::string k_token = "123456789:AAEunitunitunitunitunitunit_-0123456";
const std::string k_api = "https://api.telegram.org";
const std::string k_receive =
    "https://hooks.example.com/api/v1/connectors/webhooks/telegram/0b0e2c1a-1111-4222-8333-444455556666";
const std::string k_secret(64, 'S');

struct Fixture : alumia::setup::testing::RegistrarHarness<ScriptedHttp> {
  const Registrar& registrar = *alumia::setup::find_registrar(alumia::Provider::telegram);

  RegistrarContext ctx(const std::string& receive_url = k_receive) {
    return context("conn-1", receive_url, k_api, k_token, k_secret);
  }
  std::string url(const std::string& method) const { return k_api + "/bot" + k_token + "/" + method; }
  void expect_ok(const std::string& http_method, const std::string& method, const json& result) {
    http.expect(http_method, url(method), 200, json{{"ok", true}, {"result", result}}.dump());
  }
};

// The error of a failed apply, checked to carry no part of the bot token.
alumia::Error apply_error(Fixture& f) {
  return alumia::setup::testing::apply_error(f.registrar, f.ctx(), SetupOptions{}, {k_token, "AAEunit"});
}

}  // namespace

TEST_CASE("telegram registrar: setWebhook with url, secret_token, allowed_updates; getWebhookInfo reported",
          "[setup]") {
  Fixture f;
  REQUIRE(f.registrar.generates_secret());
  f.expect_ok("POST", "setWebhook", true);
  f.expect_ok("GET", "getWebhookInfo",
              {{"url", k_receive},
               {"has_custom_certificate", false},
               {"pending_update_count", 4},
               {"last_error_date", 1764400000},
               {"last_error_message", "Wrong response from the webhook: 503 Service Unavailable"},
               {"max_connections", 40}});
  auto reg = f.registrar.apply(f.ctx(), SetupOptions{});
  INFO((reg ? std::string() : reg.error().message));
  REQUIRE(reg);
  const auto sent = f.http.sent();
  REQUIRE(sent.size() == 2);
  CHECK(sent[0].content_type == "application/json");
  const json body = json::parse(sent[0].body);
  CHECK(body == json{{"url", k_receive}, {"secret_token", k_secret}, {"allowed_updates", json::array()}});
  CHECK(reg->report["url"] == k_receive);
  CHECK(reg->report["pendingUpdateCount"] == 4);
  CHECK(reg->report["lastErrorDate"] == "2025-11-29T07:06:40.000Z");
  CHECK(reg->report["lastErrorMessage"] == "Wrong response from the webhook: 503 Service Unavailable");
  CHECK(reg->report["maxConnections"] == 40);
  CHECK(reg->report["allowedUpdates"].is_null());
  CHECK(reg->state["url"] == k_receive);
  CHECK_FALSE(reg->issued_secret);
  CHECK(reg->report.dump().find(k_secret) == std::string::npos);
  CHECK(reg->state.dump().find(k_secret) == std::string::npos);

  // --events and --drop-pending.
  SetupOptions o;
  o.events = std::vector<std::string>{"message", "edited_message"};
  o.drop_pending = true;
  f.expect_ok("POST", "setWebhook", true);
  f.expect_ok("GET", "getWebhookInfo", {{"url", k_receive}, {"pending_update_count", 0}});
  REQUIRE(f.registrar.apply(f.ctx(), o));
  const json body2 = json::parse(f.http.sent()[2].body);
  CHECK(body2["allowed_updates"] == json::array({"message", "edited_message"}));
  CHECK(body2["drop_pending_updates"] == true);
}

TEST_CASE("telegram registrar: deleteWebhook, with drop_pending_updates when asked", "[setup]") {
  Fixture f;
  SetupOptions o;
  o.remove = true;
  o.drop_pending = true;
  f.expect_ok("POST", "deleteWebhook", true);
  f.expect_ok("GET", "getWebhookInfo", {{"url", ""}, {"pending_update_count", 0}});
  auto reg = f.registrar.remove(f.ctx(), o);
  REQUIRE(reg);
  CHECK(json::parse(f.http.sent()[0].body) == json{{"drop_pending_updates", true}});
  CHECK(reg->report["url"] == "");
  CHECK_FALSE(reg->still_registered);
}

TEST_CASE("telegram registrar: checks come before any call", "[setup]") {
  Fixture f;
  SetupOptions repo;
  repo.repo = "o/r";
  CHECK(f.registrar.check(repo).error().code == ErrorCode::bad_request);
  SetupOptions bad_events;
  bad_events.events = std::vector<std::string>{"message", "Callback Query"};
  CHECK(f.registrar.check(bad_events).error().code == ErrorCode::validation_error);
  CHECK(f.registrar.check(SetupOptions{}));
  // Telegram delivers to 443, 80, 88 and 8443 only.
  for (const char* base :
       {"https://hooks.example.com:8443", "https://hooks.example.com:88", "http://hooks.example.com"})
    CHECK(f.registrar.apply(f.ctx(std::string(base) + "/x"), SetupOptions{}).error().code !=
          ErrorCode::validation_error);  // passed the port check; the unscripted call fails
  const auto before = f.http.sent_count();
  auto refused = f.registrar.apply(f.ctx("https://hooks.example.com:9443/x"), SetupOptions{});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == ErrorCode::validation_error);
  CHECK(refused.error().message.find("443, 80, 88 and 8443") != std::string::npos);
  CHECK(f.http.sent_count() == before);
}

TEST_CASE("telegram registrar: Bot API refusals in our codes, the token in no message", "[setup]") {
  Fixture f;
  const auto refusal = [&](int status, json body) {
    f.http.expect("POST", f.url("setWebhook"), status, body.dump());
    return apply_error(f);
  };
  for (int status : {401, 403, 404}) {
    const auto e = refusal(status, {{"ok", false}, {"error_code", status}, {"description", "Unauthorized"}});
    CHECK(e.code == ErrorCode::validation_error);
    CHECK(e.message.find("refused the bot token of connection conn-1") != std::string::npos);
    CHECK(e.message.find("alumia-connect credentials conn-1") != std::string::npos);
  }
  auto e = refusal(400, {{"ok", false},
                         {"error_code", 400},
                         {"description", "Bad Request: bad webhook: HTTPS url must be provided for webhook"}});
  CHECK(e.code == ErrorCode::validation_error);
  CHECK(e.message.find("HTTPS url must be provided for webhook") != std::string::npos);
  e = refusal(429, {{"ok", false},
                    {"error_code", 429},
                    {"description", "Too Many Requests: retry after 31"},
                    {"parameters", {{"retry_after", 31}}}});
  CHECK(e.code == ErrorCode::too_many_requests);
  CHECK(e.retry_after_seconds == 31);
  e = refusal(429, {{"ok", false}, {"error_code", 429}, {"description", "Too Many Requests"}});
  CHECK(e.code == ErrorCode::too_many_requests);
  CHECK(e.retry_after_seconds == 0);
  for (int status : {500, 502, 504}) CHECK(refusal(status, {{"ok", false}}).code == ErrorCode::service_unavailable);
  // Not the Bot API's shape: a 200 that is not ok, or not JSON.
  CHECK(refusal(200, {{"ok", false}}).code == ErrorCode::service_unavailable);
  f.http.expect("POST", f.url("setWebhook"), 200, "<html>proxy</html>");
  CHECK(f.registrar.apply(f.ctx(), SetupOptions{}).error().code == ErrorCode::service_unavailable);

  // A transport failure whose text quotes the URL (the scripted client's does): scrubbed.
  const auto unreachable = apply_error(f);
  CHECK(unreachable.code == ErrorCode::service_unavailable);
  CHECK(unreachable.message.find("/bot***/setWebhook") != std::string::npos);
}

TEST_CASE("setup registry: telegram has a registrar, providers without a setup command have none", "[setup]") {
  const Registrar* telegram = alumia::setup::find_registrar(alumia::Provider::telegram);
  REQUIRE(telegram);
  CHECK(telegram->provider() == alumia::Provider::telegram);
  for (auto p : {alumia::Provider::slack, alumia::Provider::discord, alumia::Provider::whatsapp,
                 alumia::Provider::twilio, alumia::Provider::gmail, alumia::Provider::linear})
    CHECK(alumia::setup::find_registrar(p) == nullptr);
}

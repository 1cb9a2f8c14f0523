// setup-webhook for Telegram (SPEC §8) with the real daemon and CLI against a local fake Bot API that
// records each call: setWebhook with a generated secret_token on the public base URL, then a real
// delivery carrying that token to the registered path arrives as an event and a job; re-running
// keeps the endpoint and the secret; --remove calls deleteWebhook and disables the endpoint; each
// Bot API refusal gives its message and exit code; an unsafe base URL is refused before any call.
#include "cli_helpers.hpp"
#include "fake_telegram.hpp"
#include "process.hpp"
#include "webhook_helpers.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <regex>

namespace {

using alumia::test::cli;
using alumia::test::Daemon;
using alumia::test::daemon_options;
using alumia::test::eventually;
using alumia::test::FakeTelegram;
using alumia::test::http_request;
using alumia::test::HttpReply;
using alumia::test::json_out;
using alumia::test::stop_clean;
using alumia::test::TempDir;
using alumia::test::webhooks::events_of;
using nlohmann::json;

const std::string k_token = "123456789:AAEsetupsetupsetupsetupsetup_-0123456";
const std::string k_base = "https://hooks.example.com";

Daemon::Options options_for(const FakeTelegram& tg, const std::string& base = k_base) {
  alumia::test::EnvOverrides env{{"ALUMIA_TELEGRAM_API_BASE", tg.base()}};
  env["CONNECTOR_WEBHOOK_BASE_URL"] = base.empty() ? std::optional<std::string>() : std::optional<std::string>(base);
  return daemon_options(env);
}

// An active telegram connection (the fake's getMe accepts the token).
std::string connect_telegram(const Daemon& d, const std::string& token = k_token) {
  auto started = d.api("POST", "/api/v1/connections", R"({"connectorSlug":"telegram"})");
  INFO(started.body);
  REQUIRE((started.status == 201 || started.status == 200));
  const std::string id = started.json()["data"]["connection"]["id"];
  auto submitted =
      d.api("POST", "/api/v1/connections/" + id + "/credentials", json{{"values", {{"bot_token", token}}}}.dump());
  INFO(submitted.body);
  REQUIRE(submitted.status == 200);
  return id;
}

std::string setup_path(const std::string& id) { return "/api/v1/connections/" + id + "/commands/setup-webhook"; }

// The path of a receive URL (the daemon's own listener serves it; the public host is not reached).
std::string path_of(const std::string& receive_url) {
  REQUIRE(receive_url.rfind(k_base, 0) == 0);
  return receive_url.substr(k_base.size());
}

HttpReply deliver(const Daemon& d, const std::string& path, const std::string& secret_token, int update_id) {
  const json update{{"update_id", update_id},
                    {"message", {{"message_id", update_id}, {"date", 1764400000}, {"text", "hello"}}}};
  return http_request("POST", d.url() + path,
                      {{"Content-Type", "application/json"}, {"X-Telegram-Bot-Api-Secret-Token", secret_token}},
                      update.dump());
}

json jobs_of_event(const Daemon& d, const std::string& event_id) {
  auto r = d.api("GET", "/api/v1/jobs?event=" + event_id);
  INFO(r.body);
  REQUIRE(r.status == 200);
  return r.json()["data"]["items"];
}

std::string error_of(const HttpReply& r) {
  const json j = r.json();
  return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
}

}  // namespace

TEST_CASE("setup-webhook telegram (CLI): register, a delivery arrives, re-run keeps everything, remove",
          "[setup-telegram]") {
  FakeTelegram tg({k_token});
  TempDir home;
  Daemon d(home.path(), options_for(tg));
  const std::string id = connect_telegram(d);

  auto first = cli(d, {"--json", "setup-webhook", id});
  REQUIRE_EXIT(first, 0);
  const json data = json_out(first);
  const json endpoint = data["endpoint"];
  const std::string endpoint_id = endpoint["id"];
  CHECK(data["connectionId"] == id);
  CHECK(data["endpointCreated"] == true);
  CHECK(data["removed"] == false);
  CHECK(endpoint["provider"] == "telegram");
  CHECK(endpoint["status"] == "active");
  CHECK(endpoint["connectionId"] == id);
  const std::string receive_url = data["receiveUrl"];
  CHECK(receive_url == k_base + "/api/v1/connectors/webhooks/telegram/" + endpoint_id);
  CHECK(endpoint["receiveUrl"] == receive_url);  // the daemon's base URL is the one registered
  CHECK(data["provider"]["url"] == receive_url);
  CHECK(data["provider"]["pendingUpdateCount"] == 0);
  CHECK(data["provider"]["lastErrorMessage"].is_null());
  CHECK_FALSE(data.contains("secret"));

  // setWebhook got the URL, a 64-character secret_token and the default update set.
  auto sets = tg.calls_of("setWebhook");
  REQUIRE(sets.size() == 1);
  CHECK(sets[0].token == k_token);
  CHECK(sets[0].body["url"] == receive_url);
  CHECK(sets[0].body["allowed_updates"] == json::array());
  CHECK_FALSE(sets[0].body.contains("drop_pending_updates"));
  const std::string secret = sets[0].body["secret_token"];
  CHECK(std::regex_match(secret, std::regex("[A-Za-z0-9_-]{64}")));
  CHECK(tg.calls_of("getWebhookInfo").size() == 1);
  // The secret and the bot token went to Telegram only.
  CHECK(first.out.find(secret) == std::string::npos);
  CHECK(first.err.find(secret) == std::string::npos);
  CHECK(first.out.find(k_token) == std::string::npos);

  // A delivery as Telegram sends it, to the registered path with the registered token.
  const std::string path = path_of(receive_url);
  auto delivered = deliver(d, path, secret, 1001);
  INFO(delivered.body);
  REQUIRE(delivered.status == 200);
  json events;
  REQUIRE(eventually([&] {
    events = events_of(d, endpoint_id);
    return events.size() == 1;
  }));
  CHECK(events[0]["provider"] == "telegram");
  CHECK(jobs_of_event(d, events[0]["id"]).size() == 1);
  // The wrong token is refused.
  CHECK(deliver(d, path, std::string(64, 'x'), 1002).status == 401);

  // The second run: the same endpoint, the same secret, the hook set again (idempotent).
  tg.set_pending(k_token, 3);
  tg.set_last_error(1764400000, "Connection timed out");
  auto second = cli(d, {"setup-webhook", id});
  REQUIRE_EXIT(second, 0);
  INFO(second.out);
  CHECK(second.out.find(endpoint_id) != std::string::npos);
  CHECK(second.out.find(receive_url) != std::string::npos);
  CHECK(second.out.find("(created)") == std::string::npos);
  CHECK(second.out.find("pending update count") != std::string::npos);
  CHECK(second.out.find("2025-11-29 07:06:40 Connection timed out") != std::string::npos);  // last error
  CHECK(second.out.find(secret) == std::string::npos);
  sets = tg.calls_of("setWebhook");
  REQUIRE(sets.size() == 2);
  CHECK(sets[1].body["secret_token"] == secret);
  CHECK(sets[1].body["url"] == receive_url);
  auto list = d.api("GET", "/api/v1/webhook-endpoints");
  REQUIRE(list.status == 200);
  CHECK(list.json()["data"]["items"].size() == 1);
  CHECK(deliver(d, path, secret, 1003).status == 200);

  // --remove: deleteWebhook (with drop_pending_updates when asked), the endpoint disabled.
  auto removed = cli(d, {"--json", "setup-webhook", id, "--remove", "--drop-pending"});
  REQUIRE_EXIT(removed, 0);
  const json gone = json_out(removed);
  CHECK(gone["removed"] == true);
  CHECK(gone["endpoint"]["id"] == endpoint_id);
  CHECK(gone["endpoint"]["status"] == "disabled");
  CHECK(gone["provider"]["url"] == "");
  auto deletes = tg.calls_of("deleteWebhook");
  REQUIRE(deletes.size() == 1);
  CHECK(deletes[0].body["drop_pending_updates"] == true);
  CHECK(tg.webhook(k_token).url.empty());
  CHECK(deliver(d, path, secret, 1004).status == 404);
  // Nothing is registered any more: a second removal says so and calls nothing.
  const auto calls_before = tg.calls().size();
  auto again = cli(d, {"setup-webhook", id, "--remove"});
  REQUIRE_EXIT(again, 5);
  CHECK(again.err.find("nothing to remove") != std::string::npos);
  CHECK(tg.calls().size() == calls_before);

  // Setting it up again re-enables the same endpoint with the same secret.
  auto back = json_out(cli(d, {"--json", "setup-webhook", id}));
  CHECK(back["endpoint"]["id"] == endpoint_id);
  CHECK(back["endpoint"]["status"] == "active");
  CHECK(back["endpointCreated"] == false);
  CHECK(tg.calls_of("setWebhook").back().body["secret_token"] == secret);
  CHECK(deliver(d, path, secret, 1005).status == 200);

  CHECK(d.log().find(secret) == std::string::npos);
  CHECK(d.log().find(k_token) == std::string::npos);
  stop_clean(d);
}

TEST_CASE("setup-webhook telegram: Bot API refusals give their message and exit code", "[setup-telegram]") {
  FakeTelegram tg({k_token});
  TempDir home;
  Daemon d(home.path(), options_for(tg));
  const std::string id = connect_telegram(d);

  // 401: the bot token was refused; the fix is to update the credential.
  tg.fail_next("setWebhook", 401, "Unauthorized");
  auto bad_token = cli(d, {"setup-webhook", id});
  REQUIRE_EXIT(bad_token, 7);
  CHECK(bad_token.err.find("refused the bot token") != std::string::npos);
  CHECK(bad_token.err.find("alumia-connect credentials " + id) != std::string::npos);
  CHECK(bad_token.err.find(k_token) == std::string::npos);
  // The endpoint made for the failed run is gone: the next run makes (and shows) a fresh one.
  auto none = d.api("GET", "/api/v1/webhook-endpoints");
  REQUIRE(none.status == 200);
  CHECK(none.json()["data"]["items"].empty());

  // 400: Telegram's own description.
  tg.fail_next("setWebhook", 400, "Bad Request: bad webhook: Failed to resolve host: Name or service not known");
  auto bad_url = cli(d, {"setup-webhook", id});
  REQUIRE_EXIT(bad_url, 7);
  CHECK(bad_url.err.find("bad webhook: Failed to resolve host") != std::string::npos);

  // 429: TOO_MANY_REQUESTS with parameters.retry_after, as Retry-After through the API.
  tg.fail_next("setWebhook", 429, "Too Many Requests: retry after 17", 17);
  auto limited = d.api("POST", setup_path(id), "{}");
  INFO(limited.body);
  CHECK(limited.status == 429);
  CHECK(error_of(limited) == "TOO_MANY_REQUESTS");
  CHECK(limited.json()["error"]["message"].get<std::string>().find("retry after 17 s") != std::string::npos);
  auto retry_after = limited.headers.find("Retry-After");
  REQUIRE(retry_after != limited.headers.end());
  CHECK(retry_after->second == "17");
  tg.fail_next("setWebhook", 429, "Too Many Requests: retry after 5", 5);
  REQUIRE_EXIT(cli(d, {"setup-webhook", id}), 1);

  // 5xx: SERVICE_UNAVAILABLE.
  tg.fail_next("setWebhook", 502, "Bad Gateway");
  auto down = d.api("POST", setup_path(id), "{}");
  CHECK(down.status == 503);
  CHECK(error_of(down) == "SERVICE_UNAVAILABLE");

  // getWebhookInfo failing after setWebhook worked is reported too.
  tg.fail_next("getWebhookInfo", 401, "Unauthorized");
  REQUIRE_EXIT(cli(d, {"setup-webhook", id}), 7);

  CHECK(d.log().find(k_token) == std::string::npos);
  stop_clean(d);
}

TEST_CASE("setup-webhook telegram: an unsafe or unusable base URL is refused before any Bot API call",
          "[setup-telegram]") {
  FakeTelegram tg({k_token});
  TempDir home;
  Daemon d(home.path(), options_for(tg, ""));  // no CONNECTOR_WEBHOOK_BASE_URL
  const std::string id = connect_telegram(d);

  auto none = cli(d, {"setup-webhook", id});
  REQUIRE_EXIT(none, 7);
  CHECK(none.err.find("CONNECTOR_WEBHOOK_BASE_URL") != std::string::npos);
  CHECK(none.err.find("--base-url") != std::string::npos);

  for (const std::string bad : {"http://hooks.example.com", "https://127.0.0.1", "https://localhost:8443",
                                "https://10.1.2.3", "https://[::1]", "https://bot.local"}) {
    INFO(bad);
    auto refused = cli(d, {"setup-webhook", id, "--base-url", bad});
    REQUIRE_EXIT(refused, 7);
    CHECK(refused.err.find("--base-url") != std::string::npos);
  }
  // A public base on a port Telegram does not deliver to.
  auto port = cli(d, {"setup-webhook", id, "--base-url", "https://hooks.example.com:9443"});
  REQUIRE_EXIT(port, 7);
  CHECK(port.err.find("443, 80, 88 and 8443") != std::string::npos);
  CHECK(tg.calls().empty());

  // With a good --base-url (and a path prefix) it works, on that base.
  auto ok = json_out(cli(d, {"--json", "setup-webhook", id, "--base-url", "https://hooks.example.com:8443/tg"}));
  CHECK(ok["receiveUrl"] == "https://hooks.example.com:8443/tg/api/v1/connectors/webhooks/telegram/" +
                                ok["endpoint"]["id"].get<std::string>());
  CHECK(tg.calls_of("setWebhook").size() == 1);
  stop_clean(d);
}

TEST_CASE("setup-webhook telegram (API): body, connection state, scope, events, rotate-secret", "[setup-telegram]") {
  FakeTelegram tg({k_token});
  TempDir home;
  Daemon d(home.path(), options_for(tg));

  // A pending connection: CONFLICT with the way to finish it, before anything is called.
  auto started = d.api("POST", "/api/v1/connections", R"({"connectorSlug":"telegram","label":"later"})");
  const std::string pending = started.json()["data"]["connection"]["id"];
  auto not_active = d.api("POST", setup_path(pending), "{}");
  CHECK(not_active.status == 409);
  CHECK(not_active.json()["error"]["message"].get<std::string>().find("alumia-connect credentials " + pending) !=
        std::string::npos);
  // A connector without a setup command (twilio receives webhooks but has no registrar).
  auto tw = d.api("POST", "/api/v1/connections", R"({"connectorSlug":"twilio"})");
  const std::string twilio = tw.json()["data"]["connection"]["id"];
  auto no_command = d.api("POST", setup_path(twilio), "{}");
  CHECK(no_command.status == 400);
  CHECK(no_command.json()["error"]["message"] == "connector twilio has no setup-webhook command");

  const std::string id = connect_telegram(d);
  CHECK(d.api("POST", setup_path(id), R"({"nosuch":1})").status == 400);
  CHECK(d.api("POST", setup_path(id), R"({"remove":"yes"})").status == 400);
  CHECK(d.api("POST", setup_path(id), R"({"events":"message"})").status == 400);
  CHECK(d.api("POST", setup_path(id), R"([])").status == 400);
  CHECK(d.api("POST", setup_path(id), R"({"repo":"o/r"})").status == 400);
  CHECK(d.api("POST", setup_path(id), R"({"events":["Message!"]})").status == 422);
  CHECK(d.api("POST", setup_path(id), R"({"remove":true,"rotateSecret":true})").status == 400);
  CHECK(d.api("POST", setup_path("00000000-0000-4000-8000-000000000000"), "{}").status == 404);
  CHECK(tg.calls().empty());

  // A key without the webhooks scope may not.
  auto key = d.api("POST", "/api/v1/api-keys", R"({"name":"conn-only","scopes":["connections"]})");
  REQUIRE(key.status == 201);
  auto forbidden = d.api("POST", setup_path(id), "{}", key.json()["data"]["key"].get<std::string>());
  CHECK(forbidden.status == 403);
  CHECK(tg.calls().empty());

  // --events and --drop-pending reach setWebhook.
  auto first = d.api("POST", setup_path(id), R"({"events":["message","callback_query"],"dropPending":true})");
  INFO(first.body);
  REQUIRE(first.status == 200);
  const json data = first.json()["data"];
  CHECK(data["relaySecret"].get<std::string>().rfind("whrelay_", 0) == 0);  // created: shown this once
  const std::string path = path_of(data["receiveUrl"]);
  auto set = tg.calls_of("setWebhook").back();
  CHECK(set.body["allowed_updates"] == json::array({"message", "callback_query"}));
  CHECK(set.body["drop_pending_updates"] == true);
  CHECK(data["provider"]["allowedUpdates"] == json::array({"message", "callback_query"}));
  const std::string old_secret = set.body["secret_token"];
  auto second = d.api("POST", setup_path(id), "{}");
  REQUIRE(second.status == 200);
  CHECK_FALSE(second.json()["data"].contains("relaySecret"));

  // --rotate-secret: a new secret registered, then stored; the old one verifies during the grace.
  auto rotated = d.api("POST", setup_path(id), R"({"rotateSecret":true})");
  INFO(rotated.body);
  REQUIRE(rotated.status == 200);
  CHECK(rotated.json()["data"]["endpoint"]["id"] == data["endpoint"]["id"]);
  const std::string new_secret = tg.calls_of("setWebhook").back().body["secret_token"];
  CHECK(new_secret != old_secret);
  CHECK(std::regex_match(new_secret, std::regex("[A-Za-z0-9_-]{64}")));
  CHECK(tg.webhook(k_token).secret_token == new_secret);
  CHECK(deliver(d, path, new_secret, 2001).status == 200);
  CHECK(deliver(d, path, old_secret, 2002).status == 200);
  CHECK(deliver(d, path, std::string(64, 'y'), 2003).status == 401);
  stop_clean(d);
}

TEST_CASE("setup-webhook telegram: the Bot API base and the base URL from config.json", "[setup-telegram]") {
  FakeTelegram tg({k_token});
  TempDir home;
  const auto config = home.path() / "config.json";
  std::ofstream(config) << json{{"telegramApiBase", tg.base()}, {"webhookBaseUrl", k_base}}.dump();
  ::chmod(config.c_str(), 0600);
  alumia::test::EnvOverrides env{{"ALUMIA_TELEGRAM_API_BASE", std::nullopt},
                                 {"CONNECTOR_WEBHOOK_BASE_URL", std::nullopt}};
  Daemon d(home.path(), daemon_options(env));

  const std::string id = connect_telegram(d);  // the live check (getMe) reached the fake
  CHECK(tg.seen() == std::vector<std::string>{k_token});
  auto r = d.api("POST", setup_path(id), "{}");
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(r.json()["data"]["receiveUrl"].get<std::string>().rfind(k_base + "/api/v1/connectors/webhooks/telegram/", 0) ==
        0);
  CHECK(tg.calls_of("setWebhook").size() == 1);
  stop_clean(d);
}

TEST_CASE("setup-webhook telegram: --allow-insecure-base-url lets a local base through with a warning",
          "[setup-telegram]") {
  FakeTelegram tg({k_token});
  TempDir home;
  alumia::test::EnvOverrides env{{"ALUMIA_TELEGRAM_API_BASE", tg.base()},
                                 {"CONNECTOR_WEBHOOK_BASE_URL", std::nullopt},
                                 {"ALUMIA_ALLOW_INSECURE_BASE_URL", "true"}};
  Daemon d(home.path(), daemon_options(env));
  const std::string id = connect_telegram(d);

  // Userinfo is refused even in development mode, and never quoted.
  auto userinfo = d.api("POST", setup_path(id), R"({"baseUrl":"https://ops:hunter2@localhost:8443"})");
  CHECK(userinfo.status == 422);
  CHECK(userinfo.body.find("hunter2") == std::string::npos);
  CHECK(tg.calls().empty());

  auto r = d.api("POST", setup_path(id), R"({"baseUrl":"https://localhost:8443"})");
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(tg.calls_of("setWebhook")
            .at(0)
            .body["url"]
            .get<std::string>()
            .rfind("https://localhost:8443/api/v1/connectors/webhooks/telegram/", 0) == 0);
  // The warning rides in the envelope (SPEC §3), for the CLI to print on stderr.
  const auto envelope = nlohmann::json::parse(r.body);
  REQUIRE(envelope.contains("warnings"));
  CHECK(envelope["warnings"].at(0).get<std::string>().find("used anyway because of --allow-insecure-base-url") !=
        std::string::npos);
  CHECK(eventually(
      [&] { return d.log().find("used anyway because of --allow-insecure-base-url") != std::string::npos; }));
  stop_clean(d);
}

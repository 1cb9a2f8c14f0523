// Key scopes against the real daemon and CLI (SPEC §2, issue 10 item 1): managing keys needs
// `admin`, a key never revokes a key holding a scope it lacks, a key keeps the user able to manage
// keys, and the OAuth start route called with a key needs `connections`. The whole route table with
// a key of each scope is walked by tests/unit/test_route_scopes.cpp.
#include "cli_helpers.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

namespace {

using alumia::test::cli_env;
using alumia::test::Daemon;
using alumia::test::daemon_options;
using alumia::test::HttpReply;
using alumia::test::stop_clean;
using alumia::test::TempDir;
using nlohmann::json;

json expect_ok(const HttpReply& r, int status = 200) {
  INFO("HTTP " << r.status << ": " << r.body);
  REQUIRE(r.status == status);
  const json j = r.json();
  REQUIRE(j.value("success", false));
  return j["data"];
}

std::string expect_error(const HttpReply& r, int status, const std::string& code) {
  INFO("HTTP " << r.status << ": " << r.body);
  REQUIRE(r.status == status);
  const json j = r.json();
  REQUIRE(j.is_object());
  CHECK(j["success"] == false);
  CHECK(j["error"]["code"] == code);
  return j["error"]["message"].get<std::string>();
}

// A new key with `scopes`, made with `by` (the owner key by default); returns {id, plaintext}.
std::pair<std::string, std::string> make_key(const Daemon& d, const json& scopes,
                                             const std::optional<std::string>& by = std::nullopt) {
  const json created =
      expect_ok(d.api("POST", "/api/v1/api-keys", json{{"name", "test"}, {"scopes", scopes}}.dump(), by), 201);
  return {created["apiKey"]["id"], created["key"]};
}

std::string owner_key_id(const Daemon& d) {
  const json keys = expect_ok(d.api("GET", "/api/v1/api-keys"));  // alive for the loop
  for (const auto& k : keys["items"])
    if (k["prefix"] == d.key().substr(0, 13) && k["name"] == "owner (local key file)") return k["id"];
  FAIL("the owner key is not listed");
  return {};
}

}  // namespace

TEST_CASE("a connections-only key can neither list keys nor revoke the owner key", "[key-scopes]") {
  TempDir home;
  Daemon d(home.path(), daemon_options());
  const std::string owner_id = owner_key_id(d);
  const auto [narrow_id, narrow] = make_key(d, {"connections"});

  CHECK(expect_error(d.api("GET", "/api/v1/api-keys", "", narrow), 403, "FORBIDDEN").find("'admin'") !=
        std::string::npos);
  expect_error(d.api("DELETE", "/api/v1/api-keys/" + owner_id, "", narrow), 403, "FORBIDDEN");
  expect_error(d.api("POST", "/api/v1/api-keys", R"({"scopes":["connections"]})", narrow), 403, "FORBIDDEN");
  // Not even itself: revoking is key management.
  expect_error(d.api("DELETE", "/api/v1/api-keys/" + narrow_id, "", narrow), 403, "FORBIDDEN");

  // The owner key still works and still holds every key.
  const json keys = expect_ok(d.api("GET", "/api/v1/api-keys"));
  REQUIRE(keys["items"].size() == 2);
  for (const auto& k : keys["items"]) CHECK(k["revokedAt"].is_null());
  expect_ok(d.api("GET", "/api/v1/connections"));
  stop_clean(d);
}

TEST_CASE("an admin key without a scope can neither grant it nor revoke a key holding it", "[key-scopes]") {
  TempDir home;
  Daemon d(home.path(), daemon_options());
  const std::string owner_id = owner_key_id(d);
  const auto [admin_id, admin] = make_key(d, {"admin", "connections"});
  const auto [tokens_id, tokens_key] = make_key(d, {"connections", "tokens"});
  const auto [plain_id, plain_key] = make_key(d, {"connections"});

  // Creating: only scopes the creator holds; a key without admin cannot create an admin key.
  expect_error(d.api("POST", "/api/v1/api-keys", R"({"scopes":["tokens"]})", admin), 403, "FORBIDDEN");
  expect_error(d.api("POST", "/api/v1/api-keys", R"({"scopes":["admin"]})", tokens_key), 403, "FORBIDDEN");
  // Revoking: a key holding a scope the caller lacks is FORBIDDEN, and stays usable.
  CHECK(expect_error(d.api("DELETE", "/api/v1/api-keys/" + tokens_id, "", admin), 403, "FORBIDDEN").find("'tokens'") !=
        std::string::npos);
  expect_error(d.api("DELETE", "/api/v1/api-keys/" + owner_id, "", admin), 403, "FORBIDDEN");
  expect_ok(d.api("GET", "/api/v1/connections", "", tokens_key));
  expect_ok(d.api("GET", "/api/v1/status"));
  // A key within its own scopes can be revoked.
  CHECK(expect_ok(d.api("DELETE", "/api/v1/api-keys/" + plain_id, "", admin))["deleted"] == true);
  expect_error(d.api("GET", "/api/v1/connections", "", plain_key), 401, "UNAUTHORIZED");
  stop_clean(d);
}

TEST_CASE("a key revokes itself only while another key holds all its scopes", "[key-scopes]") {
  TempDir home;
  Daemon d(home.path(), daemon_options());
  const std::string owner_id = owner_key_id(d);
  const auto [admin_id, admin] = make_key(d, {"admin", "connections"});

  // The owner key is the only one holding every scope: it cannot revoke itself.
  const std::string msg = expect_error(d.api("DELETE", "/api/v1/api-keys/" + owner_id), 409, "CONFLICT");
  CHECK(msg.find("keys create") != std::string::npos);
  expect_ok(d.api("GET", "/api/v1/api-keys"));
  // The admin key may: the owner key holds all its scopes.
  CHECK(expect_ok(d.api("DELETE", "/api/v1/api-keys/" + admin_id, "", admin))["deleted"] == true);
  expect_error(d.api("GET", "/api/v1/status", "", admin), 401, "UNAUTHORIZED");

  // With a replacement holding every scope, the owner key may retire itself.
  const auto [spare_id, spare] = make_key(d, {"connections", "tokens", "webhooks", "admin"});
  CHECK(expect_ok(d.api("DELETE", "/api/v1/api-keys/" + owner_id))["deleted"] == true);
  expect_error(d.api("GET", "/api/v1/status"), 401, "UNAUTHORIZED");
  // The replacement is now the last one.
  expect_error(d.api("DELETE", "/api/v1/api-keys/" + spare_id, "", spare), 409, "CONFLICT");
  expect_ok(d.api("GET", "/api/v1/api-keys", "", spare));
  stop_clean(d);

  // The documented way back when the key file's key is revoked or lost: delete the key file and
  // restart; the daemon writes a new owner key holding every scope.
  std::filesystem::remove(home.path() / "key");
  Daemon again(home.path(), daemon_options());
  const json fresh = expect_ok(again.api("POST", "/api/v1/api-keys", R"({"scopes":["tokens","admin"]})"), 201);
  CHECK(fresh["apiKey"]["scopes"] == json::array({"tokens", "admin"}));
  expect_ok(again.api("GET", "/api/v1/status", "", spare));
  stop_clean(again);
}

TEST_CASE("a webhooks-only key cannot start the OAuth handshake of a connection", "[key-scopes]") {
  TempDir home;
  Daemon d(home.path(), daemon_options({{"ALUMIA_GITHUB_CLIENT_ID", "Iv1.testclientid"},
                                        {"ALUMIA_GITHUB_CLIENT_SECRET", "gh-client-secret-0f1e2d3c4b5a6978"}}));
  const json started = expect_ok(d.api("POST", "/api/v1/connections", R"({"connectorSlug":"github"})"), 201);
  const std::string id = started["connection"]["id"];
  const auto [hooks_id, hooks] = make_key(d, {"webhooks"});

  expect_error(d.api("GET", "/api/v1/connections/" + id, "", hooks), 403, "FORBIDDEN");
  for (const char* method : {"GET", "POST"}) {
    CAPTURE(method);
    const std::string msg =
        expect_error(d.api(method, "/api/v1/connections/" + id + "/oauth", "", hooks), 403, "FORBIDDEN");
    CHECK(msg.find("'connections'") != std::string::npos);
  }
  // A key holding connections starts it (302 to the provider), as does the ticket.
  const auto [conn_id, conn] = make_key(d, {"connections"});
  CHECK(d.api("GET", "/api/v1/connections/" + id + "/oauth", "", conn).status == 302);
  CHECK(alumia::test::http_request("GET", started["oauthUrl"].get<std::string>()).status == 302);
  stop_clean(d);
}

TEST_CASE("cli: keys list|create|revoke with a key lacking admin exit 4 with the daemon's message", "[key-scopes]") {
  TempDir home;
  Daemon d(home.path(), daemon_options());
  const std::string owner_id = owner_key_id(d);
  const auto [narrow_id, narrow] = make_key(d, {"connections", "tokens", "webhooks"});
  auto env = cli_env();
  env["ALUMIA_API_KEY"] = narrow;
  const std::vector<std::vector<std::string>> commands{
      {"keys", "list"}, {"keys", "create", "--scope", "connections"}, {"keys", "revoke", owner_id}};
  for (const auto& args : commands) {
    CAPTURE(args);
    const auto r = d.cli(args, env, "", std::chrono::seconds(30));
    REQUIRE_EXIT(r, 4);
    CHECK(r.out.empty());
    CHECK(r.err.find("lacks the 'admin' scope") != std::string::npos);
  }
  const json keys = expect_ok(d.api("GET", "/api/v1/api-keys"));
  REQUIRE(keys["items"].size() == 2);
  for (const auto& k : keys["items"]) CHECK(k["revokedAt"].is_null());
  stop_clean(d);
}

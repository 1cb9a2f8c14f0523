// The wire format (daemon/wire.hpp): request bodies parse into typed structs with the errors of SPEC §3,
// and the reply shapes the CLI reads keep their fields, names and nulls.
#include "wire.hpp"

#include <alumia/catalog/catalog.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>

namespace alumia::embedded {
extern const std::string_view catalog_json;
}

namespace {

using namespace alumia;
using namespace alumia::daemon;
using nlohmann::json;

Catalog builtin() {
  auto c = load_catalog(alumia::embedded::catalog_json, {});
  if (!c) FAIL(c.error().message);
  return *c;
}

template <typename T>
Error error_of(const Result<T>& r) {
  REQUIRE_FALSE(r);
  return r.error();
}

}  // namespace

TEST_CASE("connector_json has the public shape of SPEC §4 and no secrets", "[wire]") {
  const Catalog c = builtin();

  const json gh = connector_json(*c.find("github"), false);
  CHECK(gh["slug"] == "github");
  CHECK(gh["name"] == "GitHub");
  CHECK(gh["authType"] == "oauth");
  CHECK(gh["configured"] == false);
  CHECK(gh["availability"] == "unconfigured");
  CHECK(gh["availabilityReason"].get<std::string>().find("ALUMIA_GITHUB_CLIENT_ID") != std::string::npos);
  CHECK(gh["tools"].is_array());
  CHECK(gh["tools"][0].size() == 2);
  CHECK(gh["tools"][0].contains("name"));
  CHECK(gh["tools"][0].contains("description"));
  CHECK_FALSE(gh.contains("credentialFields"));
  CHECK(gh["webhook"]["provider"] == "github");
  CHECK(gh["webhook"]["setupCommands"] == json::array({"setup-webhook"}));
  CHECK(gh["commands"] == json::array({"setup-webhook"}));
  CHECK_FALSE(gh.contains("oauth"));
  const std::string dumped = gh.dump();
  CHECK(dumped.find("secret\"") == std::string::npos);
  CHECK(dumped.find("client_secret") == std::string::npos);

  const json gh_ok = connector_json(*c.find("github"), true);
  CHECK(gh_ok["configured"] == true);
  CHECK(gh_ok["availability"] == "available");
  CHECK_FALSE(gh_ok.contains("availabilityReason"));

  const json tg = connector_json(*c.find("telegram"), false);
  CHECK(tg["configured"] == true);  // api_key connectors are always configured
  CHECK(tg["availability"] == "available");
  REQUIRE(tg["credentialFields"].size() == 1);
  const json& field = tg["credentialFields"][0];
  CHECK(field["key"] == "bot_token");
  CHECK(field["required"] == true);
  CHECK(field["secret"] == true);
  CHECK(field["pattern"] == "^[0-9]{5,12}:[A-Za-z0-9_-]{30,}$");
  CHECK(field.contains("placeholder"));
  CHECK_FALSE(tg.contains("liveCheck"));

  const json notion = connector_json(*c.find("notion"), true);
  CHECK(notion["webhook"].is_null());
  CHECK(notion["commands"] == json::array());

  const json dropbox = connector_json(*c.find("dropbox"), true);
  CHECK(dropbox["availability"] == "coming_soon");
  CHECK(dropbox["availabilityReason"].is_string());

  for (const auto& k : c.all()) {
    const json j = connector_json(k, false);
    for (const char* key : {"slug", "name", "description", "category", "authType", "configured", "availability",
                            "tools", "webhook", "commands"})
      CHECK(j.contains(key));
    CHECK(j.contains("credentialFields") == (k.auth_type == AuthType::api_key));
  }
}

TEST_CASE("request bodies parse into typed requests, and a wrong type is BAD_REQUEST", "[wire]") {
  SECTION("create an API key") {
    auto k = parse_create_api_key(json{{"name", "ci"}, {"scopes", {"tokens", "webhooks"}}});
    REQUIRE(k);
    CHECK(k->name == "ci");
    REQUIRE(k->scopes);
    CHECK(*k->scopes == std::vector<std::string>{"tokens", "webhooks"});
    auto bare = parse_create_api_key(json::object());
    REQUIRE(bare);
    CHECK(bare->name.empty());
    CHECK_FALSE(bare->scopes);  // absent: the service's default (connections)
    CHECK(parse_create_api_key(json{{"name", nullptr}})->name.empty());
    CHECK(error_of(parse_create_api_key(json::array())).message == "body must be a JSON object");
    CHECK(error_of(parse_create_api_key(json{{"name", 5}})).message == "field 'name' must be a string");
    CHECK(error_of(parse_create_api_key(json{{"scopes", "admin"}})).message ==
          "field 'scopes' must be an array of strings");
    CHECK(error_of(parse_create_api_key(json{{"scopes", {1}}})).code == ErrorCode::bad_request);
  }
  SECTION("start a connection") {
    auto s = parse_start_connection(json{{"connectorSlug", "github"}, {"label", "work"}});
    REQUIRE(s);
    CHECK(s->connector_slug == "github");
    CHECK(s->label == "work");
    CHECK(parse_start_connection(json{{"connectorSlug", "github"}})->label.empty());
    CHECK(error_of(parse_start_connection(json::object())).message == "missing field 'connectorSlug'");
    CHECK(error_of(parse_start_connection(json{{"connectorSlug", "x"}, {"label", 1}})).message ==
          "field 'label' must be a string");
    CHECK(error_of(parse_start_connection(json("github"))).code == ErrorCode::bad_request);
  }
  SECTION("submit credentials") {
    auto c = parse_submit_credentials(json{{"values", {{"bot_token", "1:abc"}}}});
    REQUIRE(c);
    CHECK(c->values.at("bot_token") == "1:abc");
    CHECK(error_of(parse_submit_credentials(json{{"bot_token", "1"}})).message ==
          "body must be {\"values\": {field: value, ...}}");
    CHECK(error_of(parse_submit_credentials(json{{"values", {{"bot_token", 1}}}})).message ==
          "value of 'bot_token' must be a string");
  }
  SECTION("set an OAuth client") {
    auto o = parse_set_oauth_client(json{{"clientId", "id"}, {"clientSecret", "s3cret"}});
    REQUIRE(o);
    CHECK(o->client_id == "id");
    CHECK(o->client_secret.view() == "s3cret");
    for (const json& bad : {json::object(), json{{"clientId", "id"}}, json{{"clientId", 1}, {"clientSecret", "s"}}})
      CHECK(error_of(parse_set_oauth_client(bad)).code == ErrorCode::bad_request);
  }
}

TEST_CASE("reply shapes: keys, connections and tokens keep their fields and nulls", "[wire]") {
  ApiKeyRecord k;
  k.id = "11111111-1111-4111-8111-111111111111";
  k.name = "ci";
  k.prefix = "alm_live_abcd";
  k.scopes = static_cast<unsigned>(Scope::tokens);
  k.created_at = 0;
  const json key = api_key_json(k);
  CHECK(key == json{{"id", k.id},
                    {"name", "ci"},
                    {"prefix", "alm_live_abcd"},
                    {"scopes", {"tokens"}},
                    {"createdAt", "1970-01-01T00:00:00.000Z"},
                    {"lastUsedAt", nullptr},
                    {"revokedAt", nullptr}});
  CHECK(api_key_created_json(k, "alm_live_x") == json{{"apiKey", key}, {"key", "alm_live_x"}});
  CHECK_FALSE(key.dump().find("hash") != std::string::npos);

  Connection c;
  c.id = "22222222-2222-4222-8222-222222222222";
  c.connector_slug = "github";
  c.label = "default";
  c.auth_type = AuthType::oauth;
  c.status = ConnectionStatus::error;
  c.error = ConnectionError{"invalid_grant", "dead"};
  const json conn = connection_json(c);
  for (const char* field : {"id", "connectorSlug", "label", "authType", "status", "accountLabel", "scopes", "expiresAt",
                            "lastRefreshedAt", "error", "createdAt", "updatedAt", "deletedAt"})
    CHECK(conn.contains(field));
  CHECK(conn["status"] == "error");
  CHECK(conn["accountLabel"].is_null());
  CHECK(conn["error"] == json{{"code", "invalid_grant"}, {"message", "dead"}});

  StartResult started{true, c, std::string("http://127.0.0.1:1/x?ticket=t"), std::nullopt};
  CHECK(start_json(started) ==
        json{{"connection", conn}, {"oauthUrl", "http://127.0.0.1:1/x?ticket=t"}, {"credentialSubmitUrl", nullptr}});
  CHECK(disconnected_json({true, false, "revocation answered HTTP 500"}) ==
        json{{"deleted", true},
             {"providerRevocation", {{"attempted", true}, {"ok", false}, {"detail", "revocation answered HTTP 500"}}}});

  oauth::AccessToken t;
  t.access_token = SecretBytes(std::string_view("gho_x"));
  t.token_type = "Bearer";
  t.scopes = {"repo"};
  CHECK(access_token_json(t, c.id) == json{{"accessToken", "gho_x"},
                                           {"tokenType", "Bearer"},
                                           {"expiresAt", nullptr},
                                           {"scopes", {"repo"}},
                                           {"connectionId", c.id}});
  CHECK(credential_values_json({{"bot_token", "1:x"}}, c.id) ==
        json{{"values", {{"bot_token", "1:x"}}}, {"connectionId", c.id}});
}

TEST_CASE("the envelope: success, errors with Retry-After, and list pages", "[wire]") {
  const auto good = ok(json{{"ok", true}}, 201);
  CHECK(good.status == 201);
  CHECK(json::parse(good.body) == json{{"success", true}, {"data", {{"ok", true}}}});
  // Warnings sit next to data, only when there are some.
  CHECK(json::parse(ok(json{{"ok", true}}, 200, {}).body) == json{{"success", true}, {"data", {{"ok", true}}}});
  const auto warned = ok(json{{"ok", true}}, 200, {"careful", "twice"});
  CHECK(json::parse(warned.body) ==
        json{{"success", true}, {"data", {{"ok", true}}}, {"warnings", json::array({"careful", "twice"})}});
  Error busy{ErrorCode::service_unavailable, "try later", 7};
  const auto bad = error_response(busy);
  CHECK(bad.status == 503);
  CHECK(json::parse(bad.body) ==
        json{{"success", false}, {"error", {{"code", "SERVICE_UNAVAILABLE"}, {"message", "try later"}}}});
  CHECK(http::header_value(bad.headers, "Retry-After") == "7");
  CHECK(list_json(json::array(), 50, std::nullopt) ==
        json{{"items", json::array()}, {"limit", 50}, {"nextCursor", nullptr}, {"hasMore", false}});
  CHECK(list_json(json::array(), 1, "c")["hasMore"] == true);
}

TEST_CASE("receipt_ok answers the bytes of ok(receipt_json(r)), a duplicate too", "[wire]") {
  for (const bool duplicate : {false, true}) {
    for (const std::string& id : {std::string("01931b2e-7a3f-7c01-8d2e-4b5f6a7b8c9d"), std::string("q\"uote\\"),
                                  std::string("caf\xc3\xa9"), std::string("bad \xff")}) {
      Receipt r;
      r.event_id = id;
      r.duplicate = duplicate;
      const auto fast = receipt_ok(r);
      const auto general = ok(receipt_json(r));
      CHECK(fast.status == general.status);
      CHECK(fast.body == general.body);
      CHECK(fast.content_type == general.content_type);
      CHECK(fast.headers == general.headers);
      CHECK(json::parse(fast.body)["data"]["eventId"].is_string());
    }
  }
}

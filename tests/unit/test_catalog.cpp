#include <alumia/catalog/catalog.hpp>
#include <alumia/setup/registrar.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace alumia::embedded {
extern const std::string_view catalog_json;
}

namespace {

using alumia::AuthType;
using alumia::Catalog;
using alumia::Connector;
using nlohmann::json;
namespace fs = std::filesystem;

// A connectors.d directory of its own, removed at scope exit.
class OverrideDir {
 public:
  OverrideDir() {
    std::string tmpl = (fs::temp_directory_path() / "alumia catalog XXXXXX").string();
    char* made = ::mkdtemp(tmpl.data());
    REQUIRE(made != nullptr);
    m_root = made;
    m_dir = m_root / "connectors.d";
    fs::create_directory(m_dir);
  }
  ~OverrideDir() {
    std::error_code ec;
    fs::remove_all(m_root, ec);
  }
  OverrideDir(const OverrideDir&) = delete;
  OverrideDir& operator=(const OverrideDir&) = delete;

  const fs::path& path() const { return m_dir; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream out(m_dir / name, std::ios::binary);
    out << text;
  }

 private:
  fs::path m_root;
  fs::path m_dir;
};

Catalog builtin() {
  auto c = alumia::load_catalog(alumia::embedded::catalog_json, {});
  if (!c) FAIL(c.error().message);
  return *c;
}

// Loads the built-in catalog with one override file and returns the error message ("" on success).
std::string load_error(const std::string& file_text, const std::string& name = "peer.json") {
  OverrideDir dir;
  dir.write(name, file_text);
  auto c = alumia::load_catalog(alumia::embedded::catalog_json, dir.path());
  if (c) return {};
  CHECK(c.error().code == alumia::ErrorCode::validation_error);
  return c.error().message;
}

const json k_peer = json::parse(R"({
  "slug": "peer",
  "name": "Test peer",
  "description": "oidc-provider on loopback",
  "category": "testing",
  "authType": "oauth",
  "oauth": {
    "authorizeUrl": "http://127.0.0.1:9999/auth",
    "tokenUrl": "http://127.0.0.1:9999/token",
    "revocation": {"style": "rfc7009", "url": "http://127.0.0.1:9999/token/revocation"},
    "defaultScopes": ["openid", "email", "offline_access"],
    "clientAuth": "basic",
    "issuer": "http://127.0.0.1:9999",
    "issRequired": true,
    "accountLabel": {"source": "request", "url": "http://127.0.0.1:9999/me", "jsonPointers": ["/email"]}
  },
  "tools": [{"name": "peer.whoami", "description": "Who am I"}]
})");

std::string peer_with(const std::string& pointer, const json& value) {
  json j = k_peer;
  j[json::json_pointer(pointer)] = value;
  return json{{"connectors", json::array({j})}}.dump();
}

}  // namespace

TEST_CASE("built-in catalog loads, validates and is ordered by slug", "[catalog]") {
  const Catalog c = builtin();
  REQUIRE(c.all().size() >= 13);
  for (std::size_t i = 1; i < c.all().size(); ++i) CHECK(c.all()[i - 1].slug < c.all()[i].slug);
  for (const char* slug : {"github", "gmail", "google-drive", "slack", "linear", "notion", "microsoft-outlook",
                           "discord", "stripe", "twilio", "whatsapp", "telegram", "jira"}) {
    INFO(slug);
    const Connector* k = c.find(slug);
    REQUIRE(k != nullptr);
    CHECK(k->source.find("built-in") != std::string::npos);
    CHECK(k->tools.size() >= 4);
    CHECK(k->tools.size() <= 8);
    for (const auto& t : k->tools) CHECK(t.name.rfind(std::string(slug) + ".", 0) == 0);
    if (k->auth_type == AuthType::oauth) {
      REQUIRE(k->oauth);
      CHECK(k->oauth->authorize_url.rfind("https://", 0) == 0);
      CHECK(k->oauth->account_label);
    }
  }
  CHECK(c.find("nope") == nullptr);
}

TEST_CASE("built-in OAuth connectors carry the providers' real endpoints", "[catalog]") {
  const Catalog c = builtin();
  const auto& gh = *c.find("github")->oauth;
  CHECK(gh.authorize_url == "https://github.com/login/oauth/authorize");
  CHECK(gh.token_url == "https://github.com/login/oauth/access_token");
  CHECK(gh.revocation.style == alumia::RevocationStyle::github);
  CHECK(gh.revocation.method == "DELETE");
  CHECK(gh.revocation.url == "https://api.github.com/applications/{client_id}/token");
  CHECK(gh.token_response.form_encoded);
  CHECK(gh.token_response.scope_separator == ",");
  CHECK(gh.account_label->url == "https://api.github.com/user");
  CHECK(gh.account_label->extract.json_pointers == std::vector<std::string>{"/login"});

  for (const char* slug : {"gmail", "google-drive"}) {
    const auto& g = *c.find(slug)->oauth;
    CHECK(g.authorize_url == "https://accounts.google.com/o/oauth2/v2/auth");
    CHECK(g.token_url == "https://oauth2.googleapis.com/token");
    CHECK(g.revocation.style == alumia::RevocationStyle::rfc7009);
    CHECK(g.revocation.url == "https://oauth2.googleapis.com/revoke");
    CHECK(g.account_label->url == "https://openidconnect.googleapis.com/v1/userinfo");
    // The account picker joins the existing prompt=consent.
    auto params = alumia::authorize_extra_params(g, true);
    auto prompt = std::find_if(params.begin(), params.end(), [](const auto& p) { return p.name == "prompt"; });
    REQUIRE(prompt != params.end());
    CHECK(prompt->value == "consent select_account");
    CHECK(alumia::authorize_extra_params(g, false).size() == g.extra_authorize_params.size());
  }

  const auto& slack = *c.find("slack")->oauth;
  CHECK(slack.authorize_url == "https://slack.com/oauth/v2/authorize");
  CHECK(slack.token_url == "https://slack.com/api/oauth.v2.access");
  CHECK(slack.revocation.style == alumia::RevocationStyle::slack);
  CHECK(slack.revocation.url == "https://slack.com/api/auth.revoke");
  CHECK(slack.scope_separator == ",");
  CHECK(slack.client_auth == alumia::ClientAuth::basic);
  CHECK(slack.token_response.ok_field == "ok");
  CHECK(slack.token_response.nested_user_token == "authed_user");
  CHECK_FALSE(slack.account_picker);

  const auto& linear = *c.find("linear")->oauth;
  CHECK(linear.authorize_url == "https://linear.app/oauth/authorize");
  CHECK(linear.token_url == "https://api.linear.app/oauth/token");
  CHECK(linear.revocation.url == "https://api.linear.app/oauth/revoke");
  CHECK(linear.token_response.scope_array);
  CHECK(linear.account_label->method == "POST");

  const auto& notion = *c.find("notion")->oauth;
  CHECK(notion.authorize_url == "https://api.notion.com/v1/oauth/authorize");
  CHECK(notion.token_url == "https://api.notion.com/v1/oauth/token");
  CHECK(notion.revocation.style == alumia::RevocationStyle::notion);
  CHECK_FALSE(notion.pkce);
  CHECK(notion.token_request_format == alumia::BodyFormat::json);
  CHECK(notion.account_label->source == alumia::LabelSource::token_response);
  CHECK(c.find("notion")->api_headers.at("Notion-Version") == "2022-06-28");

  const auto& ms = *c.find("microsoft-outlook")->oauth;
  CHECK(ms.authorize_url == "https://login.microsoftonline.com/common/oauth2/v2.0/authorize");
  CHECK(ms.token_url == "https://login.microsoftonline.com/common/oauth2/v2.0/token");
  CHECK(ms.revocation.style == alumia::RevocationStyle::none);
  CHECK(ms.account_picker->name == "prompt");
  CHECK(ms.account_picker->value == "select_account");

  const auto& discord = *c.find("discord")->oauth;
  CHECK(discord.authorize_url == "https://discord.com/oauth2/authorize");
  CHECK(discord.token_url == "https://discord.com/api/oauth2/token");
  CHECK(discord.revocation.url == "https://discord.com/api/oauth2/token/revoke");
  CHECK(discord.issuer == "https://discord.com");
  CHECK(discord.iss_required);

  const auto& jira = *c.find("jira")->oauth;
  CHECK(jira.authorize_url == "https://auth.atlassian.com/authorize");
  CHECK(jira.token_url == "https://auth.atlassian.com/oauth/token");
  CHECK(jira.revocation.style == alumia::RevocationStyle::none);
}

TEST_CASE("built-in api_key connectors: fields, patterns and live checks", "[catalog]") {
  const Catalog c = builtin();
  const Connector& tg = *c.find("telegram");
  CHECK(tg.auth_type == AuthType::api_key);
  const auto* token = tg.find_field("bot_token");
  REQUIRE(token != nullptr);
  CHECK(token->secret);
  CHECK(alumia::credential_value_matches(*token, "123456789:AAEhBP0av28bs8GmaSfsq1mu2ybd0d8sM1c"));
  CHECK_FALSE(alumia::credential_value_matches(*token, "not-a-token"));
  REQUIRE(tg.live_check);
  CHECK(tg.live_check->url == "{apiBase}/bot{bot_token}/getMe");
  CHECK(tg.live_check->success_pointer == "/ok");
  CHECK(tg.live_check->success_value == true);
  CHECK(alumia::extract_label(tg.live_check->account_label,
                              json::parse(R"({"ok":true,"result":{"username":"alumia_bot"}})")) == "@alumia_bot");
  CHECK(tg.commands == std::vector<std::string>{"setup-webhook"});

  // The API base comes from the catalog unless its environment variable overrides it.
  auto no_env = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  CHECK(alumia::resolve_api_base(tg, no_env).value() == "https://api.telegram.org");
  auto local = [](std::string_view name) -> std::optional<std::string> {
    if (name == "ALUMIA_TELEGRAM_API_BASE") return "http://127.0.0.1:8081/";
    return std::nullopt;
  };
  CHECK(alumia::resolve_api_base(tg, local).value() == "http://127.0.0.1:8081");
  auto remote_http = [](std::string_view) -> std::optional<std::string> { return "http://evil.example"; };
  auto bad = alumia::resolve_api_base(tg, remote_http);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("ALUMIA_TELEGRAM_API_BASE") != std::string::npos);
  CHECK(alumia::expand_template(tg.live_check->url, {{"apiBase", "https://api.telegram.org"}, {"bot_token", "1:x"}}) ==
        "https://api.telegram.org/bot1:x/getMe");

  const auto* stripe_key = c.find("stripe")->find_field("secret_key");
  REQUIRE(stripe_key != nullptr);
  CHECK(alumia::credential_value_matches(*stripe_key, "sk_test_4eC39HqLyjWDarjtT1zdp7dc"));
  CHECK(alumia::credential_value_matches(*stripe_key, "rk_live_abcdefghij12"));
  CHECK_FALSE(alumia::credential_value_matches(*stripe_key, "pk_test_4eC39HqLyjWDarjtT1zdp7dc"));
  CHECK(c.find("stripe")->api_base->env_var == "ALUMIA_STRIPE_API_BASE");

  const auto* sid = c.find("twilio")->find_field("account_sid");
  REQUIRE(sid != nullptr);
  CHECK_FALSE(sid->secret);
  CHECK(alumia::credential_value_matches(*sid, "AC0123456789abcdef0123456789abcdef"));
  CHECK_FALSE(alumia::credential_value_matches(*sid, "AC0123"));
  CHECK(c.find("twilio")->live_check->basic_auth);
}

TEST_CASE("every webhook provider maps to a connector", "[catalog]") {
  const Catalog c = builtin();
  for (const alumia::Provider provider : alumia::all_providers()) {
    INFO(alumia::to_string(provider));
    bool found = false;
    for (const auto& k : c.all())
      if (k.webhook && k.webhook->provider == provider) found = true;
    CHECK(found);
  }
  CHECK(c.find("telegram")->webhook->secret_source == alumia::WebhookSecretSource::generated);
  CHECK(c.find("stripe")->webhook->secret_source == alumia::WebhookSecretSource::provider);
  CHECK(c.find("gmail")->webhook->secret_source == alumia::WebhookSecretSource::none);
  for (const char* slug : {"telegram", "github", "stripe"})
    CHECK(c.find(slug)->commands == std::vector<std::string>{"setup-webhook"});
}

// The catalog advertises only commands that exist: setup-webhook exactly for the connectors whose
// webhook provider has a registrar (common/setup/registry.cpp).
TEST_CASE("catalog commands: setup-webhook iff the webhook provider has a registrar", "[catalog]") {
  const Catalog c = builtin();
  for (const auto& k : c.all()) {
    INFO(k.slug);
    const bool listed = std::find(k.commands.begin(), k.commands.end(), "setup-webhook") != k.commands.end();
    const bool exists = k.webhook && alumia::setup::find_registrar(k.webhook->provider) != nullptr;
    CHECK(listed == exists);
    if (exists) CHECK(alumia::setup::find_registrar(k.webhook->provider)->provider() == k.webhook->provider);
  }
}

TEST_CASE("connectors.d adds connectors and overrides built-in fields", "[catalog]") {
  OverrideDir dir;
  dir.write("peer.json", json{{"connectors", json::array({k_peer})}}.dump());
  // A merge patch: only the token URL of github changes.
  dir.write("github.json",
            R"({"slug":"github","oauth":{"tokenUrl":"http://127.0.0.1:9999/token","accountPickerParam":null}})");
  // Whole replacement, as an array file.
  dir.write("slack.json", R"json([{"slug":"slack","replace":true,"name":"Slack (local)","description":"d",
                              "category":"communication","authType":"none"}])json");
  dir.write("README.txt", "not json, ignored");
  dir.write(".hidden.json", "{ broken");
  auto loaded = alumia::load_catalog(alumia::embedded::catalog_json, dir.path());
  REQUIRE(loaded);
  const Catalog& c = *loaded;

  const Connector* peer = c.find("peer");
  REQUIRE(peer != nullptr);
  CHECK(peer->source == (dir.path() / "peer.json").string());
  CHECK(peer->oauth->token_url == "http://127.0.0.1:9999/token");
  CHECK(peer->oauth->iss_required);
  CHECK(peer->oauth->pkce);  // default

  const Connector* gh = c.find("github");
  REQUIRE(gh != nullptr);
  CHECK(gh->oauth->token_url == "http://127.0.0.1:9999/token");
  CHECK(gh->oauth->authorize_url == "https://github.com/login/oauth/authorize");  // kept
  CHECK_FALSE(gh->oauth->account_picker);                                         // deleted by null
  CHECK(gh->tools.size() == builtin().find("github")->tools.size());
  CHECK(gh->source == (dir.path() / "github.json").string());

  const Connector* slack = c.find("slack");
  REQUIRE(slack != nullptr);
  CHECK(slack->auth_type == AuthType::none);
  CHECK(slack->tools.empty());
  CHECK_FALSE(slack->webhook);

  CHECK(c.all().size() == builtin().all().size() + 1);
  for (std::size_t i = 1; i < c.all().size(); ++i) CHECK(c.all()[i - 1].slug < c.all()[i].slug);
}

TEST_CASE("a missing connectors.d is no error; later files override earlier ones", "[catalog]") {
  CHECK(alumia::load_catalog(alumia::embedded::catalog_json, "/nonexistent/alumia/connectors.d"));
  OverrideDir dir;
  dir.write("10-a.json", R"({"slug":"linear","name":"First"})");
  dir.write("20-b.json", R"({"slug":"linear","name":"Second"})");
  auto c = alumia::load_catalog(alumia::embedded::catalog_json, dir.path());
  REQUIRE(c);
  CHECK(c->find("linear")->name == "Second");
}

TEST_CASE("bad connectors.d files are refused naming the file and the field", "[catalog]") {
  SECTION("invalid JSON") {
    auto e = load_error("{ \"connectors\": [ ", "broken.json");
    CHECK(e.find("broken.json: invalid JSON") != std::string::npos);
  }
  SECTION("duplicate key") {
    auto e = load_error(R"({"slug":"peer","slug":"peer2"})");
    CHECK(e.find("peer.json: invalid JSON: duplicate key \"slug\"") != std::string::npos);
  }
  SECTION("missing required field") {
    json j = k_peer;
    j["oauth"].erase("tokenUrl");
    auto e = load_error(json{{"connectors", json::array({j})}}.dump());
    CHECK(e.find("peer.json: connectors[0].oauth.tokenUrl: required field is missing") != std::string::npos);
  }
  SECTION("missing name on a new connector in a single-object file") {
    json j = k_peer;
    j.erase("name");
    auto e = load_error(j.dump());
    CHECK(e.find("peer.json: name: required field is missing") != std::string::npos);
  }
  SECTION("malformed URL") {
    auto e = load_error(peer_with("/oauth/authorizeUrl", "https://exa mple.com/auth"));
    CHECK(e.find("peer.json: connectors[0].oauth.authorizeUrl:") != std::string::npos);
    CHECK(e.find("not a valid URL") != std::string::npos);
  }
  SECTION("http to a non-loopback host") {
    auto e = load_error(peer_with("/oauth/tokenUrl", "http://auth.example.com/token"));
    CHECK(e.find("peer.json: connectors[0].oauth.tokenUrl: must be https (http only for loopback hosts") !=
          std::string::npos);
    CHECK(load_error(peer_with("/oauth/tokenUrl", "http://localhost:9999/token")).find("must be https") !=
          std::string::npos);
    CHECK(load_error(peer_with("/oauth/tokenUrl", "http://[::1]:9999/token")).empty());
  }
  SECTION("bad regex") {
    auto e = load_error(R"({"slug":"stripe","credentialFields":[{"key":"secret_key","label":"Key","pattern":"^(sk"}]})",
                        "stripe.json");
    CHECK(e.find("stripe.json: credentialFields[0].pattern:") != std::string::npos);
    CHECK(e.find("not a valid regular expression") != std::string::npos);
  }
  SECTION("response_type token and the password grant") {
    auto e = load_error(peer_with("/oauth/responseType", "token"));
    CHECK(e.find("peer.json: connectors[0].oauth.responseType: \"token\" is forbidden") != std::string::npos);
    e = load_error(peer_with("/oauth/grantType", "password"));
    CHECK(e.find("peer.json: connectors[0].oauth.grantType: \"password\" is forbidden") != std::string::npos);
    e = load_error(peer_with("/oauth/extraAuthorizeParams", json{{"response_type", "token"}}));
    CHECK(e.find("peer.json: connectors[0].oauth.extraAuthorizeParams.response_type:") != std::string::npos);
    e = load_error(peer_with("/oauth/authorizeUrl", "https://as.example/auth?response_type=token"));
    CHECK(e.find("peer.json: connectors[0].oauth.authorizeUrl: response_type \"token\" is forbidden") !=
          std::string::npos);
    CHECK(load_error(peer_with("/oauth/responseType", "code")).empty());
  }
  SECTION("unknown key") {
    auto e = load_error(peer_with("/oauth/tokenURL", "https://as.example/token"));
    CHECK(e.find("peer.json: connectors[0].oauth.tokenURL: unknown field") != std::string::npos);
    e = load_error(R"({"connectors":[], "extra": 1})");
    CHECK(e.find("peer.json: extra: unknown field") != std::string::npos);
  }
  SECTION("bad slug") {
    auto e = load_error(peer_with("/slug", "Peer_1"));
    CHECK(e.find("peer.json: connectors[0].slug: \"Peer_1\" must match ^[a-z0-9][a-z0-9-]{0,62}$") !=
          std::string::npos);
    CHECK(load_error(peer_with("/slug", "-peer")).find("connectors[0].slug") != std::string::npos);
  }
  SECTION("bad authType and misplaced blocks") {
    auto e = load_error(peer_with("/authType", "password"));
    CHECK(e.find("peer.json: connectors[0].authType: \"password\" is not one of") != std::string::npos);
    e = load_error(peer_with("/authType", "api_key"));
    CHECK(e.find("connectors[0].oauth: only allowed when authType is \"oauth\"") != std::string::npos);
    CHECK(e.find("connectors[0].credentialFields: required field is missing") != std::string::npos);
  }
  SECTION("tool names must start with the slug") {
    auto e = load_error(peer_with("/tools/0/name", "github.list_repos"));
    CHECK(e.find("peer.json: connectors[0].tools[0].name:") != std::string::npos);
  }
  SECTION("unknown webhook provider and placeholder") {
    auto e =
        load_error(peer_with("/webhook", json{{"provider", "acme"}, {"scheme", "x"}, {"secretSource", "provider"}}));
    CHECK(e.find("peer.json: connectors[0].webhook.provider: \"acme\" has no verifier") != std::string::npos);
    e = load_error(peer_with("/oauth/revocation/url", "https://as.example/{token}/revoke"));
    CHECK(e.find("connectors[0].oauth.revocation.url: unknown placeholder {token}") != std::string::npos);
  }
  SECTION("wrong types") {
    auto e = load_error(peer_with("/oauth/pkce", "yes"));
    CHECK(e.find("peer.json: connectors[0].oauth.pkce: must be true or false") != std::string::npos);
    e = load_error("42");
    CHECK(e.find("peer.json: the top level must be") != std::string::npos);
  }
  SECTION("an override that breaks a built-in connector names the override file") {
    auto e = load_error(R"({"slug":"telegram","liveCheck":{"url":"{apiBase}/bot{token}/getMe"}})", "tg.json");
    CHECK(e.find("tg.json: liveCheck.url: unknown placeholder {token}") != std::string::npos);
  }
}

TEST_CASE("the built-in catalog is validated like any file", "[catalog]") {
  auto c = alumia::load_catalog(R"({"connectors":[{"slug":"x","name":"X"}]})", {});
  REQUIRE_FALSE(c);
  CHECK(c.error().message.find("built-in catalog") != std::string::npos);
  CHECK(c.error().message.find("connectors[0].description: required field is missing") != std::string::npos);
}

TEST_CASE("OAuth client environment variable names", "[catalog]") {
  CHECK(alumia::oauth_client_env_names("github").client_id == "ALUMIA_GITHUB_CLIENT_ID");
  CHECK(alumia::oauth_client_env_names("github").client_secret == "ALUMIA_GITHUB_CLIENT_SECRET");
  CHECK(alumia::oauth_client_env_names("microsoft-outlook").client_id == "ALUMIA_MICROSOFT_OUTLOOK_CLIENT_ID");
  CHECK(alumia::oauth_client_env_names("google-drive").client_secret == "ALUMIA_GOOGLE_DRIVE_CLIENT_SECRET");
}

TEST_CASE("label extraction: first match, join and prefix", "[catalog]") {
  alumia::LabelExtract first{{"/userPrincipalName", "/mail"}, "", ""};
  CHECK(alumia::extract_label(first, json::parse(R"({"mail":"a@b.c"})")) == "a@b.c");
  CHECK(alumia::extract_label(first, json::parse(R"({"userPrincipalName":"u@b.c","mail":"a@b.c"})")) == "u@b.c");
  CHECK(alumia::extract_label(first, json::parse(R"([1,2])")).empty());
  alumia::LabelExtract joined{{"/team/name", "/authed_user/id"}, " / ", ""};
  CHECK(alumia::extract_label(joined, json::parse(R"({"team":{"name":"Acme"},"authed_user":{"id":"U1"}})")) ==
        "Acme / U1");
}

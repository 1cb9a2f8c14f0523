// API bases (SPEC §8): the catalog's apiBase.envVar is answered from the settings table, so the
// environment beats config.json (telegramApiBase, githubApiBase, stripeApiBase), which beats the
// catalog's default; names that are no setting still come from the process environment.
#include <alumia/catalog/catalog.hpp>
#include <alumia/config/config.hpp>

#include "process.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <map>
#include <optional>
#include <string>

namespace {

using alumia::EnvLookup;
using alumia::test::TempDir;

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

alumia::Settings settings_with(const TempDir& dir, const std::string& config_json, const EnvLookup& env) {
  const auto path = dir.path() / "config.json";
  std::ofstream(path, std::ios::binary | std::ios::trunc) << config_json;
  ::chmod(path.c_str(), 0600);
  auto s = alumia::Settings::resolve({}, env, path);
  INFO((s ? std::string() : s.error().message));
  REQUIRE(s);
  return std::move(*s);
}

const alumia::Connector& connector(const alumia::Catalog& c, const char* slug) {
  const alumia::Connector* k = c.find(slug);
  REQUIRE(k);
  return *k;
}

}  // namespace

TEST_CASE("api bases: config.json telegramApiBase is used; the environment beats it", "[catalog][settings]") {
  TempDir dir;
  auto catalog = alumia::load_catalog(dir.path() / "connectors.d");
  REQUIRE(catalog);
  const alumia::Connector& telegram = connector(*catalog, "telegram");

  // Nothing set: the catalog's default.
  {
    const EnvLookup process = env_of({});
    const alumia::Settings s = settings_with(dir, "{}", process);
    CHECK(alumia::resolve_api_base(telegram, alumia::settings_env(s, process)) == "https://api.telegram.org");
  }
  // config.json only: its value (trailing slashes dropped, as for the variable).
  {
    const EnvLookup process = env_of({});
    const alumia::Settings s = settings_with(dir, R"({"telegramApiBase":"http://127.0.0.1:8081/"})", process);
    CHECK(alumia::resolve_api_base(telegram, alumia::settings_env(s, process)) == "http://127.0.0.1:8081");
    // The same for github and stripe, through their own keys.
    const alumia::Settings gs = settings_with(
        dir, R"({"githubApiBase":"http://127.0.0.1:8082","stripeApiBase":"http://127.0.0.1:8083"})", process);
    CHECK(alumia::resolve_api_base(connector(*catalog, "github"), alumia::settings_env(gs, process)) ==
          "http://127.0.0.1:8082");
    CHECK(alumia::resolve_api_base(connector(*catalog, "stripe"), alumia::settings_env(gs, process)) ==
          "http://127.0.0.1:8083");
  }
  // The environment beats config.json.
  {
    const EnvLookup process = env_of({{"ALUMIA_TELEGRAM_API_BASE", "http://127.0.0.1:9091"}});
    const alumia::Settings s = settings_with(dir, R"({"telegramApiBase":"http://127.0.0.1:8081"})", process);
    CHECK(alumia::resolve_api_base(telegram, alumia::settings_env(s, process)) == "http://127.0.0.1:9091");
  }
  // A config value is checked like the variable: https, or http only on a loopback literal.
  {
    const EnvLookup process = env_of({});
    const alumia::Settings s = settings_with(dir, R"({"telegramApiBase":"http://api.example.com"})", process);
    auto refused = alumia::resolve_api_base(telegram, alumia::settings_env(s, process));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == alumia::ErrorCode::validation_error);
    CHECK(refused.error().message.find("ALUMIA_TELEGRAM_API_BASE") != std::string::npos);
  }
  // A variable that is no setting (a connectors.d connector's own) still comes from the process.
  {
    const EnvLookup process = env_of({{"ALUMIA_ACME_API_BASE", "http://127.0.0.1:9092"}});
    const alumia::Settings s = settings_with(dir, "{}", process);
    alumia::Connector acme = connector(*catalog, "twilio");
    acme.api_base->env_var = "ALUMIA_ACME_API_BASE";
    CHECK(alumia::resolve_api_base(acme, alumia::settings_env(s, process)) == "http://127.0.0.1:9092");
  }
}

// Every API base the built-in catalog lets a variable override is a setting, so its config.json key
// (twilioApiBase, whatsappApiBase, ...) is honoured as well as the variable, and `config show` lists it.
TEST_CASE("api bases: every apiBase.envVar of the built-in catalog is a setting with a config key",
          "[catalog][settings]") {
  TempDir dir;
  auto catalog = alumia::load_catalog(dir.path() / "connectors.d");
  REQUIRE(catalog);
  std::size_t seen = 0;
  for (const auto& c : catalog->all()) {
    if (!c.api_base || c.api_base->env_var.empty()) continue;
    CAPTURE(c.slug, c.api_base->env_var);
    ++seen;
    const alumia::SettingSpec* spec = nullptr;
    for (const auto& s : alumia::setting_specs())
      if (s.env == c.api_base->env_var) spec = &s;
    REQUIRE(spec != nullptr);
    CHECK(spec->default_value == c.api_base->default_url);
    const EnvLookup process = env_of({});
    const alumia::Settings s = settings_with(dir, "{\"" + spec->config_key + "\":\"http://127.0.0.1:8099\"}", process);
    CHECK(alumia::resolve_api_base(c, alumia::settings_env(s, process)) == "http://127.0.0.1:8099");
  }
  CHECK(seen >= 5);  // github, stripe, telegram, twilio, whatsapp
}

// The settings table and its resolver: flag > environment > config file > default, every value checked
// against its kind and range, a bad one named with the setting and where it came from.
#include <alumia/config/config.hpp>
#include <alumia/webhooks/webhook_limits.hpp>

#include "process.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <set>
#include <string>

namespace {

using alumia::EnvLookup;
using alumia::SettingKind;
using alumia::Settings;
using alumia::SettingSource;

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

struct Home {
  alumia::test::TempDir dir;
  std::filesystem::path config() const { return dir.path() / "config.json"; }
  void write_config(const std::string& text) const {
    std::ofstream(config()) << text;
    std::filesystem::permissions(config(), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
};

}  // namespace

TEST_CASE("settings: a flag beats the environment, which beats the config file, which beats the default",
          "[settings]") {
  Home home;
  home.write_config(R"({"listen": "127.0.0.1:3", "env": "test", "logLevel": "warn", "refreshIntervalMs": 100})");
  const auto env = env_of({{"ALUMIA_LISTEN", "127.0.0.1:2"}, {"ALUMIA_ENV", "live"}});
  auto s = Settings::resolve({{"listen", "127.0.0.1:1"}}, env, home.config());
  REQUIRE(s);

  CHECK(s->get("listen") == "127.0.0.1:1");
  CHECK(s->setting("listen").source == SettingSource::flag);
  CHECK(s->origin("listen") == "--listen (flag)");

  CHECK(s->get("env") == "live");
  CHECK(s->setting("env").source == SettingSource::env);
  CHECK(s->origin("env") == "ALUMIA_ENV (env)");

  CHECK(s->get("log-level") == "warn");
  CHECK(s->setting("log-level").source == SettingSource::config);
  CHECK(s->origin("log-level") == "logLevel in " + home.config().string() + " (config)");
  CHECK(s->integer("refresh-interval-ms") == 100);  // a JSON number in the config file

  CHECK(s->get("keyring") == "auto");
  CHECK(s->setting("keyring").source == SettingSource::default_);
  CHECK(s->origin("keyring") == "keyring (default)");
}

TEST_CASE("settings: without a config file every setting has its default, and the defaults are valid", "[settings]") {
  Home home;
  auto s = Settings::resolve({}, env_of({}), home.config());
  REQUIRE(s);
  REQUIRE(s->all().size() == alumia::setting_specs().size());
  for (const auto& spec : alumia::setting_specs()) {
    INFO(spec.name);
    CHECK(s->get(spec.name) == spec.default_value);
    CHECK(alumia::accepts(spec, spec.default_value));
  }
  CHECK(s->integer("refresh-interval-ms") == 30'000);
  CHECK(s->integer("oauth-flow-ttl-ms") == 600'000);
  CHECK(s->integer("webhook-secret-grace-seconds") == 86'400);
  CHECK(s->integer("jwks-min-refresh-seconds") == 60);
  CHECK(s->integers("relay-backoff-ms").empty());
  CHECK_FALSE(s->boolean("allow-insecure-base-url"));
  // The receiver's default rate limit: the settings' defaults and range are the webhook area's numbers.
  CHECK(s->integer("webhook-rate-limit") == alumia::k_default_webhook_rate_per_second);
  CHECK(s->integer("webhook-rate-burst") == alumia::k_default_webhook_rate_burst);
  for (const char* name : {"webhook-rate-limit", "webhook-rate-burst"}) {
    const auto* spec = alumia::find_setting_spec(name);
    REQUIRE(spec != nullptr);
    CHECK(spec->min == 1);
    CHECK(spec->max == alumia::k_max_webhook_rate);
    CHECK_FALSE(spec->test_only);
  }
}

TEST_CASE("settings: the table names each setting, variable and config key once, test hooks marked", "[settings]") {
  std::set<std::string> names, envs, keys;
  for (const auto& spec : alumia::setting_specs()) {
    INFO(spec.name);
    CHECK(names.insert(spec.name).second);
    CHECK(envs.insert(spec.env).second);
    CHECK(keys.insert(spec.config_key).second);
    CHECK_FALSE(spec.description.empty());
    if (spec.kind == SettingKind::integer || spec.kind == SettingKind::millis_list) CHECK(spec.min <= spec.max);
    if (spec.kind == SettingKind::choice) CHECK_FALSE(spec.choices.empty());
  }
  for (const char* hook : {"refresh-interval-ms", "oauth-flow-ttl-ms", "relay-backoff-ms", "relay-lease-ms",
                           "webhook-secret-grace-seconds", "jwks-min-refresh-seconds", "dedup-ttl-ms"}) {
    const auto* spec = alumia::find_setting_spec(hook);
    REQUIRE(spec != nullptr);
    CHECK(spec->test_only);
  }
  CHECK_FALSE(alumia::find_setting_spec("listen")->test_only);
  CHECK(alumia::find_setting_spec("no-such-setting") == nullptr);
}

TEST_CASE("settings: typed values are read as their kind", "[settings]") {
  Home home;
  home.write_config(R"({"relayBackoffMs": [50, 100, 200], "allowInsecureBaseUrl": true})");
  auto s = Settings::resolve({}, env_of({{"ALUMIA_JWKS_MIN_REFRESH_SECONDS", "0"}}), home.config());
  REQUIRE(s);
  CHECK(s->get("relay-backoff-ms") == "50,100,200");
  CHECK(s->integers("relay-backoff-ms") == std::vector<int64_t>{50, 100, 200});
  CHECK(s->boolean("allow-insecure-base-url"));
  CHECK(s->integer("jwks-min-refresh-seconds") == 0);
}

TEST_CASE("settings: a bad value stops the resolve, naming the setting, its source and what it must be", "[settings]") {
  Home home;
  struct Case {
    std::map<std::string, std::string> flags;
    std::map<std::string, std::string> env;
    std::string config;
    std::string expected;
  };
  const std::vector<Case> cases{
      {{},
       {{"ALUMIA_OAUTH_FLOW_TTL_MS", "abc"}},
       "",
       "setting oauth-flow-ttl-ms: ALUMIA_OAUTH_FLOW_TTL_MS (env) is \"abc\"; it must be an integer from 1 to 600000"},
      {{}, {{"ALUMIA_OAUTH_FLOW_TTL_MS", "0"}}, "", "an integer from 1 to 600000"},
      {{}, {{"ALUMIA_OAUTH_FLOW_TTL_MS", "600001"}}, "", "an integer from 1 to 600000"},
      {{}, {{"ALUMIA_REFRESH_INTERVAL_MS", "10"}}, "", "setting refresh-interval-ms: ALUMIA_REFRESH_INTERVAL_MS (env)"},
      {{}, {{"ALUMIA_REFRESH_INTERVAL_MS", "99999999999999999999"}}, "", "an integer from 50 to 86400000"},
      {{}, {{"ALUMIA_WEBHOOK_SECRET_GRACE_SECONDS", "-1"}}, "", "an integer from 0 to 86400"},
      {{}, {{"ALUMIA_JWKS_MIN_REFRESH_SECONDS", "1e3"}}, "", "an integer from 0 to 3600"},
      {{}, {{"ALUMIA_RELAY_BACKOFF_MS", "50,x"}}, "", "comma-separated milliseconds, each from 0 to 86400000"},
      {{}, {{"ALUMIA_RELAY_BACKOFF_MS", "50,"}}, "", "setting relay-backoff-ms"},
      {{}, {{"ALUMIA_RELAY_BACKOFF_MS", "-5"}}, "", "setting relay-backoff-ms"},
      {{}, {{"ALUMIA_KEYRING", "kwallet"}}, "", "it must be one of auto, secret-service, file"},
      {{}, {{"ALUMIA_ALLOW_INSECURE_BASE_URL", "yes"}}, "", "it must be true or false"},
      {{{"log-level", "loud"}}, {}, "", "setting log-level: --log-level (flag) is \"loud\""},
      {{}, {}, R"({"env": "prod"})", "setting env: env in "},
      {{}, {}, R"({"refreshIntervalMs": "soon"})", "refreshIntervalMs in "},
  };
  for (const auto& c : cases) {
    INFO(c.expected);
    std::filesystem::remove(home.config());
    if (!c.config.empty()) home.write_config(c.config);
    auto s = Settings::resolve(c.flags, env_of(c.env), home.config());
    REQUIRE_FALSE(s);
    CHECK(s.error().code == alumia::ErrorCode::bad_request);
    CHECK(s.error().message.find(c.expected) != std::string::npos);
    CHECK(s.error().message.find("stoll") == std::string::npos);
  }
}

TEST_CASE("settings: every bad value is reported, one line each", "[settings]") {
  Home home;
  home.write_config(R"({"keyring": "nope"})");
  auto s = Settings::resolve({{"env", "staging"}}, env_of({{"ALUMIA_OAUTH_FLOW_TTL_MS", "x"}}), home.config());
  REQUIRE_FALSE(s);
  const std::string& m = s.error().message;
  CHECK(m.find("setting env: --env (flag)") != std::string::npos);
  CHECK(m.find("\nsetting keyring: keyring in " + home.config().string() + " (config)") != std::string::npos);
  CHECK(m.find("\nsetting oauth-flow-ttl-ms: ALUMIA_OAUTH_FLOW_TTL_MS (env)") != std::string::npos);
}

TEST_CASE("settings: a config value of the wrong JSON type names the key", "[settings]") {
  Home home;
  home.write_config(R"({"oauthFlowTtlMs": {"ms": 5}})");
  auto s = Settings::resolve({}, env_of({}), home.config());
  REQUIRE_FALSE(s);
  CHECK(s.error().message == home.config().string() + ": oauthFlowTtlMs: must be an integer from 1 to 600000");
  home.write_config(R"({"listen": 7465.5})");
  s = Settings::resolve({}, env_of({}), home.config());
  REQUIRE_FALSE(s);
  CHECK(s.error().message == home.config().string() + ": listen: must be a string");
}

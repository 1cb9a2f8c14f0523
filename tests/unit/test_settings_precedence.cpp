// Settings::resolve (common/config): for every setting, a flag beats the environment, which beats
// config.json, which beats the default; each value remembers where it came from (`config show`).
#include <alumia/config/config.hpp>

#include "process.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace {

using alumia::SettingSource;

void write_config(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
  ::chmod(p.c_str(), 0600);
}

alumia::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// Three distinct values a setting of this kind accepts (the first, second and third source's).
std::vector<std::string> valid_values(const alumia::SettingSpec& spec) {
  using alumia::SettingKind;
  switch (spec.kind) {
    case SettingKind::text:
      return {"from-flag", "from-env", "from-config"};
    case SettingKind::boolean:
      return {"true", "false", "true"};
    case SettingKind::integer:
    case SettingKind::millis_list:
      return {std::to_string(spec.min), std::to_string(spec.max), std::to_string(spec.min + (spec.max - spec.min) / 2)};
    case SettingKind::choice:
      return {spec.choices.at(0), spec.choices.at(spec.choices.size() > 1 ? 1 : 0), spec.choices.back()};
  }
  return {};
}

}  // namespace

TEST_CASE("settings: flag > env > config > default, for every setting of the table", "[settings]") {
  alumia::test::TempDir dir;
  const auto config = dir.path() / "config.json";
  for (const auto& spec : alumia::setting_specs()) {
    INFO(spec.name);
    const auto v = valid_values(spec);
    const nlohmann::json file{{spec.config_key, v[2]}};
    write_config(config, file.dump());
    const std::map<std::string, std::string> flag{{spec.name, v[0]}};
    const auto env = env_of({{spec.env, v[1]}});

    auto all = alumia::Settings::resolve(flag, env, config);
    REQUIRE(all);
    CHECK(all->get(spec.name) == v[0]);
    CHECK(all->setting(spec.name).source == SettingSource::flag);

    auto no_flag = alumia::Settings::resolve({}, env, config);
    REQUIRE(no_flag);
    CHECK(no_flag->get(spec.name) == v[1]);
    CHECK(no_flag->setting(spec.name).source == SettingSource::env);

    auto file_only = alumia::Settings::resolve({}, env_of({}), config);
    REQUIRE(file_only);
    CHECK(file_only->get(spec.name) == v[2]);
    CHECK(file_only->setting(spec.name).source == SettingSource::config);

    std::filesystem::remove(config);
    auto nothing = alumia::Settings::resolve({}, env_of({}), config);
    REQUIRE(nothing);
    CHECK(nothing->get(spec.name) == spec.default_value);
    CHECK(nothing->setting(spec.name).source == SettingSource::default_);
  }
}

TEST_CASE("settings: an empty value still counts as given", "[settings]") {
  alumia::test::TempDir dir;
  const auto config = dir.path() / "config.json";
  write_config(config, R"({"listen": "127.0.0.1:9000"})");
  auto s = alumia::Settings::resolve({}, env_of({{"ALUMIA_LISTEN", ""}}), config);
  REQUIRE(s);
  CHECK(s->get("listen").empty());
  CHECK(s->setting("listen").source == SettingSource::env);
}

TEST_CASE("settings: config.json values may be booleans or integers; other types are refused", "[settings]") {
  alumia::test::TempDir dir;
  const auto config = dir.path() / "config.json";
  write_config(config, R"({"allowInsecureBaseUrl": true, "logLevel": "debug", "env": "test"})");
  auto s = alumia::Settings::resolve({}, env_of({}), config);
  REQUIRE(s);
  CHECK(s->get("allow-insecure-base-url") == "true");
  CHECK(s->get("log-level") == "debug");
  CHECK(s->get("listen") == "127.0.0.1:7465");  // untouched: the default
  CHECK(s->setting("listen").source == SettingSource::default_);

  write_config(config, R"({"listen": ["127.0.0.1:1"]})");
  auto bad_type = alumia::Settings::resolve({}, env_of({}), config);
  REQUIRE_FALSE(bad_type);
  CHECK_THAT(bad_type.error().message, Catch::Contains("listen: must be a string"));

  write_config(config, "{not json");
  auto bad_json = alumia::Settings::resolve({}, env_of({}), config);
  REQUIRE_FALSE(bad_json);
  CHECK_THAT(bad_json.error().message, Catch::Contains("invalid JSON"));

  write_config(config, "[]");
  auto not_object = alumia::Settings::resolve({}, env_of({}), config);
  REQUIRE_FALSE(not_object);
  CHECK_THAT(not_object.error().message, Catch::Contains("must be a JSON object"));
}

TEST_CASE("settings: sources print as config show names them", "[settings]") {
  CHECK(alumia::to_string(SettingSource::flag) == "flag");
  CHECK(alumia::to_string(SettingSource::env) == "env");
  CHECK(alumia::to_string(SettingSource::config) == "config");
  CHECK(alumia::to_string(SettingSource::default_) == "default");
}

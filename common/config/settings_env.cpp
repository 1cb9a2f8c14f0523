// settings_env (config.hpp): the settings table in front of the process environment, for the
// catalog's API-base variables.
#include <alumia/config/config.hpp>

namespace alumia {

EnvLookup settings_env(const Settings& settings, EnvLookup fallback) {
  return [&settings, fallback = std::move(fallback)](std::string_view name) -> std::optional<std::string> {
    for (const SettingSpec& spec : setting_specs()) {
      if (spec.env != name) continue;
      const Setting& s = settings.setting(spec.name);
      if (s.source == SettingSource::default_) return std::nullopt;
      return s.value;
    }
    return fallback ? fallback(name) : std::nullopt;
  };
}

}  // namespace alumia

#pragma once
// Where files live (SPEC §1) and the effective settings with their provenance:
// flag > environment (ALUMIA_*) > config file > default. Both binaries use this one resolver.
#include <alumia/error.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace alumia {

struct Paths {
  bool flat = false;  // ALUMIA_HOME / --data-dir: everything in one directory
  std::filesystem::path data_dir;
  std::filesystem::path config_dir;
  std::filesystem::path runtime_dir;
  std::filesystem::path store_db() const { return data_dir / "store.db"; }
  std::filesystem::path lock_file() const { return data_dir / "store.lock"; }
  std::filesystem::path config_json() const { return config_dir / "config.json"; }
  std::filesystem::path connectors_d() const { return config_dir / "connectors.d"; }
  std::filesystem::path state_file() const { return runtime_dir / "daemon.json"; }
  std::filesystem::path key_file() const { return config_dir / "key"; }
  std::filesystem::path master_key_file() const { return data_dir / "master.key"; }
};

using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
EnvLookup process_env();

// `data_dir_flag` is --data-dir; otherwise ALUMIA_HOME; otherwise the XDG directories.
Paths resolve_paths(const std::optional<std::string>& data_dir_flag, const EnvLookup& env);
// Creates the directories with mode 0700 (existing ones are left as they are).
Status ensure_dirs(const Paths& paths);

enum class SettingSource { flag, env, config, default_ };
std::string_view to_string(SettingSource s);

struct SettingSpec {
  std::string name;        // e.g. "listen"
  std::string env;         // e.g. "ALUMIA_LISTEN"
  std::string config_key;  // e.g. "listen"
  std::string default_value;
  std::string description;
};

// Every setting either binary reads; `config show` walks this table.
const std::vector<SettingSpec>& setting_specs();

struct Setting {
  std::string name;
  std::string value;
  SettingSource source = SettingSource::default_;
};

class Settings {
 public:
  // flags: values given on the command line, by setting name.
  static Result<Settings> resolve(const std::map<std::string, std::string>& flags, const EnvLookup& env,
                                  const std::filesystem::path& config_json);
  const std::string& get(const std::string& name) const;
  const Setting& setting(const std::string& name) const;
  const std::vector<Setting>& all() const { return m_settings; }
  const nlohmann::json& config_file() const { return m_config; }

 private:
  std::vector<Setting> m_settings;
  nlohmann::json m_config = nlohmann::json::object();
};

}  // namespace alumia

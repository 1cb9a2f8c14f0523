#pragma once
// Where files live (SPEC §1) and the effective settings with their provenance:
// flag > environment (ALUMIA_*) > config file > default. Both binaries use this one resolver.
#include <alumia/base/error.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
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

// The home directory to use when HOME is unset, empty or relative: the passwd entry's of the
// effective uid, if that is an absolute path to an existing directory owned by that uid (what ssh and
// git fall back to). Tests inject their own.
using HomeLookup = std::function<std::optional<std::string>()>;
HomeLookup passwd_home();

// `data_dir_flag` is --data-dir; otherwise ALUMIA_HOME; otherwise the XDG directories
// (XDG_DATA_HOME, XDG_CONFIG_HOME, XDG_RUNTIME_DIR; relative values are ignored, as the XDG spec
// says), under the home directory where one is unset: HOME if absolute, else `home()`. With no
// home at all this fails (ErrorCode::bad_request) asking for ALUMIA_HOME or --data-dir: there is no
// shared fallback like /tmp, where another user could create the directories first.
Result<Paths> resolve_paths(const std::optional<std::string>& data_dir_flag, const EnvLookup& env,
                            const HomeLookup& home = passwd_home());
// Creates the missing directories, and missing parents, with mode 0700 (existing ones are left as
// they are).
Status ensure_dirs(const Paths& paths);
// The daemon's start: ensure_dirs, then every directory and file the daemon reads or writes must be
// its user's and private enough (fs.hpp: not writable by group or others; the store and its -wal,
// -shm and -intake files, the key file and master.key not readable by them either; no symbolic
// link at a file's name; every directory above owned by root or the user and not writable by others
// unless sticky). Fails with ErrorCode::forbidden listing each problem with the command that fixes it.
Status prepare_daemon_paths(const Paths& paths);

enum class SettingSource { flag, env, config, default_ };
std::string_view to_string(SettingSource s);

// What values a setting takes; Settings::resolve refuses any other.
enum class SettingKind {
  text,         // any string (addresses and URLs are checked where they are used, naming the setting)
  boolean,      // true or false
  integer,      // a decimal integer from min to max
  choice,       // one of `choices`
  millis_list,  // comma-separated milliseconds, each from min to max; empty = the built-in default
};

struct SettingSpec {
  std::string name;        // e.g. "listen"
  std::string env;         // e.g. "ALUMIA_LISTEN"
  std::string config_key;  // e.g. "listen"
  std::string default_value;
  std::string description;
  SettingKind kind = SettingKind::text;
  int64_t min = 0;  // integer, millis_list: inclusive range
  int64_t max = 0;
  std::vector<std::string> choices = {};  // choice
  bool test_only = false;                 // a hook for tests; `config show` lists it apart, never set it in production
  bool secret = false;                    // a credential: `config show` says whether it is set, never its value
};

// The values a spec accepts, for messages and `config show`: "an integer from 1 to 600000",
// "one of live, test", "true or false", "comma-separated milliseconds, each from 0 to 86400000", "text".
std::string describe_values(const SettingSpec& spec);
// Whether `value` is one the spec accepts.
bool accepts(const SettingSpec& spec, std::string_view value);

// Every setting either binary reads, test hooks included; `config show` walks this table.
const std::vector<SettingSpec>& setting_specs();
const SettingSpec* find_setting_spec(std::string_view name);

struct Setting {
  std::string name;
  std::string value;
  SettingSource source = SettingSource::default_;
};

class Settings {
 public:
  // flag > environment > config file > default, per setting. flags: values given on the command line,
  // by setting name. Fails (BAD_REQUEST) on a config file that is not a JSON object, and on every value
  // a setting does not accept, one line each naming the setting, where the value came from and what it
  // must be.
  static Result<Settings> resolve(const std::map<std::string, std::string>& flags, const EnvLookup& env,
                                  const std::filesystem::path& config_json);
  const std::string& get(const std::string& name) const;
  const Setting& setting(const std::string& name) const;
  const std::vector<Setting>& all() const { return m_settings; }
  const nlohmann::json& config_file() const { return m_config; }

  // Typed reads of settings resolve() has checked.
  int64_t integer(const std::string& name) const;
  bool boolean(const std::string& name) const;
  std::vector<int64_t> integers(const std::string& name) const;  // millis_list; empty when unset

  // Where a setting's value came from, for messages: "--listen (flag)", "ALUMIA_LISTEN (env)",
  // "listen in /home/u/.config/alumia-connect/config.json (config)", "listen (default)".
  std::string origin(const std::string& name) const;

 private:
  std::vector<Setting> m_settings;
  nlohmann::json m_config = nlohmann::json::object();
  std::filesystem::path m_config_path;
};

// The environment as the catalog's API bases read it (apiBase.envVar, e.g. ALUMIA_TELEGRAM_API_BASE):
// a name that is a setting's environment variable answers with that setting's value when the flag,
// the environment or the config file set it (so `telegramApiBase` in config.json counts too), and
// with nothing when the setting is at its default (the catalog's default then applies); any other
// name is asked of `fallback`. common/config/settings_env.cpp.
EnvLookup settings_env(const Settings& settings, EnvLookup fallback);

}  // namespace alumia

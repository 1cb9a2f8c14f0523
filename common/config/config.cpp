#include <alumia/base/fs.hpp>
#include <alumia/config/config.hpp>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace alumia {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t k_max_config_bytes = 1024 * 1024;

}  // namespace

EnvLookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

HomeLookup passwd_home() {
  return []() -> std::optional<std::string> {
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* found = nullptr;
    if (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr || pw.pw_dir == nullptr)
      return std::nullopt;
    const fs::path dir = pw.pw_dir;
    struct stat st {};
    if (!dir.is_absolute() || ::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid())
      return std::nullopt;
    return dir.string();
  };
}

Result<Paths> resolve_paths(const std::optional<std::string>& data_dir_flag, const EnvLookup& env,
                            const HomeLookup& home) {
  Paths p;
  std::optional<std::string> flat = data_dir_flag;
  if (!flat) flat = env("ALUMIA_HOME");
  if (flat) {
    p.flat = true;
    p.data_dir = p.config_dir = p.runtime_dir = fs::absolute(*flat);
    return p;
  }
  auto absolute_env = [&](std::string_view name) -> std::optional<fs::path> {
    auto v = env(name);
    if (!v || !fs::path(*v).is_absolute()) return std::nullopt;
    return fs::path(*v);
  };
  auto data_home = absolute_env("XDG_DATA_HOME");
  auto config_home = absolute_env("XDG_CONFIG_HOME");
  if (!data_home || !config_home) {
    std::optional<fs::path> home_dir = absolute_env("HOME");
    if (!home_dir)
      if (auto h = home()) home_dir = fs::path(*h);
    if (!home_dir)
      return fail(ErrorCode::bad_request,
                  "cannot tell where to keep the store and the key file: HOME is not set to an absolute path and "
                  "the user's passwd entry names no home directory of theirs; set ALUMIA_HOME=DIR or pass "
                  "--data-dir DIR (a directory only you can write), or set HOME");
    if (!data_home) data_home = *home_dir / ".local/share";
    if (!config_home) config_home = *home_dir / ".config";
  }
  p.data_dir = *data_home / "alumia-connect";
  p.config_dir = *config_home / "alumia-connect";
  if (auto rt = absolute_env("XDG_RUNTIME_DIR")) p.runtime_dir = *rt / "alumia-connect";
  else p.runtime_dir = p.data_dir;
  return p;
}

Status ensure_dirs(const Paths& paths) {
  for (const auto& d : {paths.data_dir, paths.config_dir, paths.runtime_dir})
    if (auto st = ensure_private_dir(d); !st) return st;
  return {};
}

Status prepare_daemon_paths(const Paths& paths) {
  std::vector<std::string> problems;
  auto note = [&problems](const auto& r) {
    if (!r) problems.push_back(r.error().message);
  };
  // Above the directories first: a directory another user can replace makes its contents moot.
  std::vector<fs::path> dirs;
  for (const auto& d : {paths.data_dir, paths.config_dir, paths.runtime_dir})
    if (std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);
  for (const auto& d : dirs) note(check_parent_dirs(d));
  if (!problems.empty()) return fail(ErrorCode::forbidden, problems.front());
  if (auto st = ensure_dirs(paths); !st) return st;
  for (const auto& d : dirs) note(check_owned_dir(d));
  note(check_owned_dir(paths.connectors_d()));
  if (!problems.empty()) return fail(ErrorCode::forbidden, problems.front());

  for (const auto& f : {paths.config_json(), paths.state_file(), paths.lock_file(), paths.data_dir / "daemon.log"})
    note(check_owned_file(f, Privacy::no_foreign_writes));
  std::error_code ec;
  if (fs::is_directory(paths.connectors_d(), ec)) {
    for (const auto& e : fs::directory_iterator(paths.connectors_d(), ec))
      if (e.path().extension() == ".json") note(check_owned_file(e.path(), Privacy::no_foreign_writes));
  }
  const std::string db = paths.store_db().string();
  for (const auto& f : {fs::path(db), fs::path(db + "-wal"), fs::path(db + "-shm"), fs::path(db + "-intake"),
                        paths.key_file(), paths.master_key_file()})
    note(check_owned_file(f, Privacy::secret));
  if (problems.empty()) return {};
  std::string message = problems.front();
  for (std::size_t i = 1; i < problems.size(); ++i) message += "\n" + problems[i];
  return fail(ErrorCode::forbidden, message);
}

std::string_view to_string(SettingSource s) {
  switch (s) {
    case SettingSource::flag:
      return "flag";
    case SettingSource::env:
      return "env";
    case SettingSource::config:
      return "config";
    case SettingSource::default_:
      return "default";
  }
  return "default";
}

const std::vector<SettingSpec>& setting_specs() {
  static const std::vector<SettingSpec> k_specs{
      {"listen", "ALUMIA_LISTEN", "listen", "127.0.0.1:7465", "control listener (loopback only)"},
      {"public-listen", "ALUMIA_PUBLIC_LISTEN", "publicListen", "",
       "public listener for webhooks and OAuth (ticketed start, callback)"},
      {"env", "ALUMIA_ENV", "env", "live", "key environment: live or test"},
      {"keyring", "ALUMIA_KEYRING", "keyring", "auto", "master key backend: auto, secret-service or file"},
      {"log-level", "ALUMIA_LOG_LEVEL", "logLevel", "info", "trace, debug, info, warn, error"},
      {"webhook-base-url", "CONNECTOR_WEBHOOK_BASE_URL", "webhookBaseUrl", "", "public https origin for receive URLs"},
      {"oauth-redirect-base", "ALUMIA_OAUTH_REDIRECT_BASE", "oauthRedirectBase", "",
       "base of the OAuth redirect URI (default: the control listener)"},
      {"relay-to", "ALUMIA_RELAY_TO", "relayTo", "", "default relay target for webhook jobs"},
      {"allow-insecure-base-url", "ALUMIA_ALLOW_INSECURE_BASE_URL", "allowInsecureBaseUrl", "false",
       "development only: lift the base URL rule"},
      {"telegram-api-base", "ALUMIA_TELEGRAM_API_BASE", "telegramApiBase", "https://api.telegram.org",
       "Telegram Bot API base URL"},
      {"github-api-base", "ALUMIA_GITHUB_API_BASE", "githubApiBase", "https://api.github.com", "GitHub API base URL"},
      {"stripe-api-base", "ALUMIA_STRIPE_API_BASE", "stripeApiBase", "https://api.stripe.com", "Stripe API base URL"},
      {"ca-file", "ALUMIA_CA_FILE", "caFile", "", "extra CA bundle trusted for outbound TLS (tests)"},
      {"daemon", "ALUMIA_DAEMON", "daemonUrl", "", "daemon URL for the CLI (default: from the state file)"},
  };
  return k_specs;
}

Result<Settings> Settings::resolve(const std::map<std::string, std::string>& flags, const EnvLookup& env,
                                   const fs::path& config_json) {
  Settings s;
  auto text = read_owned_file(config_json, Privacy::no_foreign_writes, k_max_config_bytes);
  if (!text && text.error().code != ErrorCode::not_found) return std::unexpected(text.error());
  if (text) {
    try {
      s.m_config = nlohmann::json::parse(*text);
    } catch (const nlohmann::json::exception& e) {
      return fail(ErrorCode::bad_request, config_json.string() + ": invalid JSON: " + e.what());
    }
    if (!s.m_config.is_object()) return fail(ErrorCode::bad_request, config_json.string() + ": must be a JSON object");
  }
  for (const auto& spec : setting_specs()) {
    Setting st{spec.name, spec.default_value, SettingSource::default_};
    if (auto it = flags.find(spec.name); it != flags.end()) {
      st.value = it->second;
      st.source = SettingSource::flag;
    } else if (auto v = env(spec.env)) {
      st.value = *v;
      st.source = SettingSource::env;
    } else if (s.m_config.contains(spec.config_key)) {
      const auto& j = s.m_config[spec.config_key];
      if (j.is_string()) st.value = j.get<std::string>();
      else if (j.is_boolean()) st.value = j.get<bool>() ? "true" : "false";
      else if (j.is_number_integer()) st.value = std::to_string(j.get<long long>());
      else return fail(ErrorCode::bad_request, config_json.string() + ": " + spec.config_key + ": must be a string");
      st.source = SettingSource::config;
    }
    s.m_settings.push_back(std::move(st));
  }
  return s;
}

const Setting& Settings::setting(const std::string& name) const {
  for (const auto& s : m_settings)
    if (s.name == name) return s;
  static const Setting k_empty{};
  return k_empty;
}

const std::string& Settings::get(const std::string& name) const { return setting(name).value; }

}  // namespace alumia

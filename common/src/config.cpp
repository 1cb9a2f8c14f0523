#include <alumia/config.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace alumia {
namespace fs = std::filesystem;

EnvLookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

Paths resolve_paths(const std::optional<std::string>& data_dir_flag, const EnvLookup& env) {
  Paths p;
  std::optional<std::string> flat = data_dir_flag;
  if (!flat) flat = env("ALUMIA_HOME");
  if (flat) {
    p.flat = true;
    p.data_dir = p.config_dir = p.runtime_dir = fs::absolute(*flat);
    return p;
  }
  const fs::path home = env("HOME").value_or("/tmp");
  const fs::path data_home = env("XDG_DATA_HOME").value_or((home / ".local/share").string());
  const fs::path config_home = env("XDG_CONFIG_HOME").value_or((home / ".config").string());
  p.data_dir = data_home / "alumia-connect";
  p.config_dir = config_home / "alumia-connect";
  if (auto rt = env("XDG_RUNTIME_DIR")) p.runtime_dir = fs::path(*rt) / "alumia-connect";
  else p.runtime_dir = p.data_dir;
  return p;
}

Status ensure_dirs(const Paths& paths) {
  for (const auto& d : {paths.data_dir, paths.config_dir, paths.runtime_dir}) {
    std::error_code ec;
    if (fs::exists(d, ec)) continue;
    // Parents may be created with the umask; the final directory is 0700.
    fs::create_directories(d.parent_path(), ec);
    if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST)
      return fail(ErrorCode::internal, "cannot create directory " + d.string() + ": " + std::strerror(errno));
  }
  return {};
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
       "public listener for webhooks and the OAuth callback"},
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
  std::error_code ec;
  if (fs::exists(config_json, ec)) {
    std::ifstream in(config_json);
    std::stringstream buf;
    buf << in.rdbuf();
    try {
      s.m_config = nlohmann::json::parse(buf.str());
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

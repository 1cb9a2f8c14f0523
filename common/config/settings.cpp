// The settings table and its resolver: flag > environment (ALUMIA_*) > config file > default, each value
// checked against its kind and range, so that a bad one stops the start naming the setting and its source.
#include <alumia/base/fs.hpp>
#include <alumia/base/strings.hpp>
#include <alumia/config/config.hpp>

#include <algorithm>
#include <charconv>

namespace alumia {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t k_max_config_bytes = 1024 * 1024;
constexpr int64_t k_day_ms = 24LL * 60 * 60 * 1000;

std::optional<int64_t> parse_int(std::string_view text) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || p != text.data() + text.size()) return std::nullopt;
  return v;
}

// "50,100,200" → {50, 100, 200}; nullopt when an item is not an integer.
std::optional<std::vector<int64_t>> parse_int_list(std::string_view text) {
  std::vector<int64_t> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    auto v = parse_int(text.substr(0, comma));
    if (!v) return std::nullopt;
    out.push_back(*v);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
    if (text.empty()) return std::nullopt;  // a trailing comma
  }
  return out;
}

// A config file value as the text the other sources give: strings as they are, true/false, integers,
// and an array of integers as a comma-separated list (millis_list).
std::optional<std::string> config_text(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_boolean()) return j.get<bool>() ? "true" : "false";
  if (j.is_number_integer()) return std::to_string(j.get<long long>());
  if (j.is_array()) {
    std::string out;
    for (const auto& e : j) {
      if (!e.is_number_integer()) return std::nullopt;
      if (!out.empty()) out += ',';
      out += std::to_string(e.get<long long>());
    }
    return out;
  }
  return std::nullopt;
}

}  // namespace

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

std::string describe_values(const SettingSpec& spec) {
  switch (spec.kind) {
    case SettingKind::text:
      return "text";
    case SettingKind::boolean:
      return "true or false";
    case SettingKind::integer:
      return "an integer from " + std::to_string(spec.min) + " to " + std::to_string(spec.max);
    case SettingKind::choice:
      return "one of " + join(spec.choices, ", ");
    case SettingKind::millis_list:
      return "comma-separated milliseconds, each from " + std::to_string(spec.min) + " to " + std::to_string(spec.max);
  }
  return "text";
}

bool accepts(const SettingSpec& spec, std::string_view value) {
  const auto in_range = [&](int64_t v) { return v >= spec.min && v <= spec.max; };
  switch (spec.kind) {
    case SettingKind::text:
      return true;
    case SettingKind::boolean:
      return value == "true" || value == "false";
    case SettingKind::integer: {
      const auto v = parse_int(value);
      return v && in_range(*v);
    }
    case SettingKind::choice:
      return std::find(spec.choices.begin(), spec.choices.end(), value) != spec.choices.end();
    case SettingKind::millis_list: {
      const auto vs = parse_int_list(value);
      return vs && std::all_of(vs->begin(), vs->end(), in_range);
    }
  }
  return false;
}

const std::vector<SettingSpec>& setting_specs() {
  using enum SettingKind;
  static const std::vector<SettingSpec> k_specs{
      {.name = "listen",
       .env = "ALUMIA_LISTEN",
       .config_key = "listen",
       .default_value = "127.0.0.1:7465",
       .description = "control listener HOST:PORT (loopback only; port 0 picks one)"},
      {.name = "public-listen",
       .env = "ALUMIA_PUBLIC_LISTEN",
       .config_key = "publicListen",
       .default_value = "",
       .description = "public listener ADDR:PORT for webhooks and OAuth (ticketed start, callback)"},
      {.name = "env",
       .env = "ALUMIA_ENV",
       .config_key = "env",
       .default_value = "live",
       .description = "key environment",
       .kind = choice,
       .choices = {"live", "test"}},
      {.name = "keyring",
       .env = "ALUMIA_KEYRING",
       .config_key = "keyring",
       .default_value = "auto",
       .description = "master key backend",
       .kind = choice,
       .choices = {"auto", "secret-service", "file"}},
      {.name = "master-key-file",
       .env = "ALUMIA_MASTER_KEY_FILE",
       .config_key = "masterKeyFile",
       .default_value = "",
       .description = "the master key file, an absolute path outside the data directory that several daemons of "
                      "one store share (empty: master.key in the data directory); created 0600 by the first "
                      "daemon, refused when group or others may read it"},
      {.name = "master-key-name",
       .env = "ALUMIA_MASTER_KEY_NAME",
       .config_key = "masterKeyName",
       .default_value = "",
       .description = "the Secret Service item of the master key (its `store` attribute), shared by several daemons "
                      "of one store (empty: the data directory's path)"},
      {.name = "store",
       .env = "ALUMIA_STORE",
       .config_key = "store",
       .default_value = "",
       .description = "where the state lives: empty for the embedded SQLite file in the data directory, or a "
                      "postgres:// URL shared by several daemons (its password from PGPASSWORD or ~/.pgpass, "
                      "never in the URL of a flag)",
       .secret = true},  // it may hold a password: `config show` says (set); `daemon status` shows it redacted
      {.name = "auth-failure-burst",
       .env = "ALUMIA_AUTH_FAILURE_BURST",
       .config_key = "authFailureBurst",
       .default_value = "10",
       .description = "wrong API keys a client may present before it is answered 429 until its allowance refills",
       .kind = integer,
       .min = 1,
       .max = 1'000'000},
      {.name = "auth-failure-per-minute",
       .env = "ALUMIA_AUTH_FAILURE_PER_MINUTE",
       .config_key = "authFailurePerMinute",
       .default_value = "30",
       .description = "the refill of a client's allowance of wrong API keys, a minute",
       .kind = integer,
       .min = 1,
       .max = 1'000'000},
      {.name = "auth-failure-delay-ms",
       .env = "ALUMIA_AUTH_FAILURE_DELAY_MS",
       .config_key = "authFailureDelayMs",
       .default_value = "250",
       .description = "how long the answer to a wrong API key is held",
       .kind = integer,
       .min = 0,
       .max = 10'000},
      {.name = "log-level",
       .env = "ALUMIA_LOG_LEVEL",
       .config_key = "logLevel",
       .default_value = "info",
       .description = "daemon log level",
       .kind = choice,
       .choices = {"trace", "debug", "info", "warn", "error"}},
      {.name = "dedup-filter-bytes",
       .env = "ALUMIA_DEDUP_FILTER_BYTES",
       .config_key = "dedupFilterBytes",
       .default_value = "4194304",
       .description = "memory of the webhook dedup filter (about 10 bits a stored key for 1% table reads)",
       .kind = integer,
       .min = 4096,
       .max = int64_t{1} << 30},
      {.name = "events-retention-days",
       .env = "ALUMIA_EVENTS_RETENTION_DAYS",
       .config_key = "eventsRetentionDays",
       .default_value = "30",
       .description = "days a delivered or dead webhook event keeps its body and headers (an endpoint's retentionDays "
                      "overrides); its row goes at three times that",
       .kind = integer,
       .min = 1,
       .max = 36'500},
      {.name = "webhook-base-url",
       .env = "CONNECTOR_WEBHOOK_BASE_URL",
       .config_key = "webhookBaseUrl",
       .default_value = "",
       .description = "public https origin for receive URLs"},
      {.name = "oauth-redirect-base",
       .env = "ALUMIA_OAUTH_REDIRECT_BASE",
       .config_key = "oauthRedirectBase",
       .default_value = "",
       .description = "base of the OAuth redirect URI (default: the control listener)"},
      {.name = "relay-to",
       .env = "ALUMIA_RELAY_TO",
       .config_key = "relayTo",
       .default_value = "",
       .description = "default relay target for webhook jobs"},
      {.name = "webhook-rate-limit",
       .env = "ALUMIA_WEBHOOK_RATE_LIMIT",
       .config_key = "webhookRateLimit",
       .default_value = "1000",
       .description = "deliveries a second a webhook endpoint accepts unless it has its own rateLimit",
       .kind = integer,
       .min = 1,
       .max = 1'000'000},
      {.name = "webhook-rate-burst",
       .env = "ALUMIA_WEBHOOK_RATE_BURST",
       .config_key = "webhookRateBurst",
       .default_value = "2000",
       .description = "deliveries a webhook endpoint accepts at once above its rate, unless it has its own rateLimit",
       .kind = integer,
       .min = 1,
       .max = 1'000'000},
      {.name = "relay-concurrency",
       .env = "ALUMIA_RELAY_CONCURRENCY",
       .config_key = "relayConcurrency",
       .default_value = "32",
       .description = "relay deliveries in flight at once, over all targets",
       .kind = integer,
       .min = 1,
       .max = 256},
      {.name = "relay-target-concurrency",
       .env = "ALUMIA_RELAY_TARGET_CONCURRENCY",
       .config_key = "relayTargetConcurrency",
       .default_value = "8",
       .description = "relay deliveries in flight at once to one target origin (its kept-alive connections)",
       .kind = integer,
       .min = 1,
       .max = 256},
      // The two listeners (daemon/server.cpp), each with its own caps and workers.
      {.name = "http-max-connections",
       .env = "ALUMIA_HTTP_MAX_CONNECTIONS",
       .config_key = "httpMaxConnections",
       .default_value = "3000",
       .description = "open connections a listener holds (each costs ~13 KiB); the excess is closed at once",
       .kind = integer,
       .min = 1,
       .max = 100'000},
      {.name = "http-max-connections-per-ip",
       .env = "ALUMIA_HTTP_MAX_CONNECTIONS_PER_IP",
       .config_key = "httpMaxConnectionsPerIp",
       .default_value = "512",
       .description = "open connections from one client address (a trusted proxy: requests in flight per forwarded "
                      "client instead)",
       .kind = integer,
       .min = 1,
       .max = 100'000},
      {.name = "http-header-timeout-ms",
       .env = "ALUMIA_HTTP_HEADER_TIMEOUT_MS",
       .config_key = "httpHeaderTimeoutMs",
       .default_value = "10000",
       .description = "a request's headers must be complete this long after the connection or, on a kept-alive "
                      "connection, after the request's first byte, else 408 and close; also the grace before "
                      "http-body-min-rate applies",
       .kind = integer,
       .min = 50,
       .max = 600'000},
      {.name = "http-idle-timeout-seconds",
       .env = "ALUMIA_HTTP_IDLE_TIMEOUT_SECONDS",
       .config_key = "httpIdleTimeoutSeconds",
       .default_value = "5",
       .description = "a connection with nothing sent or received this long (idle keep-alive) is closed",
       .kind = integer,
       .min = 1,
       .max = 3'600},
      {.name = "http-body-min-rate",
       .env = "ALUMIA_HTTP_BODY_MIN_RATE",
       .config_key = "httpBodyMinRate",
       .default_value = "1024",
       .description = "bytes a second a request body must average once http-header-timeout-ms has passed, else "
                      "408 and close (0: no floor)",
       .kind = integer,
       .min = 0,
       .max = 1'000'000'000},
      {.name = "http-body-budget",
       .env = "ALUMIA_HTTP_BODY_BUDGET",
       .config_key = "httpBodyBudget",
       .default_value = "67108864",
       .description = "bytes of request bodies a listener buffers at once (by Content-Length, reserved before the "
                      "body is read); a request that would go over is answered 503 and closed",
       .kind = integer,
       .min = 65'536,
       .max = int64_t{1} << 36},
      {.name = "metrics-token",
       .env = "ALUMIA_METRICS_TOKEN",
       .config_key = "metricsToken",
       .default_value = "",
       .description = "a bearer token that may scrape GET /metrics on the control listener without an API key "
                      "(empty: only a key with 'admin' may)",
       .secret = true},
      {.name = "admin-login-link-seconds",
       .env = "ALUMIA_ADMIN_LOGIN_LINK_SECONDS",
       .config_key = "adminLoginLinkSeconds",
       .default_value = "120",
       .description = "how long a login link of `admin open` may be used (once) to open the admin pages",
       .kind = integer,
       .min = 1,
       .max = 600},
      {.name = "admin-session-seconds",
       .env = "ALUMIA_ADMIN_SESSION_SECONDS",
       .config_key = "adminSessionSeconds",
       .default_value = "3600",
       .description = "how long an admin pages session lasts from its login (then `admin open` again)",
       .kind = integer,
       .min = 1,
       .max = 86'400},
      {.name = "trusted-proxies",
       .env = "ALUMIA_TRUSTED_PROXIES",
       .config_key = "trustedProxies",
       .default_value = "",
       .description = "comma-separated addresses or CIDR blocks of reverse proxies whose X-Forwarded-For names the "
                      "client (public listener; empty: the header is ignored)"},
      {.name = "allow-insecure-base-url",
       .env = "ALUMIA_ALLOW_INSECURE_BASE_URL",
       .config_key = "allowInsecureBaseUrl",
       .default_value = "false",
       .description = "development only: lift the base URL rule",
       .kind = boolean},
      {.name = "telegram-api-base",
       .env = "ALUMIA_TELEGRAM_API_BASE",
       .config_key = "telegramApiBase",
       .default_value = "https://api.telegram.org",
       .description = "Telegram Bot API base URL"},
      {.name = "github-api-base",
       .env = "ALUMIA_GITHUB_API_BASE",
       .config_key = "githubApiBase",
       .default_value = "https://api.github.com",
       .description = "GitHub API base URL"},
      {.name = "stripe-api-base",
       .env = "ALUMIA_STRIPE_API_BASE",
       .config_key = "stripeApiBase",
       .default_value = "https://api.stripe.com",
       .description = "Stripe API base URL"},
      {.name = "twilio-api-base",
       .env = "ALUMIA_TWILIO_API_BASE",
       .config_key = "twilioApiBase",
       .default_value = "https://api.twilio.com",
       .description = "Twilio API base URL"},
      {.name = "whatsapp-api-base",
       .env = "ALUMIA_WHATSAPP_API_BASE",
       .config_key = "whatsappApiBase",
       .default_value = "https://graph.facebook.com",
       .description = "WhatsApp (Graph API) base URL"},
      {.name = "ca-file",
       .env = "ALUMIA_CA_FILE",
       .config_key = "caFile",
       .default_value = "",
       .description = "extra CA bundle trusted for outbound TLS (tests)"},
      {.name = "daemon",
       .env = "ALUMIA_DAEMON",
       .config_key = "daemonUrl",
       .default_value = "",
       .description = "daemon URL for the CLI (default: from the state file)"},
      // Test hooks: they shorten what the product keeps long so that tests run in seconds.
      {.name = "refresh-interval-ms",
       .env = "ALUMIA_REFRESH_INTERVAL_MS",
       .config_key = "refreshIntervalMs",
       .default_value = "30000",
       .description = "how often the OAuth refresh worker looks for tokens due",
       .kind = integer,
       .min = 50,
       .max = k_day_ms,
       .test_only = true},
      {.name = "oauth-flow-ttl-ms",
       .env = "ALUMIA_OAUTH_FLOW_TTL_MS",
       .config_key = "oauthFlowTtlMs",
       .default_value = "600000",
       .description = "life of a pending OAuth flow and its browser cookie (at most the 10 minutes of SPEC §6)",
       .kind = integer,
       .min = 1,
       .max = 600'000,
       .test_only = true},
      {.name = "relay-backoff-ms",
       .env = "ALUMIA_RELAY_BACKOFF_MS",
       .config_key = "relayBackoffMs",
       .default_value = "",
       .description = "relay retry schedule without jitter (default: 5s, 30s, 2m, 10m, 30m, 1h, 3h, 6h with jitter)",
       .kind = millis_list,
       .min = 0,
       .max = k_day_ms,
       .test_only = true},
      {.name = "relay-lease-ms",
       .env = "ALUMIA_RELAY_LEASE_MS",
       .config_key = "relayLeaseMs",
       .default_value = "60000",
       .description = "how long a relay claim holds a job on a PostgreSQL store before another daemon may take it",
       .kind = integer,
       .min = 100,
       .max = k_day_ms,
       .test_only = true},
      {.name = "webhook-secret-grace-seconds",
       .env = "ALUMIA_WEBHOOK_SECRET_GRACE_SECONDS",
       .config_key = "webhookSecretGraceSeconds",
       .default_value = "86400",
       .description = "how long a rotated webhook secret still verifies",
       .kind = integer,
       .min = 0,
       .max = 86'400,
       .test_only = true},
      {.name = "retention-day-ms",
       .env = "ALUMIA_RETENTION_DAY_MS",
       .config_key = "retentionDayMs",
       .default_value = "86400000",
       .description = "the length of a day of events-retention-days and retentionDays (bench/retention.sh)",
       .kind = integer,
       .min = 1,
       .max = k_day_ms,
       .test_only = true},
      {.name = "retention-sweep-interval-ms",
       .env = "ALUMIA_RETENTION_SWEEP_INTERVAL_MS",
       .config_key = "retentionSweepIntervalMs",
       .default_value = "60000",
       .description = "how often the retention sweep runs",
       .kind = integer,
       .min = 50,
       .max = k_day_ms,
       .test_only = true},
      {.name = "dedup-ttl-ms",
       .env = "ALUMIA_DEDUP_TTL_MS",
       .config_key = "dedupTtlMs",
       .default_value = "691200000",
       .description = "how long a delivery's dedup keys are kept (8 days; bench/retention.sh shortens it)",
       .kind = integer,
       .min = 1000,
       .max = 691'200'000,
       .test_only = true},
      {.name = "jwks-min-refresh-seconds",
       .env = "ALUMIA_JWKS_MIN_REFRESH_SECONDS",
       .config_key = "jwksMinRefreshSeconds",
       .default_value = "60",
       .description = "how soon a Gmail push token with an unknown key id may refetch the JWKS",
       .kind = integer,
       .min = 0,
       .max = 3'600,
       .test_only = true},
  };
  return k_specs;
}

const SettingSpec* find_setting_spec(std::string_view name) {
  for (const auto& spec : setting_specs())
    if (spec.name == name) return &spec;
  return nullptr;
}

Result<Settings> Settings::resolve(const std::map<std::string, std::string>& flags, const EnvLookup& env,
                                   const fs::path& config_json) {
  Settings s;
  s.m_config_path = config_json;
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
  std::vector<std::string> problems;
  for (const auto& spec : setting_specs()) {
    Setting st{spec.name, spec.default_value, SettingSource::default_};
    if (auto it = flags.find(spec.name); it != flags.end()) {
      st.value = it->second;
      st.source = SettingSource::flag;
    } else if (auto v = env(spec.env)) {
      st.value = *v;
      st.source = SettingSource::env;
    } else if (s.m_config.contains(spec.config_key)) {
      auto text_value = config_text(s.m_config[spec.config_key]);
      if (!text_value)
        return fail(ErrorCode::bad_request, config_json.string() + ": " + spec.config_key + ": must be " +
                                                (spec.kind == SettingKind::text ? "a string" : describe_values(spec)));
      st.value = std::move(*text_value);
      st.source = SettingSource::config;
    }
    s.m_settings.push_back(std::move(st));
    if (!accepts(spec, s.m_settings.back().value))
      problems.push_back("setting " + spec.name + ": " + s.origin(spec.name) + " is \"" + s.m_settings.back().value +
                         "\"; it must be " + describe_values(spec));
  }
  if (!problems.empty()) {
    std::string message = problems.front();
    for (std::size_t i = 1; i < problems.size(); ++i) message += "\n" + problems[i];
    return fail(ErrorCode::bad_request, message);
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

int64_t Settings::integer(const std::string& name) const { return parse_int(get(name)).value_or(0); }

bool Settings::boolean(const std::string& name) const { return get(name) == "true"; }

std::vector<int64_t> Settings::integers(const std::string& name) const {
  return parse_int_list(get(name)).value_or(std::vector<int64_t>{});
}

std::string Settings::origin(const std::string& name) const {
  const SettingSpec* spec = find_setting_spec(name);
  if (spec == nullptr) return name;
  switch (setting(name).source) {
    case SettingSource::flag:
      return "--" + spec->name + " (flag)";
    case SettingSource::env:
      return spec->env + " (env)";
    case SettingSource::config:
      return spec->config_key + " in " + m_config_path.string() + " (config)";
    case SettingSource::default_:
      break;
  }
  return spec->name + " (default)";
}

}  // namespace alumia

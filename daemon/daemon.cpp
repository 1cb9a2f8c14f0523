// alumia-connectd, top to bottom: run() parses the command line and prepares the process; the Daemon's
// constructor reads as the start order (each member's initializer is one start step); serve() runs it.
#include "daemon.hpp"

#include "api_doc.hpp"
#include "keyring_helper.hpp"
#include "master_key_rotation.hpp"
#include "start_only_text.hpp"

#include <alumia/crypto/keyring.hpp>
#include <alumia/net/url.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

namespace alumia::daemon {
namespace {

using nlohmann::json;

template <class T>
T must(Result<T> r, const std::string& what) {
  if (!r) throw StartupError(what + ": " + r.error().message);
  return std::move(*r);
}

void must(const Status& st, const std::string& what) {
  if (!st) throw StartupError(what + ": " + st.error().message);
}

// --- the start steps, in the order the constructor takes them ---

Paths prepare_paths(const std::optional<std::string>& data_dir, const EnvLookup& env) {
  Paths paths = must(resolve_paths(data_dir, env), "no data directory");
  must(prepare_daemon_paths(paths), "unsafe data directory");
  return paths;
}

// Resolves every setting (a bad value stops the start, naming the setting and where it came from)
// and applies the log level, so that every later step logs at it.
Settings resolve_settings(const StartOptions& options, const EnvLookup& env, const Paths& paths) {
  Settings settings = must(Settings::resolve(options.flags, env, paths.config_json()), "bad configuration");
  spdlog::set_level(spdlog::level::from_str(settings.get("log-level")));
  return settings;
}

// SPEC §8: providers are told to deliver to receiveUrls built on the base URL, so an unsafe one stops
// the start, naming the setting, where it came from and the rule it breaks. --allow-insecure-base-url
// (development only) lets it through, said here on stderr and on every reply that hands out a
// receiveUrl built on it; even then it must be an http(s) URL a path can be appended to.
WebhookBase judge_webhook_base(const Settings& settings) {
  const std::string text = settings.get("webhook-base-url");
  if (text.empty()) return {};
  const std::string where = "setting webhook-base-url from " + settings.origin("webhook-base-url");
  const bool insecure = settings.boolean("allow-insecure-base-url");
  auto judged = url::judge_base_url(text, insecure);
  if (!judged && !insecure)
    throw StartupError(where + ": " + judged.error().message +
                       ". Set a public https base URL, or, for development only, start with --allow-insecure-base-url");
  if (!judged)
    throw StartupError(where + ": " + judged.error().message + " (development mode is on through " +
                       settings.origin("allow-insecure-base-url") + ")");
  if (judged->broken_rule.empty()) return WebhookBase{std::move(judged->url), {}};
  const std::string warning = "receiveUrls are built on the webhook base URL " + judged->url + " (" + where +
                              "), which breaks the public base URL rule: " + judged->broken_rule +
                              "; allowed only by " + settings.origin("allow-insecure-base-url") +
                              ", for development: providers on the internet cannot deliver there";
  spdlog::warn("INSECURE: {}", warning);
  return WebhookBase{std::move(judged->url), warning};
}

// One daemon per data directory, whatever the store: its state file (daemon.json), key files and log are
// one daemon's. On SQLite that is also one daemon per store (two refresh workers would trip refresh-token
// reuse detection). Daemons on one PostgreSQL store share it by design, each in its own data directory
// (the store's constraints and locks keep the guarantees).
UniqueFd lock_store(const Paths& paths, [[maybe_unused]] const Settings& settings) {
  UniqueFd fd = must(open_owned_file(paths.lock_file(), O_CREAT | O_RDWR, Privacy::no_foreign_writes),
                     "cannot open the lock file");
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0)
    throw StartupError("another alumia-connectd is already using " + paths.data_dir.string() +
                       " (stop it with `alumia-connect daemon stop`)");
  return fd;
}

// The `store` setting: empty is the SQLite file in the data directory; a postgres:// URL is a database
// several daemons share. Anything else stops the start. A password in the URL of the --store flag stops
// it too: it would show in the process list (ps) of every user.
std::string store_url(const Settings& settings) {
  const std::string store = settings.get("store");
  const std::string where = "setting store from " + settings.origin("store");
  if (store.empty() || is_postgres_url(store)) {
    if (settings.setting("store").source == SettingSource::flag && redact_store_url(store) != store)
      throw StartupError(where +
                         " holds a password, which every user would see in the process list: give it in "
                         "PGPASSWORD or ~/.pgpass (or use a Unix socket), or pass the URL in ALUMIA_STORE");
    return store;
  }
  throw StartupError(where + ": " + redact_store_url(store) +
                     " is not a store this daemon knows: leave it empty for the SQLite store in the data directory, "
                     "or give a postgres://USER@HOST:PORT/DATABASE URL");
}

std::unique_ptr<Store> open_store(const Settings& settings, const Paths& paths) {
  const std::string url = store_url(settings);
  if (url.empty()) return must(open_sqlite_store({paths.store_db(), true}), "cannot open the store");
  auto store = must(open_postgres_store({.conninfo = url, .pool_size = 8}),
                    "cannot open the PostgreSQL store " + redact_store_url(url));
  spdlog::info("store: PostgreSQL {}", redact_store_url(url));
  return store;
}

// This data directory's name in the relay's claims on a shared store (the file relay-holder, a random
// id made on first use). One daemon runs per data directory (the lock), so a daemon restarted after a
// crash knows the jobs it held and requeues them at once, instead of waiting out their lease; a job
// another daemon holds is never taken before its lease ends.
std::string relay_holder(const Paths& paths) {
  const auto file = paths.data_dir / "relay-holder";
  auto id = read_private_file(file);
  if (!id && id.error().code == ErrorCode::not_found) {
    const auto made = create_file_atomic_0600(file, SystemRandom().uuid_v4());
    if (!made && made.error().code != ErrorCode::conflict) must(made, "cannot make the relay holder id");
    id = read_private_file(file);
  }
  return must(std::move(id), "cannot read the relay holder id");
}

// The webhook store lives beside the store: in the same SQLite file, or in the same PostgreSQL database
// (where an endpoint and its secrets can commit together).
std::unique_ptr<WebhookStore> open_webhook_store(const Settings& settings, const Paths& paths) {
  const std::string url = store_url(settings);
  if (!url.empty()) {
    PgWebhookStoreOptions options;
    options.conninfo = url;
    options.lease_ms = settings.integer("relay-lease-ms");
    options.holder = relay_holder(paths);
    return must(open_postgres_webhook_store(options),
                "cannot open the PostgreSQL webhook store " + redact_store_url(url));
  }
  return must(open_sqlite_webhook_store(
                  {.path = paths.store_db(),
                   .dedup_filter_bytes = static_cast<std::size_t>(settings.integer("dedup-filter-bytes"))}),
              "cannot open the webhook store");
}

bool is_loopback_listen(const std::string& host) {
  return host == "127.0.0.1" || host == "::1" || host == "localhost" || host.rfind("127.", 0) == 0;
}

std::vector<std::string> host_names(const std::string& host, int port) {
  const std::string p = ":" + std::to_string(port);
  if (host == "::1") return {"[::1]" + p, "localhost" + p};
  return {host + p, "localhost" + p, "127.0.0.1" + p, "[::1]" + p};
}

// An IPv6 literal in its one compressed spelling ([0:0:0:0:0:0:0:1] is ::1), so that the loopback
// check, the listener's URL and its Host names see one text per address.
std::pair<std::string, int> listen_address(const Settings& settings, const std::string& name) {
  auto [host, port] = must(parse_listen(settings.get(name)), "bad setting " + name + " from " + settings.origin(name));
  in6_addr v6{};
  char text[INET6_ADDRSTRLEN] = {};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && ::inet_ntop(AF_INET6, &v6, text, sizeof text) != nullptr)
    host = text;
  return {host, port};
}

BoundListener bind_control(const Settings& settings) {
  const auto [host, port] = listen_address(settings, "listen");
  if (!is_loopback_listen(host))
    throw StartupError("setting listen from " + settings.origin("listen") + ": " + settings.get("listen") +
                       " is not a loopback address; the control API never listens publicly (use --public-listen "
                       "for the webhook receiver and OAuth callback)");
  BoundListener b{std::make_unique<Listener>(http::ListenerKind::control), {}, {}};
  const int bound = must(b.listener->bind(host, port), "cannot start the control listener");
  const std::string url_host = host == "::1" ? "[::1]" : (host == "localhost" ? "127.0.0.1" : host);
  b.url = "http://" + url_host + ":" + std::to_string(bound);
  b.hosts = host_names(host, bound);
  return b;
}

// Without --public-listen: no listener.
BoundListener bind_public(const Settings& settings, const WebhookBase& webhook_base) {
  if (settings.get("public-listen").empty()) return {};
  const auto [host, port] = listen_address(settings, "public-listen");
  BoundListener b{std::make_unique<Listener>(http::ListenerKind::public_), {}, {}};
  const int bound = must(b.listener->bind(host, port), "cannot start the public listener");
  b.hosts = host_names(host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host, bound);
  if (!webhook_base.url.empty())
    if (auto u = url::parse(webhook_base.url))
      b.hosts.push_back(u->explicit_port ? u->host_port() : u->host_is_ipv6 ? "[" + u->host + "]" : u->host);
  b.url = "http://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(bound);
  return b;
}

// On PostgreSQL other daemons change endpoints too: the watch LISTENs for their changes (and this
// daemon's own) and drops what the cache holds of them, everything after a reconnect and every
// `recheck` (SPEC §12). SQLite has one daemon per store, whose services tell the cache directly.
std::unique_ptr<EndpointWatch> watch_endpoints(const Settings& settings, EndpointCache& endpoints) {
  const std::string url = store_url(settings);
  if (url.empty()) return nullptr;
  return must(
      EndpointWatch::start({.conninfo = url}, [&endpoints](const std::string& id) { endpoints.changed_elsewhere(id); }),
      "cannot watch the PostgreSQL store " + redact_store_url(url) + " for endpoint changes");
}

// The master key's place: the data directory, or the one the master-key-file / master-key-name settings
// name, shared by the daemons of one store (docs/SCALE-OUT.md).
MasterKeyPlace master_key_place(const Settings& settings, const Paths& paths) {
  MasterKeyPlace place{
      .data_dir = paths.data_dir, .key_file = settings.get("master-key-file"), .name = settings.get("master-key-name")};
  if (auto ok = check_master_key_file_setting(place.key_file); !ok)
    throw StartupError("bad setting master-key-file from " + settings.origin("master-key-file") + ": " +
                       ok.error().message);
  return place;
}

// The master key (created on first use) unwraps the data key kept in the store (made on first use).
UnlockedKeys unlock_data_key(Store& store, const Settings& settings, const Paths& paths, Random& random) {
  const MasterKeyPlace place = master_key_place(settings, paths);
  const auto mode = parse_keyring_mode(settings.get("keyring")).value_or(KeyringMode::auto_);
  auto wrapped = must(store.get_meta("data_key.wrapped"), "cannot read the store");
  // A Secret Service item cannot be created only if absent (a store replaces it), so daemons of one store
  // making its first key at a shared item take turns: the first creates it, the others find it. A key
  // file needs no turns: it is created with RENAME_NOREPLACE, and a loser reads the winner's.
  std::unique_ptr<Store::Lock> first_key_lock;
  if (!wrapped && place.named() && mode != KeyringMode::file && SecretServiceStore::session_bus_configured()) {
    first_key_lock = must(store.lock_connection(k_master_key_lock), "cannot lock the store");
    wrapped = must(store.get_meta("data_key.wrapped"), "cannot read the store");
  }
  MasterKeyOptions mk_options;
  mk_options.create_if_missing = !wrapped.has_value();
  MasterKey master = must(open_master_key_isolated(mode, place, random, mk_options), "cannot open the master key");
  if (!master.fallback_warning.empty()) spdlog::warn("{}", master.fallback_warning);
  spdlog::info("master key: {} ({})", format_keyring_mode(master.backend), master.location);
  SecretBytes data_key;
  if (wrapped) {
    auto unwrapped = unwrap_data_key(master.key, *wrapped);
    if (!unwrapped) {  // a rotation interrupted after the new key was saved (master_key_rotation.hpp)
      auto finished = must(finish_interrupted_rotation(store, master.key), "cannot read the store");
      if (!finished && place.named() && !first_key_lock) {
        // Another daemon of the store may be rotating the shared key right now (it holds the lock from
        // its first read to its last write): wait for it, then read the wrapping and the key again.
        const auto lock = must(store.lock_connection(k_master_key_lock), "cannot lock the store");
        wrapped = must(store.get_meta("data_key.wrapped"), "cannot read the store");
        mk_options.create_if_missing = false;
        master = must(open_master_key_isolated(mode, place, random, mk_options), "cannot open the master key");
        if (wrapped) unwrapped = unwrap_data_key(master.key, *wrapped);
        if (!unwrapped) finished = must(finish_interrupted_rotation(store, master.key), "cannot read the store");
      }
      if (!unwrapped && !finished)
        throw StartupError("cannot unwrap the data key with this master key (" + master.location +
                           "): " + unwrapped.error().message);
      if (!unwrapped) unwrapped = std::move(*finished);
    }
    data_key = std::move(*unwrapped);
  } else {
    // Several daemons may make the first start on one PostgreSQL store together: one data key wins (the
    // store sets it only when absent), and the others unwrap that one with the master key they share.
    data_key = generate_key(random);
    const bool stored =
        must(store.insert_meta_if_absent("data_key.wrapped",
                                         must(wrap_data_key(master.key, data_key, random), "cannot wrap the data key")),
             "cannot store the data key");
    if (!stored) {
      const auto winner = must(store.get_meta("data_key.wrapped"), "cannot read the store").value_or("");
      auto unwrapped = unwrap_data_key(master.key, winner);
      if (!unwrapped)
        throw StartupError("another daemon created this store's data key under a different master key (" +
                           unwrapped.error().message +
                           "): give every daemon of the store the same master key (the master-key-file or "
                           "master-key-name setting, docs/SCALE-OUT.md)");
      data_key = std::move(*unwrapped);
    }
  }
  return UnlockedKeys{.sealer = Sealer(std::move(data_key), random),
                      .keyring_backend = std::string(format_keyring_mode(master.backend)),
                      .keyring_location = master.location,
                      .keyring_warning = master.fallback_warning};
}

// The OAuth redirect URI is built once from configuration, never from request headers.
std::string redirect_base(const Settings& settings, const std::string& control_url) {
  const std::string base = settings.get("oauth-redirect-base");
  if (base.empty()) return control_url;
  const auto u =
      must(url::parse(base), "bad setting oauth-redirect-base from " + settings.origin("oauth-redirect-base"));
  if (!url::is_loopback_host(u) && u.scheme != "https")
    throw StartupError("setting oauth-redirect-base from " + settings.origin("oauth-redirect-base") + ": " + base +
                       " must be https unless it is a loopback address");
  return base;
}

WebhookServiceDeps webhook_deps(ConnectionService& connections, Store& store, const Sealer& sealer, WebhookStore& hooks,
                                EndpointCache& endpoints, JobWaker& relay, const Clock& clock, Random& random,
                                http::Client& http, const Settings& settings, const WebhookBase& webhook_base,
                                const std::string& control_url) {
  return WebhookServiceDeps{.connections = connections,
                            .store = store,
                            .sealer = sealer,
                            .hooks = hooks,
                            .endpoints = endpoints,
                            .relay = relay,
                            .clock = clock,
                            .random = random,
                            .http = http,
                            .webhook_base_url = webhook_base.url,
                            .base_url_warning = webhook_base.warning,
                            .control_url = control_url,
                            .secret_grace = std::chrono::seconds(settings.integer("webhook-secret-grace-seconds")),
                            .jwks_min_refresh = std::chrono::seconds(settings.integer("jwks-min-refresh-seconds")),
                            .retention_days = settings.integer("events-retention-days")};
}

setup::SetupServiceDeps setup_deps(ConnectionService& connections, oauth::FlowService& flows, WebhookService& webhooks,
                                   const Catalog& catalog, const EnvLookup& api_env, http::Client& http, Random& random,
                                   const Settings& settings, const WebhookBase& base) {
  return setup::SetupServiceDeps{.connections = connections,
                                 .oauth = flows,
                                 .webhooks = webhooks,
                                 .catalog = catalog,
                                 .env = api_env,
                                 .http = http,
                                 .random = random,
                                 .webhook_base_url = base.url,
                                 .base_url_origin = settings.origin("webhook-base-url"),
                                 .base_url_warning = base.warning,
                                 .allow_insecure_base_url = settings.boolean("allow-insecure-base-url")};
}

RelayWorkerOptions relay_options(const Settings& settings, const EndpointCache& endpoints, http::PooledClient& pool) {
  RelayWorkerOptions options;
  options.have_default_target = !endpoints.default_relay_to().empty();
  options.concurrency = static_cast<std::size_t>(settings.integer("relay-concurrency"));
  options.per_target = static_cast<std::size_t>(settings.integer("relay-target-concurrency"));
  options.on_idle = [&pool] { pool.sweep(); };
  if (const auto schedule = settings.integers("relay-backoff-ms"); !schedule.empty()) {  // tests: a short one
    options.backoff.clear();
    for (const int64_t ms : schedule) options.backoff.emplace_back(ms);
    options.jitter = 0.0;
  }
  return options;
}

RetentionOptions retention_options(const Settings& settings) {
  RetentionOptions options;
  options.default_days = settings.integer("events-retention-days");
  options.day_ms = settings.integer("retention-day-ms");
  options.interval = std::chrono::milliseconds(settings.integer("retention-sweep-interval-ms"));
  options.dedup_ttl_ms = settings.integer("dedup-ttl-ms");
  return options;
}

DaemonInfo daemon_info(const BoundListener& control, const BoundListener& public_listener, const UnlockedKeys& keys,
                       const Paths& paths, const Settings& settings, const Clock& clock) {
  DaemonInfo info;
  info.pid = static_cast<int>(::getpid());
  info.control_url = control.url;
  info.public_url = public_listener.url;
  info.keyring_backend = keys.keyring_backend;
  info.keyring_location = keys.keyring_location;
  info.keyring_warning = keys.keyring_warning;
  info.store_path = settings.get("store").empty() ? paths.store_db().string() : redact_store_url(settings.get("store"));
  info.data_dir = paths.data_dir.string();
  info.started_at_ms = clock.now_ms();
  return info;
}

// First start: the owner and its key file; a missing key file is issued again.
void ensure_owner_key(KeyService& keys, Store& store, const Paths& paths) {
  if (auto created = must(keys.bootstrap_owner(), "cannot create the local owner")) {
    must(write_file_atomic_0600(paths.key_file(), *created + "\n"), "cannot write the key file");
    spdlog::info("created the local owner; its API key is in {}", paths.key_file().string());
  } else if (!std::filesystem::exists(paths.key_file())) {
    const auto owner = must(store.first_user(), "cannot read the owner");
    const std::string key =
        must(keys.issue_key(owner->id, "owner (key file re-issued)", k_all_scopes), "cannot issue a key");
    must(write_file_atomic_0600(paths.key_file(), key + "\n"), "cannot write the key file");
    spdlog::warn("the key file was missing; issued a new owner key into {}", paths.key_file().string());
  }
}

void harden_process() {
  ::umask(077);
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);  // no core dumps or ptrace of a process holding keys
  rlimit none{0, 0};
  ::setrlimit(RLIMIT_CORE, &none);
}

}  // namespace

Daemon::Daemon(const StartOptions& options)
    : m_env(process_env()),
      m_paths(prepare_paths(options.data_dir, m_env)),
      m_settings(resolve_settings(options, m_env, m_paths)),
      m_base(judge_webhook_base(m_settings)),
      m_lock(lock_store(m_paths, m_settings)),
      m_control(bind_control(m_settings)),
      m_public(bind_public(m_settings, m_base)),
      m_store(open_store(m_settings, m_paths)),
      m_hook_store(open_webhook_store(m_settings, m_paths)),
      m_keys(unlock_data_key(*m_store, m_settings, m_paths, m_random)),
      m_catalog(must(load_catalog(m_paths.connectors_d()), "invalid connector catalog")),
      m_http(m_settings.get("ca-file")),
      m_api_keys(KeyServiceDeps{*m_store,
                                m_clock,
                                m_random,
                                m_settings.get("env"),
                                {.burst = m_settings.integer("auth-failure-burst"),
                                 .per_minute = m_settings.integer("auth-failure-per-minute"),
                                 .delay_ms = m_settings.integer("auth-failure-delay-ms")}}),
      m_tickets(*m_store, m_clock, m_random),
      m_admin_sessions(m_clock, m_random,
                       {.link_ttl_ms = m_settings.integer("admin-login-link-seconds") * 1000,
                        .session_ttl_ms = m_settings.integer("admin-session-seconds") * 1000}),
      m_oauth_clients(*m_store, m_keys.sealer, m_env),
      m_redirect_base(redirect_base(m_settings, m_control.url)),
      m_api_env(settings_env(m_settings, m_env)),
      m_connections(ConnectionServiceDeps{*m_store, m_catalog, m_keys.sealer, m_clock, m_random, m_http, m_api_env,
                                          m_oauth_clients, m_tickets, m_control.url, m_redirect_base}),
      m_flows(oauth::FlowServiceDeps{*m_store, m_catalog, m_keys.sealer, m_clock, m_random, m_http, m_oauth_clients,
                                     m_connections, m_redirect_base}),
      m_endpoints(*m_hook_store, *m_store, m_keys.sealer, m_settings.get("relay-to"),
                  RateLimit{m_settings.integer("webhook-rate-limit"), m_settings.integer("webhook-rate-burst")}),
      m_watch(watch_endpoints(m_settings, m_endpoints)),
      m_relay_connections(m_settings.get("ca-file")),
      m_relay_http(m_relay_connections, m_clock,
                   {.max_idle_per_origin = static_cast<std::size_t>(m_settings.integer("relay-target-concurrency"))}),
      m_relay(*m_hook_store, m_endpoints, m_relay_http, m_clock, m_random,
              relay_options(m_settings, m_endpoints, m_relay_http)),
      m_retention(*m_hook_store, m_clock, retention_options(m_settings)),
      m_webhooks(webhook_deps(m_connections, *m_store, m_keys.sealer, *m_hook_store, m_endpoints, m_relay, m_clock,
                              m_random, m_http, m_settings, m_base, m_control.url)),
      m_setup(
          setup_deps(m_connections, m_flows, m_webhooks, m_catalog, m_api_env, m_http, m_random, m_settings, m_base)),
      m_ctx{.keys = m_api_keys,
            .tickets = m_tickets,
            .oauth_clients = m_oauth_clients,
            .connections = m_connections,
            .store = *m_store,
            .catalog = m_catalog,
            .settings = m_settings,
            .clock = m_clock,
            .random = m_random,
            .info = daemon_info(m_control, m_public, m_keys, m_paths, m_settings, m_clock),
            .oauth = m_flows,
            .control_hosts = m_control.hosts,
            .public_hosts = m_public.hosts,
            .webhooks = m_webhooks,
            .setup = m_setup,
            .admin_sessions = m_admin_sessions} {
  m_flows.set_flow_ttl(m_settings.integer("oauth-flow-ttl-ms"));
  ensure_owner_key(m_api_keys, *m_store, m_paths);
}

Daemon::~Daemon() { stop(); }

int Daemon::serve(const sigset_t& signals) {
  m_flows.start_worker(std::chrono::milliseconds(m_settings.integer("refresh-interval-ms")));
  must(m_control.listener->start(m_ctx), "cannot start the control listener");
  if (m_public.listener) must(m_public.listener->start(m_ctx), "cannot start the public listener");
  const DaemonInfo& info = m_ctx.info;
  const json state{{"url", info.control_url},
                   {"pid", info.pid},
                   {"version", ALUMIA_VERSION},
                   {"publicUrl", info.public_url.empty() ? json(nullptr) : json(info.public_url)}};
  must(write_file_atomic_0600(m_paths.state_file(), state.dump() + "\n"), "cannot write the state file");
  spdlog::info("alumia-connectd {} listening on {}{}", ALUMIA_VERSION, info.control_url,
               m_public.listener ? " (public " + info.public_url + ")" : std::string());
  m_relay.start();
  m_retention.start();
  // What the start freed (catalog and settings parsing, migrations, key unwrapping) goes back to the
  // kernel instead of staying resident in the heap's free lists (issue 13 item 5, bench/idle_rss.sh),
  // and so do the pages of the code that only starts (start_only_text.hpp).
  ::malloc_trim(0);
  const std::size_t released = release_start_only_text();
  spdlog::debug("start-up code released: {} KiB", released / 1024);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  stop();
  std::error_code ec;
  std::filesystem::remove(m_paths.state_file(), ec);
  spdlog::info("stopped");
  return 0;
}

void Daemon::stop() {
  if (m_public.listener) m_public.listener->stop();
  m_control.listener->stop();
  m_flows.stop_worker();
  m_relay.stop();
  m_retention.stop();
}

int run(int argc, char** argv) {
  CLI::App app{"alumia-connectd — local daemon owning the connection store, the OAuth callback and the webhook relay"};
  StartOptions options;
  std::string listen, public_listen, env, keyring, relay_to, log_level, store, master_key_file, master_key_name;
  bool insecure = false;
  bool print_api_md = false;
  std::string keyring_helper;  // open|create|save|erase: the child of keyring_helper.hpp
  app.add_option("--listen", listen,
                 "control listener HOST:PORT, loopback only (default 127.0.0.1:7465; port 0 picks one)");
  app.add_option("--public-listen", public_listen,
                 "public listener ADDR:PORT: webhook receiver and OAuth (ticketed start, callback) only");
  app.add_option("--data-dir", options.data_dir,
                 "put store, config, key file and state file in DIR (like ALUMIA_HOME)");
  app.add_option("--env", env, "key environment: live or test")->check(CLI::IsMember({"live", "test"}));
  app.add_option("--keyring", keyring, "master key backend: auto, secret-service or file")
      ->check(CLI::IsMember({"auto", "secret-service", "file"}));
  app.add_option("--master-key-file", master_key_file,
                 "the master key file (absolute path) several daemons of one store share (default: in the data "
                 "directory)");
  app.add_option("--master-key-name", master_key_name,
                 "the Secret Service item of the master key several daemons of one store share (default: the "
                 "data directory)");
  app.add_option("--relay-to", relay_to, "default relay target URL for webhook jobs");
  app.add_option("--store", store,
                 "postgres://USER@HOST:PORT/DB: a PostgreSQL store several daemons share (default: SQLite in the "
                 "data directory; the password from PGPASSWORD or ~/.pgpass, never here)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_flag("--allow-insecure-base-url", insecure, "development only: accept any webhook base URL");
  // Hidden: writes docs/API.md from the route table (tests/unit/test_api_doc.cpp checks it is current).
  app.add_flag("--print-api-md", print_api_md, "print docs/API.md, generated from the route table")->group("");
  app.add_option("--keyring-helper", keyring_helper, "internal: read the master key for the daemon")
      ->check(CLI::IsMember({"open", "create", "save", "erase"}))
      ->group("");
  app.set_version_flag("--version", std::string("alumia-connectd ") + ALUMIA_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!keyring_helper.empty()) {  // keyring_helper.hpp: stdout is the daemon's pipe
    harden_process();
    return keyring_helper_main(
        keyring_helper, parse_keyring_mode(keyring).value_or(KeyringMode::auto_),
        {.data_dir = options.data_dir.value_or(""), .key_file = master_key_file, .name = master_key_name});
  }
  if (print_api_md) {
    std::cout << api_markdown();
    return std::cout.flush() ? 0 : 1;
  }
  for (auto [name, value] : {std::pair{"listen", &listen},
                             {"public-listen", &public_listen},
                             {"env", &env},
                             {"keyring", &keyring},
                             {"master-key-file", &master_key_file},
                             {"master-key-name", &master_key_name},
                             {"relay-to", &relay_to},
                             {"store", &store},
                             {"log-level", &log_level}})
    if (!value->empty()) options.flags[name] = *value;
  if (insecure) options.flags["allow-insecure-base-url"] = "true";

  // Signals are taken synchronously by serve() (sigwait). Block them before any thread exists
  // (keyring/GDBus, OAuth refresh, relay worker, listeners): a thread created with SIGTERM unblocked
  // would take the default action and kill the daemon without a clean exit.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  harden_process();
  spdlog::set_default_logger(spdlog::stderr_color_mt("alumia-connectd"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);

  try {
    Daemon daemon(options);
    return daemon.serve(signals);
  } catch (const StartupError& e) {
    std::fprintf(stderr, "alumia-connectd: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "alumia-connectd: fatal: %s\n", e.what());
    return 1;
  }
}

}  // namespace alumia::daemon

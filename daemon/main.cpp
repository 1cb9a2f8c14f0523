// alumia-connectd: parse flags, open the key, the store and the catalog, serve, stop on a signal.
#include "context.hpp"
#include "server.hpp"

#include <alumia/auth/api_keys.hpp>
#include <alumia/auth/tickets.hpp>
#include <alumia/base/fs.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/connections/oauth_clients.hpp>
#include <alumia/crypto/keyring.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/net/http_client.hpp>
#include <alumia/net/url.hpp>
#include <alumia/oauth/oauth.hpp>
#include <alumia/webhooks/endpoint_cache.hpp>
#include <alumia/webhooks/relay_worker.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <fcntl.h>
#include <signal.h>
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

namespace {

using namespace alumia;
using nlohmann::json;

struct StartupError {
  std::string message;
};

template <class T>
T must(Result<T> r, const std::string& what) {
  if (!r) throw StartupError{what + ": " + r.error().message};
  return std::move(*r);
}

void must(const Status& st, const std::string& what) {
  if (!st) throw StartupError{what + ": " + st.error().message};
}

void harden_process() {
  ::umask(077);
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);  // no core dumps or ptrace of a process holding keys
  rlimit none{0, 0};
  ::setrlimit(RLIMIT_CORE, &none);
}

bool is_loopback_listen(const std::string& host) {
  return host == "127.0.0.1" || host == "::1" || host == "localhost" || host.rfind("127.", 0) == 0;
}

std::vector<std::string> host_names(const std::string& host, int port) {
  const std::string p = ":" + std::to_string(port);
  if (host == "::1") return {"[::1]" + p, "localhost" + p};
  return {host + p, "localhost" + p, "127.0.0.1" + p, "[::1]" + p};
}

int run(int argc, char** argv) {
  CLI::App app{"alumia-connectd — local daemon owning the connection store, the OAuth callback and the webhook relay"};
  std::map<std::string, std::string> flags;
  std::optional<std::string> data_dir;
  std::string listen, public_listen, env, keyring, relay_to, log_level;
  bool insecure = false;
  app.add_option("--listen", listen,
                 "control listener HOST:PORT, loopback only (default 127.0.0.1:7465; port 0 picks one)");
  app.add_option("--public-listen", public_listen,
                 "public listener ADDR:PORT: webhook receiver and OAuth (ticketed start, callback) only");
  app.add_option("--data-dir", data_dir, "put store, config, key file and state file in DIR (like ALUMIA_HOME)");
  app.add_option("--env", env, "key environment: live or test")->check(CLI::IsMember({"live", "test"}));
  app.add_option("--keyring", keyring, "master key backend: auto, secret-service or file")
      ->check(CLI::IsMember({"auto", "secret-service", "file"}));
  app.add_option("--relay-to", relay_to, "default relay target URL for webhook jobs");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_flag("--allow-insecure-base-url", insecure, "development only: accept any webhook base URL");
  app.set_version_flag("--version", std::string("alumia-connectd ") + ALUMIA_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  for (auto [name, value] : {std::pair{"listen", &listen},
                             {"public-listen", &public_listen},
                             {"env", &env},
                             {"keyring", &keyring},
                             {"relay-to", &relay_to},
                             {"log-level", &log_level}})
    if (!value->empty()) flags[name] = *value;
  if (insecure) flags["allow-insecure-base-url"] = "true";

  // Signals are taken synchronously by the main thread (sigwait below). Block them before any
  // thread exists (keyring/GDBus, OAuth refresh, relay worker, listeners): a thread created with
  // SIGTERM unblocked would take the default action and kill the daemon without a clean exit.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  harden_process();
  auto logger = spdlog::stderr_color_mt("alumia-connectd");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);

  const EnvLookup env_lookup = process_env();
  const Paths paths = must(resolve_paths(data_dir, env_lookup), "no data directory");
  must(prepare_daemon_paths(paths), "unsafe data directory");
  const Settings settings = must(Settings::resolve(flags, env_lookup, paths.config_json()), "bad configuration");
  spdlog::set_level(spdlog::level::from_str(settings.get("log-level")));

  // One daemon per store: two refresh workers would trip refresh-token reuse detection.
  const int lock_fd = must(open_owned_file(paths.lock_file(), O_CREAT | O_RDWR, Privacy::no_foreign_writes),
                           "cannot open the lock file")
                          .release();
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0)
    throw StartupError{"another alumia-connectd is already using " + paths.data_dir.string() +
                       " (stop it with `alumia-connect daemon stop`)"};

  const auto [host, port] = must(daemon::parse_listen(settings.get("listen")), "bad --listen");
  if (!is_loopback_listen(host))
    throw StartupError{"--listen " + settings.get("listen") +
                       " is not a loopback address; the control API never listens publicly (use --public-listen "
                       "for the webhook receiver and OAuth callback)"};

  SystemClock clock;
  SystemRandom random;

  auto store = must(open_sqlite_store({paths.store_db(), true}), "cannot open the store");
  const auto wrapped = must(store->get_meta("data_key.wrapped"), "cannot read the store");
  const auto mode = parse_keyring_mode(settings.get("keyring")).value_or(KeyringMode::auto_);
  MasterKeyOptions mk_options;
  mk_options.create_if_missing = !wrapped.has_value();
  MasterKey master = must(open_master_key(mode, paths.data_dir, random, mk_options), "cannot open the master key");
  if (!master.fallback_warning.empty()) spdlog::warn("{}", master.fallback_warning);
  spdlog::info("master key: {} ({})", format_keyring_mode(master.backend), master.location);
  SecretBytes data_key;
  if (wrapped) {
    data_key = must(unwrap_data_key(master.key, *wrapped), "cannot unwrap the data key with this master key");
  } else {
    data_key = generate_key(random);
    must(store->put_meta("data_key.wrapped",
                         must(wrap_data_key(master.key, data_key, random), "cannot wrap the data key")),
         "cannot store the data key");
  }
  Sealer sealer(std::move(data_key), random);

  const Catalog catalog = must(load_catalog(paths.connectors_d()), "invalid connector catalog");
  http::HttplibClient http_client(settings.get("ca-file"));

  KeyService keys(KeyServiceDeps{*store, clock, random, settings.get("env")});
  TicketBook tickets(clock, random);
  OAuthClients oauth_clients(*store, sealer, env_lookup);
  ConnectionService connections(ConnectionServiceDeps{*store, catalog, sealer, clock, random, http_client, env_lookup,
                                                      oauth_clients, tickets, ""});

  daemon::DaemonContext ctx{.keys = keys,
                            .tickets = tickets,
                            .oauth_clients = oauth_clients,
                            .connections = connections,
                            .store = *store,
                            .catalog = catalog,
                            .settings = settings,
                            .clock = clock,
                            .random = random,
                            .info = {},
                            .oauth = nullptr,
                            .control_hosts = {},
                            .public_hosts = {},
                            .webhooks = nullptr};
  daemon::Listener control(ctx, http::Listener::control);
  const int bound = must(control.bind(host, port), "cannot start the control listener");
  const std::string url_host = host == "::1" ? "[::1]" : (host == "localhost" ? "127.0.0.1" : host);
  const std::string control_url = "http://" + url_host + ":" + std::to_string(bound);
  ctx.control_hosts = host_names(host, bound);
  connections.set_control_url(control_url);

  std::unique_ptr<daemon::Listener> public_listener;
  if (!settings.get("public-listen").empty()) {
    const auto [phost, pport] = must(daemon::parse_listen(settings.get("public-listen")), "bad --public-listen");
    public_listener = std::make_unique<daemon::Listener>(ctx, http::Listener::public_);
    const int pbound = must(public_listener->bind(phost, pport), "cannot start the public listener");
    ctx.public_hosts = host_names(phost == "0.0.0.0" || phost == "::" ? "127.0.0.1" : phost, pbound);
    const std::string base = settings.get("webhook-base-url");
    if (!base.empty()) {
      if (auto u = url::parse(base)) ctx.public_hosts.push_back(u->explicit_port ? u->host_port() : u->host);
    }
    ctx.info.public_url = "http://" + (phost == "::" ? "[::]" : phost) + ":" + std::to_string(pbound);
  }

  // First start: the owner and its key file.
  if (auto created = must(keys.bootstrap_owner(), "cannot create the local owner")) {
    must(write_file_atomic_0600(paths.key_file(), *created + "\n"), "cannot write the key file");
    spdlog::info("created the local owner; its API key is in {}", paths.key_file().string());
  } else if (!std::filesystem::exists(paths.key_file())) {
    const auto owner = must(store->first_user(), "cannot read the owner");
    const std::string key =
        must(keys.issue_key(owner->id, "owner (key file re-issued)", k_all_scopes), "cannot issue a key");
    must(write_file_atomic_0600(paths.key_file(), key + "\n"), "cannot write the key file");
    spdlog::warn("the key file was missing; issued a new owner key into {}", paths.key_file().string());
  }

  // OAuth: the redirect URI is built once from configuration, never from request headers.
  std::string redirect_base = settings.get("oauth-redirect-base");
  if (redirect_base.empty()) redirect_base = control_url;
  {
    const auto u = must(url::parse(redirect_base), "bad ALUMIA_OAUTH_REDIRECT_BASE");
    if (!url::is_loopback_host(u) && u.scheme != "https")
      throw StartupError{"ALUMIA_OAUTH_REDIRECT_BASE " + redirect_base +
                         " must be https unless it is a loopback address"};
  }
  oauth::FlowService flows(oauth::FlowServiceDeps{*store, catalog, sealer, clock, random, http_client, oauth_clients,
                                                  connections, redirect_base});
  connections.set_oauth_base(flows.redirect_base());
  ctx.oauth = &flows;
  int64_t refresh_ms = 30'000;
  if (auto v = env_lookup("ALUMIA_REFRESH_INTERVAL_MS")) refresh_ms = std::max<int64_t>(50, std::stoll(*v));  // tests
  if (auto v = env_lookup("ALUMIA_OAUTH_FLOW_TTL_MS"))
    flows.set_flow_ttl(std::max<int64_t>(1, std::stoll(*v)));  // tests
  flows.start_worker(std::chrono::milliseconds(refresh_ms));

  // Webhooks (SPEC §7): own connections to the store (group-committing writer + reader).
  auto hook_store = must(open_sqlite_webhook_store({.path = paths.store_db()}), "cannot open the webhook store");
  // The endpoint cache serves both the receiver and the relay worker; the service wakes the worker
  // through JobWaker and the worker reads targets through EndpointTargets (neither sees the other).
  EndpointCache endpoints(*hook_store, *store, sealer, settings.get("relay-to"));
  RelayWorkerOptions relay_options;
  relay_options.have_default_target = !endpoints.default_relay_to().empty();
  // Test-only: a short retry schedule in milliseconds, e.g. "50,100,200".
  if (auto v = env_lookup("ALUMIA_RELAY_BACKOFF_MS")) {
    auto schedule = parse_backoff(*v);
    if (!schedule) throw StartupError{"ALUMIA_RELAY_BACKOFF_MS must be a comma-separated list of milliseconds"};
    relay_options.backoff = *schedule;
    relay_options.jitter = 0.0;
  }
  RelayWorker relay(*hook_store, endpoints, http_client, clock, random, relay_options);
  WebhookServiceDeps hook_deps{.connections = connections,
                               .store = *store,
                               .sealer = sealer,
                               .hooks = *hook_store,
                               .endpoints = endpoints,
                               .relay = relay,
                               .clock = clock,
                               .random = random,
                               .http = http_client,
                               .webhook_base_url = settings.get("webhook-base-url"),
                               .allow_insecure_base_url = settings.get("allow-insecure-base-url") == "true",
                               .control_url = control_url};
  if (auto v = env_lookup("ALUMIA_WEBHOOK_SECRET_GRACE_SECONDS"))
    hook_deps.secret_grace = std::chrono::seconds(std::max<int64_t>(0, std::stoll(*v)));
  // Test-only: how soon an unknown kid may refetch a JWKS (default 60 s).
  if (auto v = env_lookup("ALUMIA_JWKS_MIN_REFRESH_SECONDS"))
    hook_deps.jwks_min_refresh = std::chrono::seconds(std::max<int64_t>(0, std::stoll(*v)));
  WebhookService webhooks(std::move(hook_deps));
  ctx.webhooks = &webhooks;

  ctx.info.pid = static_cast<int>(::getpid());
  ctx.info.control_url = control_url;
  ctx.info.keyring_backend = std::string(format_keyring_mode(master.backend));
  ctx.info.keyring_location = master.location;
  ctx.info.keyring_warning = master.fallback_warning;
  ctx.info.store_path = paths.store_db().string();
  ctx.info.started_at_ms = clock.now_ms();

  control.start();
  if (public_listener) public_listener->start();
  const json state{{"url", control_url},
                   {"pid", ctx.info.pid},
                   {"version", ALUMIA_VERSION},
                   {"publicUrl", ctx.info.public_url.empty() ? json(nullptr) : json(ctx.info.public_url)}};
  must(write_file_atomic_0600(paths.state_file(), state.dump() + "\n"), "cannot write the state file");
  spdlog::info("alumia-connectd {} listening on {}{}", ALUMIA_VERSION, control_url,
               public_listener ? " (public " + ctx.info.public_url + ")" : std::string());
  relay.start();

  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  if (public_listener) public_listener->stop();
  control.stop();
  flows.stop_worker();
  relay.stop();
  std::error_code ec;
  std::filesystem::remove(paths.state_file(), ec);
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const StartupError& e) {
    std::fprintf(stderr, "alumia-connectd: error: %s\n", e.message.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "alumia-connectd: fatal: %s\n", e.what());
    return 1;
  }
}

#pragma once
// alumia-connectd as one object. Its members are built in start order — settings (and the webhook
// base URL judged), the store's lock,
// the bound listeners, the stores and the data key, the catalog, the services, and last the complete
// context — and destroyed in reverse. serve() starts the listeners and workers, waits for a signal and
// stops them. Each start step that cannot go on throws StartupError naming what to fix.
#include "context.hpp"
#include "server.hpp"

#include <alumia/auth/api_keys.hpp>
#include <alumia/auth/tickets.hpp>
#include <alumia/base/clock.hpp>
#include <alumia/base/fs.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/config/config.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/connections/oauth_clients.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/net/connection_pool.hpp>
#include <alumia/net/http_client.hpp>
#include <alumia/oauth/oauth.hpp>
#include <alumia/setup/setup_service.hpp>
#include <alumia/store/endpoint_watch.hpp>
#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>
#include <alumia/webhooks/relay_worker.hpp>
#include <alumia/webhooks/retention.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <signal.h>

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace alumia::daemon {

// A start step that cannot go on; run() prints "alumia-connectd: error: <what>" and exits 1.
class StartupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What the command line gave: --data-dir, and the settings given as flags (by setting name).
struct StartOptions {
  std::optional<std::string> data_dir;
  std::map<std::string, std::string> flags;
};

// A listener bound to its address, not serving yet.
struct BoundListener {
  std::unique_ptr<Listener> listener;  // null: not configured (the public listener without --public-listen)
  std::string url;                     // http://host:port as bound
  std::vector<std::string> hosts;      // what the Host header may name (SPEC §2 DNS-rebinding defence)
};

// The setting webhook-base-url as receiveUrls use it (SPEC §8), judged at start.
struct WebhookBase {
  std::string url;      // the normal form of a safe base URL (url::public_base_url), or "" when not set
  std::string warning;  // set when it broke the rule and --allow-insecure-base-url let it through
};

// The data key, unwrapped with the master key, as the Sealer every secret goes through; the master
// key itself is not kept.
struct UnlockedKeys {
  Sealer sealer;
  std::string keyring_backend;
  std::string keyring_location;
  std::string keyring_warning;  // non-empty when `auto` fell back to the key file
};

class Daemon {
 public:
  explicit Daemon(const StartOptions& options);  // every start step up to a complete context
  ~Daemon();                                     // stop(), then the members in reverse
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Starts the refresh worker, the listeners and the relay worker, writes the state file, waits for
  // one of `signals` (blocked in every thread), stops and removes the state file. Returns the exit code.
  int serve(const sigset_t& signals);

 private:
  void stop();  // listeners first (no new requests), then the workers; idempotent

  // Members in start order; C++ builds them in this order and destroys them in reverse.
  EnvLookup m_env;
  Paths m_paths;
  Settings m_settings;
  WebhookBase m_base;  // judged with the settings: an unsafe base URL stops the start here
  UniqueFd m_lock;     // store.lock, flock'd: one daemon per SQLite store (none on PostgreSQL)
  SystemClock m_clock;
  SystemRandom m_random;
  BoundListener m_control;
  BoundListener m_public;
  std::unique_ptr<Store> m_store;
  std::unique_ptr<WebhookStore> m_hook_store;  // its own connections: the group-committing writer, a reader
  UnlockedKeys m_keys;
  Catalog m_catalog;
  http::HttplibClient m_http;
  KeyService m_api_keys;
  TicketBook m_tickets;
  AdminSessions m_admin_sessions;  // the admin pages' login links and sessions
  OAuthClients m_oauth_clients;
  std::string m_redirect_base;  // the OAuth redirect base: oauthUrls point there (the ticket sets the cookie)
  EnvLookup m_api_env;          // the catalog's API-base variables, answered from m_settings first (settings_env)
  ConnectionService m_connections;
  oauth::FlowService m_flows;
  EndpointCache m_endpoints;                     // serves the receiver and the relay worker's targets
  std::unique_ptr<EndpointWatch> m_watch;        // PostgreSQL: other daemons' endpoint changes reach m_endpoints
  http::HttplibConnections m_relay_connections;  // the relay's kept-alive connections, pooled per target origin
  http::PooledClient m_relay_http;
  RelayWorker m_relay;           // reads targets through EndpointTargets; woken through JobWaker
  RetentionSweeper m_retention;  // retires old events in the background (SPEC §9)
  WebhookService m_webhooks;
  setup::SetupService m_setup;
  DaemonContext m_ctx;
};

// The daemon's main: parses the command line (exit 2 on a usage error), blocks the signals serve()
// waits for, hardens the process, sets up logging, builds the Daemon and serves.
int run(int argc, char** argv);

}  // namespace alumia::daemon

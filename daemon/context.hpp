#pragma once
// Everything a handler may use, built once by the Daemon (daemon.hpp) after every service it names and
// passed down (no globals). It is complete when built: no member is filled in later.
#include <alumia/auth/admin_sessions.hpp>
#include <alumia/auth/api_keys.hpp>
#include <alumia/auth/tickets.hpp>
#include <alumia/base/clock.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/config/config.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/connections/oauth_clients.hpp>
#include <alumia/store/store.hpp>

#include <string>

namespace alumia::oauth {
class FlowService;
}

namespace alumia {
class WebhookService;
}  // namespace alumia

namespace alumia::setup {
class SetupService;
}

namespace alumia::daemon {

struct DaemonInfo {
  std::string version = ALUMIA_VERSION;
  int pid = 0;
  std::string control_url;
  std::string public_url;  // empty without --public-listen
  std::string keyring_backend;
  std::string keyring_location;
  std::string keyring_warning;
  std::string store_path;  // the SQLite file, or the PostgreSQL URL with its password redacted
  std::string data_dir;    // key file, master key file (rotate-master), state file
  int64_t started_at_ms = 0;
};

struct DaemonContext {
  KeyService& keys;
  TicketBook& tickets;
  OAuthClients& oauth_clients;
  ConnectionService& connections;
  Store& store;
  const Catalog& catalog;
  const Settings& settings;
  const Clock& clock;
  Random& random;
  DaemonInfo info;
  oauth::FlowService& oauth;  // OAuth flows, refresh and provider revocation
  // Host names (host:port) each listener answers to (SPEC §2 DNS-rebinding defence).
  std::vector<std::string> control_hosts;
  std::vector<std::string> public_hosts;
  WebhookService& webhooks;
  setup::SetupService& setup;     // setup commands (SPEC §8)
  AdminSessions& admin_sessions;  // the admin pages' login links and sessions (SPEC §9)
};

}  // namespace alumia::daemon

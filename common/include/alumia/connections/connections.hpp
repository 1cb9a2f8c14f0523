#pragma once
// Connections (SPEC §5): start (or reuse), read, list, revoke, and API-key credentials with their live
// check. A started OAuth connection gets a ticketed oauthUrl (SPEC §6); the flow itself is oauth/.
#include <alumia/auth/api_keys.hpp>
#include <alumia/auth/tickets.hpp>
#include <alumia/base/clock.hpp>
#include <alumia/base/error.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/config/config.hpp>
#include <alumia/connections/oauth_clients.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/net/http.hpp>
#include <alumia/store/domain.hpp>
#include <alumia/store/store.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace alumia {

// POST /api/v1/connections (and the start-by-connector query), as the handler parsed it.
struct StartConnection {
  std::string connector_slug;
  std::string label;  // empty: "default"
};

// POST /api/v1/connections/:id/credentials: field key → value (the caller's copy is wiped after).
struct SubmitCredentials {
  std::map<std::string, std::string> values;
};

struct StartResult {
  bool created = false;  // 201 vs 200
  Connection connection;
  std::optional<std::string> oauth_url;
  std::optional<std::string> credential_submit_url;
};

struct ConnectionServiceDeps {
  Store& store;
  const Catalog& catalog;
  const Sealer& sealer;
  const Clock& clock;
  Random& random;
  http::Client& http;  // live checks of submitted credentials
  EnvLookup env;       // api bases (ALUMIA_<SLUG>_API_BASE)
  const OAuthClients& oauth_clients;
  TicketBook& tickets;
  std::string control_url;  // e.g. http://127.0.0.1:7465
  // Where oauthUrls send the browser: the OAuth redirect base (oauth::FlowService::redirect_base()),
  // because redeeming the ticket sets the cookie that the callback on that origin requires. Empty: the
  // control URL.
  std::string oauth_base = {};
};

class ConnectionService {
 public:
  explicit ConnectionService(ConnectionServiceDeps deps) : m_d(std::move(deps)) {}

  // For a daemon that builds its services before it binds (daemon/main.cpp today): the URLs of the
  // deps, once known.
  void set_control_url(std::string url) { m_d.control_url = std::move(url); }
  void set_oauth_base(std::string base) { m_d.oauth_base = std::move(base); }

  Result<PageResult<Connection>> list(const Caller& caller, const ConnectionFilter& filter, const Page& page);
  Result<StartResult> start(const Caller& caller, const StartConnection& request);
  Result<Connection> get(const Caller& caller, std::string_view id);
  // Soft delete + destroy secrets (the provider revocation is oauth::FlowService::disconnect).
  Status revoke(const Caller& caller, std::string_view id);
  Result<Connection> submit_credentials(const Caller& caller, std::string_view id, const SubmitCredentials& request);
  // The API-key values of a connection (scope tokens), read for the user's own programs.
  Result<std::map<std::string, std::string>> credential_values(const Connection& c);

  // <oauth base>/api/v1/connections/:id/oauth?ticket=T, the ticket carrying the caller's key scopes (kept
  // in the store: an error when the store cannot take it).
  Result<std::string> oauth_url(const Caller& caller, const Connection& c);
  std::string credential_submit_url(const Connection& c) const;

 private:
  Result<nlohmann::json> run_live_check(const Connector& connector, const std::map<std::string, std::string>& values);

  ConnectionServiceDeps m_d;
};

}  // namespace alumia

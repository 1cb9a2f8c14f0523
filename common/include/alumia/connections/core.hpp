#pragma once
// The domain services behind the HTTP API: callers and keys, the catalog view, connections and
// their credentials. Handlers in daemon/ translate requests to these calls; no SQL here either.
#include <alumia/base/clock.hpp>
#include <alumia/base/error.hpp>
#include <alumia/base/secret.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/config/config.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/net/http.hpp>
#include <alumia/store/domain.hpp>
#include <alumia/store/store.hpp>

#include <nlohmann/json.hpp>

#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace alumia {

// Key format: alm_<env>_<48 lowercase hex>.
bool is_well_formed_api_key(std::string_view key);
std::string api_key_prefix(std::string_view key);  // alm_live_ + first 4 hex
bool is_uuid(std::string_view s);

struct Caller {
  User user;
  ApiKeyRecord key;  // the key used (id empty when authenticated otherwise, e.g. by a ticket)
};

struct CoreDeps {
  Store& store;
  const Catalog& catalog;
  const Sealer& sealer;
  const Clock& clock;
  Random& random;
  http::Client& http;
  EnvLookup env;
  std::string key_env = "live";  // live | test
  std::string control_url;       // e.g. http://127.0.0.1:7465
};

struct StartResult {
  bool created = false;  // 201 vs 200
  Connection connection;
  std::optional<std::string> oauth_url;
  std::optional<std::string> credential_submit_url;
};

class Core {
 public:
  explicit Core(CoreDeps deps) : m_d(std::move(deps)) {}

  const CoreDeps& deps() const { return m_d; }
  void set_control_url(std::string url) { m_d.control_url = std::move(url); }

  // First start: the local owner with all scopes and its key. Returns the plaintext key when one
  // was created (to be written to the key file), nullopt when the owner already existed.
  Result<std::optional<std::string>> bootstrap_owner();
  // Issues a fresh owner key (used when the key file was lost): returns its plaintext.
  Result<std::string> issue_key(const std::string& user_id, const std::string& name, unsigned scopes);

  Result<Caller> authenticate(const std::optional<std::string>& authorization);

  // API keys.
  Result<std::vector<ApiKeyRecord>> list_api_keys(const Caller& caller);
  Result<std::pair<ApiKeyRecord, std::string>> create_api_key(const Caller& caller, const nlohmann::json& body);
  // A key never revokes a key holding a scope it lacks (FORBIDDEN), and revokes itself only while
  // another active key of its user holds every scope it holds (CONFLICT): the user never loses a
  // scope, key management included, through the API.
  Status revoke_api_key(const Caller& caller, std::string_view id);

  // Catalog.
  bool configured(const Connector& c) const;
  nlohmann::json connector_json(const Connector& c) const;
  // OAuth client credentials: environment first, then the encrypted store.
  struct OAuthClient {
    std::string client_id;
    SecretBytes client_secret;
  };
  Result<std::optional<OAuthClient>> oauth_client(const Connector& c) const;
  Status set_oauth_client(const Connector& c, const std::string& client_id, std::string_view client_secret);
  Status unset_oauth_client(const Connector& c);

  // Connections.
  Result<PageResult<Connection>> list_connections(const Caller& caller, const ConnectionFilter& filter,
                                                  const Page& page);
  Result<StartResult> start_connection(const Caller& caller, const nlohmann::json& body);
  Result<Connection> get_connection(const Caller& caller, std::string_view id);
  // Soft delete + destroy secrets; returns the provider-revocation outcome for the response.
  Result<nlohmann::json> revoke_connection(const Caller& caller, std::string_view id);
  Result<Connection> submit_credentials(const Caller& caller, std::string_view id, const nlohmann::json& body);
  // The API-key values of a connection (scope tokens), read for the user's own programs.
  Result<std::map<std::string, std::string>> credential_values(const Connection& c);

  // Sealing helpers bound to the secrets table of a row.
  Result<std::vector<SealedValue>> seal_values(std::string_view table, std::string_view row_id,
                                               const std::map<std::string, std::string>& values) const;

  // One-time browser tickets for the oauthUrl (SPEC §6): >=128 bits, single use, 10 minutes, bound
  // to the connection, its owner and the scopes of the key that minted it. A new ticket for a
  // connection voids its earlier ones. Only their hashes are kept, in memory.
  struct TicketGrant {
    std::string user_id;
    unsigned scopes = 0;  // of the key that minted the ticket: the redeemer acts with these
  };
  std::string issue_ticket(const Connection& c, unsigned scopes);
  std::optional<TicketGrant> redeem_ticket(std::string_view ticket, std::string_view connection_id);
  // <oauth base>/api/v1/connections/:id/oauth?ticket=T, the ticket carrying the caller's key scopes.
  std::string oauth_url(const Caller& caller, const Connection& c);
  // Where oauthUrls send the browser: the OAuth redirect base (set by oauth::FlowService), because
  // redeeming the ticket sets the cookie that the callback on that origin requires. Until it is set,
  // the control URL.
  void set_oauth_base(std::string base) { m_oauth_base = std::move(base); }

  std::string credential_submit_url(const Connection& c) const;
  nlohmann::json connection_json(const Connection& c) const;
  static nlohmann::json api_key_json(const ApiKeyRecord& k);

 private:
  Result<nlohmann::json> run_live_check(const Connector& connector, const std::map<std::string, std::string>& values);

  CoreDeps m_d;
  std::string m_oauth_base;
  struct Ticket {
    std::string connection_id;
    std::string user_id;
    unsigned scopes = 0;
    int64_t expires_at_ms = 0;
  };
  std::mutex m_ticket_mutex;
  std::map<std::string, Ticket> m_tickets;  // sha256(ticket) → binding
  std::mutex m_touch_mutex;
  std::map<std::string, int64_t> m_last_touch;  // key id → last persisted lastUsedAt
  std::mutex m_revoke_mutex;                    // one revoke at a time: two keys revoking themselves leave one
};

}  // namespace alumia

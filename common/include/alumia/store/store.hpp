#pragma once
// The one store interface. Only implementations of Store speak SQL; SQLite specifics (dialect,
// pragmas, locking) stay inside SqliteStore so that a PostgreSQL backend can follow.
// Every method is atomic: the operations that must change several rows together are single
// methods that run in one transaction.
#include <alumia/base/error.hpp>
#include <alumia/store/domain.hpp>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alumia {

// The OAuth handshake's state (SPEC §6), kept in the store so that a flow begun on one daemon completes
// on another of the same store (SPEC §12). Rows are keyed by the SHA-256 (raw bytes) of the secret the
// browser holds (state, ticket, result id), never by the secret; the PKCE verifier is sealed by the caller.
// A connection has at most one pending flow and one live ticket: putting a new one replaces the old in one
// statement. Taking a flow or a ticket is one statement too (DELETE … RETURNING), so of two daemons at
// most one gets it. Expired rows are purged whenever a new row of the kind is put.
struct OAuthFlowRecord {
  std::string state_hash;  // sha256(state)
  std::string connection_id;
  std::string user_id;
  std::string connector_slug;
  std::string redirect_uri;
  std::string sealed_verifier;  // the PKCE verifier sealed (table "oauth_flows", row hex(state_hash)); "" without PKCE
  std::string expected_issuer;
  bool iss_required = false;
  std::string browser_hash;  // sha256 of the nonce in the starting browser's cookie
  int64_t expires_at = 0;
};

struct OAuthTicketRecord {
  std::string hash;  // sha256(ticket)
  std::string connection_id;
  std::string user_id;
  unsigned scopes = 0;
  int64_t expires_at = 0;
};

// The outcome of a consumed flow, shown by the result page (a page reload shows it again until it expires).
struct OAuthResultRecord {
  std::string id_hash;  // sha256(the id in the result page's URL)
  bool ok = false;
  std::string result;
  std::string connection_id;
  std::string message;
  int64_t expires_at = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Key/value metadata (e.g. the wrapped data key).
  virtual Result<std::optional<std::string>> get_meta(std::string_view key) = 0;
  virtual Status put_meta(std::string_view key, std::string_view value) = 0;

  // Users and API keys.
  virtual Status insert_user(const User& user) = 0;
  virtual Result<std::optional<User>> find_user(std::string_view id) = 0;
  virtual Result<std::optional<User>> first_user() = 0;
  virtual Status insert_api_key(const ApiKeyRecord& key) = 0;
  virtual Result<std::optional<ApiKeyRecord>> find_api_key_by_hash(std::string_view hash) = 0;
  virtual Result<std::optional<ApiKeyRecord>> find_api_key(std::string_view id) = 0;
  virtual Result<std::vector<ApiKeyRecord>> list_api_keys(std::string_view user_id) = 0;
  virtual Status touch_api_key(std::string_view id, int64_t when_ms) = 0;
  // False when the key was already revoked.
  virtual Result<bool> revoke_api_key(std::string_view id, int64_t when_ms) = 0;

  // Connections. find_connection returns deleted rows too; callers decide.
  virtual Status insert_connection(const Connection& c) = 0;
  virtual Result<std::optional<Connection>> find_connection(std::string_view id) = 0;
  // The newest non-deleted connection of that user, connector and label.
  virtual Result<std::optional<Connection>> find_connection_by_label(std::string_view user_id,
                                                                     std::string_view connector_slug,
                                                                     std::string_view label) = 0;
  virtual Result<PageResult<Connection>> list_connections(const ConnectionFilter& filter, const Page& page) = 0;
  // Updates the row; when `secrets` is given, replaces all of the connection's sealed values in
  // the same transaction (synchronous=FULL commit: a rotated refresh token must not be lost).
  virtual Status update_connection(const Connection& c, const std::vector<SealedValue>* secrets) = 0;
  // Active OAuth connections whose access token expires before `before_ms` (refresh worker).
  virtual Result<std::vector<Connection>> list_expiring_connections(int64_t before_ms) = 0;
  // Marks it revoked/deleted, destroys its secrets in the same transaction, then checkpoints the WAL
  // so no old page keeps the plaintext-equivalent ciphertext around.
  virtual Status destroy_connection(const Connection& c) = 0;

  // Sealed values of any owner row (connections, oauth_clients, webhook endpoints).
  virtual Result<std::vector<SealedValue>> load_secrets(std::string_view table, std::string_view row_id) = 0;
  virtual Status put_secrets(std::string_view table, std::string_view row_id,
                             const std::vector<SealedValue>& values) = 0;  // replaces all of the row's values
  virtual Status delete_secrets(std::string_view table, std::string_view row_id) = 0;

  // Every sealed value with its owner, for rotate-master (which checks that each one opens first).
  virtual Result<std::vector<OwnedSealedValue>> list_all_secrets() = 0;
  // Sets (a value) or erases (nullopt) several meta keys in one transaction, then checkpoints the WAL:
  // rotate-master swaps the wrapped data key this way, and no old page keeps the previous wrapping.
  virtual Status update_meta(const std::vector<std::pair<std::string, std::optional<std::string>>>& changes) = 0;

  // Several daemons may start together on one PostgreSQL store: what the first start creates must be
  // created once, by a constraint, never by a check and then an insert. (Added with defaults that do the
  // check and the insert, which is right only for a store one process holds.)
  // Sets `key` only when it has no value; false when it already had one (which is left as it was).
  virtual Result<bool> insert_meta_if_absent(std::string_view key, std::string_view value) {
    auto existing = get_meta(key);
    if (!existing) return std::unexpected(existing.error());
    if (existing->has_value()) return false;
    auto put = put_meta(key, value);
    if (!put) return std::unexpected(put.error());
    return true;
  }
  // Inserts `user` as the owner only when the store has no user yet; false when it has one.
  virtual Result<bool> insert_owner(const User& user) {
    auto first = first_user();
    if (!first) return std::unexpected(first.error());
    if (first->has_value()) return false;
    auto inserted = insert_user(user);
    if (!inserted) return std::unexpected(inserted.error());
    return true;
  }

  // One token refresh per connection across every daemon of a shared store (SPEC §6 single flight): the
  // handle holds the connection's lock until it is destroyed, and another daemon's lock_connection() of
  // the same id waits meanwhile. Callers take their in-process mutex first, so one daemon waits on the
  // store once per connection. A store that one daemon holds (SQLite) returns no handle: that mutex is
  // enough. (Added with that default.)
  class Lock {
   public:
    virtual ~Lock() = default;
  };
  virtual Result<std::unique_ptr<Lock>> lock_connection(std::string_view connection_id) {
    (void)connection_id;
    return std::unique_ptr<Lock>();
  }

  // OAuth flows, tickets and results (the records above). Added with defaults that refuse, so that a
  // Store without them still compiles; both backends implement them.
  // Puts `flow`, replacing the connection's pending flow if any; purges flows expired at `now_ms`.
  virtual Status put_oauth_flow(const OAuthFlowRecord& flow, int64_t now_ms) {
    (void)flow, (void)now_ms;
    return no_oauth_state();
  }
  // The flow of that state hash, left in place (expired or not).
  virtual Result<std::optional<OAuthFlowRecord>> find_oauth_flow(std::string_view state_hash) {
    (void)state_hash;
    return std::unexpected(no_oauth_state().error());
  }
  // Removes and returns the flow (expired or not); nullopt when none, e.g. another daemon took it.
  virtual Result<std::optional<OAuthFlowRecord>> take_oauth_flow(std::string_view state_hash) {
    (void)state_hash;
    return std::unexpected(no_oauth_state().error());
  }
  // Puts `ticket`, replacing the connection's live ticket if any; purges tickets expired at `now_ms`.
  virtual Status put_oauth_ticket(const OAuthTicketRecord& ticket, int64_t now_ms) {
    (void)ticket, (void)now_ms;
    return no_oauth_state();
  }
  // Removes and returns the ticket of that hash when it is bound to `connection_id` (expired or not; one
  // presented for another connection stays); nullopt otherwise.
  virtual Result<std::optional<OAuthTicketRecord>> take_oauth_ticket(std::string_view hash,
                                                                     std::string_view connection_id) {
    (void)hash, (void)connection_id;
    return std::unexpected(no_oauth_state().error());
  }
  // Puts a callback's outcome; purges outcomes expired at `now_ms`.
  virtual Status put_oauth_result(const OAuthResultRecord& result, int64_t now_ms) {
    (void)result, (void)now_ms;
    return no_oauth_state();
  }
  // The outcome of that id hash unless it expired at `now_ms` (it stays: a reload shows it again).
  virtual Result<std::optional<OAuthResultRecord>> find_oauth_result(std::string_view id_hash, int64_t now_ms) {
    (void)id_hash, (void)now_ms;
    return std::unexpected(no_oauth_state().error());
  }
  // Outcomes not expired at `now_ms` (tests: a refused callback keeps none).
  virtual Result<std::size_t> count_oauth_results(int64_t now_ms) {
    (void)now_ms;
    return std::unexpected(no_oauth_state().error());
  }

  virtual std::string_view backend_name() const = 0;

 protected:
  static Status no_oauth_state() {
    return fail(ErrorCode::internal, "this store keeps no OAuth flows, tickets or results");
  }
};

struct SqliteOptions {
  std::filesystem::path path;
  bool synchronous_full = true;
};

// Opens (creating 0600 if needed) and migrates the store.
Result<std::unique_ptr<Store>> open_sqlite_store(const SqliteOptions& options);

struct PostgresOptions {
  // A libpq connection string or postgres:// URI. Keep the password out of it (PGPASSWORD, ~/.pgpass
  // or a Unix socket with peer authentication): errors never repeat it, but the string is the caller's.
  std::string conninfo;
  std::size_t pool_size = 4;  // connections the store holds; a method waits while all are in use
};

// Connects, runs the pending migrations of part "store" (common/store/pg_store.cpp) under the
// migration lock, and returns the store. SERVICE_UNAVAILABLE when the server cannot be reached.
Result<std::unique_ptr<Store>> open_postgres_store(const PostgresOptions& options);

// Whether a `store` setting names PostgreSQL (postgres:// or postgresql://) rather than SQLite.
bool is_postgres_url(std::string_view store);
// The URL with any password replaced by "***", for logs, `daemon status` and messages.
std::string redact_store_url(std::string_view store);

// Cursor helpers shared by implementations: opaque base64url of "<created_at>:<id>".
std::string encode_cursor(int64_t created_at, std::string_view id);
std::optional<std::pair<int64_t, std::string>> decode_cursor(std::string_view cursor);

}  // namespace alumia

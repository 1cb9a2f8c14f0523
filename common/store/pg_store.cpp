// PostgreSQL implementation of Store (issue 17, SPEC §12): the same tables as the SQLite store, in
// PostgreSQL's dialect, so that several daemons share users, keys, connections, sealed values and meta.
//
// - Times are bigint milliseconds since the epoch, as in SQLite; sealed values and key hashes are bytea.
// - Every method leases one connection from a small pool (pg_conn.hpp); the methods that change several
//   rows run them in one transaction (READ COMMITTED: each is a set of statements whose rows are keyed, so
//   a concurrent daemon can only make one of them fail on a constraint, never see half of it).
// - What the first start creates is created once across daemons by a constraint: the owner through the
//   meta row 'owner.user_id' (INSERT … ON CONFLICT DO NOTHING in the owner's transaction), the wrapped data
//   key through insert_meta_if_absent (the same).
// - A lost server is SERVICE_UNAVAILABLE. A pooled connection that the server dropped (a restart) fails
//   its first statement; the method then runs once more on a new connection, so a daemon recovers on its
//   next request instead of answering 503 once per pooled connection.
// - Listing connections newest first breaks ties of one millisecond by the row's `seq` (an identity column:
//   the order rows were made in), as SQLite does by rowid.
// - Destroyed secrets: the rows are deleted in the transaction that marks the connection revoked. Unlike
//   SQLite's secure_delete + checkpoint, PostgreSQL keeps a deleted tuple's bytes until VACUUM reuses the
//   page, and in WAL segments and backups until they are recycled: docs/SCALE-OUT.md says so (the values are
//   sealed under the data key either way).
#include <alumia/base/try.hpp>
#include <alumia/store/store.hpp>

#include "pg_conn.hpp"
#include "pg_schema.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <memory>

namespace alumia {
namespace {

using nlohmann::json;

// Migration N of part "store" brings it from version N-1 to N (pg_schema.hpp). Append only. The table
// `secrets` also holds the sealed values of other parts' rows (webhook endpoints): a part that writes a
// row and its secrets in one transaction writes secrets(owner_table, owner_id, field, sealed) itself.
constexpr std::array<std::string_view, 2> k_migrations{
    // 1: users, API keys, connections, sealed values, metadata.
    R"sql(
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE users (id text PRIMARY KEY, name text NOT NULL, created_at bigint NOT NULL);
CREATE INDEX users_created ON users(created_at, id);
CREATE TABLE api_keys (
  id text PRIMARY KEY, user_id text NOT NULL REFERENCES users(id), name text NOT NULL,
  prefix text NOT NULL, hash bytea NOT NULL UNIQUE, scopes bigint NOT NULL,
  created_at bigint NOT NULL, last_used_at bigint, revoked_at bigint);
CREATE INDEX api_keys_user ON api_keys(user_id, created_at);
CREATE TABLE connections (
  id text PRIMARY KEY, seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  user_id text NOT NULL REFERENCES users(id), connector_slug text NOT NULL,
  label text NOT NULL, auth_type text NOT NULL, status text NOT NULL, account_label text NOT NULL DEFAULT '',
  scopes text NOT NULL DEFAULT '[]', expires_at bigint, last_refreshed_at bigint,
  error_code text, error_message text, created_at bigint NOT NULL, updated_at bigint NOT NULL,
  deleted_at bigint);
CREATE INDEX connections_user ON connections(user_id, created_at, seq);
CREATE INDEX connections_label ON connections(user_id, connector_slug, label);
CREATE INDEX connections_expiring ON connections(expires_at)
  WHERE deleted_at IS NULL AND status = 'active' AND auth_type = 'oauth';
CREATE TABLE secrets (
  owner_table text NOT NULL, owner_id text NOT NULL, field text NOT NULL, sealed bytea NOT NULL,
  PRIMARY KEY (owner_table, owner_id, field));
)sql",
    // 2: the OAuth handshake's state (SPEC §6), shared by the daemons of this store: a flow begun on one
    // completes on another. Keys are hashes; one pending flow and one live ticket per connection (the
    // UNIQUE: a new one replaces the old in one upsert); taking one is a DELETE … RETURNING.
    R"sql(
CREATE TABLE oauth_flows (
  state_hash bytea PRIMARY KEY, connection_id text NOT NULL UNIQUE, user_id text NOT NULL,
  connector_slug text NOT NULL, redirect_uri text NOT NULL, sealed_verifier bytea, expected_issuer text NOT NULL,
  iss_required boolean NOT NULL, browser_hash bytea NOT NULL, expires_at bigint NOT NULL);
CREATE INDEX oauth_flows_expires ON oauth_flows(expires_at);
CREATE TABLE oauth_tickets (
  hash bytea PRIMARY KEY, connection_id text NOT NULL UNIQUE, user_id text NOT NULL, scopes bigint NOT NULL,
  expires_at bigint NOT NULL);
CREATE INDEX oauth_tickets_expires ON oauth_tickets(expires_at);
CREATE TABLE oauth_results (
  id_hash bytea PRIMARY KEY, ok boolean NOT NULL, result text NOT NULL, connection_id text NOT NULL,
  message text NOT NULL, expires_at bigint NOT NULL);
CREATE INDEX oauth_results_expires ON oauth_results(expires_at);
)sql",
};

constexpr const char* k_flow_cols =
    "state_hash,connection_id,user_id,connector_slug,redirect_uri,sealed_verifier,expected_issuer,iss_required,"
    "browser_hash,expires_at";

OAuthFlowRecord read_flow(const pg::Rows& r, int i) {
  OAuthFlowRecord f;
  f.state_hash = r.bytes(i, 0);
  f.connection_id = r.str(i, 1);
  f.user_id = r.str(i, 2);
  f.connector_slug = r.str(i, 3);
  f.redirect_uri = r.str(i, 4);
  if (!r.is_null(i, 5)) f.sealed_verifier = r.bytes(i, 5);
  f.expected_issuer = r.str(i, 6);
  f.iss_required = r.text(i, 7) == "t";
  f.browser_hash = r.bytes(i, 8);
  f.expires_at = r.int64(i, 9);
  return f;
}

constexpr const char* k_key_cols =
    "SELECT id,user_id,name,prefix,hash,scopes,created_at,last_used_at,revoked_at FROM api_keys";
constexpr const char* k_conn_cols =
    "SELECT id,user_id,connector_slug,label,auth_type,status,account_label,scopes,expires_at,last_refreshed_at,"
    "error_code,error_message,created_at,updated_at,deleted_at,lpad(seq::text, 20, '0') FROM connections";
constexpr const char* k_put_meta =
    "INSERT INTO meta(key,value) VALUES($1,$2) ON CONFLICT (key) DO UPDATE SET value=excluded.value";

Status ok_or(const Result<pg::Rows>& r) {
  if (!r) return std::unexpected(r.error());
  return {};
}

ApiKeyRecord read_key(const pg::Rows& r, int i) {
  ApiKeyRecord k;
  k.id = r.str(i, 0);
  k.user_id = r.str(i, 1);
  k.name = r.str(i, 2);
  k.prefix = r.str(i, 3);
  k.hash = r.bytes(i, 4);
  k.scopes = static_cast<unsigned>(r.int64(i, 5));
  k.created_at = r.int64(i, 6);
  k.last_used_at = r.opt_int64(i, 7);
  k.revoked_at = r.opt_int64(i, 8);
  return k;
}

Connection read_connection(const pg::Rows& r, int i) {
  Connection c;
  c.id = r.str(i, 0);
  c.user_id = r.str(i, 1);
  c.connector_slug = r.str(i, 2);
  c.label = r.str(i, 3);
  c.auth_type = parse_auth_type(r.text(i, 4)).value_or(AuthType::none);
  c.status = parse_connection_status(r.text(i, 5)).value_or(ConnectionStatus::error);
  c.account_label = r.str(i, 6);
  const auto scopes = json::parse(r.text(i, 7), nullptr, false);
  if (scopes.is_array())
    for (const auto& s : scopes)
      if (s.is_string()) c.scopes.push_back(s.get<std::string>());
  c.expires_at = r.opt_int64(i, 8);
  c.last_refreshed_at = r.opt_int64(i, 9);
  if (!r.is_null(i, 10)) c.error = ConnectionError{r.str(i, 10), r.str(i, 11)};
  c.created_at = r.int64(i, 12);
  c.updated_at = r.int64(i, 13);
  c.deleted_at = r.opt_int64(i, 14);
  return c;
}

// $1..$15 in the column order of k_conn_cols (without seq).
std::vector<pg::Param> connection_params(const Connection& c) {
  return {c.id,
          c.user_id,
          c.connector_slug,
          c.label,
          std::string(to_string(c.auth_type)),
          std::string(to_string(c.status)),
          c.account_label,
          json(c.scopes).dump(),
          c.expires_at,
          c.last_refreshed_at,
          c.error ? pg::Param(c.error->code) : pg::Param(),
          c.error ? pg::Param(c.error->message) : pg::Param(),
          c.created_at,
          c.updated_at,
          c.deleted_at};
}

Status write_connection_row(pg::Connection& db, const Connection& c) {
  return ok_or(
      db.exec("UPDATE connections SET user_id=$2,connector_slug=$3,label=$4,auth_type=$5,status=$6,account_label=$7,"
              "scopes=$8,expires_at=$9,last_refreshed_at=$10,error_code=$11,error_message=$12,created_at=$13,"
              "updated_at=$14,deleted_at=$15 WHERE id=$1",
              connection_params(c)));
}

Status replace_secrets(pg::Connection& db, std::string_view table, std::string_view row_id,
                       const std::vector<SealedValue>& values) {
  if (auto d = db.exec("DELETE FROM secrets WHERE owner_table=$1 AND owner_id=$2", {table, row_id}); !d)
    return std::unexpected(d.error());
  for (const auto& v : values) {
    auto ins = db.exec("INSERT INTO secrets(owner_table,owner_id,field,sealed) VALUES($1,$2,$3,$4)",
                       {table, row_id, v.field, pg::Param::bytes(v.blob)});
    if (!ins) return std::unexpected(ins.error());
  }
  return {};
}

// A connection's refresh lock: a session-level advisory lock on a connection of its own (not a transaction
// held open across the provider's round trip, which idle_in_transaction_session_timeout would cut). The
// server drops it with the session when a daemon dies. Key: (k_refresh_lock_class, hashtext(id)); two ids
// with one hash only wait for each other.
constexpr int64_t k_refresh_lock_class = 0x616c6d;  // "alm"

class RefreshLock final : public Store::Lock {
 public:
  RefreshLock(pg::Pool::Lease lease, std::string id) : m_lease(std::move(lease)), m_id(std::move(id)) {}
  ~RefreshLock() override {
    (void)m_lease->exec("SELECT pg_advisory_unlock($1::int, hashtext($2))", {k_refresh_lock_class, m_id});
  }
  RefreshLock(const RefreshLock&) = delete;
  RefreshLock& operator=(const RefreshLock&) = delete;

 private:
  pg::Pool::Lease m_lease;
  std::string m_id;
};

class PgStore final : public Store {
 public:
  PgStore(std::unique_ptr<pg::Pool> pool, std::unique_ptr<pg::Pool> lock_pool)
      : m_pool(std::move(pool)), m_lock_pool(std::move(lock_pool)) {}

  // Its own pool, so that daemons holding locks never starve the statements they run meanwhile.
  Result<std::unique_ptr<Lock>> lock_connection(std::string_view connection_id) override {
    for (int attempt = 0;; ++attempt) {
      auto lease = TRY(m_lock_pool->lease());
      auto locked =
          lease->exec("SELECT pg_advisory_lock($1::int, hashtext($2))", {k_refresh_lock_class, connection_id});
      if (locked) return std::unique_ptr<Lock>(new RefreshLock(std::move(lease), std::string(connection_id)));
      if (locked.error().code != ErrorCode::service_unavailable || lease->healthy() || attempt == 1)
        return std::unexpected(locked.error());
    }
  }

  std::string_view backend_name() const override { return "postgres"; }

  Result<std::optional<std::string>> get_meta(std::string_view key) override {
    return with([&](pg::Connection& db) -> Result<std::optional<std::string>> {
      auto r = TRY(db.exec("SELECT value FROM meta WHERE key=$1", {key}));
      if (r.empty()) return std::optional<std::string>();
      return std::optional<std::string>(r.str(0, 0));
    });
  }

  Status put_meta(std::string_view key, std::string_view value) override {
    return with_status([&](pg::Connection& db) { return ok_or(db.exec(k_put_meta, {key, value})); });
  }

  Result<bool> insert_meta_if_absent(std::string_view key, std::string_view value) override {
    return with([&](pg::Connection& db) -> Result<bool> {
      auto r = TRY(db.exec("INSERT INTO meta(key,value) VALUES($1,$2) ON CONFLICT (key) DO NOTHING", {key, value}));
      return r.affected() == 1;
    });
  }

  Status insert_user(const User& u) override {
    return with_status([&](pg::Connection& db) {
      return ok_or(db.exec("INSERT INTO users(id,name,created_at) VALUES($1,$2,$3)", {u.id, u.name, u.created_at}));
    });
  }

  // The claim on 'owner.user_id' and the user commit together: a second daemon's INSERT waits on the
  // first's uncommitted key, then does nothing.
  Result<bool> insert_owner(const User& u) override {
    return with([&](pg::Connection& db) -> Result<bool> {
      bool created = false;
      auto st = db.transaction([&](pg::Connection& tx) -> Status {
        created = false;
        auto any = TRY(tx.exec("SELECT 1 FROM users LIMIT 1"));
        if (!any.empty()) return {};  // a store made before the claim existed
        auto claim =
            TRY(tx.exec("INSERT INTO meta(key,value) VALUES('owner.user_id',$1) ON CONFLICT (key) DO NOTHING", {u.id}));
        if (claim.affected() == 0) return {};
        TRY(tx.exec("INSERT INTO users(id,name,created_at) VALUES($1,$2,$3)", {u.id, u.name, u.created_at}));
        created = true;
        return {};
      });
      if (!st) return std::unexpected(st.error());
      return created;
    });
  }

  Result<std::optional<User>> find_user(std::string_view id) override {
    return one_user("SELECT id,name,created_at FROM users WHERE id=$1", {id});
  }

  Result<std::optional<User>> first_user() override {
    return one_user("SELECT id,name,created_at FROM users ORDER BY created_at, id LIMIT 1", {});
  }

  Status insert_api_key(const ApiKeyRecord& k) override {
    return with_status([&](pg::Connection& db) {
      return ok_or(
          db.exec("INSERT INTO api_keys(id,user_id,name,prefix,hash,scopes,created_at,last_used_at,revoked_at) "
                  "VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9)",
                  {k.id, k.user_id, k.name, k.prefix, pg::Param::bytes(k.hash), static_cast<int64_t>(k.scopes),
                   k.created_at, k.last_used_at, k.revoked_at}));
    });
  }

  Result<std::optional<ApiKeyRecord>> find_api_key_by_hash(std::string_view hash) override {
    return one_key(std::string(k_key_cols) + " WHERE hash=$1", pg::Param::bytes(hash));
  }

  Result<std::optional<ApiKeyRecord>> find_api_key(std::string_view id) override {
    return one_key(std::string(k_key_cols) + " WHERE id=$1", pg::Param(id));
  }

  Result<std::vector<ApiKeyRecord>> list_api_keys(std::string_view user_id) override {
    return with([&](pg::Connection& db) -> Result<std::vector<ApiKeyRecord>> {
      auto r = TRY(db.exec(std::string(k_key_cols) + " WHERE user_id=$1 ORDER BY created_at DESC, id DESC", {user_id}));
      std::vector<ApiKeyRecord> out;
      for (int i = 0; i < r.size(); ++i) out.push_back(read_key(r, i));
      return out;
    });
  }

  Status touch_api_key(std::string_view id, int64_t when_ms) override {
    return with_status([&](pg::Connection& db) {
      return ok_or(db.exec("UPDATE api_keys SET last_used_at=$1 WHERE id=$2", {when_ms, id}));
    });
  }

  Result<bool> revoke_api_key(std::string_view id, int64_t when_ms) override {
    return with([&](pg::Connection& db) -> Result<bool> {
      auto r = TRY(db.exec("UPDATE api_keys SET revoked_at=$1 WHERE id=$2 AND revoked_at IS NULL", {when_ms, id}));
      return r.affected() > 0;
    });
  }

  Status insert_connection(const Connection& c) override {
    return with_status([&](pg::Connection& db) {
      return ok_or(
          db.exec("INSERT INTO connections(id,user_id,connector_slug,label,auth_type,status,account_label,scopes,"
                  "expires_at,last_refreshed_at,error_code,error_message,created_at,updated_at,deleted_at) "
                  "VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
                  connection_params(c)));
    });
  }

  Result<std::optional<Connection>> find_connection(std::string_view id) override {
    return one_connection(std::string(k_conn_cols) + " WHERE id=$1", {id});
  }

  Result<std::optional<Connection>> find_connection_by_label(std::string_view user_id, std::string_view slug,
                                                             std::string_view label) override {
    return one_connection(std::string(k_conn_cols) +
                              " WHERE user_id=$1 AND connector_slug=$2 AND label=$3 AND deleted_at IS NULL"
                              " ORDER BY created_at DESC, seq DESC LIMIT 1",
                          {user_id, slug, label});
  }

  // Newest first, keyset on (created_at, seq): the cursor is encode_cursor(created_at, seq as 20 digits).
  Result<PageResult<Connection>> list_connections(const ConnectionFilter& f, const Page& page) override {
    std::optional<std::pair<int64_t, std::string>> after;
    if (page.cursor) {
      after = decode_cursor(*page.cursor);
      if (!after || after->second.size() != 20 || after->second.find_first_not_of("0123456789") != std::string::npos)
        return fail(ErrorCode::bad_request, "cursor is not valid; pass the nextCursor of a previous page");
    }
    std::string sql = std::string(k_conn_cols) + " WHERE user_id=$1 AND deleted_at IS NULL";
    std::vector<pg::Param> params{f.user_id};
    auto next = [&](pg::Param p) {
      params.push_back(std::move(p));
      return "$" + std::to_string(params.size());
    };
    if (f.connector) sql += " AND connector_slug=" + next(*f.connector);
    if (f.status) sql += " AND status=" + next(std::string(to_string(*f.status)));
    if (after) {
      const std::string t = next(after->first);
      sql += " AND (created_at < " + t + " OR (created_at = " + t + " AND seq < " + next(after->second) + "::bigint))";
    }
    sql += " ORDER BY created_at DESC, seq DESC LIMIT " + next(static_cast<int64_t>(page.limit + 1));
    return with([&](pg::Connection& db) -> Result<PageResult<Connection>> {
      auto r = TRY(db.exec(sql, params));
      PageResult<Connection> out;
      for (int i = 0; i < r.size() && out.items.size() < page.limit; ++i) out.items.push_back(read_connection(r, i));
      if (static_cast<std::size_t>(r.size()) > page.limit && page.limit > 0) {
        const int last = static_cast<int>(page.limit) - 1;
        out.next_cursor = encode_cursor(r.int64(last, 12), r.str(last, 15));
      }
      return out;
    });
  }

  Result<std::vector<Connection>> list_expiring_connections(int64_t before_ms) override {
    return many_connections(std::string(k_conn_cols) +
                                " WHERE deleted_at IS NULL AND status='active' AND auth_type='oauth'"
                                " AND expires_at IS NOT NULL AND expires_at < $1 ORDER BY expires_at",
                            {before_ms});
  }

  Status update_connection(const Connection& c, const std::vector<SealedValue>* secrets) override {
    return with_status([&](pg::Connection& db) {
      return db.transaction([&](pg::Connection& tx) -> Status {
        TRY(write_connection_row(tx, c));
        if (secrets) TRY(replace_secrets(tx, "connections", c.id, *secrets));
        return {};
      });
    });
  }

  Status destroy_connection(const Connection& conn) override {
    Connection c = conn;  // destroyed means revoked and deleted, whatever the caller filled in
    c.status = ConnectionStatus::revoked;
    if (!c.deleted_at) c.deleted_at = c.updated_at;
    return with_status([&](pg::Connection& db) {
      return db.transaction([&](pg::Connection& tx) -> Status {
        TRY(write_connection_row(tx, c));
        return replace_secrets(tx, "connections", c.id, {});
      });
    });
  }

  Result<std::vector<SealedValue>> load_secrets(std::string_view table, std::string_view row_id) override {
    return with([&](pg::Connection& db) -> Result<std::vector<SealedValue>> {
      auto r = TRY(db.exec("SELECT field, sealed FROM secrets WHERE owner_table=$1 AND owner_id=$2 ORDER BY field",
                           {table, row_id}));
      std::vector<SealedValue> out;
      for (int i = 0; i < r.size(); ++i) out.push_back({r.str(i, 0), r.bytes(i, 1)});
      return out;
    });
  }

  Status put_secrets(std::string_view table, std::string_view row_id, const std::vector<SealedValue>& values) override {
    return with_status([&](pg::Connection& db) {
      return db.transaction([&](pg::Connection& tx) { return replace_secrets(tx, table, row_id, values); });
    });
  }

  Status delete_secrets(std::string_view table, std::string_view row_id) override {
    return put_secrets(table, row_id, {});
  }

  Result<std::vector<OwnedSealedValue>> list_all_secrets() override {
    return with([&](pg::Connection& db) -> Result<std::vector<OwnedSealedValue>> {
      auto r = TRY(db.exec("SELECT owner_table, owner_id, field, sealed FROM secrets ORDER BY 1, 2, 3"));
      std::vector<OwnedSealedValue> out;
      for (int i = 0; i < r.size(); ++i) out.push_back({r.str(i, 0), r.str(i, 1), {r.str(i, 2), r.bytes(i, 3)}});
      return out;
    });
  }

  Status update_meta(const std::vector<std::pair<std::string, std::optional<std::string>>>& changes) override {
    return with_status([&](pg::Connection& db) {
      return db.transaction([&](pg::Connection& tx) -> Status {
        for (const auto& [key, value] : changes) {
          if (value) TRY(tx.exec(k_put_meta, {key, *value}));
          else TRY(tx.exec("DELETE FROM meta WHERE key=$1", {key}));
        }
        return {};
      });
    });
  }

  // The OAuth handshake's state (store.hpp). A put is its purge and one upsert in a transaction; a take
  // is one DELETE … RETURNING, so of two daemons taking the same row one gets it and the other none.
  Status put_oauth_flow(const OAuthFlowRecord& f, int64_t now_ms) override {
    return with_status([&](pg::Connection& db) {
      return db.transaction([&](pg::Connection& tx) -> Status {
        TRY(tx.exec("DELETE FROM oauth_flows WHERE expires_at<=$1", {now_ms}));
        return ok_or(tx.exec(
            "INSERT INTO oauth_flows(state_hash,connection_id,user_id,connector_slug,redirect_uri,sealed_verifier,"
            "expected_issuer,iss_required,browser_hash,expires_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) "
            "ON CONFLICT (connection_id) DO UPDATE SET state_hash=excluded.state_hash,user_id=excluded.user_id,"
            "connector_slug=excluded.connector_slug,redirect_uri=excluded.redirect_uri,"
            "sealed_verifier=excluded.sealed_verifier,expected_issuer=excluded.expected_issuer,"
            "iss_required=excluded.iss_required,browser_hash=excluded.browser_hash,expires_at=excluded.expires_at",
            {pg::Param::bytes(f.state_hash), f.connection_id, f.user_id, f.connector_slug, f.redirect_uri,
             f.sealed_verifier.empty() ? pg::Param() : pg::Param::bytes(f.sealed_verifier), f.expected_issuer,
             f.iss_required, pg::Param::bytes(f.browser_hash), f.expires_at}));
      });
    });
  }

  Result<std::optional<OAuthFlowRecord>> find_oauth_flow(std::string_view state_hash) override {
    return one_flow(std::string("SELECT ") + k_flow_cols + " FROM oauth_flows WHERE state_hash=$1", state_hash);
  }

  Result<std::optional<OAuthFlowRecord>> take_oauth_flow(std::string_view state_hash) override {
    return one_flow(std::string("DELETE FROM oauth_flows WHERE state_hash=$1 RETURNING ") + k_flow_cols, state_hash);
  }

  Status put_oauth_ticket(const OAuthTicketRecord& t, int64_t now_ms) override {
    return with_status([&](pg::Connection& db) {
      return db.transaction([&](pg::Connection& tx) -> Status {
        TRY(tx.exec("DELETE FROM oauth_tickets WHERE expires_at<=$1", {now_ms}));
        return ok_or(tx.exec(
            "INSERT INTO oauth_tickets(hash,connection_id,user_id,scopes,expires_at) "
            "VALUES($1,$2,$3,$4,$5) ON CONFLICT (connection_id) DO UPDATE SET hash=excluded.hash,"
            "user_id=excluded.user_id,scopes=excluded.scopes,expires_at=excluded.expires_at",
            {pg::Param::bytes(t.hash), t.connection_id, t.user_id, static_cast<int64_t>(t.scopes), t.expires_at}));
      });
    });
  }

  Result<std::optional<OAuthTicketRecord>> take_oauth_ticket(std::string_view hash,
                                                             std::string_view connection_id) override {
    return with([&](pg::Connection& db) -> Result<std::optional<OAuthTicketRecord>> {
      auto r =
          TRY(db.exec("DELETE FROM oauth_tickets WHERE hash=$1 AND connection_id=$2 "
                      "RETURNING hash,connection_id,user_id,scopes,expires_at",
                      {pg::Param::bytes(hash), connection_id}));
      if (r.empty()) return std::optional<OAuthTicketRecord>();
      return std::optional<OAuthTicketRecord>(OAuthTicketRecord{r.bytes(0, 0), r.str(0, 1), r.str(0, 2),
                                                                static_cast<unsigned>(r.int64(0, 3)), r.int64(0, 4)});
    });
  }

  Status put_oauth_result(const OAuthResultRecord& o, int64_t now_ms) override {
    return with_status([&](pg::Connection& db) {
      return db.transaction([&](pg::Connection& tx) -> Status {
        TRY(tx.exec("DELETE FROM oauth_results WHERE expires_at<=$1", {now_ms}));
        return ok_or(
            tx.exec("INSERT INTO oauth_results(id_hash,ok,result,connection_id,message,expires_at) "
                    "VALUES($1,$2,$3,$4,$5,$6)",
                    {pg::Param::bytes(o.id_hash), o.ok, o.result, o.connection_id, o.message, o.expires_at}));
      });
    });
  }

  Result<std::optional<OAuthResultRecord>> find_oauth_result(std::string_view id_hash, int64_t now_ms) override {
    return with([&](pg::Connection& db) -> Result<std::optional<OAuthResultRecord>> {
      auto r =
          TRY(db.exec("SELECT id_hash,ok,result,connection_id,message,expires_at FROM oauth_results "
                      "WHERE id_hash=$1 AND expires_at>$2",
                      {pg::Param::bytes(id_hash), now_ms}));
      if (r.empty()) return std::optional<OAuthResultRecord>();
      return std::optional<OAuthResultRecord>(
          OAuthResultRecord{r.bytes(0, 0), r.text(0, 1) == "t", r.str(0, 2), r.str(0, 3), r.str(0, 4), r.int64(0, 5)});
    });
  }

  Result<std::size_t> count_oauth_results(int64_t now_ms) override {
    return with([&](pg::Connection& db) -> Result<std::size_t> {
      auto r = TRY(db.exec("SELECT count(*) FROM oauth_results WHERE expires_at>$1", {now_ms}));
      return static_cast<std::size_t>(r.int64(0, 0));
    });
  }

 private:
  Result<std::optional<OAuthFlowRecord>> one_flow(const std::string& sql, std::string_view state_hash) {
    return with([&](pg::Connection& db) -> Result<std::optional<OAuthFlowRecord>> {
      auto r = TRY(db.exec(sql, {pg::Param::bytes(state_hash)}));
      if (r.empty()) return std::optional<OAuthFlowRecord>();
      return std::optional<OAuthFlowRecord>(read_flow(r, 0));
    });
  }

  // Runs `body` on a pooled connection, once more after a restart dropped it (pg::Pool::run).
  template <class F>
  auto with(F&& body) -> decltype(body(std::declval<pg::Connection&>())) {
    return m_pool->run(std::forward<F>(body));
  }
  template <class F>
  Status with_status(F&& body) {
    return with([&](pg::Connection& db) -> Status { return body(db); });
  }

  Result<std::optional<User>> one_user(const std::string& sql, std::initializer_list<pg::Param> params) {
    std::vector<pg::Param> p(params);
    return with([&](pg::Connection& db) -> Result<std::optional<User>> {
      auto r = TRY(db.exec(sql, p));
      if (r.empty()) return std::optional<User>();
      return std::optional<User>(User{r.str(0, 0), r.str(0, 1), r.int64(0, 2)});
    });
  }

  Result<std::optional<ApiKeyRecord>> one_key(const std::string& sql, pg::Param param) {
    return with([&](pg::Connection& db) -> Result<std::optional<ApiKeyRecord>> {
      auto r = TRY(db.exec(sql, {param}));
      if (r.empty()) return std::optional<ApiKeyRecord>();
      return std::optional<ApiKeyRecord>(read_key(r, 0));
    });
  }

  Result<std::optional<Connection>> one_connection(const std::string& sql, std::initializer_list<pg::Param> params) {
    auto all = TRY(many_connections(sql, params));
    if (all.empty()) return std::optional<Connection>();
    return std::optional<Connection>(std::move(all.front()));
  }

  Result<std::vector<Connection>> many_connections(const std::string& sql, std::initializer_list<pg::Param> params) {
    std::vector<pg::Param> p(params);
    return with([&](pg::Connection& db) -> Result<std::vector<Connection>> {
      auto r = TRY(db.exec(sql, p));
      std::vector<Connection> out;
      for (int i = 0; i < r.size(); ++i) out.push_back(read_connection(r, i));
      return out;
    });
  }

  std::unique_ptr<pg::Pool> m_pool;
  std::unique_ptr<pg::Pool> m_lock_pool;
};

}  // namespace

Result<std::unique_ptr<Store>> open_postgres_store(const PostgresOptions& options) {
  auto pool = TRY(pg::Pool::open(options.conninfo, options.pool_size == 0 ? 1 : options.pool_size));
  {
    auto lease = TRY(pool->lease());
    auto version = pg::migrate(*lease, "store", k_migrations);
    if (!version) return std::unexpected(version.error());
  }
  // Refreshes of different connections at once, each holding one of these while it runs.
  auto lock_pool = TRY(pg::Pool::open(options.conninfo, 2));
  return std::unique_ptr<Store>(new PgStore(std::move(pool), std::move(lock_pool)));
}

bool is_postgres_url(std::string_view store) {
  return store.starts_with("postgres://") || store.starts_with("postgresql://");
}

std::string redact_store_url(std::string_view store) {
  std::string out(store);
  if (const auto scheme = out.find("://"); scheme != std::string::npos) {
    // scheme://user:password@host/db (any scheme: a wrong one is quoted in the error that refuses it); the
    // userinfo ends at the last '@' before the query (not the path: a password typed raw may hold a '/').
    const auto start = scheme + 3;
    const auto query = out.find('?', start);
    const auto at = out.rfind('@', query);
    if (at != std::string::npos && at >= start) {
      const auto colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // A password given as a parameter (…?password=… or password=… in a keyword string).
  for (std::size_t p = out.find("password="); p != std::string::npos; p = out.find("password=", p + 1)) {
    const auto value = p + 9;
    const auto end = out.find_first_of("& ", value);
    out.replace(value, (end == std::string::npos ? out.size() : end) - value, "***");
  }
  return out;
}

}  // namespace alumia

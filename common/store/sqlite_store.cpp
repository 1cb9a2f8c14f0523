// SQLite implementation of Store. WAL, synchronous=FULL, secure_delete, numbered migrations.
#include <alumia/base/try.hpp>
#include <alumia/crypto/crypto.hpp>
#include <alumia/store/store.hpp>

#include "sqlite_rows.hpp"
#include "sqlite_util.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>

namespace alumia {
namespace {

using nlohmann::json;

// Migration N brings the schema from user_version N-1 to N. Append only; never edit a shipped one.
constexpr const char* k_migrations[] = {
    // 1: users, API keys, connections, sealed values, metadata.
    R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), name TEXT NOT NULL,
  prefix TEXT NOT NULL, hash BLOB NOT NULL UNIQUE, scopes INTEGER NOT NULL,
  created_at INTEGER NOT NULL, last_used_at INTEGER, revoked_at INTEGER);
CREATE INDEX api_keys_user ON api_keys(user_id, created_at);
CREATE TABLE connections (
  id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), connector_slug TEXT NOT NULL,
  label TEXT NOT NULL, auth_type TEXT NOT NULL, status TEXT NOT NULL, account_label TEXT NOT NULL DEFAULT '',
  scopes TEXT NOT NULL DEFAULT '[]', expires_at INTEGER, last_refreshed_at INTEGER,
  error_code TEXT, error_message TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  deleted_at INTEGER);
CREATE INDEX connections_user ON connections(user_id, created_at DESC, id DESC);
CREATE INDEX connections_label ON connections(user_id, connector_slug, label);
CREATE TABLE secrets (
  owner_table TEXT NOT NULL, owner_id TEXT NOT NULL, field TEXT NOT NULL, sealed BLOB NOT NULL,
  PRIMARY KEY (owner_table, owner_id, field));
)sql",
    // 2: webhook endpoints, events, the dedup set (8-day TTL on received_at) and relay jobs.
    R"sql(
CREATE TABLE webhook_endpoints (
  id TEXT PRIMARY KEY, user_id TEXT NOT NULL, provider TEXT NOT NULL, connection_id TEXT,
  label TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, relay_to TEXT, config TEXT NOT NULL DEFAULT '{}',
  max_body_bytes INTEGER NOT NULL, previous_secret_expires_at INTEGER,
  received INTEGER NOT NULL DEFAULT 0, duplicates INTEGER NOT NULL DEFAULT 0,
  rejected INTEGER NOT NULL DEFAULT 0, verification_failures INTEGER NOT NULL DEFAULT 0,
  last_delivery_at INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER);
CREATE INDEX webhook_endpoints_user ON webhook_endpoints(user_id, created_at DESC, id DESC);
CREATE TABLE webhook_events (
  id TEXT PRIMARY KEY, endpoint_id TEXT NOT NULL, user_id TEXT NOT NULL, provider TEXT NOT NULL,
  event_key TEXT NOT NULL, event_type TEXT NOT NULL DEFAULT '', headers TEXT NOT NULL DEFAULT '[]',
  body BLOB NOT NULL, received_at INTEGER NOT NULL);
CREATE INDEX webhook_events_user ON webhook_events(user_id, received_at DESC, id DESC);
CREATE INDEX webhook_events_endpoint ON webhook_events(endpoint_id, received_at DESC, id DESC);
CREATE TABLE webhook_dedup (
  endpoint_id TEXT NOT NULL, event_key TEXT NOT NULL, event_id TEXT NOT NULL, received_at INTEGER NOT NULL,
  UNIQUE (endpoint_id, event_key));
CREATE INDEX webhook_dedup_received ON webhook_dedup(received_at);
CREATE TABLE webhook_jobs (
  id TEXT PRIMARY KEY, event_id TEXT NOT NULL, endpoint_id TEXT NOT NULL, user_id TEXT NOT NULL,
  state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,
  last_status INTEGER, last_error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  finished_at INTEGER);
CREATE INDEX webhook_jobs_due ON webhook_jobs(state, next_attempt_at);
CREATE INDEX webhook_jobs_user ON webhook_jobs(user_id, created_at DESC, id DESC);
CREATE INDEX webhook_jobs_event ON webhook_jobs(event_id, created_at DESC);
)sql",
    // 3: the relay worker claims per endpoint through an index (no scan of the whole queue when
    // only some endpoints have a target), and the dedup set is keyed by its primary key alone.
    // The hot indexes become ascending: new rows (the newest time) then land at the right edge,
    // where SQLite appends without rebalancing siblings; DESC listings read them backwards.
    R"sql(
DROP INDEX webhook_events_user;
DROP INDEX webhook_events_endpoint;
DROP INDEX webhook_jobs_user;
DROP INDEX webhook_jobs_event;
CREATE INDEX webhook_events_user ON webhook_events(user_id, received_at, id);
CREATE INDEX webhook_events_endpoint ON webhook_events(endpoint_id, received_at, id);
CREATE INDEX webhook_jobs_user ON webhook_jobs(user_id, created_at, id);
CREATE INDEX webhook_jobs_event ON webhook_jobs(event_id, created_at);
CREATE INDEX webhook_jobs_endpoint_due ON webhook_jobs(endpoint_id, state, next_attempt_at);
CREATE TABLE webhook_dedup_v3 (
  endpoint_id TEXT NOT NULL, event_key TEXT NOT NULL, event_id TEXT NOT NULL, received_at INTEGER NOT NULL,
  PRIMARY KEY (endpoint_id, event_key)) WITHOUT ROWID;
INSERT INTO webhook_dedup_v3 SELECT endpoint_id, event_key, event_id, received_at FROM webhook_dedup;
DROP TABLE webhook_dedup;
ALTER TABLE webhook_dedup_v3 RENAME TO webhook_dedup;
CREATE INDEX webhook_dedup_received ON webhook_dedup(received_at);
)sql",
    // 4: why the receiver last refused a delivery, for the endpoint's owner (the sender gets a
    // generic answer).
    R"sql(
ALTER TABLE webhook_endpoints ADD COLUMN last_error_code TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN last_error_message TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN last_error_at INTEGER;
)sql",
    // 5: an endpoint's own rate limit (NULL: the daemon's default) and the deliveries it refused.
    R"sql(
ALTER TABLE webhook_endpoints ADD COLUMN rate_per_second INTEGER;
ALTER TABLE webhook_endpoints ADD COLUMN rate_burst INTEGER;
ALTER TABLE webhook_endpoints ADD COLUMN rate_limited INTEGER NOT NULL DEFAULT 0;
)sql",
    // 6: jobs per (endpoint, state), kept by triggers in the transaction that changes a job, so that
    // the admin summary (SPEC §9) reads a few rows instead of counting the jobs table. The counts are
    // made once here from what exists (the only pass over the jobs); a state that reaches 0 keeps its row.
    // And the jobs of a user by state, newest first: the events whose job is dead (or queued, ...) are a
    // range of it, not a pass over every event.
    R"sql(
CREATE TABLE webhook_job_counts (
  endpoint_id TEXT NOT NULL, state TEXT NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (endpoint_id, state)) WITHOUT ROWID;
INSERT INTO webhook_job_counts(endpoint_id, state, n)
  SELECT endpoint_id, state, COUNT(*) FROM webhook_jobs GROUP BY endpoint_id, state;
CREATE TRIGGER webhook_jobs_count_insert AFTER INSERT ON webhook_jobs BEGIN
  INSERT INTO webhook_job_counts(endpoint_id, state, n) VALUES (NEW.endpoint_id, NEW.state, 1)
    ON CONFLICT (endpoint_id, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER webhook_jobs_count_update AFTER UPDATE OF state ON webhook_jobs
  WHEN OLD.state IS NOT NEW.state BEGIN
  UPDATE webhook_job_counts SET n = n - 1 WHERE endpoint_id = OLD.endpoint_id AND state = OLD.state;
  INSERT INTO webhook_job_counts(endpoint_id, state, n) VALUES (NEW.endpoint_id, NEW.state, 1)
    ON CONFLICT (endpoint_id, state) DO UPDATE SET n = n + 1;
END;
CREATE INDEX webhook_jobs_user_state ON webhook_jobs(user_id, state, created_at, id);
CREATE TRIGGER webhook_jobs_count_delete AFTER DELETE ON webhook_jobs BEGIN
  UPDATE webhook_job_counts SET n = n - 1 WHERE endpoint_id = OLD.endpoint_id AND state = OLD.state;
END;
)sql",
    // 7: retention (SPEC §9): an endpoint's own window (NULL: the daemon's default), when an event's
    // body and headers were dropped, and how far the body sweep has got per endpoint and job state (the
    // last job examined in webhook_jobs_endpoint_due order), so that no sweep reads an event twice.
    R"sql(
ALTER TABLE webhook_endpoints ADD COLUMN retention_days INTEGER;
ALTER TABLE webhook_events ADD COLUMN body_removed_at INTEGER;
CREATE TABLE webhook_retention_marks (
  endpoint_id TEXT NOT NULL, state TEXT NOT NULL, at INTEGER NOT NULL, job_rowid INTEGER NOT NULL,
  PRIMARY KEY (endpoint_id, state)) WITHOUT ROWID;
)sql",
    // 8: the OAuth handshake's state (SPEC §6), here rather than in daemon memory so that a store shared by
    // several daemons (PostgreSQL, the same tables) completes a flow on any of them. Keys are hashes; one
    // pending flow and one live ticket per connection (the UNIQUE: a new one replaces the old).
    R"sql(
CREATE TABLE oauth_flows (
  state_hash BLOB PRIMARY KEY, connection_id TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL,
  connector_slug TEXT NOT NULL, redirect_uri TEXT NOT NULL, sealed_verifier BLOB, expected_issuer TEXT NOT NULL,
  iss_required INTEGER NOT NULL, browser_hash BLOB NOT NULL, expires_at INTEGER NOT NULL);
CREATE INDEX oauth_flows_expires ON oauth_flows(expires_at);
CREATE TABLE oauth_tickets (
  hash BLOB PRIMARY KEY, connection_id TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL, scopes INTEGER NOT NULL,
  expires_at INTEGER NOT NULL);
CREATE INDEX oauth_tickets_expires ON oauth_tickets(expires_at);
CREATE TABLE oauth_results (
  id_hash BLOB PRIMARY KEY, ok INTEGER NOT NULL, result TEXT NOT NULL, connection_id TEXT NOT NULL,
  message TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE INDEX oauth_results_expires ON oauth_results(expires_at);
)sql",
    // 9: a new job is counted by the webhook store's writer, once per (endpoint, state) and batch in the
    // batch's transaction (SqliteWebhookStore::flush_job_counts), not by a trigger per row: the insert
    // trigger was a third of the writer's instructions per delivery (bench/store_apply.sh). A state change
    // or a deletion lowers the count of the old state as an upsert, so that a job inserted and changed in
    // one batch, before its insert is counted, leaves the row at -1 until the batch adds it: the counts are
    // exact at every commit, as before.
    R"sql(
DROP TRIGGER webhook_jobs_count_insert;
DROP TRIGGER webhook_jobs_count_update;
DROP TRIGGER webhook_jobs_count_delete;
CREATE TRIGGER webhook_jobs_count_update AFTER UPDATE OF state ON webhook_jobs
  WHEN OLD.state IS NOT NEW.state BEGIN
  INSERT INTO webhook_job_counts(endpoint_id, state, n) VALUES (OLD.endpoint_id, OLD.state, -1)
    ON CONFLICT (endpoint_id, state) DO UPDATE SET n = n - 1;
  INSERT INTO webhook_job_counts(endpoint_id, state, n) VALUES (NEW.endpoint_id, NEW.state, 1)
    ON CONFLICT (endpoint_id, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER webhook_jobs_count_delete AFTER DELETE ON webhook_jobs BEGIN
  INSERT INTO webhook_job_counts(endpoint_id, state, n) VALUES (OLD.endpoint_id, OLD.state, -1)
    ON CONFLICT (endpoint_id, state) DO UPDATE SET n = n - 1;
END;
)sql",
    // 10: no index of every endpoint's jobs by state: the relay's claims, its next due time and the start's
    // requeue of running jobs read each endpoint's range of webhook_jobs_endpoint_due instead (the endpoints
    // table is small), and each new job costs one b-tree insert less (~6 % of the writer's instructions per
    // delivery, bench/store_apply.sh).
    R"sql(
DROP INDEX webhook_jobs_due;
)sql",
    // 11: no index of a user's jobs by time alone: the jobs list without a state is the merge of the user's
    // five state ranges of webhook_jobs_user_state (with an event, that event's jobs), one b-tree insert
    // less per delivery (~6 % of the writer's instructions, bench/store_apply.sh).
    R"sql(
DROP INDEX webhook_jobs_user;
)sql",
    // 12: the dedup keys as sorted runs of packed blocks (dedup_runs.hpp): each batch's keys go in as a run of
    // their own at the table's right edge, and a background merge folds runs into larger ones; keys in random
    // order (GitHub's delivery GUIDs) rewrote a leaf of one b-tree a key. No index by time: a prune reads the
    // runs' and blocks' time bounds. The keys stored so far are packed into run 1 by the webhook store when it
    // opens (SqliteWebhookStore::convert_v11_dedup: SQL cannot write the blocks), from webhook_dedup_v11, a copy
    // (migrate() drops it when empty). A copy, not ALTER TABLE ... RENAME: a rename re-parses the whole schema,
    // and on a new store that alone left ~170 KiB more of the daemon's idle RSS (bench/idle_rss.sh).
    R"sql(
CREATE TABLE webhook_dedup_v11 (
  endpoint_id TEXT NOT NULL, event_key TEXT NOT NULL, event_id TEXT NOT NULL, received_at INTEGER NOT NULL,
  PRIMARY KEY (endpoint_id, event_key)) WITHOUT ROWID;
INSERT INTO webhook_dedup_v11 SELECT endpoint_id, event_key, event_id, received_at FROM webhook_dedup;
DROP TABLE webhook_dedup;
CREATE TABLE webhook_dedup_runs (
  run INTEGER PRIMARY KEY, keys INTEGER NOT NULL, oldest INTEGER NOT NULL, newest INTEGER NOT NULL,
  into_run INTEGER, done_endpoint TEXT, done_key TEXT);
CREATE TABLE webhook_dedup (
  run INTEGER NOT NULL, endpoint_id TEXT NOT NULL, first_key TEXT NOT NULL, keys INTEGER NOT NULL,
  oldest INTEGER NOT NULL, block BLOB NOT NULL, PRIMARY KEY (run, endpoint_id, first_key)) WITHOUT ROWID;
)sql",
};

using sqlite::bind_opt;
using sqlite::opt_int;

class SqliteStore final : public Store {
 public:
  SqliteStore(const SqliteOptions& o, const std::string& db_name)
      : m_db(db_name, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_FULLMUTEX | sqlite::k_open_nofollow) {
    m_db.setBusyTimeout(5000);
    // A new store: 8 KiB pages and incremental vacuum from its first page (both must come before WAL mode
    // and the first table; a store made with SQLite's default 4 KiB pages keeps them, since changing them
    // is a VACUUM of the whole file). Most of what the store writes is a webhook event a delivery, ~1.5 KiB
    // with its body, appended with its job and dedup rows to ten b-trees: with 8 KiB pages a delivery
    // allocates half the pages and writes half the WAL frames (a header and a page write each) and
    // checkpoint copies. Measured: the writer's CPU a delivery in a standalone run of the same inserts
    // (600 a transaction, a statement a row) 17-21 us with 4 KiB pages, 11-17 with 8 KiB; the checkpointer's
    // in the store ceiling (bench/public (c)) ~4 -> ~3 us. 16 KiB pages did no better and cost ~250 KiB of
    // idle RSS (the pages each connection keeps cached), 8 KiB ~0 (docs/ARCHITECTURE.md, "Few pages per commit").
    if (m_db.execAndGet("PRAGMA user_version").getInt() == 0) {
      m_db.exec("PRAGMA page_size=8192");
      m_db.exec("PRAGMA auto_vacuum=INCREMENTAL");
    }
    m_db.exec("PRAGMA journal_mode=WAL");
    m_db.exec(o.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    m_db.exec("PRAGMA secure_delete=ON");
    m_db.exec("PRAGMA foreign_keys=ON");
    migrate();
    // The pages the migrations read and wrote (a new store: every table and index made, ~200 KiB) stay in
    // this connection's page cache for the daemon's life otherwise; its later reads are a few rows of small
    // tables, which come back from the OS's cache. The schema stays (docs/ARCHITECTURE.md, "Memory at idle").
    sqlite3_db_release_memory(m_db.getHandle());
  }

  std::string_view backend_name() const override { return "sqlite"; }

  Result<std::optional<std::string>> get_meta(std::string_view key) override {
    return run([&]() -> std::optional<std::string> {
      SQLite::Statement q(m_db, "SELECT value FROM meta WHERE key=?");
      q.bind(1, std::string(key));
      if (!q.executeStep()) return std::nullopt;
      return q.getColumn(0).getString();
    });
  }

  Status put_meta(std::string_view key, std::string_view value) override {
    return run_void([&] {
      SQLite::Statement q(
          m_db, "INSERT INTO meta(key,value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value");
      q.bind(1, std::string(key));
      q.bind(2, std::string(value));
      q.exec();
    });
  }

  // One statement each, so atomic under SQLite's single writer (also against another handle on the file).
  Result<bool> insert_meta_if_absent(std::string_view key, std::string_view value) override {
    return run([&] {
      SQLite::Statement q(m_db, "INSERT INTO meta(key,value) VALUES(?,?) ON CONFLICT(key) DO NOTHING");
      q.bind(1, std::string(key));
      q.bind(2, std::string(value));
      return q.exec() == 1;
    });
  }

  Result<bool> insert_owner(const User& u) override {
    return run([&] {
      SQLite::Statement q(m_db,
                          "INSERT INTO users(id,name,created_at) SELECT ?,?,? WHERE NOT EXISTS (SELECT 1 FROM users)");
      q.bind(1, u.id);
      q.bind(2, u.name);
      q.bind(3, static_cast<int64_t>(u.created_at));
      return q.exec() == 1;
    });
  }

  Status insert_user(const User& u) override {
    return run_void([&] {
      SQLite::Statement q(m_db, "INSERT INTO users(id,name,created_at) VALUES(?,?,?)");
      q.bind(1, u.id);
      q.bind(2, u.name);
      q.bind(3, static_cast<int64_t>(u.created_at));
      q.exec();
    });
  }

  Result<std::optional<User>> find_user(std::string_view id) override {
    return run([&]() -> std::optional<User> {
      SQLite::Statement q(m_db, "SELECT id,name,created_at FROM users WHERE id=?");
      q.bind(1, std::string(id));
      if (!q.executeStep()) return std::nullopt;
      return User{q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getInt64()};
    });
  }

  Result<std::optional<User>> first_user() override {
    return run([&]() -> std::optional<User> {
      SQLite::Statement q(m_db, "SELECT id,name,created_at FROM users ORDER BY created_at, id LIMIT 1");
      if (!q.executeStep()) return std::nullopt;
      return User{q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getInt64()};
    });
  }

  Status insert_api_key(const ApiKeyRecord& k) override {
    return run_void([&] {
      SQLite::Statement q(m_db,
                          "INSERT INTO api_keys(id,user_id,name,prefix,hash,scopes,created_at,last_used_at,revoked_at) "
                          "VALUES(?,?,?,?,?,?,?,?,?)");
      q.bind(1, k.id);
      q.bind(2, k.user_id);
      q.bind(3, k.name);
      q.bind(4, k.prefix);
      q.bind(5, k.hash.data(), static_cast<int>(k.hash.size()));
      q.bind(6, static_cast<int64_t>(k.scopes));
      q.bind(7, static_cast<int64_t>(k.created_at));
      bind_opt(q, 8, k.last_used_at);
      bind_opt(q, 9, k.revoked_at);
      q.exec();
    });
  }

  Result<std::optional<ApiKeyRecord>> find_api_key_by_hash(std::string_view hash) override {
    return run([&]() -> std::optional<ApiKeyRecord> {
      SQLite::Statement q(m_db, std::string(k_key_cols) + " WHERE hash=?");
      q.bind(1, hash.data(), static_cast<int>(hash.size()));
      if (!q.executeStep()) return std::nullopt;
      return read_key(q);
    });
  }

  Result<std::optional<ApiKeyRecord>> find_api_key(std::string_view id) override {
    return run([&]() -> std::optional<ApiKeyRecord> {
      SQLite::Statement q(m_db, std::string(k_key_cols) + " WHERE id=?");
      q.bind(1, std::string(id));
      if (!q.executeStep()) return std::nullopt;
      return read_key(q);
    });
  }

  Result<std::vector<ApiKeyRecord>> list_api_keys(std::string_view user_id) override {
    return run([&] {
      SQLite::Statement q(m_db, std::string(k_key_cols) + " WHERE user_id=? ORDER BY created_at DESC, id DESC");
      q.bind(1, std::string(user_id));
      std::vector<ApiKeyRecord> out;
      while (q.executeStep()) out.push_back(read_key(q));
      return out;
    });
  }

  Status touch_api_key(std::string_view id, int64_t when_ms) override {
    return run_void([&] {
      SQLite::Statement q(m_db, "UPDATE api_keys SET last_used_at=? WHERE id=?");
      q.bind(1, static_cast<int64_t>(when_ms));
      q.bind(2, std::string(id));
      q.exec();
    });
  }

  Result<bool> revoke_api_key(std::string_view id, int64_t when_ms) override {
    return run([&] {
      SQLite::Statement q(m_db, "UPDATE api_keys SET revoked_at=? WHERE id=? AND revoked_at IS NULL");
      q.bind(1, static_cast<int64_t>(when_ms));
      q.bind(2, std::string(id));
      return q.exec() > 0;
    });
  }

  Status insert_connection(const Connection& c) override {
    return run_void([&] {
      SQLite::Statement q(
          m_db,
          "INSERT INTO connections(id,user_id,connector_slug,label,auth_type,status,account_label,scopes,"
          "expires_at,last_refreshed_at,error_code,error_message,created_at,updated_at,deleted_at) "
          "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
      bind_connection(q, c);
      q.exec();
    });
  }

  Result<std::optional<Connection>> find_connection(std::string_view id) override {
    return run([&]() -> std::optional<Connection> {
      SQLite::Statement q(m_db, std::string(k_conn_cols) + " WHERE id=?");
      q.bind(1, std::string(id));
      if (!q.executeStep()) return std::nullopt;
      return read_connection(q);
    });
  }

  Result<std::optional<Connection>> find_connection_by_label(std::string_view user_id, std::string_view slug,
                                                             std::string_view label) override {
    return run([&]() -> std::optional<Connection> {
      SQLite::Statement q(m_db, std::string(k_conn_cols) +
                                    " WHERE user_id=? AND connector_slug=? AND label=? AND deleted_at IS NULL"
                                    " ORDER BY created_at DESC, id DESC LIMIT 1");
      q.bind(1, std::string(user_id));
      q.bind(2, std::string(slug));
      q.bind(3, std::string(label));
      if (!q.executeStep()) return std::nullopt;
      return read_connection(q);
    });
  }

  // Newest first; two connections made in one millisecond keep the order they were made in: the
  // keyset's tiebreak is the rowid (zero-padded, so that the cursor compares it as text), not the
  // random v4 id.
  Result<PageResult<Connection>> list_connections(const ConnectionFilter& f, const Page& page) override {
    static constexpr const char* k_seq = "printf('%020d', rowid)";
    auto ks = TRY(sqlite::Keyset::of(page, "created_at", k_seq));
    return run([&] {
      std::string sql = std::string(k_conn_cols)
                            .replace(std::string(k_conn_cols).find(" FROM connections"), 0, std::string(",") + k_seq) +
                        " WHERE user_id=? AND deleted_at IS NULL";
      if (f.connector) sql += " AND connector_slug=?";
      if (f.status) sql += " AND status=?";
      SQLite::Statement q(m_db, sql + ks.condition() + ks.order());
      int i = 1;
      q.bind(i++, f.user_id);
      if (f.connector) q.bind(i++, *f.connector);
      if (f.status) q.bind(i++, std::string(to_string(*f.status)));
      std::vector<std::string> seqs;  // each row's k_seq (column 15), for the next page's cursor
      auto read = [&](SQLite::Statement& row) {
        seqs.push_back(row.getColumn(15).getString());
        return read_connection(row);
      };
      return ks.page<Connection>(q, ks.bind_cursor(q, i), read, [&](const Connection& last) {
        return std::make_pair(last.created_at, seqs.at(page.limit - 1));  // the page's last row
      });
    });
  }

  Result<std::vector<Connection>> list_expiring_connections(int64_t before_ms) override {
    return run([&] {
      SQLite::Statement q(m_db, std::string(k_conn_cols) +
                                    " WHERE deleted_at IS NULL AND status='active' AND auth_type='oauth'"
                                    " AND expires_at IS NOT NULL AND expires_at < ? ORDER BY expires_at");
      q.bind(1, static_cast<int64_t>(before_ms));
      std::vector<Connection> out;
      while (q.executeStep()) out.push_back(read_connection(q));
      return out;
    });
  }

  Status update_connection(const Connection& c, const std::vector<SealedValue>* secrets) override {
    return run_void([&] {
      SQLite::Transaction tx(m_db);
      write_connection_row(c);
      if (secrets) replace_secrets("connections", c.id, *secrets);
      tx.commit();
    });
  }

  Status destroy_connection(const Connection& conn) override {
    Connection c = conn;  // destroyed means revoked and deleted, whatever the caller filled in
    c.status = ConnectionStatus::revoked;
    if (!c.deleted_at) c.deleted_at = c.updated_at;
    auto st = run_void([&] {
      SQLite::Transaction tx(m_db);
      write_connection_row(c);
      replace_secrets("connections", c.id, {});
      tx.commit();
    });
    if (!st) return st;
    return checkpoint();
  }

  Result<std::vector<SealedValue>> load_secrets(std::string_view table, std::string_view row_id) override {
    return run([&] {
      SQLite::Statement q(m_db, "SELECT field, sealed FROM secrets WHERE owner_table=? AND owner_id=? ORDER BY field");
      q.bind(1, std::string(table));
      q.bind(2, std::string(row_id));
      std::vector<SealedValue> out;
      while (q.executeStep()) {
        out.push_back({q.getColumn(0).getString(), sqlite::blob_string(q.getColumn(1))});
      }
      return out;
    });
  }

  Status put_secrets(std::string_view table, std::string_view row_id, const std::vector<SealedValue>& values) override {
    return run_void([&] {
      SQLite::Transaction tx(m_db);
      replace_secrets(table, row_id, values);
      tx.commit();
    });
  }

  Result<std::vector<OwnedSealedValue>> list_all_secrets() override {
    return run([&] {
      SQLite::Statement q(m_db, "SELECT owner_table, owner_id, field, sealed FROM secrets ORDER BY 1, 2, 3");
      std::vector<OwnedSealedValue> out;
      while (q.executeStep())
        out.push_back({q.getColumn(0).getString(),
                       q.getColumn(1).getString(),
                       {q.getColumn(2).getString(), sqlite::blob_string(q.getColumn(3))}});
      return out;
    });
  }

  Status update_meta(const std::vector<std::pair<std::string, std::optional<std::string>>>& changes) override {
    auto st = run_void([&] {
      SQLite::Transaction tx(m_db);
      SQLite::Statement put(
          m_db, "INSERT INTO meta(key,value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value");
      SQLite::Statement erase(m_db, "DELETE FROM meta WHERE key=?");
      for (const auto& [key, value] : changes) {
        auto& q = value ? put : erase;
        q.reset();
        q.bind(1, key);
        if (value) q.bind(2, *value);
        q.exec();
      }
      tx.commit();
    });
    if (!st) return st;
    return checkpoint();
  }

  Status delete_secrets(std::string_view table, std::string_view row_id) override {
    auto st = run_void([&] {
      SQLite::Transaction tx(m_db);
      replace_secrets(table, row_id, {});
      tx.commit();
    });
    if (!st) return st;
    return checkpoint();
  }

  // The OAuth handshake's state (store.hpp). Each put, take and find is one statement (a put and its purge
  // one transaction), under the store's mutex and SQLite's single writer.
  Status put_oauth_flow(const OAuthFlowRecord& f, int64_t now_ms) override {
    return run_void([&] {
      SQLite::Transaction tx(m_db);
      purge("oauth_flows", now_ms);
      SQLite::Statement q(m_db,
                          "INSERT INTO oauth_flows(state_hash,connection_id,user_id,connector_slug,redirect_uri,"
                          "sealed_verifier,expected_issuer,iss_required,browser_hash,expires_at) "
                          "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) ON CONFLICT(connection_id) DO UPDATE SET "
                          "state_hash=excluded.state_hash,user_id=excluded.user_id,"
                          "connector_slug=excluded.connector_slug,redirect_uri=excluded.redirect_uri,"
                          "sealed_verifier=excluded.sealed_verifier,expected_issuer=excluded.expected_issuer,"
                          "iss_required=excluded.iss_required,browser_hash=excluded.browser_hash,"
                          "expires_at=excluded.expires_at");
      q.bind(1, f.state_hash.data(), static_cast<int>(f.state_hash.size()));
      q.bind(2, f.connection_id);
      q.bind(3, f.user_id);
      q.bind(4, f.connector_slug);
      q.bind(5, f.redirect_uri);
      if (!f.sealed_verifier.empty()) q.bind(6, f.sealed_verifier.data(), static_cast<int>(f.sealed_verifier.size()));
      q.bind(7, f.expected_issuer);
      q.bind(8, f.iss_required ? 1 : 0);
      q.bind(9, f.browser_hash.data(), static_cast<int>(f.browser_hash.size()));
      q.bind(10, static_cast<int64_t>(f.expires_at));
      q.exec();
      tx.commit();
    });
  }

  Result<std::optional<OAuthFlowRecord>> find_oauth_flow(std::string_view state_hash) override {
    return one_flow("SELECT " + std::string(k_flow_cols) + " FROM oauth_flows WHERE state_hash=?1", state_hash);
  }

  Result<std::optional<OAuthFlowRecord>> take_oauth_flow(std::string_view state_hash) override {
    return one_flow("DELETE FROM oauth_flows WHERE state_hash=?1 RETURNING " + std::string(k_flow_cols), state_hash);
  }

  Status put_oauth_ticket(const OAuthTicketRecord& t, int64_t now_ms) override {
    return run_void([&] {
      SQLite::Transaction tx(m_db);
      purge("oauth_tickets", now_ms);
      SQLite::Statement q(m_db,
                          "INSERT INTO oauth_tickets(hash,connection_id,user_id,scopes,expires_at) "
                          "VALUES(?1,?2,?3,?4,?5) ON CONFLICT(connection_id) DO UPDATE SET hash=excluded.hash,"
                          "user_id=excluded.user_id,scopes=excluded.scopes,expires_at=excluded.expires_at");
      q.bind(1, t.hash.data(), static_cast<int>(t.hash.size()));
      q.bind(2, t.connection_id);
      q.bind(3, t.user_id);
      q.bind(4, static_cast<int64_t>(t.scopes));
      q.bind(5, static_cast<int64_t>(t.expires_at));
      q.exec();
      tx.commit();
    });
  }

  Result<std::optional<OAuthTicketRecord>> take_oauth_ticket(std::string_view hash,
                                                             std::string_view connection_id) override {
    return run([&]() -> std::optional<OAuthTicketRecord> {
      SQLite::Statement q(m_db,
                          "DELETE FROM oauth_tickets WHERE hash=?1 AND connection_id=?2 "
                          "RETURNING hash,connection_id,user_id,scopes,expires_at");
      q.bind(1, hash.data(), static_cast<int>(hash.size()));
      q.bind(2, std::string(connection_id));
      if (!q.executeStep()) return std::nullopt;
      OAuthTicketRecord t{sqlite::blob_string(q.getColumn(0)), q.getColumn(1).getString(), q.getColumn(2).getString(),
                          static_cast<unsigned>(q.getColumn(3).getInt64()), q.getColumn(4).getInt64()};
      while (q.executeStep()) {
      }
      return t;
    });
  }

  Status put_oauth_result(const OAuthResultRecord& r, int64_t now_ms) override {
    return run_void([&] {
      SQLite::Transaction tx(m_db);
      purge("oauth_results", now_ms);
      SQLite::Statement q(m_db,
                          "INSERT INTO oauth_results(id_hash,ok,result,connection_id,message,expires_at) "
                          "VALUES(?1,?2,?3,?4,?5,?6)");
      q.bind(1, r.id_hash.data(), static_cast<int>(r.id_hash.size()));
      q.bind(2, r.ok ? 1 : 0);
      q.bind(3, r.result);
      q.bind(4, r.connection_id);
      q.bind(5, r.message);
      q.bind(6, static_cast<int64_t>(r.expires_at));
      q.exec();
      tx.commit();
    });
  }

  Result<std::optional<OAuthResultRecord>> find_oauth_result(std::string_view id_hash, int64_t now_ms) override {
    return run([&]() -> std::optional<OAuthResultRecord> {
      SQLite::Statement q(m_db,
                          "SELECT id_hash,ok,result,connection_id,message,expires_at FROM oauth_results "
                          "WHERE id_hash=?1 AND expires_at>?2");
      q.bind(1, id_hash.data(), static_cast<int>(id_hash.size()));
      q.bind(2, static_cast<int64_t>(now_ms));
      if (!q.executeStep()) return std::nullopt;
      return OAuthResultRecord{sqlite::blob_string(q.getColumn(0)), q.getColumn(1).getInt() != 0,
                               q.getColumn(2).getString(),          q.getColumn(3).getString(),
                               q.getColumn(4).getString(),          q.getColumn(5).getInt64()};
    });
  }

  Result<std::size_t> count_oauth_results(int64_t now_ms) override {
    return run([&] {
      SQLite::Statement q(m_db, "SELECT COUNT(*) FROM oauth_results WHERE expires_at>?1");
      q.bind(1, static_cast<int64_t>(now_ms));
      q.executeStep();
      return static_cast<std::size_t>(q.getColumn(0).getInt64());
    });
  }

 private:
  static constexpr const char* k_flow_cols =
      "state_hash,connection_id,user_id,connector_slug,redirect_uri,sealed_verifier,expected_issuer,iss_required,"
      "browser_hash,expires_at";

  // Inside the caller's transaction, under m_mutex.
  void purge(const char* table, int64_t now_ms) {
    SQLite::Statement q(m_db, std::string("DELETE FROM ") + table + " WHERE expires_at<=?1");
    q.bind(1, static_cast<int64_t>(now_ms));
    q.exec();
  }

  Result<std::optional<OAuthFlowRecord>> one_flow(const std::string& sql, std::string_view state_hash) {
    return run([&]() -> std::optional<OAuthFlowRecord> {
      SQLite::Statement q(m_db, sql);
      q.bind(1, state_hash.data(), static_cast<int>(state_hash.size()));
      if (!q.executeStep()) return std::nullopt;
      OAuthFlowRecord f;
      f.state_hash = sqlite::blob_string(q.getColumn(0));
      f.connection_id = q.getColumn(1).getString();
      f.user_id = q.getColumn(2).getString();
      f.connector_slug = q.getColumn(3).getString();
      f.redirect_uri = q.getColumn(4).getString();
      if (!q.getColumn(5).isNull()) f.sealed_verifier = sqlite::blob_string(q.getColumn(5));
      f.expected_issuer = q.getColumn(6).getString();
      f.iss_required = q.getColumn(7).getInt() != 0;
      f.browser_hash = sqlite::blob_string(q.getColumn(8));
      f.expires_at = q.getColumn(9).getInt64();
      while (q.executeStep()) {  // a DELETE … RETURNING finishes its statement
      }
      return f;
    });
  }

  static constexpr const char* k_key_cols =
      "SELECT id,user_id,name,prefix,hash,scopes,created_at,last_used_at,revoked_at FROM api_keys";
  static constexpr const char* k_conn_cols =
      "SELECT id,user_id,connector_slug,label,auth_type,status,account_label,scopes,expires_at,last_refreshed_at,"
      "error_code,error_message,created_at,updated_at,deleted_at FROM connections";

  template <class F>
  auto run(F&& f) -> Result<decltype(f())> {
    return sqlite::locked(m_mutex, "store", std::forward<F>(f));
  }
  template <class F>
  Status run_void(F&& f) {
    return sqlite::locked(m_mutex, "store", std::forward<F>(f));
  }

  Status checkpoint() {
    return run_void([&] { m_db.exec("PRAGMA wal_checkpoint(TRUNCATE)"); });
  }

  void write_connection_row(const Connection& c) {
    SQLite::Statement q(m_db,
                        "UPDATE connections SET id=?1,user_id=?2,connector_slug=?3,label=?4,auth_type=?5,status=?6,"
                        "account_label=?7,scopes=?8,expires_at=?9,last_refreshed_at=?10,error_code=?11,"
                        "error_message=?12,created_at=?13,updated_at=?14,deleted_at=?15 WHERE id=?1");
    bind_connection(q, c);
    q.exec();
  }

  void replace_secrets(std::string_view table, std::string_view row_id, const std::vector<SealedValue>& values) {
    SQLite::Statement del(m_db, "DELETE FROM secrets WHERE owner_table=? AND owner_id=?");
    del.bind(1, std::string(table));
    del.bind(2, std::string(row_id));
    del.exec();
    for (const auto& v : values) {
      SQLite::Statement ins(m_db, "INSERT INTO secrets(owner_table,owner_id,field,sealed) VALUES(?,?,?,?)");
      ins.bind(1, std::string(table));
      ins.bind(2, std::string(row_id));
      ins.bind(3, v.field);
      ins.bind(4, v.blob.data(), static_cast<int>(v.blob.size()));
      ins.exec();
    }
  }

  static ApiKeyRecord read_key(SQLite::Statement& q) {
    ApiKeyRecord k;
    k.id = q.getColumn(0).getString();
    k.user_id = q.getColumn(1).getString();
    k.name = q.getColumn(2).getString();
    k.prefix = q.getColumn(3).getString();
    k.hash = sqlite::blob_string(q.getColumn(4));
    k.scopes = static_cast<unsigned>(q.getColumn(5).getInt64());
    k.created_at = q.getColumn(6).getInt64();
    k.last_used_at = opt_int(q.getColumn(7));
    k.revoked_at = opt_int(q.getColumn(8));
    return k;
  }

  static void bind_connection(SQLite::Statement& q, const Connection& c) {
    q.bind(1, c.id);
    q.bind(2, c.user_id);
    q.bind(3, c.connector_slug);
    q.bind(4, c.label);
    q.bind(5, std::string(to_string(c.auth_type)));
    q.bind(6, std::string(to_string(c.status)));
    q.bind(7, c.account_label);
    q.bind(8, json(c.scopes).dump());
    bind_opt(q, 9, c.expires_at);
    bind_opt(q, 10, c.last_refreshed_at);
    if (c.error) {
      q.bind(11, c.error->code);
      q.bind(12, c.error->message);
    } else {
      q.bind(11);
      q.bind(12);
    }
    q.bind(13, static_cast<int64_t>(c.created_at));
    q.bind(14, static_cast<int64_t>(c.updated_at));
    bind_opt(q, 15, c.deleted_at);
  }

  static Connection read_connection(SQLite::Statement& q) {
    Connection c;
    c.id = q.getColumn(0).getString();
    c.user_id = q.getColumn(1).getString();
    c.connector_slug = q.getColumn(2).getString();
    c.label = q.getColumn(3).getString();
    c.auth_type = parse_auth_type(q.getColumn(4).getString()).value_or(AuthType::none);
    c.status = parse_connection_status(q.getColumn(5).getString()).value_or(ConnectionStatus::error);
    c.account_label = q.getColumn(6).getString();
    const auto scopes = json::parse(q.getColumn(7).getString(), nullptr, false);
    if (scopes.is_array())
      for (const auto& s : scopes)
        if (s.is_string()) c.scopes.push_back(s.get<std::string>());
    c.expires_at = opt_int(q.getColumn(8));
    c.last_refreshed_at = opt_int(q.getColumn(9));
    if (!q.getColumn(10).isNull()) c.error = ConnectionError{q.getColumn(10).getString(), q.getColumn(11).getString()};
    c.created_at = q.getColumn(12).getInt64();
    c.updated_at = q.getColumn(13).getInt64();
    c.deleted_at = opt_int(q.getColumn(14));
    return c;
  }

  void migrate() {
    int version = m_db.execAndGet("PRAGMA user_version").getInt();
    const int target = static_cast<int>(std::size(k_migrations));
    // Free pages go back to the file system only with auto_vacuum=INCREMENTAL (retention runs
    // incremental_vacuum after its sweeps). A new store has it from the start (the constructor); a store
    // made before it gets it once, by one VACUUM (a copy of the whole file: slow on a big store, logged).
    for (; version < target; ++version) {
      SQLite::Transaction tx(m_db);
      m_db.exec(k_migrations[version]);
      if (version + 1 == 12 && m_db.execAndGet("SELECT NOT EXISTS (SELECT 1 FROM webhook_dedup_v11)").getInt())
        m_db.exec("DROP TABLE webhook_dedup_v11");  // no keys to convert (a new store)
      m_db.exec("PRAGMA user_version=" + std::to_string(version + 1));
      tx.commit();
    }
    if (m_db.execAndGet("PRAGMA auto_vacuum").getInt() != k_auto_vacuum_incremental) {
      spdlog::info("store: one-time VACUUM to turn on incremental vacuum (the whole file is rewritten once)");
      m_db.exec("PRAGMA auto_vacuum=INCREMENTAL");
      m_db.exec("VACUUM");
    }
  }

  static constexpr int k_auto_vacuum_incremental = 2;

  std::mutex m_mutex;
  SQLite::Database m_db;
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const SqliteOptions& options) {
  // Create the file 0600 ourselves; SQLite gives -wal and -shm the same mode.
  auto db_name = TRY(sqlite::checked_db_name(options.path, true));
  try {
    return std::unique_ptr<Store>(new SqliteStore(options, db_name));
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, "cannot open store " + options.path.string() + ": " + e.what());
  }
}

std::string encode_cursor(int64_t created_at, std::string_view id) {
  return encoding::base64url_encode(std::to_string(created_at) + ":" + std::string(id));
}

std::optional<std::pair<int64_t, std::string>> decode_cursor(std::string_view cursor) {
  auto raw = encoding::base64url_decode(cursor);
  if (!raw) return std::nullopt;
  const auto colon = raw->find(':');
  if (colon == std::string::npos) return std::nullopt;
  int64_t ts = 0;
  auto [p, ec] = std::from_chars(raw->data(), raw->data() + colon, ts);
  if (ec != std::errc{} || p != raw->data() + colon) return std::nullopt;
  return std::make_pair(ts, raw->substr(colon + 1));
}

}  // namespace alumia

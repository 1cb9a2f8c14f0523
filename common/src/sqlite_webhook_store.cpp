// SQLite implementation of WebhookStore: one writer thread doing group commits, one reader
// connection, one checkpointer. All are connections of their own to the store.db that SqliteStore
// migrated.
//
// Why a writer thread: with synchronous=FULL every commit is an fsync of the WAL, so a commit per
// delivery caps the receiver at the disk's fsync rate (~3.7k commits/s here), while the same
// rows in batches of 32 go through at ~33k rows/s. Requests queue while a commit is in flight and
// the next transaction takes all of them; each request runs in its own SAVEPOINT so one bad row
// does not fail its neighbours, and each waiter is woken only after COMMIT returned.
//
// What keeps the writer cheap: statements are prepared once (StatementCache); endpoint counters are
// summed in memory and written once per batch, not once per delivery; WAL checkpoints run on their
// own thread (the writer's wal hook only signals it), so no delivery waits for pages to be copied
// into the database file; and the relay worker's claims go through indexes, never a queue scan.
#include "sqlite_util.hpp"

#include <alumia/store.hpp>
#include <alumia/webhook_store.hpp>

#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>

namespace alumia {
namespace {

using sqlite::bind_opt;
using sqlite::opt_int;
using sqlite::opt_str;
using sqlite::StatementCache;
Error db_error(const std::exception& e) { return sqlite::to_error(e, "webhook store"); }

std::string blob_string(const SQLite::Column& c) {
  return std::string(static_cast<const char*>(c.getBlob()), static_cast<std::size_t>(c.getBytes()));
}

// The writer's wal hook replaces SQLite's auto-checkpoint (1000 pages, run by the committing
// thread). Every k_checkpoint_pages new WAL pages the checkpoint thread copies them into the
// database file with a PASSIVE checkpoint, which never blocks the writer. Under a steady stream of
// commits such a checkpoint never catches up with the end of the WAL, so the WAL cannot start over;
// when it reaches k_restart_pages the writer itself runs a RESTART checkpoint between two batches.
// A RESTART waits for the rest of the WAL to be copied, so it is made rare: every 64 MiB of WAL, a
// stall of a few milliseconds once per thousands of commits. After it the writer overwrites the
// WAL from its start (no file growth, no block allocation per commit); journal_size_limit trims
// the file after a burst.
constexpr int k_checkpoint_pages = 1024;  // 4 MiB of 4 KiB pages: little left for the RESTART to copy
constexpr int k_restart_pages = 16 * k_checkpoint_pages;

constexpr const char* k_endpoint_cols =
    "SELECT id,user_id,provider,connection_id,label,status,relay_to,config,max_body_bytes,previous_secret_expires_at,"
    "received,duplicates,rejected,verification_failures,last_delivery_at,created_at,updated_at,deleted_at "
    "FROM webhook_endpoints";
constexpr const char* k_job_cols =
    "SELECT id,event_id,endpoint_id,user_id,state,attempts,next_attempt_at,last_status,last_error,created_at,"
    "updated_at,finished_at FROM webhook_jobs";
// The newest job of an event gives its jobState.
constexpr const char* k_event_cols =
    "SELECT e.id,e.endpoint_id,e.user_id,e.provider,e.event_key,e.event_type,e.received_at,"
    "COALESCE((SELECT j.state FROM webhook_jobs j WHERE j.event_id=e.id ORDER BY j.created_at DESC, j.rowid DESC "
    "LIMIT 1),'') AS job_state";

WebhookEndpointRecord read_endpoint(SQLite::Statement& q) {
  WebhookEndpointRecord e;
  e.id = q.getColumn(0).getString();
  e.user_id = q.getColumn(1).getString();
  e.provider = q.getColumn(2).getString();
  e.connection_id = opt_str(q.getColumn(3));
  e.label = q.getColumn(4).getString();
  e.status = q.getColumn(5).getString();
  e.relay_to = opt_str(q.getColumn(6));
  e.config = q.getColumn(7).getString();
  e.max_body_bytes = q.getColumn(8).getInt64();
  e.previous_secret_expires_at = opt_int(q.getColumn(9));
  e.received = q.getColumn(10).getInt64();
  e.duplicates = q.getColumn(11).getInt64();
  e.rejected = q.getColumn(12).getInt64();
  e.verification_failures = q.getColumn(13).getInt64();
  e.last_delivery_at = opt_int(q.getColumn(14));
  e.created_at = q.getColumn(15).getInt64();
  e.updated_at = q.getColumn(16).getInt64();
  e.deleted_at = opt_int(q.getColumn(17));
  return e;
}

WebhookJob read_job(SQLite::Statement& q) {
  WebhookJob j;
  j.id = q.getColumn(0).getString();
  j.event_id = q.getColumn(1).getString();
  j.endpoint_id = q.getColumn(2).getString();
  j.user_id = q.getColumn(3).getString();
  j.state = q.getColumn(4).getString();
  j.attempts = q.getColumn(5).getInt64();
  j.next_attempt_at = q.getColumn(6).getInt64();
  j.last_status = opt_int(q.getColumn(7));
  j.last_error = opt_str(q.getColumn(8));
  j.created_at = q.getColumn(9).getInt64();
  j.updated_at = q.getColumn(10).getInt64();
  j.finished_at = opt_int(q.getColumn(11));
  return j;
}

// The columns of k_event_cols, then optionally headers and body.
WebhookEvent read_event(SQLite::Statement& q) {
  WebhookEvent e;
  e.id = q.getColumn(0).getString();
  e.endpoint_id = q.getColumn(1).getString();
  e.user_id = q.getColumn(2).getString();
  e.provider = q.getColumn(3).getString();
  e.event_key = q.getColumn(4).getString();
  e.event_type = q.getColumn(5).getString();
  e.received_at = q.getColumn(6).getInt64();
  e.job_state = q.getColumn(7).getString();
  return e;
}

// Keyset pagination "ORDER BY <t> DESC, id DESC" shared by the list queries: the caller builds the
// filter, keyset() adds the cursor condition, page() binds the limit and cuts the extra row.
class Keyset {
 public:
  static Result<Keyset> of(const Page& page, std::string time_col, std::string id_col) {
    Keyset k;
    k.m_limit = page.limit;
    k.m_time = std::move(time_col);
    k.m_id = std::move(id_col);
    if (page.cursor) {
      k.m_after = decode_cursor(*page.cursor);
      if (!k.m_after) return fail(ErrorCode::bad_request, "cursor is not valid; pass the nextCursor of a previous page");
    }
    return k;
  }
  std::string condition() const {
    return m_after ? " AND (" + m_time + " < ? OR (" + m_time + " = ? AND " + m_id + " < ?))" : "";
  }
  std::string order() const { return " ORDER BY " + m_time + " DESC, " + m_id + " DESC LIMIT ?"; }
  // Binds the cursor values from index i on (after the filter's own parameters).
  int bind_cursor(SQLite::Statement& q, int i) const {
    if (m_after) {
      q.bind(i++, static_cast<int64_t>(m_after->first));
      q.bind(i++, static_cast<int64_t>(m_after->first));
      q.bind(i++, m_after->second);
    }
    return i;
  }
  template <class T, class Read, class Key>
  PageResult<T> page(SQLite::Statement& q, int limit_index, Read read, Key key) const {
    q.bind(limit_index, static_cast<int64_t>(m_limit + 1));
    PageResult<T> out;
    while (q.executeStep()) out.items.push_back(read(q));
    if (out.items.size() > m_limit) {
      out.items.resize(m_limit);
      const auto [t, id] = key(out.items.back());
      out.next_cursor = encode_cursor(t, id);
    }
    return out;
  }

 private:
  std::size_t m_limit = 0;
  std::string m_time, m_id;
  std::optional<std::pair<int64_t, std::string>> m_after;
};

void open_pragmas(SQLite::Database& db, bool full) {
  db.setBusyTimeout(5000);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec(full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  db.exec("PRAGMA secure_delete=ON");
  // Statement journals (one per SAVEPOINT'ed request) in memory, not a temp file per batch.
  db.exec("PRAGMA temp_store=MEMORY");
  db.exec("PRAGMA journal_size_limit=67108864");
}

// Counter changes of one batch, per endpoint, written in one UPDATE before COMMIT.
struct CounterDelta {
  int64_t received = 0;
  int64_t duplicates = 0;
  int64_t rejected = 0;
  int64_t verification_failures = 0;
  int64_t last_delivery_at = 0;
};

class SqliteWebhookStore final : public WebhookStore {
 public:
  explicit SqliteWebhookStore(const WebhookStoreOptions& o)
      : m_max_batch(o.max_batch == 0 ? 1 : o.max_batch),
        m_writer_db(o.path.string(), SQLite::OPEN_READWRITE),
        m_reader_db(o.path.string(), SQLite::OPEN_READWRITE),
        m_checkpoint_db(o.path.string(), SQLite::OPEN_READWRITE),
        m_w(m_writer_db),
        m_r(m_reader_db) {
    open_pragmas(m_writer_db, o.synchronous_full);
    open_pragmas(m_reader_db, o.synchronous_full);
    open_pragmas(m_checkpoint_db, o.synchronous_full);
    // Fail early (not at the first delivery) when the migrations have not run.
    m_reader_db.exec("SELECT 1 FROM webhook_jobs LIMIT 0");
    // Replaces the writer's auto-checkpoint: the checkpoint runs on m_checkpoint_thread instead.
    sqlite3_wal_hook(m_writer_db.getHandle(), &SqliteWebhookStore::on_wal_commit, this);
    m_checkpoint_thread = std::thread([this] { checkpoint_loop(); });
    m_thread = std::thread([this] { writer_loop(); });
  }

  ~SqliteWebhookStore() override {
    {
      std::lock_guard lock(m_queue_mutex);
      m_stopping = true;
    }
    m_queue_cv.notify_all();
    if (m_thread.joinable()) m_thread.join();
    {
      std::lock_guard lock(m_checkpoint_mutex);
      m_checkpoint_stopping = true;
    }
    m_checkpoint_cv.notify_all();
    if (m_checkpoint_thread.joinable()) m_checkpoint_thread.join();
  }

  // ---- endpoints ----

  Status insert_endpoint(const WebhookEndpointRecord& e) override {
    return write([this, &e] {
      auto q = m_w.use(
          "INSERT INTO webhook_endpoints(id,user_id,provider,connection_id,label,status,relay_to,config,"
          "max_body_bytes,previous_secret_expires_at,created_at,updated_at,deleted_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
      q->bind(1, e.id);
      q->bind(2, e.user_id);
      q->bind(3, e.provider);
      bind_opt(*q, 4, e.connection_id);
      q->bind(5, e.label);
      q->bind(6, e.status);
      bind_opt(*q, 7, e.relay_to);
      q->bind(8, e.config);
      q->bind(9, static_cast<int64_t>(e.max_body_bytes));
      bind_opt(*q, 10, e.previous_secret_expires_at);
      q->bind(11, static_cast<int64_t>(e.created_at));
      q->bind(12, static_cast<int64_t>(e.updated_at));
      bind_opt(*q, 13, e.deleted_at);
      q->exec();
    });
  }

  Status update_endpoint(const WebhookEndpointRecord& e) override {
    return write([this, &e] {
      auto q = m_w.use(
          "UPDATE webhook_endpoints SET label=?,status=?,relay_to=?,config=?,max_body_bytes=?,"
          "previous_secret_expires_at=?,updated_at=?,deleted_at=? WHERE id=?");
      q->bind(1, e.label);
      q->bind(2, e.status);
      bind_opt(*q, 3, e.relay_to);
      q->bind(4, e.config);
      q->bind(5, static_cast<int64_t>(e.max_body_bytes));
      bind_opt(*q, 6, e.previous_secret_expires_at);
      q->bind(7, static_cast<int64_t>(e.updated_at));
      bind_opt(*q, 8, e.deleted_at);
      q->bind(9, e.id);
      if (q->exec() != 1) throw std::runtime_error("endpoint " + e.id + " not found");
    });
  }

  Result<std::optional<WebhookEndpointRecord>> find_endpoint(const std::string& id) override {
    return read([&]() -> std::optional<WebhookEndpointRecord> {
      auto q = m_r.use(std::string(k_endpoint_cols) + " WHERE id=?");
      q->bind(1, id);
      if (!q->executeStep()) return std::nullopt;
      return read_endpoint(*q);
    });
  }

  Result<PageResult<WebhookEndpointRecord>> list_endpoints(const std::string& user_id, const Page& page) override {
    auto ks = Keyset::of(page, "created_at", "id");
    if (!ks) return std::unexpected(ks.error());
    return read([&] {
      auto q = m_r.use(std::string(k_endpoint_cols) + " WHERE user_id=? AND deleted_at IS NULL" + ks->condition() +
                       ks->order());
      q->bind(1, user_id);
      return ks->page<WebhookEndpointRecord>(*q, ks->bind_cursor(*q, 2), read_endpoint,
                                             [](const auto& e) { return std::make_pair(e.created_at, e.id); });
    });
  }

  // ---- ingest ----

  Result<IngestOutcome> ingest(const IngestRequest& r) override {
    IngestOutcome outcome;
    auto st = write([this, &r, &outcome] { ingest_one(r, outcome); });
    if (!st) {
      // Never a 5xx-looking success: the provider must retry.
      Error e = st.error();
      if (e.code == ErrorCode::internal) spdlog::error("ingest failed: {}", e.message);
      return fail(ErrorCode::service_unavailable, "the event could not be stored; retry");
    }
    return outcome;
  }

  void count(const std::string& endpoint_id, EndpointCounter counter) override {
    enqueue([this, endpoint_id, counter] {
      auto& d = m_deltas[endpoint_id];
      (counter == EndpointCounter::rejected ? d.rejected : d.verification_failures) += 1;
    }, nullptr);
  }

  // ---- events ----

  Result<PageResult<WebhookEvent>> list_events(const EventFilter& f, const Page& page) override {
    auto ks = Keyset::of(page, "received_at", "id");
    if (!ks) return std::unexpected(ks.error());
    return read([&] {
      // Flattened by SQLite into one query; the outer level only names job_state for the filter.
      std::string sql = std::string(k_event_cols) + " FROM webhook_events e WHERE e.user_id=?";
      if (f.endpoint_id) sql += " AND e.endpoint_id=?";
      if (f.since) sql += " AND e.received_at >= ?";
      sql = "SELECT * FROM (" + sql + ") WHERE 1=1";
      if (f.job_state) sql += " AND job_state=?";
      auto q = m_r.use(sql + ks->condition() + ks->order());
      int i = 1;
      q->bind(i++, f.user_id);
      if (f.endpoint_id) q->bind(i++, *f.endpoint_id);
      if (f.since) q->bind(i++, static_cast<int64_t>(*f.since));
      if (f.job_state) q->bind(i++, *f.job_state);
      return ks->page<WebhookEvent>(*q, ks->bind_cursor(*q, i), read_event,
                                    [](const auto& e) { return std::make_pair(e.received_at, e.id); });
    });
  }

  Result<std::optional<WebhookEvent>> find_event(const std::string& id, bool with_body) override {
    return read([&]() -> std::optional<WebhookEvent> {
      auto q = m_r.use(std::string(k_event_cols) + ",e.headers," + (with_body ? "e.body" : "x''") +
                       " FROM webhook_events e WHERE e.id=?");
      q->bind(1, id);
      if (!q->executeStep()) return std::nullopt;
      WebhookEvent e = read_event(*q);
      e.headers = q->getColumn(8).getString();
      e.body = blob_string(q->getColumn(9));
      return e;
    });
  }

  // ---- jobs ----

  Status insert_job(const WebhookJob& j) override {
    return write([this, &j] {
      auto q = m_w.use(
          "INSERT INTO webhook_jobs(id,event_id,endpoint_id,user_id,state,attempts,next_attempt_at,created_at,updated_at) "
          "VALUES(?,?,?,?,?,?,?,?,?)");
      q->bind(1, j.id);
      q->bind(2, j.event_id);
      q->bind(3, j.endpoint_id);
      q->bind(4, j.user_id);
      q->bind(5, j.state);
      q->bind(6, static_cast<int64_t>(j.attempts));
      q->bind(7, static_cast<int64_t>(j.next_attempt_at));
      q->bind(8, static_cast<int64_t>(j.created_at));
      q->bind(9, static_cast<int64_t>(j.updated_at));
      q->exec();
    });
  }

  Result<PageResult<WebhookJob>> list_jobs(const JobFilter& f, const Page& page) override {
    auto ks = Keyset::of(page, "created_at", "id");
    if (!ks) return std::unexpected(ks.error());
    return read([&] {
      std::string sql = std::string(k_job_cols) + " WHERE user_id=?";
      if (f.state) sql += " AND state=?";
      if (f.event_id) sql += " AND event_id=?";
      if (f.since) sql += " AND created_at >= ?";
      auto q = m_r.use(sql + ks->condition() + ks->order());
      int i = 1;
      q->bind(i++, f.user_id);
      if (f.state) q->bind(i++, *f.state);
      if (f.event_id) q->bind(i++, *f.event_id);
      if (f.since) q->bind(i++, static_cast<int64_t>(*f.since));
      return ks->page<WebhookJob>(*q, ks->bind_cursor(*q, i), read_job,
                                  [](const auto& j) { return std::make_pair(j.created_at, j.id); });
    });
  }

  Result<std::optional<WebhookJob>> find_job(const std::string& id) override {
    return read([&]() -> std::optional<WebhookJob> {
      auto q = m_r.use(std::string(k_job_cols) + " WHERE id=?");
      q->bind(1, id);
      if (!q->executeStep()) return std::nullopt;
      return read_job(*q);
    });
  }

  Result<bool> retry_job(const std::string& id, int64_t now) override {
    auto n = write_count([&] {
      auto q = m_w.use(
          "UPDATE webhook_jobs SET state='queued',attempts=0,next_attempt_at=?,updated_at=?,finished_at=NULL "
          "WHERE id=? AND state IN ('queued','failed','dead')");
      q->bind(1, static_cast<int64_t>(now));
      q->bind(2, static_cast<int64_t>(now));
      q->bind(3, id);
      return q->exec();
    });
    if (!n) return std::unexpected(n.error());
    return *n > 0;
  }

  Result<int64_t> retry_jobs(const std::string& user_id, const std::string& state, std::optional<int64_t> since,
                             int64_t now) override {
    return write_count([&] {
      auto q = m_w.use(std::string("UPDATE webhook_jobs SET state='queued',attempts=0,next_attempt_at=?,updated_at=?,"
                                   "finished_at=NULL WHERE user_id=? AND state=?") +
                       (since ? " AND created_at >= ?" : ""));
      q->bind(1, static_cast<int64_t>(now));
      q->bind(2, static_cast<int64_t>(now));
      q->bind(3, user_id);
      q->bind(4, state);
      if (since) q->bind(5, static_cast<int64_t>(*since));
      return q->exec();
    });
  }

  // ---- relay worker ----

  Result<int64_t> requeue_running(int64_t now) override {
    return write_count([&] {
      auto q = m_w.use("UPDATE webhook_jobs SET state='queued',next_attempt_at=?,updated_at=? WHERE state='running'");
      q->bind(1, static_cast<int64_t>(now));
      q->bind(2, static_cast<int64_t>(now));
      return q->exec();
    });
  }

  Result<std::vector<WebhookJob>> claim_due_jobs(int64_t now, std::size_t limit, bool have_default) override {
    std::vector<WebhookJob> out;
    auto st = write([&] {
      out.clear();
      // Each (scope, state) pair is one index range read in next_attempt_at order, so a claim costs
      // O(limit · log n) however many jobs wait — jobs of endpoints without a target included.
      for (const auto& scope : claim_scopes(m_w, have_default))
        for (const char* state : {"queued", "failed"}) {
          auto q = m_w.use(std::string(k_job_cols) + " WHERE " + (scope ? "endpoint_id=? AND " : "") +
                           "state=? AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?");
          int i = 1;
          if (scope) q->bind(i++, *scope);
          q->bind(i++, state);
          q->bind(i++, static_cast<int64_t>(now));
          q->bind(i++, static_cast<int64_t>(limit));
          while (q->executeStep()) out.push_back(read_job(*q));
        }
      std::sort(out.begin(), out.end(), [](const WebhookJob& a, const WebhookJob& b) {
        return std::tie(a.next_attempt_at, a.created_at) < std::tie(b.next_attempt_at, b.created_at);
      });
      if (out.size() > limit) out.resize(limit);
      for (auto& j : out) {
        auto u = m_w.use("UPDATE webhook_jobs SET state='running',updated_at=? WHERE id=?");
        u->bind(1, static_cast<int64_t>(now));
        u->bind(2, j.id);
        u->exec();
        j.state = "running";
        j.updated_at = now;
      }
    });
    if (!st) return std::unexpected(st.error());
    return out;
  }

  Result<std::optional<int64_t>> next_due_at(bool have_default) override {
    return read([&] {
      std::optional<int64_t> earliest;
      for (const auto& scope : claim_scopes(m_r, have_default))
        for (const char* state : {"queued", "failed"}) {
          auto q = m_r.use(std::string("SELECT MIN(next_attempt_at) FROM webhook_jobs WHERE ") +
                           (scope ? "endpoint_id=? AND " : "") + "state=?");
          int i = 1;
          if (scope) q->bind(i++, *scope);
          q->bind(i, state);
          if (q->executeStep())
            if (auto v = opt_int(q->getColumn(0)); v && (!earliest || *v < *earliest)) earliest = v;
        }
      return earliest;
    });
  }

  Status finish_job(const WebhookJob& j) override {
    return write([this, &j] { write_outcome(j); });
  }

  void finish_job_later(const WebhookJob& j) override {
    enqueue([this, j] { write_outcome(j); }, nullptr);
  }

  Status cancel_endpoint_jobs(const std::string& endpoint_id, int64_t now) override {
    return write([&] {
      auto q = m_w.use(
          "UPDATE webhook_jobs SET state='dead',last_error='endpoint deleted',updated_at=?,finished_at=? "
          "WHERE endpoint_id=? AND state IN ('queued','failed')");
      q->bind(1, static_cast<int64_t>(now));
      q->bind(2, static_cast<int64_t>(now));
      q->bind(3, endpoint_id);
      q->exec();
    });
  }

  Result<int64_t> prune_dedup(int64_t cutoff) override {
    return write_count([&] {
      auto q = m_w.use("DELETE FROM webhook_dedup WHERE received_at < ?");
      q->bind(1, static_cast<int64_t>(cutoff));
      return q->exec();
    });
  }

 private:
  using Op = std::function<void()>;  // runs on the writer thread, inside the batch's transaction
  struct Pending {
    Op op;
    std::shared_ptr<std::promise<Status>> done;  // null: nobody waits (counters)
  };

  // Endpoints whose jobs the relay worker may claim: all of them (nullopt) when a default target
  // exists, else each endpoint with its own target. The endpoints table is small.
  static std::vector<std::optional<std::string>> claim_scopes(StatementCache& c, bool have_default) {
    std::vector<std::optional<std::string>> scopes;
    if (have_default) {
      scopes.emplace_back(std::nullopt);
      return scopes;
    }
    auto q = c.use("SELECT id FROM webhook_endpoints WHERE relay_to IS NOT NULL AND deleted_at IS NULL");
    while (q->executeStep()) scopes.emplace_back(q->getColumn(0).getString());
    return scopes;
  }

  // Writer thread: the outcome of one delivery attempt.
  void write_outcome(const WebhookJob& j) {
    auto q = m_w.use(
        "UPDATE webhook_jobs SET state=?,attempts=?,next_attempt_at=?,last_status=?,last_error=?,updated_at=?,"
        "finished_at=? WHERE id=? AND state='running'");
    q->bind(1, j.state);
    q->bind(2, static_cast<int64_t>(j.attempts));
    q->bind(3, static_cast<int64_t>(j.next_attempt_at));
    bind_opt(*q, 4, j.last_status);
    bind_opt(*q, 5, j.last_error);
    q->bind(6, static_cast<int64_t>(j.updated_at));
    bind_opt(*q, 7, j.finished_at);
    q->bind(8, j.id);
    q->exec();
  }

  // Writer thread: dedup keys + event + first job of one delivery, or the duplicate's original.
  void ingest_one(const IngestRequest& r, IngestOutcome& outcome) {
    auto known = [&](const std::string& key) -> std::optional<std::string> {
      auto q = m_w.use("SELECT event_id FROM webhook_dedup WHERE endpoint_id=? AND event_key=?");
      q->bind(1, r.endpoint_id);
      q->bind(2, key);
      if (!q->executeStep()) return std::nullopt;
      return q->getColumn(0).getString();
    };
    std::optional<std::string> original;
    if (!r.item_keys.empty()) {
      // Batched delivery: a repeat only when every item is already known.
      for (const auto& k : r.item_keys) {
        auto hit = known(k);
        if (!hit) {
          original.reset();
          break;
        }
        if (!original) original = std::move(hit);
      }
    } else {
      original = known(r.event_key);
      for (std::size_t i = 0; !original && i < r.alias_keys.size(); ++i) original = known(r.alias_keys[i]);
    }
    if (original) {
      outcome.duplicate = true;
      outcome.event_id = std::move(*original);
      m_deltas[r.endpoint_id].duplicates += 1;
      return;
    }
    auto add_key = [&](const std::string& key) {
      auto q = m_w.use("INSERT OR IGNORE INTO webhook_dedup(endpoint_id,event_key,event_id,received_at) VALUES(?,?,?,?)");
      q->bind(1, r.endpoint_id);
      q->bind(2, key);
      q->bind(3, r.event_id);
      q->bind(4, static_cast<int64_t>(r.received_at));
      q->exec();
    };
    add_key(r.event_key);
    for (const auto& k : r.item_keys) add_key(k);
    for (const auto& k : r.alias_keys) add_key(k);
    {
      auto q = m_w.use(
          "INSERT INTO webhook_events(id,endpoint_id,user_id,provider,event_key,event_type,headers,body,received_at) "
          "VALUES(?,?,?,?,?,?,?,?,?)");
      q->bind(1, r.event_id);
      q->bind(2, r.endpoint_id);
      q->bind(3, r.user_id);
      q->bind(4, r.provider);
      q->bind(5, r.event_key);
      q->bind(6, r.event_type);
      q->bindNoCopy(7, r.headers);
      q->bindNoCopy(8, r.body.data(), static_cast<int>(r.body.size()));
      q->bind(9, static_cast<int64_t>(r.received_at));
      q->exec();
    }
    {
      auto q = m_w.use(
          "INSERT INTO webhook_jobs(id,event_id,endpoint_id,user_id,state,attempts,next_attempt_at,created_at,updated_at) "
          "VALUES(?1,?2,?3,?4,'queued',0,?5,?5,?5)");
      q->bind(1, r.job_id);
      q->bind(2, r.event_id);
      q->bind(3, r.endpoint_id);
      q->bind(4, r.user_id);
      q->bind(5, static_cast<int64_t>(r.received_at));
      q->exec();
    }
    auto& d = m_deltas[r.endpoint_id];
    d.received += 1;
    d.last_delivery_at = std::max(d.last_delivery_at, r.received_at);
    outcome.event_id = r.event_id;
  }

  // Writer thread, inside the batch's transaction: the batch's counter changes, one UPDATE each.
  void flush_counters() {
    if (m_deltas.empty()) return;
    try {
      for (const auto& [id, d] : m_deltas) {
        auto q = m_w.use(
            "UPDATE webhook_endpoints SET received=received+?1,duplicates=duplicates+?2,rejected=rejected+?3,"
            "verification_failures=verification_failures+?4,last_delivery_at=CASE WHEN ?5 > COALESCE(last_delivery_at,0) "
            "THEN ?5 ELSE last_delivery_at END WHERE id=?6");
        q->bind(1, static_cast<int64_t>(d.received));
        q->bind(2, static_cast<int64_t>(d.duplicates));
        q->bind(3, static_cast<int64_t>(d.rejected));
        q->bind(4, static_cast<int64_t>(d.verification_failures));
        q->bind(5, static_cast<int64_t>(d.last_delivery_at));
        q->bind(6, id);
        q->exec();
      }
    } catch (const std::exception& e) {
      spdlog::warn("webhook store: endpoint counters not updated: {}", e.what());  // the deliveries still commit
    }
    m_deltas.clear();
  }

  void enqueue(Op op, std::shared_ptr<std::promise<Status>> done) {
    {
      std::lock_guard lock(m_queue_mutex);
      if (m_stopping) {
        if (done) done->set_value(fail(ErrorCode::service_unavailable, "the daemon is shutting down"));
        return;
      }
      m_queue.push_back(Pending{std::move(op), std::move(done)});
    }
    m_queue_cv.notify_one();
  }

  // Runs `op` on the writer connection inside the next batch; returns after the commit.
  Status write(Op op) {
    auto done = std::make_shared<std::promise<Status>>();
    auto fut = done->get_future();
    enqueue(std::move(op), done);
    return fut.get();
  }

  // write() for an op that reports how many rows it changed.
  template <class F>
  Result<int64_t> write_count(F&& f) {
    int64_t n = 0;
    auto st = write([&] { n = f(); });
    if (!st) return std::unexpected(st.error());
    return n;
  }

  template <class F>
  auto read(F&& f) -> Result<decltype(f())> {
    return sqlite::locked(m_reader_mutex, "webhook store", std::forward<F>(f));
  }

  // Group commit with a short gather: right after a commit its waiters answer their clients, and
  // those clients' next requests arrive a fraction of a millisecond later. Starting the next
  // transaction with the first one alone would split them over two fsyncs, so when fewer requests
  // wait than the last batch held (the current concurrency), the writer waits for them a little —
  // at most a quarter of the recent commit time, so the wait never costs more than it saves
  // (PostgreSQL's commit_delay, made adaptive).
  void writer_loop() {
    using clock = std::chrono::steady_clock;
    std::vector<Pending> batch;
    std::size_t last_waiters = 0;
    auto commit_time = std::chrono::microseconds(0);  // moving average
    for (;;) {
      batch.clear();
      {
        std::unique_lock lock(m_queue_mutex);
        m_queue_cv.wait(lock, [&] { return m_stopping || !m_queue.empty(); });
        if (m_queue.empty()) return;  // stopping and drained
        const std::size_t want = std::min(last_waiters, m_max_batch);
        if (!m_stopping && m_queue.size() < want) {
          const auto gather = std::min(commit_time / 4, std::chrono::microseconds(2000));
          m_queue_cv.wait_until(lock, clock::now() + gather,
                                [&] { return m_stopping || m_queue.size() >= want; });
        }
        while (!m_queue.empty() && batch.size() < m_max_batch) {
          batch.push_back(std::move(m_queue.front()));
          m_queue.pop_front();
        }
      }
      const auto started = clock::now();
      run_batch(batch);
      const auto took = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - started);
      commit_time = (commit_time * 7 + took) / 8;
      restart_wal_if_due();
      last_waiters = static_cast<std::size_t>(
          std::count_if(batch.begin(), batch.end(), [](const Pending& p) { return p.done != nullptr; }));
    }
  }

  void run_batch(std::vector<Pending>& batch) {
    std::vector<Status> results(batch.size());
    m_deltas.clear();
    try {
      m_writer_db.exec("BEGIN IMMEDIATE");
    } catch (const std::exception& e) {
      for (auto& p : batch)
        if (p.done) p.done->set_value(std::unexpected(db_error(e)));
      return;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      try {
        m_writer_db.exec("SAVEPOINT op");
        batch[i].op();
        m_writer_db.exec("RELEASE op");
      } catch (const std::exception& e) {
        results[i] = std::unexpected(db_error(e));
        try {
          m_writer_db.exec("ROLLBACK TO op");
          m_writer_db.exec("RELEASE op");
        } catch (const std::exception&) {
        }
      }
    }
    flush_counters();
    try {
      m_writer_db.exec("COMMIT");
    } catch (const std::exception& e) {
      spdlog::error("webhook store commit of {} operations failed: {}", batch.size(), e.what());
      try {
        m_writer_db.exec("ROLLBACK");
      } catch (const std::exception&) {
      }
      for (auto& r : results)
        if (r) r = std::unexpected(db_error(e));
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].done) batch[i].done->set_value(std::move(results[i]));
      else if (!results[i]) spdlog::warn("webhook store: a background write failed: {}", results[i].error().message);
    }
  }

  // sqlite3_wal_hook: called on the writer thread after each commit with the WAL's page count.
  static int on_wal_commit(void* self, sqlite3*, const char*, int pages) {
    auto* s = static_cast<SqliteWebhookStore*>(self);
    if (pages < s->m_wal_pages) s->m_next_checkpoint = k_checkpoint_pages;  // the WAL started over
    s->m_wal_pages = pages;
    if (pages >= k_restart_pages) s->m_restart_due = true;
    if (pages >= s->m_next_checkpoint) {
      s->m_next_checkpoint = pages + k_checkpoint_pages;
      {
        std::lock_guard lock(s->m_checkpoint_mutex);
        s->m_checkpoint_due = true;
      }
      s->m_checkpoint_cv.notify_one();
    }
    return SQLITE_OK;
  }

  // Writer thread, between batches: bounds the WAL when the checkpoint thread could not.
  void restart_wal_if_due() {
    if (!m_restart_due) return;
    m_restart_due = false;
    int log = 0, copied = 0;
    const int rc = sqlite3_wal_checkpoint_v2(m_writer_db.getHandle(), nullptr, SQLITE_CHECKPOINT_RESTART, &log, &copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) spdlog::warn("webhook store: WAL restart failed: {}", sqlite3_errstr(rc));
  }

  // PASSIVE checkpoints never block the writer; when one has copied every frame, the next write
  // transaction starts the WAL from its beginning again, so the file stays bounded.
  void checkpoint_loop() {
    for (;;) {
      {
        std::unique_lock lock(m_checkpoint_mutex);
        m_checkpoint_cv.wait(lock, [&] { return m_checkpoint_stopping || m_checkpoint_due; });
        if (m_checkpoint_stopping) return;
        m_checkpoint_due = false;
      }
      int log = 0, copied = 0;
      const int rc = sqlite3_wal_checkpoint_v2(m_checkpoint_db.getHandle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
      if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        spdlog::warn("webhook store: WAL checkpoint failed: {}", sqlite3_errstr(rc));
    }
  }

  std::size_t m_max_batch;
  SQLite::Database m_writer_db;  // only the writer thread touches it after construction
  std::mutex m_reader_mutex;
  SQLite::Database m_reader_db;
  SQLite::Database m_checkpoint_db;  // only the checkpoint thread
  StatementCache m_w;  // writer thread only
  StatementCache m_r;  // under m_reader_mutex
  std::unordered_map<std::string, CounterDelta> m_deltas;  // writer thread only; one batch's changes
  int m_wal_pages = 0;                      // writer thread only (wal hook)
  int m_next_checkpoint = k_checkpoint_pages;  // writer thread only (wal hook)
  bool m_restart_due = false;               // writer thread only (wal hook)
  std::mutex m_queue_mutex;
  std::condition_variable m_queue_cv;
  std::deque<Pending> m_queue;
  bool m_stopping = false;
  std::mutex m_checkpoint_mutex;
  std::condition_variable m_checkpoint_cv;
  bool m_checkpoint_due = false;
  bool m_checkpoint_stopping = false;
  std::thread m_checkpoint_thread;
  std::thread m_thread;
};

}  // namespace

Result<std::unique_ptr<WebhookStore>> open_sqlite_webhook_store(const WebhookStoreOptions& options) {
  try {
    return std::unique_ptr<WebhookStore>(new SqliteWebhookStore(options));
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, "cannot open the webhook store " + options.path.string() + ": " + e.what());
  }
}

}  // namespace alumia

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

#include <alumia/store/intake_log.hpp>
#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>

#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
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

// An accepted delivery as an intake log record. Version byte first; strings length-prefixed.
void put_u32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }
void put_str(std::string& out, const std::string& v) {
  put_u32(out, static_cast<uint32_t>(v.size()));
  out += v;
}
std::string encode_ingest(const IngestRequest& r) {
  std::string out;
  out.reserve(r.body.size() + r.headers.size() + 256);
  out.push_back('\x01');
  for (const auto* f : {&r.endpoint_id, &r.user_id, &r.provider, &r.event_key, &r.event_type, &r.headers, &r.body,
                        &r.event_id, &r.job_id})
    put_str(out, *f);
  out.append(reinterpret_cast<const char*>(&r.received_at), sizeof r.received_at);
  for (const auto* list : {&r.alias_keys, &r.item_keys}) {
    put_u32(out, static_cast<uint32_t>(list->size()));
    for (const auto& k : *list) put_str(out, k);
  }
  return out;
}
std::optional<IngestRequest> decode_ingest(std::string_view in) {
  std::size_t at = 0;
  auto take = [&](void* dst, std::size_t n) {
    if (in.size() - at < n) return false;
    std::memcpy(dst, in.data() + at, n);
    at += n;
    return true;
  };
  auto str = [&](std::string& dst) {
    uint32_t n = 0;
    if (!take(&n, sizeof n) || in.size() - at < n) return false;
    dst.assign(in.data() + at, n);
    at += n;
    return true;
  };
  IngestRequest r;
  if (in.empty() || in[0] != '\x01') return std::nullopt;
  at = 1;
  for (auto* f : {&r.endpoint_id, &r.user_id, &r.provider, &r.event_key, &r.event_type, &r.headers, &r.body,
                  &r.event_id, &r.job_id})
    if (!str(*f)) return std::nullopt;
  if (!take(&r.received_at, sizeof r.received_at)) return std::nullopt;
  for (auto* list : {&r.alias_keys, &r.item_keys}) {
    uint32_t n = 0;
    if (!take(&n, sizeof n) || n > in.size()) return std::nullopt;
    list->resize(n);
    for (auto& k : *list)
      if (!str(k)) return std::nullopt;
  }
  if (at != in.size()) return std::nullopt;
  return r;
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
//
// Small checkpoints, because every flush of the disk's cache carries what was written before it:
// the fsync that ends a checkpoint of 4 MiB held intake-log writes (which acknowledge deliveries)
// for 20-60 ms. With 1 MiB the median p99 of bench/ingest went from 11.9 to 8.2 ms (5 rounds each),
// at the same rate.
constexpr int k_checkpoint_pages = 256;  // 1 MiB of 4 KiB pages
constexpr int k_restart_pages = 16384;   // 64 MiB
constexpr auto k_background_gather = std::chrono::milliseconds(20);

constexpr const char* k_endpoint_cols =
    "SELECT id,user_id,provider,connection_id,label,status,relay_to,config,max_body_bytes,previous_secret_expires_at,"
    "received,duplicates,rejected,verification_failures,last_delivery_at,created_at,updated_at,deleted_at,"
    "last_error_code,last_error_message,last_error_at FROM webhook_endpoints";
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
  if (const auto at = opt_int(q.getColumn(20)))
    e.last_error = EndpointError{q.getColumn(18).getString(), q.getColumn(19).getString(), *at};
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
      if (!k.m_after)
        return fail(ErrorCode::bad_request, "cursor is not valid; pass the nextCursor of a previous page");
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
  std::optional<EndpointError> last_error;
};

class SqliteWebhookStore final : public WebhookStore {
 public:
  SqliteWebhookStore(const WebhookStoreOptions& o, const std::string& db_name)
      : m_options(o),
        m_max_batch(o.max_batch == 0 ? 1 : o.max_batch),
        m_writer_db(db_name, SQLite::OPEN_READWRITE | sqlite::k_open_nofollow),
        m_reader_db(db_name, SQLite::OPEN_READWRITE | sqlite::k_open_nofollow),
        m_checkpoint_db(db_name, SQLite::OPEN_READWRITE | sqlite::k_open_nofollow),
        m_dedup_db(db_name, SQLite::OPEN_READWRITE | sqlite::k_open_nofollow),
        m_w(m_writer_db),
        m_r(m_reader_db),
        m_dq(m_dedup_db) {
    open_pragmas(m_writer_db, o.synchronous_full);
    open_pragmas(m_reader_db, o.synchronous_full);
    open_pragmas(m_checkpoint_db, o.synchronous_full);
    open_pragmas(m_dedup_db, o.synchronous_full);
    // Fail early (not at the first delivery) when the migrations have not run.
    m_reader_db.exec("SELECT 1 FROM webhook_jobs LIMIT 0");
    // Replaces the writer's auto-checkpoint: the checkpoint runs on m_checkpoint_thread instead.
    sqlite3_wal_hook(m_writer_db.getHandle(), &SqliteWebhookStore::on_wal_commit, this);
    m_checkpoint_thread = std::thread([this] { checkpoint_loop(); });
    m_thread = std::thread([this] { writer_loop(); });
  }

  // Applies what the intake log holds from the last run (a crash or a kill left it there), then
  // opens the log for new deliveries. Fails, and the daemon does not start, when a delivery the
  // last run acknowledged cannot be stored: starting would overwrite it.
  Status init() {
    if (auto st = open_log(); !st) return st;
    return load_fingerprints();
  }

  Status open_log() {
    if (m_options.intake_log_bytes == 0) return {};
    std::vector<IntakeLog::Record> left;
    auto log =
        IntakeLog::open({.path = m_options.path.string() + "-intake", .bytes = m_options.intake_log_bytes}, left);
    if (!log) return std::unexpected(log.error());
    std::vector<std::future<Status>> applied;
    std::atomic<std::size_t> stored{0};
    for (auto& rec : left) {
      auto r = decode_ingest(rec.payload);
      if (!r) {
        spdlog::error("intake log: record {} is not a delivery this version can read; skipped", rec.seq);
        continue;
      }
      auto done = std::make_shared<std::promise<Status>>();
      applied.push_back(done->get_future());
      enqueue(Pending{[this, r = std::move(*r), &stored] {
                        // Records of the last run that were applied before it stopped are skipped.
                        auto q = m_w.use("SELECT 1 FROM webhook_events WHERE id=?");
                        q->bind(1, r.event_id);
                        if (q->executeStep()) return;
                        IngestOutcome ignored;
                        ingest_one(r, ignored);
                        stored.fetch_add(1);
                      },
                      std::move(done), nullptr});
    }
    for (auto& f : applied)
      if (auto st = f.get(); !st)
        return fail(ErrorCode::internal, "cannot apply the intake log left by the last run: " + st.error().message);
    if (auto st = (*log)->start(); !st) return st;
    if (stored > 0) spdlog::info("intake log: stored {} deliveries the last run had acknowledged", stored.load());
    m_log = std::move(*log);
    return {};
  }

  // The writer drains its queue first (applies it and releases log space); what the flusher hands
  // over after that stays in the log and is applied at the next start.
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
    m_log.reset();
  }

  // ---- endpoints ----

  Status insert_endpoint(const WebhookEndpointRecord& e) override {
    return write([this, &e] {
      auto q = m_w.use(
          "INSERT INTO webhook_endpoints(id,user_id,provider,connection_id,label,status,relay_to,config,"
          "max_body_bytes,previous_secret_expires_at,created_at,updated_at,deleted_at) "
          "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
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
    settle();
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
    settle();
    return read([&] {
      auto q = m_r.use(std::string(k_endpoint_cols) + " WHERE user_id=? AND deleted_at IS NULL" + ks->condition() +
                       ks->order());
      q->bind(1, user_id);
      return ks->page<WebhookEndpointRecord>(*q, ks->bind_cursor(*q, 2), read_endpoint,
                                             [](const auto& e) { return std::make_pair(e.created_at, e.id); });
    });
  }

  // ---- ingest ----

  // Dedup first, under the locks of the delivery's keys: against the keys of deliveries not yet
  // applied (m_pending) and then the stored set. A key leaves m_pending only after the batch that
  // stored it committed, so a lookup that misses m_pending finds it stored. New keys enter
  // m_pending before the locks are let go, so two copies of one delivery never both get in.
  Result<IngestOutcome> ingest(const IngestRequest& r) override {
    try {
      return ingest_checked(r);
    } catch (const std::exception& e) {
      spdlog::error("ingest failed: {}", e.what());
      return fail(ErrorCode::service_unavailable, "the event could not be stored; retry");
    }
  }

  void count(const std::string& endpoint_id, EndpointCounter counter) override {
    enqueue(Pending{[this, endpoint_id, counter] {
                      auto& d = m_deltas[endpoint_id];
                      (counter == EndpointCounter::rejected    ? d.rejected
                       : counter == EndpointCounter::duplicate ? d.duplicates
                                                               : d.verification_failures) += 1;
                    },
                    nullptr, nullptr});
  }

  void note_error(const std::string& endpoint_id, EndpointError error) override {
    enqueue(Pending{[this, endpoint_id, error = std::move(error)] {
                      auto& last = m_deltas[endpoint_id].last_error;
                      if (!last || last->at <= error.at) last = error;
                    },
                    nullptr, nullptr});
  }

  // ---- events ----

  Result<PageResult<WebhookEvent>> list_events(const EventFilter& f, const Page& page) override {
    auto ks = Keyset::of(page, "received_at", "id");
    if (!ks) return std::unexpected(ks.error());
    settle();
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

  // A hit needs no barrier (an event is stored whole); only a miss may be a delivery still in the
  // log. The relay reads the event of every job it delivers, and would otherwise wait for a batch.
  Result<std::optional<WebhookEvent>> find_event(const std::string& id, bool with_body) override {
    return settled_lookup([&] { return read_event_row(id, with_body); });
  }

  Result<std::optional<WebhookEvent>> read_event_row(const std::string& id, bool with_body) {
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
          "INSERT INTO "
          "webhook_jobs(id,event_id,endpoint_id,user_id,state,attempts,next_attempt_at,created_at,updated_at) "
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
    settle();
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
    return settled_lookup([&] {
      return read([&]() -> std::optional<WebhookJob> {
        auto q = m_r.use(std::string(k_job_cols) + " WHERE id=?");
        q->bind(1, id);
        if (!q->executeStep()) return std::nullopt;
        return read_job(*q);
      });
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
    settle();  // a job still in the intake log is due too; missing it would put the worker to sleep
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
    enqueue(Pending{[this, j] { write_outcome(j); }, nullptr, nullptr});
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
    auto n = write_count([&] {
      auto q = m_w.use("DELETE FROM webhook_dedup WHERE received_at < ?");
      q->bind(1, static_cast<int64_t>(cutoff));
      return q->exec();
    });
    if (n && *n > 0)
      if (auto st = load_fingerprints(); !st)
        spdlog::warn("webhook store: dedup fingerprints not rebuilt: {}", st.error().message);
    return n;
  }

 private:
  using Op = std::function<void()>;  // runs on the writer thread, inside the batch's transaction
  struct Pending {
    Op op;
    std::shared_ptr<std::promise<Status>> done;  // null: nobody waits (counters)
    std::function<void(bool stored)> after;      // writer thread, after the batch's COMMIT (or its failure)
  };

  // A dedup key of m_pending: endpoint id, a separator no id contains, the provider's key.
  static std::string pending_key(const std::string& endpoint_id, const std::string& key) {
    std::string k;
    k.reserve(endpoint_id.size() + 1 + key.size());
    k += endpoint_id;
    k += '\x1f';
    k += key;
    return k;
  }
  struct PendingKey {
    std::string event_id;
    bool durable = false;  // false while its delivery is being written
  };
  struct KeyHit {
    std::string event_id;
    std::optional<std::string> writing;  // the m_pending key, when that delivery is not durable yet
  };
  static constexpr std::size_t k_key_locks = 64;

  // Fingerprints of every stored dedup key (and of every key that entered m_pending since): almost
  // every delivery is new, and a fingerprint miss proves it without a read of the stored set. A hit
  // (a repeat, or a collision) is checked against the table. Stale fingerprints only cost a read;
  // after a prune the set is rebuilt.
  static uint64_t fingerprint(const std::string& pk) { return std::hash<std::string>{}(pk); }

  // Under m_pending_mutex.
  void remember_fingerprint(uint64_t fp) {
    m_fingerprints.insert(fp);
    if (m_fingerprints_rebuilding) m_fingerprints_since.push_back(fp);
  }

  // (Re)builds the set from the table. Keys that were in m_pending when the read began, or entered it
  // while it ran, may be committed after the read's snapshot: they are added at the swap.
  Status load_fingerprints() {
    {
      std::lock_guard lock(m_pending_mutex);
      m_fingerprints_rebuilding = true;
      m_fingerprints_since.clear();
      for (const auto& [pk, ignored] : m_pending) m_fingerprints_since.push_back(fingerprint(pk));
    }
    std::unordered_set<uint64_t> fresh;
    auto st = sqlite::locked(m_dedup_mutex, "webhook store", [&] {
      auto q = m_dq.use("SELECT endpoint_id, event_key FROM webhook_dedup");
      while (q->executeStep())
        fresh.insert(fingerprint(pending_key(q->getColumn(0).getString(), q->getColumn(1).getString())));
    });
    std::lock_guard lock(m_pending_mutex);
    m_fingerprints_rebuilding = false;
    if (!st) return st;  // the old set stays: it still holds every stored key
    for (auto fp : m_fingerprints_since) fresh.insert(fp);
    m_fingerprints_since.clear();
    m_fingerprints.swap(fresh);
    return {};
  }

  // One dedup key of a delivery, with its m_pending form and its fingerprint worked out once.
  struct DedupKey {
    const std::string* key;
    std::string pk;
    uint64_t fp;
  };

  std::optional<KeyHit> known_key(const std::string& endpoint_id, const DedupKey& k) {
    {
      std::lock_guard lock(m_pending_mutex);
      if (auto it = m_pending.find(k.pk); it != m_pending.end())
        return KeyHit{it->second.event_id, it->second.durable ? std::nullopt : std::optional<std::string>(k.pk)};
      if (!m_fingerprints.contains(k.fp)) return std::nullopt;  // never stored: no read
    }
    std::lock_guard lock(m_dedup_mutex);
    auto q = m_dq.use("SELECT event_id FROM webhook_dedup WHERE endpoint_id=? AND event_key=?");
    q->bind(1, endpoint_id);
    q->bind(2, *k.key);
    if (!q->executeStep()) return std::nullopt;
    return KeyHit{q->getColumn(0).getString(), std::nullopt};
  }

  // The delivery a request repeats, by the rules of IngestRequest (item keys: all known; else the
  // event key or any alias). `keys`: the event key, then the item keys, then the aliases.
  std::optional<KeyHit> original_of(const IngestRequest& r, const std::vector<DedupKey>& keys) {
    const std::size_t items_end = 1 + r.item_keys.size();
    std::optional<KeyHit> original;
    if (!r.item_keys.empty()) {
      for (std::size_t i = 1; i < items_end; ++i) {
        auto hit = known_key(r.endpoint_id, keys[i]);
        if (!hit) return std::nullopt;
        if (!original || (hit->writing && !original->writing)) original = std::move(hit);
      }
      return original;
    }
    original = known_key(r.endpoint_id, keys[0]);
    for (std::size_t i = items_end; !original && i < keys.size(); ++i) original = known_key(r.endpoint_id, keys[i]);
    return original;
  }

  Result<IngestOutcome> ingest_checked(const IngestRequest& r) {
    std::vector<DedupKey> keys;
    keys.reserve(1 + r.item_keys.size() + r.alias_keys.size());
    auto add = [&](const std::string& k) {
      auto pk = pending_key(r.endpoint_id, k);
      const uint64_t fp = fingerprint(pk);
      keys.push_back(DedupKey{&k, std::move(pk), fp});
    };
    add(r.event_key);
    for (const auto& k : r.item_keys) add(k);
    for (const auto& k : r.alias_keys) add(k);
    std::vector<std::size_t> locks;
    for (const auto& k : keys) locks.push_back(k.fp % k_key_locks);
    std::sort(locks.begin(), locks.end());
    locks.erase(std::unique(locks.begin(), locks.end()), locks.end());
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      std::vector<std::unique_lock<std::mutex>> held;
      for (auto i : locks) held.emplace_back(m_key_locks[i]);
      auto original = original_of(r, keys);
      if (!original) {
        std::vector<std::string> owned;  // keys this delivery adds (an item key may be known already)
        {
          std::lock_guard lock(m_pending_mutex);
          for (const auto& k : keys) {
            remember_fingerprint(k.fp);
            if (m_pending.emplace(k.pk, PendingKey{r.event_id, false}).second) owned.push_back(k.pk);
          }
        }
        held.clear();
        return store_new(r, std::move(owned));
      }
      held.clear();
      if (original->writing) {
        // A copy of a delivery whose write has not returned: answer once that one is durable, or
        // take its place if it failed.
        std::unique_lock lock(m_pending_mutex);
        const bool settled = m_pending_cv.wait_until(lock, give_up, [&] {
          auto it = m_pending.find(*original->writing);
          return it == m_pending.end() || it->second.event_id != original->event_id || it->second.durable;
        });
        if (!settled) return fail(ErrorCode::service_unavailable, "the event could not be stored; retry");
        continue;
      }
      count(r.endpoint_id, EndpointCounter::duplicate);
      return IngestOutcome{true, std::move(original->event_id)};
    }
  }

  // A new delivery whose keys are in m_pending as `owned`: into the intake log (the store applies
  // it later), or, without a log or for a body too large for it, committed into the tables now.
  Result<IngestOutcome> store_new(const IngestRequest& r, std::vector<std::string> owned) {
    auto rec = std::make_shared<const IngestRequest>(r);
    std::string payload;
    if (m_log) payload = encode_ingest(*rec);
    if (m_log && payload.size() <= m_log->max_payload()) {
      auto keys = std::make_shared<const std::vector<std::string>>(std::move(owned));
      auto appended = m_log->append(std::move(payload), [this, rec, keys](uint64_t seq) {
        m_unapplied.fetch_add(1);
        enqueue_apply(rec, seq, keys, 0);
        mark_durable(*keys);
      });
      if (!appended) {
        forget(*keys);
        return std::unexpected(appended.error());
      }
      return IngestOutcome{false, r.event_id};
    }
    IngestOutcome outcome;
    auto st = write([this, &rec, &outcome] { ingest_one(*rec, outcome); });
    forget(owned);  // stored now, or not at all
    if (!st) {
      spdlog::error("ingest failed: {}", st.error().message);
      return fail(ErrorCode::service_unavailable, "the event could not be stored; retry");
    }
    return outcome;
  }

  // Flusher thread (through on_durable): the delivery's apply, in log order. Its log space and its
  // m_pending keys are let go once the batch holding it committed. A failed apply is retried; if it
  // keeps failing the record stays in the log and the next start applies it.
  void enqueue_apply(std::shared_ptr<const IngestRequest> rec, uint64_t seq,
                     std::shared_ptr<const std::vector<std::string>> keys, int attempt) {
    enqueue(Pending{[this, rec] {
                      IngestOutcome ignored;
                      ingest_one(*rec, ignored, true);
                    },
                    nullptr,
                    [this, rec, seq, keys, attempt](bool stored) {
                      if (stored) {
                        m_log->release(seq);
                        forget(*keys);
                        m_unapplied.fetch_sub(1);
                      } else if (attempt < 3) {
                        enqueue_apply(rec, seq, keys, attempt + 1);
                      } else {
                        spdlog::error(
                            "event {} could not be stored in the tables; it stays in the intake log, and "
                            "the next start stores it",
                            rec->event_id);
                      }
                    }});
  }

  void mark_durable(const std::vector<std::string>& keys) {
    {
      std::lock_guard lock(m_pending_mutex);
      for (const auto& k : keys)
        if (auto it = m_pending.find(k); it != m_pending.end()) it->second.durable = true;
    }
    m_pending_cv.notify_all();
  }

  void forget(const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    {
      std::lock_guard lock(m_pending_mutex);
      for (const auto& k : keys) m_pending.erase(k);
    }
    m_pending_cv.notify_all();
  }

  // Read barrier: waits until every delivery acknowledged so far is in the tables.
  void settle() {
    if (m_unapplied.load() > 0) (void)write([] {});
  }

  // A lookup by id: read; on a miss while deliveries wait in the log, settle and read again.
  template <class F>
  auto settled_lookup(F&& lookup) -> decltype(lookup()) {
    auto got = lookup();
    if (got && !*got && m_unapplied.load() > 0) {
      settle();
      got = lookup();
    }
    return got;
  }

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

  // Writer thread: the stored delivery `r` repeats, by the rules of IngestRequest.
  std::optional<std::string> stored_original(const IngestRequest& r) {
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
        if (!hit) return std::nullopt;
        if (!original) original = std::move(hit);
      }
      return original;
    }
    original = known(r.event_key);
    for (std::size_t i = 0; !original && i < r.alias_keys.size(); ++i) original = known(r.alias_keys[i]);
    return original;
  }

  // Writer thread: dedup keys + event + first job of one delivery, or the duplicate's original.
  // `decided`: ingest() already settled dedup for it against m_pending and the stored set, and its
  // keys stayed in m_pending since, so looking them up again would find nothing.
  void ingest_one(const IngestRequest& r, IngestOutcome& outcome, bool decided = false) {
    if (!decided)
      if (auto original = stored_original(r)) {
        outcome.duplicate = true;
        outcome.event_id = std::move(*original);
        m_deltas[r.endpoint_id].duplicates += 1;
        return;
      }
    auto add_key = [&](const std::string& key) {
      auto q =
          m_w.use("INSERT OR IGNORE INTO webhook_dedup(endpoint_id,event_key,event_id,received_at) VALUES(?,?,?,?)");
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
          "INSERT INTO "
          "webhook_jobs(id,event_id,endpoint_id,user_id,state,attempts,next_attempt_at,created_at,updated_at) "
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
            "verification_failures=verification_failures+?4,last_delivery_at=CASE WHEN ?5 > "
            "COALESCE(last_delivery_at,0) "
            "THEN ?5 ELSE last_delivery_at END WHERE id=?6");
        q->bind(1, static_cast<int64_t>(d.received));
        q->bind(2, static_cast<int64_t>(d.duplicates));
        q->bind(3, static_cast<int64_t>(d.rejected));
        q->bind(4, static_cast<int64_t>(d.verification_failures));
        q->bind(5, static_cast<int64_t>(d.last_delivery_at));
        q->bind(6, id);
        q->exec();
        if (!d.last_error) continue;
        auto e = m_w.use(
            "UPDATE webhook_endpoints SET last_error_code=?1,last_error_message=?2,last_error_at=?3 WHERE id=?4 AND "
            "COALESCE(last_error_at,0) <= ?3");
        e->bind(1, d.last_error->code);
        e->bind(2, d.last_error->message);
        e->bind(3, static_cast<int64_t>(d.last_error->at));
        e->bind(4, id);
        e->exec();
      }
    } catch (const std::exception& e) {
      spdlog::warn("webhook store: endpoint counters not updated: {}", e.what());  // the deliveries still commit
    }
    m_deltas.clear();
  }

  void enqueue(Pending p) {
    bool wake = false;
    {
      std::lock_guard lock(m_queue_mutex);
      if (m_stopping) {
        if (p.done) p.done->set_value(fail(ErrorCode::service_unavailable, "the daemon is shutting down"));
        return;
      }
      // The writer needs waking for a waiter, for the first op of a gather, and for a full batch;
      // not for every background op in between (a futex wake per delivery otherwise).
      wake = p.done != nullptr || m_queue.empty() || m_queue.size() + 1 >= m_max_batch;
      if (p.done) ++m_queued_waiters;
      m_queue.push_back(std::move(p));
    }
    if (wake) m_queue_cv.notify_one();
  }

  // Runs `op` on the writer connection inside the next batch; returns after the commit.
  Status write(Op op) {
    auto done = std::make_shared<std::promise<Status>>();
    auto fut = done->get_future();
    enqueue(Pending{std::move(op), done, nullptr});
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
  //
  // Work nobody waits for (applying the intake log, counters, relay outcomes) is gathered for up to
  // k_background_gather or a full batch: one commit of many deliveries writes far fewer pages per
  // delivery than many small ones, and each commit's flush competes with the intake log's writes
  // for the disk.
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
        if (!m_stopping && m_queued_waiters == 0 && m_queue.size() < m_max_batch)
          m_queue_cv.wait_until(lock, clock::now() + k_background_gather,
                                [&] { return m_stopping || m_queued_waiters > 0 || m_queue.size() >= m_max_batch; });
        const std::size_t want = std::min(last_waiters, m_max_batch);
        if (!m_stopping && m_queue.size() < want) {
          const auto gather = std::min(commit_time / 4, std::chrono::microseconds(2000));
          m_queue_cv.wait_until(lock, clock::now() + gather, [&] { return m_stopping || m_queue.size() >= want; });
        }
        while (!m_queue.empty() && batch.size() < m_max_batch) {
          if (m_queue.front().done) --m_queued_waiters;
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

  // One transaction for the batch. First without savepoints: a SAVEPOINT per operation makes
  // SQLite keep a statement journal (a copy of every page the operation touches), which cost more
  // than the inserts themselves. Only when an operation fails is the batch rolled back and run
  // again with a SAVEPOINT around each operation, so the failure stays with its own request.
  // Operations are written to be run again from the start (they reset what they report).
  void run_batch(std::vector<Pending>& batch) {
    auto run = [this](const char* sql) { m_w.use(sql)->exec(); };
    if (batch.size() > 1) {
      m_deltas.clear();
      try {
        run("BEGIN IMMEDIATE");
        for (auto& p : batch) p.op();
        flush_counters();
        run("COMMIT");
        for (auto& p : batch)
          if (p.after) p.after(true);
        for (auto& p : batch)
          if (p.done) p.done->set_value({});
        return;
      } catch (const std::exception& e) {
        try {
          if (!m_writer_db.getHandle() || !sqlite3_get_autocommit(m_writer_db.getHandle())) run("ROLLBACK");
        } catch (const std::exception&) {
        }
      }
    }
    run_isolated(batch, run);
  }

  template <class Run>
  void run_isolated(std::vector<Pending>& batch, Run& run) {
    std::vector<Status> results(batch.size());
    m_deltas.clear();
    try {
      run("BEGIN IMMEDIATE");
    } catch (const std::exception& e) {
      for (auto& p : batch) {
        if (p.after) p.after(false);
        if (p.done) p.done->set_value(std::unexpected(db_error(e)));
      }
      return;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      try {
        run("SAVEPOINT op");
        batch[i].op();
        run("RELEASE op");
      } catch (const std::exception& e) {
        results[i] = std::unexpected(db_error(e));
        try {
          run("ROLLBACK TO op");
          run("RELEASE op");
        } catch (const std::exception&) {
        }
      }
    }
    flush_counters();
    try {
      run("COMMIT");
    } catch (const std::exception& e) {
      spdlog::error("webhook store commit of {} operations failed: {}", batch.size(), e.what());
      try {
        run("ROLLBACK");
      } catch (const std::exception&) {
      }
      for (auto& r : results)
        if (r) r = std::unexpected(db_error(e));
    }
    for (std::size_t i = 0; i < batch.size(); ++i)
      if (batch[i].after) batch[i].after(results[i].has_value());
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
    const int rc =
        sqlite3_wal_checkpoint_v2(m_writer_db.getHandle(), nullptr, SQLITE_CHECKPOINT_RESTART, &log, &copied);
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
      const int rc =
          sqlite3_wal_checkpoint_v2(m_checkpoint_db.getHandle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
      if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        spdlog::warn("webhook store: WAL checkpoint failed: {}", sqlite3_errstr(rc));
    }
  }

  WebhookStoreOptions m_options;
  std::size_t m_max_batch;
  SQLite::Database m_writer_db;  // only the writer thread touches it after construction
  std::mutex m_reader_mutex;
  SQLite::Database m_reader_db;
  SQLite::Database m_checkpoint_db;  // only the checkpoint thread
  std::mutex m_dedup_mutex;
  SQLite::Database m_dedup_db;       // dedup lookups of ingest, under m_dedup_mutex
  StatementCache m_w;                // writer thread only
  StatementCache m_r;                // under m_reader_mutex
  StatementCache m_dq;               // under m_dedup_mutex
  std::unique_ptr<IntakeLog> m_log;  // null: no log (intake_log_bytes 0)
  std::array<std::mutex, k_key_locks> m_key_locks;
  std::mutex m_pending_mutex;
  std::condition_variable m_pending_cv;
  std::unordered_map<std::string, PendingKey> m_pending;  // keys of deliveries not yet applied
  std::unordered_set<uint64_t> m_fingerprints;            // under m_pending_mutex
  bool m_fingerprints_rebuilding = false;
  std::vector<uint64_t> m_fingerprints_since;
  std::atomic<int64_t> m_unapplied{0};                     // durable in the log, not yet committed into the tables
  std::unordered_map<std::string, CounterDelta> m_deltas;  // writer thread only; one batch's changes
  int m_wal_pages = 0;                                     // writer thread only (wal hook)
  int m_next_checkpoint = k_checkpoint_pages;              // writer thread only (wal hook)
  bool m_restart_due = false;                              // writer thread only (wal hook)
  std::mutex m_queue_mutex;
  std::condition_variable m_queue_cv;
  std::deque<Pending> m_queue;
  std::size_t m_queued_waiters = 0;  // ops in m_queue with a `done`
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
  auto db_name = sqlite::checked_db_name(options.path, false);
  if (!db_name) return std::unexpected(db_name.error());
  try {
    auto store = std::make_unique<SqliteWebhookStore>(options, *db_name);
    if (auto st = store->init(); !st) return std::unexpected(st.error());
    return std::unique_ptr<WebhookStore>(std::move(store));
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, "cannot open the webhook store " + options.path.string() + ": " + e.what());
  }
}

}  // namespace alumia

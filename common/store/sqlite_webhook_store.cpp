// SQLite implementation of WebhookStore: opening it, and the SQL of endpoints, events and jobs
// (sqlite_webhook_store.hpp names the parts; the ingest path is in sqlite_webhook_ingest.cpp).
//
// What keeps the writer cheap: statements are prepared once (StatementCache); endpoint counters are
// summed in memory and written once per batch, not once per delivery; WAL checkpoints run on their
// own thread (group_writer.cpp), so no delivery waits for pages to be copied into the database
// file; and the relay worker's claims go through indexes, never a queue scan.
#include "sqlite_webhook_store.hpp"

#include "sqlite_rows.hpp"

#include <spdlog/spdlog.h>
#include <alumia/base/try.hpp>

#include <algorithm>
#include <tuple>
#include <utility>

namespace alumia {
namespace sqlite {

SqliteWebhookStore::SqliteWebhookStore(const WebhookStoreOptions& o, const std::string& db_name)
    : m_options(o),
      m_writer(db_name, o.synchronous_full, o.max_batch),
      m_w(m_writer.statements()),
      m_reader_db(db_name, SQLite::OPEN_READWRITE | k_open_nofollow),
      m_r(m_reader_db),
      m_dedup(db_name, o.synchronous_full, o.dedup_filter_bytes) {
  open_webhook_pragmas(m_reader_db, o.synchronous_full);
  // Fail early (not at the first delivery) when the migrations have not run.
  m_reader_db.exec("SELECT 1 FROM webhook_jobs LIMIT 0");
  m_writer.start({.begin =
                      [this] {
                        m_deltas.clear();
                        m_staged.clear();
                        m_loose_run = 0;
                      },
                  .before_commit =
                      [this] {
                        // Jobs without their counts must not commit: the batch is rolled back, so its
                        // COMMIT fails and every operation of it with it (a background one is retried).
                        try {
                          flush_job_counts();
                        } catch (const std::exception& e) {
                          spdlog::error("webhook store: job counts not written, the batch is rolled back: {}",
                                        e.what());
                          m_deltas.clear();
                          try {
                            m_w.use("ROLLBACK")->exec();
                          } catch (const std::exception&) {
                          }
                          return;
                        }
                        flush_counters();
                        m_transactions.fetch_add(1, std::memory_order_relaxed);
                      },
                  .flush = [this] { write_staged(); }});
}

// The writer drains its queue first (applies it and releases log space); what the flusher hands
// over after that stays in the log and is applied at the next start.
SqliteWebhookStore::~SqliteWebhookStore() {
  m_writer.stop();
  m_log.reset();
}

Status SqliteWebhookStore::init() {
  if (m_reader_db.tableExists("webhook_dedup_v11")) TRY(m_writer.write([this] { convert_v11_dedup(); }));
  TRY(recover_and_open_log());
  queue_dedup_merge();                     // one the last run left, or runs it left to merge
  m_dedup.rebuild_filter_in_background();  // the start does not wait for a read of every stored key
  return {};
}

// ---- endpoints ----

namespace {

// Columns `first` (per second) and `first + 1` (burst): both NULL for the daemon's default.
void bind_rate_limit(SQLite::Statement& q, int first, const std::optional<RateLimit>& limit) {
  bind_opt(q, first, limit ? std::optional<int64_t>(limit->per_second) : std::nullopt);
  bind_opt(q, first + 1, limit ? std::optional<int64_t>(limit->burst) : std::nullopt);
}

}  // namespace

Status SqliteWebhookStore::insert_endpoint(const WebhookEndpointRecord& e) {
  return m_writer.write([this, &e] {
    auto q = m_w.use(
        "INSERT INTO webhook_endpoints(id,user_id,provider,connection_id,label,status,relay_to,config,"
        "max_body_bytes,previous_secret_expires_at,created_at,updated_at,deleted_at,rate_per_second,rate_burst,"
        "retention_days) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    q->bind(1, e.id);
    q->bind(2, e.user_id);
    q->bind(3, std::string(to_string(e.provider)));
    bind_opt(*q, 4, e.connection_id);
    q->bind(5, e.label);
    q->bind(6, std::string(to_string(e.status)));
    bind_opt(*q, 7, e.relay_to);
    q->bind(8, e.config);
    q->bind(9, static_cast<int64_t>(e.max_body_bytes));
    bind_opt(*q, 10, e.previous_secret_expires_at);
    q->bind(11, static_cast<int64_t>(e.created_at));
    q->bind(12, static_cast<int64_t>(e.updated_at));
    bind_opt(*q, 13, e.deleted_at);
    bind_rate_limit(*q, 14, e.rate_limit);
    bind_opt(*q, 16, e.retention_days);
    q->exec();
  });
}

Status SqliteWebhookStore::update_endpoint(const WebhookEndpointRecord& e) {
  return m_writer.write([this, &e] {
    auto q = m_w.use(
        "UPDATE webhook_endpoints SET label=?,status=?,relay_to=?,config=?,max_body_bytes=?,"
        "previous_secret_expires_at=?,updated_at=?,deleted_at=?,rate_per_second=?,rate_burst=?,retention_days=? "
        "WHERE id=?");
    q->bind(1, e.label);
    q->bind(2, std::string(to_string(e.status)));
    bind_opt(*q, 3, e.relay_to);
    q->bind(4, e.config);
    q->bind(5, static_cast<int64_t>(e.max_body_bytes));
    bind_opt(*q, 6, e.previous_secret_expires_at);
    q->bind(7, static_cast<int64_t>(e.updated_at));
    bind_opt(*q, 8, e.deleted_at);
    bind_rate_limit(*q, 9, e.rate_limit);
    bind_opt(*q, 11, e.retention_days);
    q->bind(12, e.id);
    if (q->exec() != 1) throw std::runtime_error("endpoint " + e.id + " not found");
  });
}

Result<std::optional<WebhookEndpointRecord>> SqliteWebhookStore::find_endpoint(const std::string& id) {
  settle();
  return read([&]() -> std::optional<WebhookEndpointRecord> {
    auto q = m_r.use(std::string(k_endpoint_cols) + " WHERE id=?");
    q->bind(1, id);
    if (!q->executeStep()) return std::nullopt;
    return read_endpoint(*q);
  });
}

Result<std::optional<std::vector<std::string>>> SqliteWebhookStore::endpoint_ids() {
  return read([&] {
    std::vector<std::string> ids;
    auto q = m_r.use("SELECT id FROM webhook_endpoints");
    while (q->executeStep()) ids.push_back(q->getColumn(0).getString());
    return std::optional<std::vector<std::string>>(std::move(ids));
  });
}

Result<PageResult<WebhookEndpointRecord>> SqliteWebhookStore::list_endpoints(const std::string& user_id,
                                                                             const Page& page) {
  auto ks = TRY(Keyset::of(page, "created_at", "id"));
  settle();
  return read([&] {
    auto q =
        m_r.use(std::string(k_endpoint_cols) + " WHERE user_id=? AND deleted_at IS NULL" + ks.condition() + ks.order());
    q->bind(1, user_id);
    return ks.page<WebhookEndpointRecord>(*q, ks.bind_cursor(*q, 2), read_endpoint,
                                          [](const auto& e) { return std::make_pair(e.created_at, e.id); });
  });
}

// ---- events ----

// Every filter is an index range read newest first, so a page costs O(limit · log n) however many
// events are stored (SPEC §9: a page of a store of a million events in ≤ 10 ms):
//   no job state   webhook_events_user, or webhook_events_endpoint for one endpoint; a provider is the
//                  user's endpoints of that provider (a small table), each read by its index, merged.
//   a job state    the jobs in that state (webhook_jobs_user_state), newest first, that are their
//                  event's newest job; listed by that job's creation (the delivery's time, or a
//                  replay's), which the cursor then holds. An endpoint or provider filter beside a
//                  state is checked on each row of that range.
Result<PageResult<WebhookEvent>> SqliteWebhookStore::list_events(const EventFilter& f, const Page& page) {
  if (f.job_state) return list_events_in_state(f, page);
  auto ks = TRY(Keyset::of(page, "e.received_at", "e.id"));
  settle();
  return read([&] {
    const auto one = [&](const std::optional<std::string>& endpoint_id) {
      std::string sql = std::string(k_event_cols) + " FROM webhook_events e WHERE e.user_id=?";
      if (endpoint_id) sql += " AND e.endpoint_id=?";
      if (f.provider) sql += " AND e.provider=?";
      if (f.since) sql += " AND e.received_at >= ?";
      auto q = m_r.use(sql + ks.condition() + ks.order());
      int i = 1;
      q->bind(i++, f.user_id);
      if (endpoint_id) q->bind(i++, *endpoint_id);
      if (f.provider) q->bind(i++, std::string(to_string(*f.provider)));
      if (f.since) q->bind(i++, static_cast<int64_t>(*f.since));
      return ks.page<WebhookEvent>(*q, ks.bind_cursor(*q, i), read_event,
                                   [](const auto& e) { return std::make_pair(e.received_at, e.id); });
    };
    if (f.endpoint_id || !f.provider) return one(f.endpoint_id);
    // A provider: each of the user's endpoints of it (deleted ones too: their events stay), merged.
    std::vector<std::string> endpoints;
    {
      auto q = m_r.use("SELECT id FROM webhook_endpoints WHERE user_id=? AND provider=?");
      q->bind(1, f.user_id);
      q->bind(2, std::string(to_string(*f.provider)));
      while (q->executeStep()) endpoints.push_back(q->getColumn(0).getString());
    }
    std::vector<PageResult<WebhookEvent>> parts;
    for (const auto& id : endpoints) parts.push_back(one(id));
    return ks.merge(std::move(parts), [](const WebhookEvent& e) { return std::tie(e.received_at, e.id); });
  });
}

Result<PageResult<WebhookEvent>> SqliteWebhookStore::list_events_in_state(const EventFilter& f, const Page& page) {
  auto ks = TRY(Keyset::of(page, "j.created_at", "j.id"));
  settle();
  return read([&] {
    std::string sql =
        "SELECT e.id,e.endpoint_id,e.user_id,e.provider,e.event_key,e.event_type,e.received_at,j.state,"
        "e.body_removed_at,j.created_at,j.id FROM webhook_jobs j INDEXED BY webhook_jobs_user_state JOIN "
        "webhook_events e ON e.id=j.event_id "
        "WHERE j.user_id=? AND j.state=?";
    if (f.endpoint_id) sql += " AND j.endpoint_id=?";
    if (f.provider) sql += " AND e.provider=?";
    // Every job of an event received since then was created since then too: the range ends there.
    if (f.since) sql += " AND j.created_at >= ? AND e.received_at >= ?";
    sql +=
        " AND NOT EXISTS (SELECT 1 FROM webhook_jobs k WHERE k.event_id=j.event_id AND (k.created_at > j.created_at "
        "OR (k.created_at = j.created_at AND k.rowid > j.rowid)))";
    auto q = m_r.use(sql + ks.condition() + ks.order());
    int i = 1;
    q->bind(i++, f.user_id);
    q->bind(i++, std::string(to_string(*f.job_state)));
    if (f.endpoint_id) q->bind(i++, *f.endpoint_id);
    if (f.provider) q->bind(i++, std::string(to_string(*f.provider)));
    if (f.since) {
      q->bind(i++, static_cast<int64_t>(*f.since));
      q->bind(i++, static_cast<int64_t>(*f.since));
    }
    using Row = std::pair<WebhookEvent, std::pair<int64_t, std::string>>;
    auto rows = ks.page<Row>(
        *q, ks.bind_cursor(*q, i),
        [](SQLite::Statement& r) {
          return Row{read_event(r), {r.getColumn(9).getInt64(), r.getColumn(10).getString()}};
        },
        [](const Row& r) { return r.second; });
    PageResult<WebhookEvent> out;
    out.next_cursor = std::move(rows.next_cursor);
    for (auto& r : rows.items) out.items.push_back(std::move(r.first));
    return out;
  });
}

// A hit needs no barrier (an event is stored whole); only a miss may be a delivery still in the
// log. The relay reads the event of every job it delivers, and would otherwise wait for a batch.
Result<std::optional<WebhookEvent>> SqliteWebhookStore::find_event(const std::string& id, bool with_body) {
  return settled_lookup([&] { return read_event_row(id, with_body); });
}

Result<std::optional<WebhookEvent>> SqliteWebhookStore::read_event_row(const std::string& id, bool with_body) {
  return read([&]() -> std::optional<WebhookEvent> {
    auto q = m_r.use(std::string(k_event_cols) + ",e.headers," + (with_body ? "e.body" : "x''") +
                     " FROM webhook_events e WHERE e.id=?");
    q->bind(1, id);
    if (!q->executeStep()) return std::nullopt;
    WebhookEvent e = read_event(*q);
    e.headers = q->getColumn(9).getString();
    e.body = blob_string(q->getColumn(10));
    return e;
  });
}

// ---- jobs ----

Result<std::map<std::string, std::map<JobState, int64_t>>> SqliteWebhookStore::job_counts(const std::string& user_id) {
  settle();
  return read([&] {
    // The user's endpoints (a small table), then each one's rows of webhook_job_counts by its key.
    auto q = m_r.use(k_job_counts_sql);
    q->bind(1, user_id);
    std::map<std::string, std::map<JobState, int64_t>> out;
    while (q->executeStep())
      if (const auto state = parse_job_state(q->getColumn(1).getString()))
        out[q->getColumn(0).getString()][*state] += q->getColumn(2).getInt64();
    return out;
  });
}

Result<std::optional<WebhookJob>> SqliteWebhookStore::oldest_queued_job(const std::string& endpoint_id) {
  settle();
  return read([&]() -> std::optional<WebhookJob> {
    auto q = m_r.use(k_oldest_queued_sql);  // the columns of k_job_cols
    q->bind(1, endpoint_id);
    if (!q->executeStep()) return std::nullopt;
    return read_job(*q);
  });
}

Status SqliteWebhookStore::insert_job(const WebhookJob& j) {
  return m_writer.write([this, &j] {
    auto q = m_w.use(
        "INSERT INTO "
        "webhook_jobs(id,event_id,endpoint_id,user_id,state,attempts,next_attempt_at,created_at,updated_at) "
        "VALUES(?,?,?,?,?,?,?,?,?)");
    q->bind(1, j.id);
    q->bind(2, j.event_id);
    q->bind(3, j.endpoint_id);
    q->bind(4, j.user_id);
    q->bind(5, std::string(to_string(j.state)));
    q->bind(6, static_cast<int64_t>(j.attempts));
    q->bind(7, static_cast<int64_t>(j.next_attempt_at));
    q->bind(8, static_cast<int64_t>(j.created_at));
    q->bind(9, static_cast<int64_t>(j.updated_at));
    q->exec();
    job_inserted(j.endpoint_id, j.state);  // last: a failed insert leaves no count behind
  });
}

// Newest first, each filter an index range: a state is a range of webhook_jobs_user_state, an event its few
// jobs (webhook_jobs_event); the user's jobs of every state are the merge of the five states' ranges (no
// index of a user's jobs by time alone: migration 11), so a page costs O(5 · limit · log n).
Result<PageResult<WebhookJob>> SqliteWebhookStore::list_jobs(const JobFilter& f, const Page& page) {
  auto ks = TRY(Keyset::of(page, "created_at", "id"));
  settle();
  return read([&] {
    const auto one = [&](std::optional<JobState> state) {
      std::string sql = std::string(k_job_cols) + " WHERE user_id=?";
      if (state) sql += " AND state=?";
      if (f.event_id) sql += " AND event_id=?";
      if (f.since) sql += " AND created_at >= ?";
      auto q = m_r.use(sql + ks.condition() + ks.order());
      int i = 1;
      q->bind(i++, f.user_id);
      if (state) q->bind(i++, std::string(to_string(*state)));
      if (f.event_id) q->bind(i++, *f.event_id);
      if (f.since) q->bind(i++, static_cast<int64_t>(*f.since));
      return ks.page<WebhookJob>(*q, ks.bind_cursor(*q, i), read_job,
                                 [](const auto& j) { return std::make_pair(j.created_at, j.id); });
    };
    if (f.state || f.event_id) return one(f.state);
    std::vector<PageResult<WebhookJob>> parts;
    for (const JobState state : job_states()) parts.push_back(one(state));
    return ks.merge(std::move(parts), [](const WebhookJob& j) { return std::tie(j.created_at, j.id); });
  });
}

Result<std::optional<WebhookJob>> SqliteWebhookStore::find_job(const std::string& id) {
  return settled_lookup([&] {
    return read([&]() -> std::optional<WebhookJob> {
      auto q = m_r.use(std::string(k_job_cols) + " WHERE id=?");
      q->bind(1, id);
      if (!q->executeStep()) return std::nullopt;
      return read_job(*q);
    });
  });
}

// A job whose event lost its body to retention cannot be delivered again.
constexpr const char* k_event_kept =
    "(SELECT e.body_removed_at FROM webhook_events e WHERE e.id=webhook_jobs.event_id) IS NULL";

Result<bool> SqliteWebhookStore::retry_job(const std::string& id, int64_t now) {
  const auto n = TRY(m_writer.write_count([&] {
    auto q = m_w.use(
        "UPDATE webhook_jobs SET state='queued',attempts=0,next_attempt_at=?,updated_at=?,finished_at=NULL "
        "WHERE id=? AND state IN ('queued','failed','dead') AND " +
        std::string(k_event_kept));
    q->bind(1, static_cast<int64_t>(now));
    q->bind(2, static_cast<int64_t>(now));
    q->bind(3, id);
    return q->exec();
  }));
  return n > 0;
}

Result<int64_t> SqliteWebhookStore::retry_jobs(const std::string& user_id, JobState state, std::optional<int64_t> since,
                                               int64_t now) {
  return m_writer.write_count([&] {
    auto q = m_w.use(std::string("UPDATE webhook_jobs SET state='queued',attempts=0,next_attempt_at=?,updated_at=?,"
                                 "finished_at=NULL WHERE user_id=? AND state=? AND ") +
                     k_event_kept + (since ? " AND created_at >= ?" : ""));
    q->bind(1, static_cast<int64_t>(now));
    q->bind(2, static_cast<int64_t>(now));
    q->bind(3, user_id);
    q->bind(4, std::string(to_string(state)));
    if (since) q->bind(5, static_cast<int64_t>(*since));
    return q->exec();
  });
}

// ---- relay worker ----

Result<int64_t> SqliteWebhookStore::requeue_running(int64_t now) {
  return m_writer.write_count([&] {
    auto q = m_w.use(k_requeue_running_sql);  // each endpoint's range (every job's endpoint has a row)
    q->bind(1, static_cast<int64_t>(now));
    q->bind(2, static_cast<int64_t>(now));
    return q->exec();
  });
}

Result<std::vector<WebhookJob>> SqliteWebhookStore::claim_due_jobs(
    int64_t now, std::size_t limit, bool have_default, const std::map<std::string, std::size_t>& endpoint_limits) {
  std::vector<WebhookJob> out;
  auto st = m_writer.write([&] {
    out.clear();
    // Each (endpoint, state) pair is one range of webhook_jobs_endpoint_due in next_attempt_at order, so a
    // claim costs O(endpoints · limit · log n) however many jobs wait — jobs of endpoints without a target
    // included.
    for (const auto& scope : claim_scopes(m_w, have_default, endpoint_limits))
      for (const JobState state : {JobState::queued, JobState::failed}) {
        auto q = m_w.use(k_claim_sql);
        q->bind(1, scope);
        q->bind(2, std::string(to_string(state)));
        q->bind(3, static_cast<int64_t>(now));
        std::size_t scope_limit = limit;
        if (auto it = endpoint_limits.find(scope); it != endpoint_limits.end())
          scope_limit = std::min(scope_limit, it->second);
        q->bind(4, static_cast<int64_t>(scope_limit));
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
      j.state = JobState::running;
      j.updated_at = now;
    }
  });
  TRY(st);
  return out;
}

Result<std::optional<int64_t>> SqliteWebhookStore::next_due_at(
    bool have_default, const std::map<std::string, std::size_t>& endpoint_limits) {
  settle();  // a job still in the intake log is due too; missing it would put the worker to sleep
  return read([&] {
    std::optional<int64_t> earliest;
    for (const auto& scope : claim_scopes(m_r, have_default, endpoint_limits))
      for (const JobState state : {JobState::queued, JobState::failed}) {
        auto q = m_r.use(k_next_due_sql);
        q->bind(1, scope);
        q->bind(2, std::string(to_string(state)));
        if (q->executeStep())
          if (auto v = opt_int(q->getColumn(0)); v && (!earliest || *v < *earliest)) earliest = v;
      }
    return earliest;
  });
}

Status SqliteWebhookStore::finish_job(const WebhookJob& j) {
  return m_writer.write([this, &j] { write_outcome(j); });
}

void SqliteWebhookStore::finish_job_later(const WebhookJob& j) {
  m_writer.enqueue(WriterOp{[this, j] { write_outcome(j); }, nullptr, nullptr});
}

Status SqliteWebhookStore::cancel_endpoint_jobs(const std::string& endpoint_id, int64_t now) {
  return m_writer.write([&] {
    auto q = m_w.use(
        "UPDATE webhook_jobs SET state='dead',last_error='endpoint deleted',updated_at=?,finished_at=? "
        "WHERE endpoint_id=? AND state IN ('queued','failed')");
    q->bind(1, static_cast<int64_t>(now));
    q->bind(2, static_cast<int64_t>(now));
    q->bind(3, endpoint_id);
    q->exec();
  });
}

// Endpoints whose jobs the relay worker may claim: every endpoint (deleted ones too: every job's
// endpoint has a row) when a default target exists and no endpoint has a limit, else each endpoint
// with a target (its own or the default) whose limit is not 0. The endpoints table is small; the jobs
// are read per endpoint (webhook_jobs_endpoint_due: no index of all endpoints' jobs by state is kept,
// migration 10).
std::vector<std::string> SqliteWebhookStore::claim_scopes(StatementCache& c, bool have_default,
                                                          const std::map<std::string, std::size_t>& limits) {
  std::vector<std::string> scopes;
  auto q = c.use(have_default && limits.empty() ? "SELECT id FROM webhook_endpoints"
                 : have_default                 ? "SELECT id FROM webhook_endpoints WHERE deleted_at IS NULL"
                                : "SELECT id FROM webhook_endpoints WHERE relay_to IS NOT NULL AND deleted_at IS NULL");
  while (q->executeStep()) {
    std::string id = q->getColumn(0).getString();
    if (auto it = limits.find(id); it == limits.end() || it->second > 0) scopes.emplace_back(std::move(id));
  }
  return scopes;
}

// Writer thread: the outcome of one delivery attempt.
void SqliteWebhookStore::write_outcome(const WebhookJob& j) {
  auto q = m_w.use(
      "UPDATE webhook_jobs SET state=?,attempts=?,next_attempt_at=?,last_status=?,last_error=?,updated_at=?,"
      "finished_at=? WHERE id=? AND state='running'");
  q->bind(1, std::string(to_string(j.state)));
  q->bind(2, static_cast<int64_t>(j.attempts));
  q->bind(3, static_cast<int64_t>(j.next_attempt_at));
  bind_opt(*q, 4, j.last_status);
  bind_opt(*q, 5, j.last_error);
  q->bind(6, static_cast<int64_t>(j.updated_at));
  bind_opt(*q, 7, j.finished_at);
  q->bind(8, j.id);
  q->exec();
}

}  // namespace sqlite

Result<std::unique_ptr<WebhookStore>> open_sqlite_webhook_store(const WebhookStoreOptions& options) {
  auto db_name = TRY(sqlite::checked_db_name(options.path, false));
  try {
    auto store = std::make_unique<sqlite::SqliteWebhookStore>(options, db_name);
    TRY(store->init());
    return std::unique_ptr<WebhookStore>(std::move(store));
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, "cannot open the webhook store " + options.path.string() + ": " + e.what());
  }
}

}  // namespace alumia

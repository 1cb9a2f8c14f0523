// The webhook store's ingest path: dedup (DedupIndex), the intake log that makes a delivery durable,
// the writer operations that apply it to the tables, and the crash recovery that applies what a
// run left in the log (sqlite_webhook_store.hpp).
#include "intake_record.hpp"
#include "sqlite_webhook_store.hpp"

#include <spdlog/spdlog.h>
#include <alumia/base/try.hpp>

#include <malloc.h>

#include <algorithm>
#include <array>
#include <future>
#include <utility>

namespace alumia::sqlite {

Status SqliteWebhookStore::recover_and_open_log() {
  if (m_options.intake_log_bytes == 0) return {};
  std::vector<IntakeLog::Record> left;
  auto log =
      TRY(IntakeLog::open({.path = m_options.path.string() + "-intake", .bytes = m_options.intake_log_bytes}, left));
  std::vector<std::future<Status>> applied;
  std::atomic<std::size_t> stored{0};
  for (auto& rec : left) {
    auto r = intake_record::decode(rec.payload);
    if (!r) {
      spdlog::error("intake log: record {} is not a delivery this version can read; skipped", rec.seq);
      continue;
    }
    auto done = std::make_shared<std::promise<Status>>();
    applied.push_back(done->get_future());
    m_writer.enqueue(WriterOp{[this, r = std::move(*r), &stored] {
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
  if (!left.empty()) {
    // The records read (up to the ring's 16 MiB, in small strings) are freed once the writer has
    // let go of its last batch; hand that heap back, or an idle daemon keeps it after every start.
    left = {};
    TRY(m_writer.write([] {}));
    ::malloc_trim(0);
  }
  TRY(log->start());
  if (stored > 0) spdlog::info("intake log: stored {} deliveries the last run had acknowledged", stored.load());
  m_log = std::move(log);
  return {};
}

// Dedup first (DedupIndex::admit), then the write: a new delivery into the intake log, a repeat
// counted and answered with its original.
Result<IngestOutcome> SqliteWebhookStore::ingest(IngestRequest r) {
  try {
    auto admitted = TRY(m_dedup.admit(r));
    if (!admitted.original) return store_new(std::move(r), std::move(admitted.claimed));
    count(r.endpoint_id, EndpointCounter::duplicate);
    return IngestOutcome{true, std::move(*admitted.original)};
  } catch (const std::exception& e) {
    spdlog::error("ingest failed: {}", e.what());
    return fail(ErrorCode::service_unavailable, "the event could not be stored; retry");
  }
}

// The same decisions as ingest() where memory settles dedup, with the intake log's completion in place
// of the wait: the listener's poll thread hands a delivery over and goes on serving others, and the
// flusher that made the record durable answers it (two thread switches a delivery instead of four).
bool SqliteWebhookStore::ingest_async(IngestRequest& r, std::function<void(Result<IngestOutcome>)> done) {
  if (!m_log) return false;
  std::vector<std::string> claimed;
  try {
    std::string payload = intake_record::encode(r);
    if (payload.size() > m_log->max_payload()) return false;  // committed into the tables by ingest()
    auto admitted = m_dedup.try_admit(r);
    if (!admitted) return false;
    if (admitted->original) {
      count(r.endpoint_id, EndpointCounter::duplicate);
      done(IngestOutcome{true, std::move(*admitted->original)});
      return true;
    }
    claimed = std::move(admitted->claimed);
    auto rec = std::make_shared<const IngestRequest>(std::move(r));
    auto keys = std::make_shared<const std::vector<std::string>>(std::move(claimed));
    claimed.clear();
    m_log->append_async(std::move(payload), on_durable(rec, keys),
                        [this, keys, event_id = rec->event_id, done = std::move(done)](Result<uint64_t> seq) {
                          if (!seq) {
                            m_dedup.release(*keys);
                            return done(std::unexpected(seq.error()));
                          }
                          done(IngestOutcome{false, event_id});
                        });
    return true;
  } catch (const std::exception& e) {
    m_dedup.release(claimed);
    spdlog::error("ingest failed: {}", e.what());
    if (done) done(fail(ErrorCode::service_unavailable, "the event could not be stored; retry"));
    return true;
  }
}

std::function<void(uint64_t)> SqliteWebhookStore::on_durable(std::shared_ptr<const IngestRequest> rec,
                                                             std::shared_ptr<const std::vector<std::string>> keys) {
  return [this, rec = std::move(rec), keys = std::move(keys)](uint64_t seq) {
    m_unapplied.fetch_add(1);
    enqueue_apply(rec, seq, keys, 0);
    m_dedup.mark_durable(*keys);
  };
}

// Counted like a refusal (m_refusals_queued), so that a read right after a duplicate's answer sees it.
void SqliteWebhookStore::count(const std::string& endpoint_id, EndpointCounter counter) {
  m_refusals_queued.fetch_add(1);
  m_writer.enqueue(WriterOp{[this, endpoint_id, counter] {
                              auto& d = m_deltas[endpoint_id];
                              (counter == EndpointCounter::rejected    ? d.rejected
                               : counter == EndpointCounter::duplicate ? d.duplicates
                                                                       : d.verification_failures) += 1;
                            },
                            nullptr, [this](bool) { m_refusals_queued.fetch_sub(1); }, true});
}

void SqliteWebhookStore::add_refusals(const std::string& endpoint_id, EndpointRefusals refusals) {
  if (refusals.empty()) return;
  m_refusals_queued.fetch_add(1);
  m_writer.enqueue(WriterOp{[this, endpoint_id, refusals] {
                              auto& d = m_deltas[endpoint_id];
                              d.rejected += refusals.rejected;
                              d.verification_failures += refusals.verification_failures;
                              d.rate_limited += refusals.rate_limited;
                              if (refusals.last_error && (!d.last_error || d.last_error->at <= refusals.last_error->at))
                                d.last_error = refusals.last_error;
                            },
                            nullptr, [this](bool) { m_refusals_queued.fetch_sub(1); }, true});
}

// A new delivery whose keys are in flight as `claimed`: into the intake log (the store applies it
// later), or, without a log or for a body too large for it, committed into the tables now.
Result<IngestOutcome> SqliteWebhookStore::store_new(IngestRequest r, std::vector<std::string> claimed) {
  auto rec = std::make_shared<const IngestRequest>(std::move(r));
  std::string payload;
  if (m_log) payload = intake_record::encode(*rec);
  if (m_log && payload.size() <= m_log->max_payload()) {
    auto keys = std::make_shared<const std::vector<std::string>>(std::move(claimed));
    auto appended = m_log->append(std::move(payload), on_durable(rec, keys));
    if (!appended) {
      m_dedup.release(*keys);
      return std::unexpected(appended.error());
    }
    return IngestOutcome{false, rec->event_id};
  }
  IngestOutcome outcome;
  auto st = m_writer.write([this, &rec, &outcome] { ingest_one(*rec, outcome); });
  m_dedup.release(claimed);  // stored now, or not at all
  if (!st) {
    spdlog::error("ingest failed: {}", st.error().message);
    return fail(ErrorCode::service_unavailable, "the event could not be stored; retry");
  }
  return outcome;
}

// Flusher thread (through on_durable): the delivery's apply, in log order. Its log space and its
// keys in flight are let go once the batch holding it committed. A failed apply is retried; if it
// keeps failing the record stays in the log and the next start applies it.
void SqliteWebhookStore::enqueue_apply(std::shared_ptr<const IngestRequest> rec, uint64_t seq,
                                       std::shared_ptr<const std::vector<std::string>> claimed, int attempt) {
  m_writer.enqueue(WriterOp{[this, rec] {
                              IngestOutcome ignored;
                              ingest_one(*rec, ignored, true);
                            },
                            nullptr,
                            [this, rec, seq, claimed, attempt](bool stored) {
                              if (stored) {
                                m_log->release(seq);
                                m_dedup.release(*claimed);
                                m_unapplied.fetch_sub(1);
                              } else if (attempt < 3) {
                                enqueue_apply(rec, seq, claimed, attempt + 1);
                              } else {
                                spdlog::error(
                                    "event {} could not be stored in the tables; it stays in the intake log, and "
                                    "the next start stores it",
                                    rec->event_id);
                              }
                            },
                            true});
}

// Writer thread: the stored delivery `r` repeats, by the rule of IngestRequest (find_original).
std::optional<std::string> SqliteWebhookStore::stored_original(const IngestRequest& r) {
  auto original = find_original(r, [&](std::size_t, const std::string& key) -> std::optional<KeyHit> {
    auto event_id = dedup_runs::find(m_w, r.endpoint_id, key);
    if (!event_id) return std::nullopt;
    return KeyHit{std::move(*event_id), std::nullopt};
  });
  if (!original) return std::nullopt;
  return std::move(original->event_id);
}

// Writer thread: dedup keys + event + first job of one delivery, or the duplicate's original.
// `decided`: the dedup index already settled dedup for it against the keys in flight and the stored
// set, and its keys stayed in flight since, so looking them up again would find nothing.
void SqliteWebhookStore::ingest_one(const IngestRequest& r, IngestOutcome& outcome, bool decided) {
  if (!decided)
    if (auto original = stored_original(r)) {
      outcome.duplicate = true;
      outcome.event_id = std::move(*original);
      m_deltas[r.endpoint_id].duplicates += 1;
      return;
    }
  if (decided && m_writer.staging()) {
    m_staged.push_back(&r);  // written by write_staged, before anything else reads or writes
  } else {
    insert_rows(r);
  }
  // Last, once every insert succeeded (or was staged: a failed write_staged fails the whole batch, and it
  // runs again from begin(), which clears these): an operation that fails leaves no count behind.
  auto& d = m_deltas[r.endpoint_id];
  d.jobs[static_cast<std::size_t>(JobState::queued)] += 1;
  d.received += 1;
  d.last_delivery_at = std::max(d.last_delivery_at, r.received_at);
  outcome.event_id = r.event_id;
}

void SqliteWebhookStore::add_dedup_keys(std::vector<DedupKeyRef>& keys, const IngestRequest& r) {
  const auto at = static_cast<int64_t>(r.received_at);
  auto add = [&](const std::string& key) { keys.push_back({&r.endpoint_id, {key, r.event_id, at}}); };
  add(r.event_key);
  for (const auto& k : r.item_keys) add(k);
  for (const auto& k : r.alias_keys) add(k);
}

void SqliteWebhookStore::insert_rows(const IngestRequest& r) {
  // Text is bound without a copy: `r` outlives each statement's step, and the next use of a statement
  // clears its bindings before anything reads them (StatementCache::get).
  {
    std::vector<DedupKeyRef> keys;
    add_dedup_keys(keys, r);
    write_loose_dedup_keys(keys);
  }
  {
    auto q = m_w.use(
        "INSERT INTO webhook_events(id,endpoint_id,user_id,provider,event_key,event_type,headers,body,received_at) "
        "VALUES(?,?,?,?,?,?,?,?,?)");
    const std::string provider(to_string(r.provider));
    q->bindNoCopy(1, r.event_id);
    q->bindNoCopy(2, r.endpoint_id);
    q->bindNoCopy(3, r.user_id);
    q->bindNoCopy(4, provider);
    q->bindNoCopy(5, r.event_key);
    q->bindNoCopy(6, r.event_type);
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
    q->bindNoCopy(1, r.job_id);
    q->bindNoCopy(2, r.event_id);
    q->bindNoCopy(3, r.endpoint_id);
    q->bindNoCopy(4, r.user_id);
    q->bind(5, static_cast<int64_t>(r.received_at));
    q->exec();
  }
}

namespace {

// One INSERT of the rows of staged deliveries, in three sizes: a multi-row INSERT is one statement's
// setup, one cursor per b-tree and one VDBE loop for all its rows, where a statement per row pays them for
// each. bench/store_apply.sh, the writer's instructions a delivery: 86k a row a statement, 65k with these.
struct MultiRowInsert {
  MultiRowInsert(std::string_view head, std::string_view row, int row_params) : params(row_params) {
    for (std::size_t s = 0; s < sizes.size(); ++s) {
      sql[s] = head;
      for (int i = 0; i < sizes[s]; ++i) (sql[s] += i == 0 ? " VALUES" : ",") += row;
    }
  }
  static constexpr std::array<int, 3> sizes{16, 4, 1};
  std::array<std::string, 3> sql;
  int params;  // placeholders a row
};

// Rows [0, n) in statements of 16, then 4, then 1 row; bind(statement, index of the row's first
// placeholder minus one, row).
template <class Bind>
void insert_in_chunks(StatementCache& c, const MultiRowInsert& m, std::size_t n, Bind&& bind) {
  std::size_t i = 0;
  for (std::size_t s = 0; s < m.sizes.size(); ++s) {
    const auto rows = static_cast<std::size_t>(m.sizes[s]);
    for (; n - i >= rows; i += rows) {
      auto q = c.use(m.sql[s]);
      for (std::size_t k = 0; k < rows; ++k) bind(*q, static_cast<int>(k) * m.params, i + k);
      q->exec();
    }
  }
}

}  // namespace

// Writer thread, BatchHooks::flush: the staged deliveries' rows, in their order: their dedup keys (a run),
// their events, their first jobs. Text is bound without a copy (each delivery is held by its operation).
void SqliteWebhookStore::write_staged() {
  if (m_staged.empty()) return;
  static const MultiRowInsert events(
      "INSERT INTO webhook_events(id,endpoint_id,user_id,provider,event_key,event_type,headers,body,received_at)",
      "(?,?,?,?,?,?,?,?,?)", 9);
  static const MultiRowInsert jobs(
      "INSERT INTO webhook_jobs(id,event_id,endpoint_id,user_id,state,attempts,next_attempt_at,created_at,updated_at)",
      "(?,?,?,?,'queued',0,?,?,?)", 7);
  std::vector<DedupKeyRef> keys;       // one run for all of them
  std::vector<std::string> providers;  // bound without a copy too
  keys.reserve(m_staged.size());
  providers.reserve(m_staged.size());
  for (const auto* r : m_staged) {
    providers.emplace_back(to_string(r->provider));
    add_dedup_keys(keys, *r);
  }
  write_dedup_run(keys);
  insert_in_chunks(m_w, events, m_staged.size(), [&](SQLite::Statement& q, int p, std::size_t i) {
    const IngestRequest& r = *m_staged[i];
    q.bindNoCopy(p + 1, r.event_id);
    q.bindNoCopy(p + 2, r.endpoint_id);
    q.bindNoCopy(p + 3, r.user_id);
    q.bindNoCopy(p + 4, providers[i]);
    q.bindNoCopy(p + 5, r.event_key);
    q.bindNoCopy(p + 6, r.event_type);
    q.bindNoCopy(p + 7, r.headers);
    q.bindNoCopy(p + 8, r.body.data(), static_cast<int>(r.body.size()));
    q.bind(p + 9, static_cast<int64_t>(r.received_at));
  });
  insert_in_chunks(m_w, jobs, m_staged.size(), [&](SQLite::Statement& q, int p, std::size_t i) {
    const IngestRequest& r = *m_staged[i];
    q.bindNoCopy(p + 1, r.job_id);
    q.bindNoCopy(p + 2, r.event_id);
    q.bindNoCopy(p + 3, r.endpoint_id);
    q.bindNoCopy(p + 4, r.user_id);
    for (int t = 5; t <= 7; ++t) q.bind(p + t, static_cast<int64_t>(r.received_at));
  });
  m_staged.clear();
}

// Writer thread: a job inserted (after its INSERT succeeded), counted by flush_job_counts.
void SqliteWebhookStore::job_inserted(const std::string& endpoint_id, JobState state) {
  m_deltas[endpoint_id].jobs[static_cast<std::size_t>(state)] += 1;
}

// Writer thread, inside the batch's transaction (before_commit): the jobs the batch inserted, one upsert
// per (endpoint, state) into webhook_job_counts (migration 9; the update and delete triggers keep the
// rest). Throws when it cannot: the batch must not commit jobs without their counts.
void SqliteWebhookStore::flush_job_counts() {
  for (const auto& [id, d] : m_deltas)
    for (std::size_t s = 0; s < d.jobs.size(); ++s) {
      if (d.jobs[s] == 0) continue;
      auto q = m_w.use(
          "INSERT INTO webhook_job_counts(endpoint_id,state,n) VALUES(?1,?2,?3) "
          "ON CONFLICT (endpoint_id,state) DO UPDATE SET n = n + excluded.n");
      q->bind(1, id);
      q->bind(2, std::string(to_string(static_cast<JobState>(s))));
      q->bind(3, d.jobs[s]);
      q->exec();
    }
}

// Writer thread, inside the batch's transaction: the batch's counter changes, one UPDATE each.
void SqliteWebhookStore::flush_counters() {
  if (m_deltas.empty()) return;
  try {
    for (const auto& [id, d] : m_deltas) {
      if (d.received == 0 && d.duplicates == 0 && d.rejected == 0 && d.verification_failures == 0 &&
          d.rate_limited == 0 && !d.last_error)
        continue;  // only jobs (a replay): counted by flush_job_counts
      auto q = m_w.use(
          "UPDATE webhook_endpoints SET received=received+?1,duplicates=duplicates+?2,rejected=rejected+?3,"
          "verification_failures=verification_failures+?4,last_delivery_at=CASE WHEN ?5 > "
          "COALESCE(last_delivery_at,0) "
          "THEN ?5 ELSE last_delivery_at END,rate_limited=rate_limited+?7 WHERE id=?6");
      q->bind(1, static_cast<int64_t>(d.received));
      q->bind(2, static_cast<int64_t>(d.duplicates));
      q->bind(3, static_cast<int64_t>(d.rejected));
      q->bind(4, static_cast<int64_t>(d.verification_failures));
      q->bind(5, static_cast<int64_t>(d.last_delivery_at));
      q->bind(6, id);
      q->bind(7, static_cast<int64_t>(d.rate_limited));
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

}  // namespace alumia::sqlite

// The PostgreSQL webhook store's writer thread and ingest path (pg_webhook_store.hpp).
//
// Deliveries, relay outcomes (finish_job_later) and refusal counts queue for one writer thread, which
// takes everything waiting (up to max_batch) and commits it in one transaction: while one commit is on
// its way to disk the next batch gathers, so concurrent deliveries share commits. A delivery's caller
// is answered after the commit. When a batch fails for anything but a lost server, its operations are
// run again one transaction each, so one bad operation fails alone, not its neighbours.
//
// Dedup of one delivery inside the batch's transaction (READ COMMITTED):
//   1. INSERT its distinct keys (event key, item keys, aliases) into webhook_dedup ON CONFLICT DO
//      NOTHING RETURNING the keys inserted. A key another transaction holds uncommitted makes the
//      insert wait for that transaction; then it is known (committed) or free (rolled back).
//   2. The keys not returned are known; their events are read (each statement sees every committed
//      row, and the earlier deliveries of this batch). The rule of IngestRequest decides: with item
//      keys, a repeat only when all are known; else a known event key or alias is a repeat.
//   3. A repeat deletes the keys it inserted (theirs carry its fresh event id) and answers the
//      original; a new delivery inserts its event and first job.
#include "pg_webhook_store.hpp"

#include <alumia/base/try.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <set>
#include <tuple>

namespace alumia::pg {

PgWebhookStore::PgWebhookStore(const PgWebhookStoreOptions& options, std::unique_ptr<Pool> pool,
                               std::unique_ptr<Connection> writer)
    : m_options(options), m_pool(std::move(pool)), m_writer_conn(std::move(writer)) {
  m_writer = std::thread([this] { writer_loop(); });
}

// What is queued is committed before the thread ends.
PgWebhookStore::~PgWebhookStore() {
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_wake.notify_all();
  if (m_writer.joinable()) m_writer.join();
}

void PgWebhookStore::enqueue(Op op) {
  {
    std::lock_guard lock(m_mutex);
    m_queue.push_back(std::move(op));
  }
  m_wake.notify_one();
}

Result<IngestOutcome> PgWebhookStore::ingest(IngestRequest r) {
  std::promise<Result<IngestOutcome>> answer;
  auto got = answer.get_future();
  Op op;
  op.kind = Op::Kind::ingest;
  op.request = std::move(r);
  op.done = [&answer](Result<IngestOutcome> outcome) { answer.set_value(std::move(outcome)); };
  enqueue(std::move(op));
  return got.get();
}

void PgWebhookStore::add_refusals(const std::string& endpoint_id, EndpointRefusals refusals) {
  if (refusals.empty()) return;
  Op op;
  op.kind = Op::Kind::refusals;
  op.endpoint_id = endpoint_id;
  op.refusals = std::move(refusals);
  m_queued_writes.fetch_add(1);
  enqueue(std::move(op));
}

void PgWebhookStore::settle() {
  if (m_queued_writes.load() == 0) return;
  std::promise<void> done;
  auto f = done.get_future();
  Op op;
  op.kind = Op::Kind::barrier;
  op.done = [&done](Result<IngestOutcome>) { done.set_value(); };
  enqueue(std::move(op));
  f.wait();
}

void PgWebhookStore::writer_loop() {
  std::vector<Op> batch;
  for (;;) {
    {
      std::unique_lock lock(m_mutex);
      m_wake.wait(lock, [&] { return m_stopping || !m_queue.empty(); });
      if (m_queue.empty()) return;  // stopping, nothing left
      while (!m_queue.empty() && batch.size() < m_options.max_batch) {
        batch.push_back(std::move(m_queue.front()));
        m_queue.pop_front();
      }
    }
    Connection& db = *m_writer_conn;
    Status ready;
    if (!db.healthy()) {
      ready = db.reconnect();
      if (ready)
        ready = [&]() -> Status {
          TRY(db.exec("SET synchronous_commit = on"));
          return {};
        }();
    }
    std::vector<IngestOutcome> outcomes;
    Status st = ready;
    if (st) {
      st = db.transaction([&](Connection& tx) { return apply_batch(tx, batch, outcomes); });
      m_transactions.fetch_add(1, std::memory_order_relaxed);
    }
    const auto answer_all = [&](const Status& s, std::vector<Op>& ops, std::vector<IngestOutcome>& outs) {
      for (std::size_t k = 0; k < ops.size(); ++k) {
        Op& op = ops[k];
        if (op.kind == Op::Kind::finish || op.kind == Op::Kind::refusals) {
          if (!s)
            spdlog::warn("webhook store: a relay outcome or refusal count was not written: {}", s.error().message);
          m_queued_writes.fetch_sub(1);
          continue;
        }
        if (!op.done) continue;
        if (op.kind == Op::Kind::barrier) {
          op.done(IngestOutcome{});
        } else if (s) {
          op.done(std::move(outs[k]));
        } else {
          spdlog::error("ingest failed: {}", s.error().message);
          op.done(fail(ErrorCode::service_unavailable, "the event could not be stored; retry"));
        }
      }
    };
    if (!st && st.error().code != ErrorCode::service_unavailable && batch.size() > 1) {
      // One bad operation must not fail the others: each alone in its own transaction.
      for (auto& op : batch) {
        std::vector<Op> one;
        one.push_back(std::move(op));
        std::vector<IngestOutcome> out;
        auto s = db.transaction([&](Connection& tx) { return apply_batch(tx, one, out); });
        m_transactions.fetch_add(1, std::memory_order_relaxed);
        answer_all(s, one, out);
      }
    } else {
      answer_all(st, batch, outcomes);
    }
    batch.clear();
  }
}

// The whole batch, run again from the start when the transaction is retried (a serialization
// failure or a deadlock between daemons): nothing outside the transaction changes here.
//
// The order inside the transaction keeps batches of different daemons from deadlocking (a deadlock
// costs the server's deadlock_timeout, 1 s, before the retry): deliveries go in the order of their keys
// (each one's keys sorted), so two batches take the dedup keys' locks in the same order; the rows every
// batch shares — the job counts (the trigger of the one INSERT of the batch's new jobs, then of the one
// UPDATE of its relay outcomes) and the endpoint counters — are locked last, after every dedup key.
Status PgWebhookStore::apply_batch(Connection& tx, std::vector<Op>& ops, std::vector<IngestOutcome>& outcomes) {
  outcomes.assign(ops.size(), IngestOutcome{});
  std::vector<std::size_t> order(ops.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return std::tie(ops[a].request.endpoint_id, ops[a].request.event_key) <
           std::tie(ops[b].request.endpoint_id, ops[b].request.event_key);
  });
  std::map<std::string, CounterDelta> deltas;
  NewJobs jobs;
  std::vector<const WebhookJob*> finished;
  for (const std::size_t i : order) {
    const Op& op = ops[i];
    switch (op.kind) {
      case Op::Kind::ingest:
        outcomes[i] = TRY(apply_ingest(tx, op.request, deltas, jobs));
        break;
      case Op::Kind::finish:
        finished.push_back(&op.job);
        break;
      case Op::Kind::refusals: {
        auto& d = deltas[op.endpoint_id];
        d.rejected += op.refusals.rejected;
        d.verification_failures += op.refusals.verification_failures;
        d.rate_limited += op.refusals.rate_limited;
        if (op.refusals.last_error && (!d.last_error || d.last_error->at <= op.refusals.last_error->at))
          d.last_error = op.refusals.last_error;
        break;
      }
      case Op::Kind::barrier:
        break;
    }
  }
  if (!jobs.ids.empty())
    TRY(tx.exec(
        "INSERT INTO "
        "webhook_jobs(id,event_id,endpoint_id,user_id,state,attempts,next_attempt_at,created_at,updated_at) "
        "SELECT id, ev, ep, u, 'queued', 0, t, t, t FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
        "$5::bigint[]) AS x(id, ev, ep, u, t)",
        {text_array(jobs.ids), text_array(jobs.event_ids), text_array(jobs.endpoint_ids), text_array(jobs.user_ids),
         bigint_array(jobs.at)}));
  if (!finished.empty()) TRY(write_outcomes(tx, finished));
  return flush_counters(tx, deltas);
}

Result<IngestOutcome> PgWebhookStore::apply_ingest(Connection& tx, const IngestRequest& r,
                                                   std::map<std::string, CounterDelta>& deltas, NewJobs& jobs) {
  std::vector<std::string> keys;
  std::set<std::string> distinct;
  auto add = [&](const std::string& k) {
    if (distinct.insert(k).second) keys.push_back(k);
  };
  add(r.event_key);
  for (const auto& k : r.item_keys) add(k);
  for (const auto& k : r.alias_keys) add(k);
  std::sort(keys.begin(), keys.end());
  const std::string key_array = text_array(keys);
  auto inserted_rows =
      TRY(tx.exec("INSERT INTO webhook_dedup(endpoint_id,event_key,event_id,received_at) SELECT $1, k, $3, $4 FROM "
                  "unnest($2::text[]) AS k ON CONFLICT DO NOTHING RETURNING event_key",
                  {r.endpoint_id, key_array, r.event_id, static_cast<int64_t>(r.received_at)}));
  IngestOutcome outcome;
  if (static_cast<std::size_t>(inserted_rows.size()) < keys.size()) {
    std::map<std::string, std::string> known;  // key -> the event that holds it
    auto rows = TRY(
        tx.exec("SELECT event_key,event_id FROM webhook_dedup WHERE endpoint_id=$1 AND event_key = ANY($2::text[]) AND "
                "event_id <> $3",
                {r.endpoint_id, key_array, r.event_id}));
    for (int i = 0; i < rows.size(); ++i) known[rows.str(i, 0)] = rows.str(i, 1);
    const auto hit = [&](const std::string& k) -> const std::string* {
      auto it = known.find(k);
      return it == known.end() ? nullptr : &it->second;
    };
    const std::string* original = nullptr;
    if (!r.item_keys.empty()) {
      bool all = true;
      for (const auto& k : r.item_keys)
        if (const auto* h = hit(k)) {
          if (!original) original = h;
        } else {
          all = false;
        }
      if (!all) original = nullptr;
    } else {
      original = hit(r.event_key);
      for (std::size_t i = 0; !original && i < r.alias_keys.size(); ++i) original = hit(r.alias_keys[i]);
    }
    if (original) {
      outcome.duplicate = true;
      outcome.event_id = *original;
      if (!inserted_rows.empty())
        TRY(tx.exec("DELETE FROM webhook_dedup WHERE endpoint_id=$1 AND event_key = ANY($2::text[]) AND event_id=$3",
                    {r.endpoint_id, key_array, r.event_id}));
      deltas[r.endpoint_id].duplicates += 1;
      return outcome;
    }
  }
  TRY(tx.exec(
      "INSERT INTO webhook_events(id,endpoint_id,user_id,provider,event_key,event_type,headers,body,received_at) "
      "VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9)",
      {r.event_id, r.endpoint_id, r.user_id, std::string(to_string(r.provider)), r.event_key, r.event_type, r.headers,
       Param::bytes(r.body), static_cast<int64_t>(r.received_at)}));
  jobs.ids.push_back(r.job_id);
  jobs.event_ids.push_back(r.event_id);
  jobs.endpoint_ids.push_back(r.endpoint_id);
  jobs.user_ids.push_back(r.user_id);
  jobs.at.push_back(r.received_at);
  auto& d = deltas[r.endpoint_id];
  d.received += 1;
  d.last_delivery_at = std::max(d.last_delivery_at, r.received_at);
  outcome.event_id = r.event_id;
  return outcome;
}

// Inside the batch's transaction, in endpoint order (two daemons' batches lock the same rows in the
// same order, so they queue rather than deadlock).
Status PgWebhookStore::flush_counters(Connection& tx, const std::map<std::string, CounterDelta>& deltas) {
  for (const auto& [id, d] : deltas) {
    TRY(tx.exec(
        "UPDATE webhook_endpoints SET received=received+$1,duplicates=duplicates+$2,rejected=rejected+$3,"
        "verification_failures=verification_failures+$4,rate_limited=rate_limited+$5,"
        "last_delivery_at=CASE WHEN $6::bigint > COALESCE(last_delivery_at,0) THEN $6::bigint ELSE last_delivery_at "
        "END "
        "WHERE id=$7",
        {d.received, d.duplicates, d.rejected, d.verification_failures, d.rate_limited, d.last_delivery_at, id}));
    if (!d.last_error) continue;
    TRY(tx.exec(
        "UPDATE webhook_endpoints SET last_error_code=$1,last_error_message=$2,last_error_at=$3 WHERE id=$4 AND "
        "COALESCE(last_error_at,0) <= $3",
        {d.last_error->code, d.last_error->message, d.last_error->at, id}));
  }
  return {};
}

}  // namespace alumia::pg

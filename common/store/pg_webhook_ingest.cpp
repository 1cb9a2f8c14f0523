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
#include "store_metrics.hpp"

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
    store_metrics::write_batch_sizes().observe(static_cast<double>(batch.size()));
    Connection& db = *m_writer_conn;
    std::vector<IngestOutcome> outcomes;
    const auto write_batch = [&]() -> Status {
      if (!db.healthy()) {
        TRY(db.reconnect());
        TRY(db.exec("SET synchronous_commit = on"));
      }
      m_raced = false;
      Status st = db.transaction([&](Connection& tx) { return apply_batch(tx, batch, outcomes, false); });
      m_transactions.fetch_add(1, std::memory_order_relaxed);
      if (!st && m_raced) {
        // Another daemon stored one of the batch's keys after the batch read them: decide again one
        // delivery at a time, each waiting for the other's commit on its keys.
        st = db.transaction([&](Connection& tx) { return apply_batch(tx, batch, outcomes, true); });
        m_transactions.fetch_add(1, std::memory_order_relaxed);
      }
      return st;
    };
    // A connection the server dropped while idle (a restart) is known lost only when the batch's first
    // statement fails: the batch is written once more on a new connection, so the first deliveries after
    // a restart are stored rather than answered 503. (Were a COMMIT lost instead, the second run finds
    // the batch's keys stored and answers them as repeats of the same events.)
    const bool was_healthy = db.healthy();
    Status st = write_batch();
    if (!st && st.error().code == ErrorCode::service_unavailable && was_healthy && !db.healthy()) st = write_batch();
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
        auto s = db.transaction([&](Connection& tx) { return apply_batch(tx, one, out, true); });
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
Status PgWebhookStore::apply_batch(Connection& tx, std::vector<Op>& ops, std::vector<IngestOutcome>& outcomes,
                                   bool per_delivery) {
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
  std::vector<std::size_t> ingests;
  for (const std::size_t i : order) {
    const Op& op = ops[i];
    switch (op.kind) {
      case Op::Kind::ingest:
        if (per_delivery) outcomes[i] = TRY(apply_ingest(tx, op.request, deltas, jobs));
        else ingests.push_back(i);
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
  if (!ingests.empty()) TRY(apply_ingests(tx, ops, ingests, outcomes, deltas, jobs));
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

namespace {

// A delivery's dedup keys, each once, sorted: the event key, the item keys, the aliases.
std::vector<std::string> keys_of(const IngestRequest& r) {
  std::vector<std::string> keys;
  keys.push_back(r.event_key);
  keys.insert(keys.end(), r.item_keys.begin(), r.item_keys.end());
  keys.insert(keys.end(), r.alias_keys.begin(), r.alias_keys.end());
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

// The rule of IngestRequest over `hit(key)` (the event holding a key, or null): with item keys, a
// repeat only when all are known (the first item's event); else the event key's, else the first alias's.
template <class Hit>
const std::string* original_of(const IngestRequest& r, Hit&& hit) {
  if (!r.item_keys.empty()) {
    const std::string* original = nullptr;
    for (const auto& k : r.item_keys) {
      const std::string* h = hit(k);
      if (!h) return nullptr;
      if (!original) original = h;
    }
    return original;
  }
  if (const std::string* h = hit(r.event_key)) return h;
  for (const auto& k : r.alias_keys)
    if (const std::string* h = hit(k)) return h;
  return nullptr;
}

}  // namespace

// The batch's deliveries set-wise, a few statements whatever their number: one read of every key
// they carry; dedup decided in memory in their order (a key of an earlier new delivery of the batch
// counts as known); one INSERT of the new keys, which must all go in — a key another daemon stored
// since the read fails the batch (m_raced), and the writer runs it again one delivery at a time
// (apply_ingest); one INSERT of the new events.
Status PgWebhookStore::apply_ingests(Connection& tx, const std::vector<Op>& ops, const std::vector<std::size_t>& which,
                                     std::vector<IngestOutcome>& outcomes, std::map<std::string, CounterDelta>& deltas,
                                     NewJobs& jobs) {
  using Key = std::pair<std::string, std::string>;  // endpoint, key
  std::set<Key> wanted;
  for (const std::size_t i : which)
    for (auto& k : keys_of(ops[i].request)) wanted.insert({ops[i].request.endpoint_id, std::move(k)});
  std::map<Key, std::string> known;
  {
    std::vector<std::string> eps, keys;
    for (const auto& [e, k] : wanted) {
      eps.push_back(e);
      keys.push_back(k);
    }
    auto rows = TRY(tx.exec(
        "SELECT d.endpoint_id, d.event_key, d.event_id FROM webhook_dedup d JOIN unnest($1::text[], $2::text[]) AS "
        "x(ep, k) ON d.endpoint_id = x.ep AND d.event_key = x.k",
        {text_array(eps), text_array(keys)}));
    for (int r = 0; r < rows.size(); ++r) known[{rows.str(r, 0), rows.str(r, 1)}] = rows.str(r, 2);
  }
  std::map<Key, std::pair<std::string, int64_t>> fresh;  // new keys: event, received_at
  std::vector<std::size_t> stored;
  for (const std::size_t i : which) {
    const IngestRequest& r = ops[i].request;
    const auto hit = [&](const std::string& k) -> const std::string* {
      auto it = known.find({r.endpoint_id, k});
      return it == known.end() ? nullptr : &it->second;
    };
    if (const std::string* original = original_of(r, hit)) {
      outcomes[i] = IngestOutcome{true, *original};
      deltas[r.endpoint_id].duplicates += 1;
      continue;
    }
    for (auto& k : keys_of(r)) {
      Key key{r.endpoint_id, std::move(k)};
      if (known.contains(key)) continue;  // kept by its first event (INSERT OR IGNORE)
      known[key] = r.event_id;
      fresh[std::move(key)] = {r.event_id, r.received_at};
    }
    stored.push_back(i);
  }
  if (!fresh.empty()) {
    std::vector<std::string> eps, keys, events;
    std::vector<int64_t> at;
    for (const auto& [key, v] : fresh) {  // in key order: the locks in the same order in every daemon
      eps.push_back(key.first);
      keys.push_back(key.second);
      events.push_back(v.first);
      at.push_back(v.second);
    }
    auto rows = TRY(tx.exec(
        "INSERT INTO webhook_dedup(endpoint_id,event_key,event_id,received_at) SELECT * FROM unnest($1::text[], "
        "$2::text[], $3::text[], $4::bigint[]) ON CONFLICT DO NOTHING RETURNING 1",
        {text_array(eps), text_array(keys), text_array(events), bigint_array(at)}));
    if (static_cast<std::size_t>(rows.size()) != fresh.size()) {
      m_raced = true;
      return fail(ErrorCode::conflict, "another daemon stored a key of this batch meanwhile");
    }
  }
  if (stored.empty()) return {};
  Query q;
  q.sql =
      "INSERT INTO webhook_events(id,endpoint_id,user_id,provider,event_key,event_type,headers,body,received_at) "
      "VALUES";
  for (std::size_t n = 0; n < stored.size(); ++n) {
    const IngestRequest& r = ops[stored[n]].request;
    q.sql += std::string(n ? "," : "") + "(" + q.p(r.event_id) + "," + q.p(r.endpoint_id) + "," + q.p(r.user_id) + "," +
             q.p(std::string(to_string(r.provider))) + "," + q.p(r.event_key) + "," + q.p(r.event_type) + "," +
             q.p(r.headers) + "," + q.p(Param::bytes(r.body)) + "," + q.p(static_cast<int64_t>(r.received_at)) + ")";
    jobs.add_stored(r, deltas);
    outcomes[stored[n]] = IngestOutcome{false, r.event_id};
  }
  TRY(tx.exec(q.sql, q.params));
  return {};
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
  jobs.add_stored(r, deltas);
  outcome.event_id = r.event_id;
  return outcome;
}

// Inside the batch's transaction, in endpoint order (two daemons' batches lock the same rows in the
// same order, so they queue rather than deadlock).
void PgWebhookStore::NewJobs::add_stored(const IngestRequest& r, std::map<std::string, CounterDelta>& deltas) {
  ids.push_back(r.job_id);
  event_ids.push_back(r.event_id);
  endpoint_ids.push_back(r.endpoint_id);
  user_ids.push_back(r.user_id);
  at.push_back(r.received_at);
  auto& d = deltas[r.endpoint_id];
  d.received += 1;
  d.last_delivery_at = std::max(d.last_delivery_at, r.received_at);
}

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

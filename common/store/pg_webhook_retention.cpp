// Retention of webhook events in the PostgreSQL store (SPEC §9 "Retention"; the contract is in
// webhook_store.hpp, the walk is the SQLite store's, sqlite_webhook_retention.cpp). The candidates of a
// batch are one range of the index webhook_jobs_endpoint_due (endpoint, state succeeded or dead,
// next_attempt_at, seq), and each batch changes its events set-wise: one UPDATE (bodies) or two
// DELETEs (events and their jobs), never a statement per event. Job counts are kept by triggers on
// insert and update only, so a retention delete leaves them as they are: a retired job still counts
// in the state it ended in.
#include "pg_webhook_store.hpp"

#include <alumia/base/try.hpp>

#include <array>

namespace alumia::pg {
namespace {

constexpr std::array<std::string_view, 2> k_retired_states{"succeeded", "dead"};

struct Candidates {
  std::vector<std::string> event_ids;
  std::vector<int64_t> seqs;
  int64_t last_at = 0;
  int64_t last_seq = 0;
  std::size_t size() const { return seqs.size(); }
};

Result<Candidates> candidates(Connection& c, const std::string& endpoint_id, std::string_view state, int64_t before,
                              const RetentionCursor& after, std::size_t limit) {
  auto r =
      TRY(c.exec("SELECT seq,next_attempt_at,event_id FROM webhook_jobs WHERE endpoint_id=$1 AND state=$2 AND "
                 "next_attempt_at < $3 AND (next_attempt_at, seq) > ($4::bigint, $5::bigint) ORDER BY next_attempt_at, "
                 "seq LIMIT $6",
                 {endpoint_id, std::string(state), before, after.at, after.rowid, static_cast<int64_t>(limit)}));
  Candidates out;
  for (int i = 0; i < r.size(); ++i) {
    out.seqs.push_back(r.int64(i, 0));
    out.last_at = r.int64(i, 1);
    out.last_seq = r.int64(i, 0);
    out.event_ids.push_back(r.str(i, 2));
  }
  return out;
}

}  // namespace

Result<std::vector<EndpointRetention>> PgWebhookStore::retention_endpoints() {
  return with([&](Connection& c) -> Result<std::vector<EndpointRetention>> {
    auto r = TRY(c.exec("SELECT id,user_id,retention_days FROM webhook_endpoints"));
    std::vector<EndpointRetention> out;
    for (int i = 0; i < r.size(); ++i) out.push_back({r.str(i, 0), r.str(i, 1), r.opt_int64(i, 2)});
    return out;
  });
}

Result<RetentionBatch> PgWebhookStore::drop_event_bodies(const std::string& endpoint_id, int64_t before,
                                                         std::size_t limit, int64_t now) {
  RetentionBatch out;
  auto lease = m_pool->lease();
  if (!lease) return std::unexpected(lease.error());
  auto st = (*lease)->transaction([&](Connection& tx) -> Status {
    out = {};
    std::size_t left = limit;
    for (const auto state : k_retired_states) {
      if (left == 0) break;
      RetentionCursor mark;
      // FOR UPDATE: two daemons sweeping the same endpoint take turns, not the same range.
      auto m =
          TRY(tx.exec("SELECT at,job_seq FROM webhook_retention_marks WHERE endpoint_id=$1 AND state=$2 FOR UPDATE",
                      {endpoint_id, std::string(state)}));
      if (!m.empty()) {
        mark.at = m.int64(0, 0);
        mark.rowid = m.int64(0, 1);
      }
      const auto jobs = TRY(candidates(tx, endpoint_id, state, before, mark, left));
      if (jobs.size() == 0) continue;
      auto r = TRY(
          tx.exec("WITH gone AS (SELECT id, octet_length(body) + length(headers) AS n FROM webhook_events WHERE "
                  "id = ANY($1::text[]) AND received_at < $2 AND body_removed_at IS NULL AND NOT EXISTS (SELECT 1 FROM "
                  "webhook_jobs j WHERE j.event_id = webhook_events.id AND j.state IN ('queued','running','failed')) "
                  "FOR UPDATE), "
                  "emptied AS (UPDATE webhook_events e SET body='', headers='[]', body_removed_at=$3 FROM gone "
                  "WHERE e.id = gone.id RETURNING gone.n) "
                  "SELECT count(*), COALESCE(sum(n),0) FROM emptied",
                  {text_array(jobs.event_ids), before, now}));
      out.events += r.int64(0, 0);
      out.bytes += r.int64(0, 1);
      TRY(
          tx.exec("INSERT INTO webhook_retention_marks(endpoint_id,state,at,job_seq) VALUES($1,$2,$3,$4) "
                  "ON CONFLICT (endpoint_id,state) DO UPDATE SET at=EXCLUDED.at,job_seq=EXCLUDED.job_seq",
                  {endpoint_id, std::string(state), jobs.last_at, jobs.last_seq}));
      left -= jobs.size();
    }
    out.more = left == 0;
    return {};
  });
  if (!st) return std::unexpected(st.error());
  return out;
}

Result<RetentionBatch> PgWebhookStore::delete_events(const std::string& endpoint_id, int64_t before, std::size_t limit,
                                                     bool dry_run, RetentionCursor& cursor) {
  RetentionBatch out;
  const RetentionCursor start = cursor;
  auto work = [&](Connection& tx) -> Status {  // run again from the start when the transaction is retried
    out = {};
    cursor = start;
    if (cursor.state >= static_cast<int>(k_retired_states.size())) return {};
    const auto jobs = TRY(candidates(tx, endpoint_id, k_retired_states[cursor.state], before, cursor, limit));
    if (jobs.size() > 0) {
      // The candidates' events received before the cutoff none of whose jobs is pending or due at or
      // after the cutoff; a dry run counts an event at its first job only (it meets it once per job).
      auto r = TRY(tx.exec(
          std::string("SELECT e.id, octet_length(e.body) + length(e.headers), (SELECT count(*) FROM webhook_jobs j "
                      "WHERE j.event_id = e.id) FROM webhook_events e WHERE e.id = ANY($1::text[]) AND "
                      "e.received_at < $2 AND NOT EXISTS (SELECT 1 FROM webhook_jobs j WHERE j.event_id = e.id AND "
                      "NOT (j.state IN ('succeeded','dead') AND j.next_attempt_at < $2))") +
              (dry_run ? " AND (SELECT min(j.seq) FROM webhook_jobs j WHERE j.event_id = e.id) = ANY($3::bigint[])"
                       : " AND $3::bigint[] IS NOT NULL FOR UPDATE OF e"),
          {text_array(jobs.event_ids), before, bigint_array(jobs.seqs)}));
      std::vector<std::string> gone;
      for (int i = 0; i < r.size(); ++i) {
        gone.push_back(r.str(i, 0));
        out.events += 1;
        out.bytes += r.int64(i, 1);
        out.jobs += r.int64(i, 2);
      }
      if (!dry_run && !gone.empty()) {
        const std::string ids = text_array(gone);
        TRY(tx.exec("DELETE FROM webhook_jobs WHERE event_id = ANY($1::text[])", {ids}));
        TRY(tx.exec("DELETE FROM webhook_events WHERE id = ANY($1::text[])", {ids}));
      }
    }
    if (jobs.size() == limit) {
      cursor.at = jobs.last_at;
      cursor.rowid = jobs.last_seq;
    } else {
      const int next_state = cursor.state + 1;  // this state's range is done
      cursor = RetentionCursor{};
      cursor.state = next_state;
    }
    out.more = cursor.state < static_cast<int>(k_retired_states.size());
    return {};
  };
  auto lease = m_pool->lease();
  if (!lease) return std::unexpected(lease.error());
  auto st = (*lease)->transaction(work);
  if (!st) return std::unexpected(st.error());
  return out;
}

// PostgreSQL's (auto)vacuum makes deleted rows' space reusable inside the tables; nothing is given
// back here.
Result<int64_t> PgWebhookStore::incremental_vacuum(int64_t pages) {
  (void)pages;
  return int64_t{0};
}

Result<StoreSize> PgWebhookStore::store_size() {
  return with([&](Connection& c) -> Result<StoreSize> {
    auto r = TRY(
        c.exec("SELECT COALESCE(sum(pg_total_relation_size(c.oid)),0)::bigint FROM pg_class c JOIN pg_namespace n ON "
               "n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = current_schema() AND c.relname IN "
               "('webhook_endpoints','webhook_events','webhook_dedup','webhook_jobs','webhook_job_counts',"
               "'webhook_retention_marks')"));
    StoreSize out;
    out.file_bytes = r.int64(0, 0);
    return out;
  });
}

}  // namespace alumia::pg

// Retention of webhook events in the SQLite store (SPEC §9 "Retention"; the contract is in
// webhook_store.hpp). The candidates of a batch are one range of the index webhook_jobs_endpoint_due
// (endpoint, state succeeded or dead, next_attempt_at), read in (next_attempt_at, rowid) order:
//
//   drop_event_bodies  starts where the last batch for that (endpoint, state) stopped
//                      (webhook_retention_marks) and empties each candidate's event unless it has a
//                      job still to deliver. A job that ends later became due after the mark's time
//                      (the mark trails the cutoff, a window behind now), so a later batch meets it;
//                      only a job that stayed queued longer than the window (no target until then)
//                      ends behind the mark, and its event's body goes with its row.
//   delete_events      deletes an event with its jobs when every one of them is succeeded or dead and
//                      became due before the cutoff; what it deletes leaves the range, so the next pass
//                      starts at the range's start again and reads only the few kept for a pending job.
//
// The delete trigger of webhook_job_counts (migration 6) lowers the count of a deleted job's state;
// a retention delete is not a state change, so the same operation adds it back: the counts keep
// counting retired jobs in the state they ended in.
#include "sqlite_webhook_store.hpp"

#include <alumia/base/try.hpp>

#include <array>
#include <system_error>
#include <unordered_set>

namespace alumia::sqlite {
namespace {

constexpr std::array<std::string_view, 2> k_retired_states{"succeeded", "dead"};

struct Candidate {
  int64_t rowid = 0;
  int64_t at = 0;
  std::string event_id;
};

// Up to `limit` succeeded or dead jobs of the endpoint in `state` due before `before`, after `after`.
std::vector<Candidate> candidates(StatementCache& c, const std::string& endpoint_id, std::string_view state,
                                  int64_t before, const RetentionCursor& after, std::size_t limit) {
  auto q = c.use(
      "SELECT rowid,next_attempt_at,event_id FROM webhook_jobs INDEXED BY webhook_jobs_endpoint_due "
      "WHERE endpoint_id=?1 AND state=?2 AND next_attempt_at < ?3 AND next_attempt_at >= ?4 "
      "AND (next_attempt_at > ?4 OR rowid > ?5) ORDER BY next_attempt_at, rowid LIMIT ?6");
  q->bind(1, endpoint_id);
  q->bind(2, std::string(state));
  q->bind(3, static_cast<int64_t>(before));
  q->bind(4, static_cast<int64_t>(after.at));
  q->bind(5, static_cast<int64_t>(after.rowid));
  q->bind(6, static_cast<int64_t>(limit));
  std::vector<Candidate> out;
  while (q->executeStep())
    out.push_back({q->getColumn(0).getInt64(), q->getColumn(1).getInt64(), q->getColumn(2).getString()});
  return out;
}

// Bytes of the event's body and headers, when it was received before `before`; nullopt otherwise
// (or when it is gone).
std::optional<int64_t> event_bytes(StatementCache& c, const std::string& event_id, int64_t before) {
  auto q = c.use("SELECT length(body)+length(headers) FROM webhook_events WHERE id=? AND received_at < ?");
  q->bind(1, event_id);
  q->bind(2, static_cast<int64_t>(before));
  std::optional<int64_t> out;
  if (q->executeStep()) out = q->getColumn(0).getInt64();
  return out;
}

}  // namespace

Result<std::vector<EndpointRetention>> SqliteWebhookStore::retention_endpoints() {
  return read([&] {
    auto q = m_r.use("SELECT id,user_id,retention_days FROM webhook_endpoints");
    std::vector<EndpointRetention> out;
    while (q->executeStep())
      out.push_back({q->getColumn(0).getString(), q->getColumn(1).getString(), opt_int(q->getColumn(2))});
    return out;
  });
}

Result<RetentionBatch> SqliteWebhookStore::drop_event_bodies(const std::string& endpoint_id, int64_t before,
                                                             std::size_t limit, int64_t now) {
  RetentionBatch out;
  auto st = m_writer.write([&] {
    out = {};
    std::size_t left = limit;
    for (const auto state : k_retired_states) {
      if (left == 0) break;
      RetentionCursor mark;
      {
        auto q = m_w.use("SELECT at,job_rowid FROM webhook_retention_marks WHERE endpoint_id=? AND state=?");
        q->bind(1, endpoint_id);
        q->bind(2, std::string(state));
        if (q->executeStep()) {
          mark.at = q->getColumn(0).getInt64();
          mark.rowid = q->getColumn(1).getInt64();
        }
      }
      const auto jobs = candidates(m_w, endpoint_id, state, before, mark, left);
      for (const auto& j : jobs) {
        auto q = m_w.use(
            "UPDATE webhook_events SET body=x'',headers='[]',body_removed_at=?1 WHERE id=?2 AND received_at < ?3 "
            "AND body_removed_at IS NULL AND NOT EXISTS (SELECT 1 FROM webhook_jobs WHERE event_id=?2 "
            "AND state IN ('queued','running','failed'))");
        const auto bytes = event_bytes(m_w, j.event_id, before);
        q->bind(1, static_cast<int64_t>(now));
        q->bind(2, j.event_id);
        q->bind(3, static_cast<int64_t>(before));
        if (q->exec() == 1) {
          out.events += 1;
          out.bytes += bytes.value_or(0);
        }
      }
      if (!jobs.empty()) {
        auto q = m_w.use(
            "INSERT INTO webhook_retention_marks(endpoint_id,state,at,job_rowid) VALUES(?,?,?,?) "
            "ON CONFLICT (endpoint_id,state) DO UPDATE SET at=excluded.at,job_rowid=excluded.job_rowid");
        q->bind(1, endpoint_id);
        q->bind(2, std::string(state));
        q->bind(3, static_cast<int64_t>(jobs.back().at));
        q->bind(4, static_cast<int64_t>(jobs.back().rowid));
        q->exec();
      }
      left -= jobs.size();
    }
    out.more = left == 0;
  });
  if (!st) return std::unexpected(st.error());
  return out;
}

Result<RetentionBatch> SqliteWebhookStore::delete_events(const std::string& endpoint_id, int64_t before,
                                                         std::size_t limit, bool dry_run, RetentionCursor& cursor) {
  RetentionBatch out;
  const RetentionCursor start = cursor;
  auto work = [&](StatementCache& c) {  // run again from the start when the writer re-runs its batch
    out = {};
    cursor = start;
    if (cursor.state >= static_cast<int>(k_retired_states.size())) return;
    const auto jobs = candidates(c, endpoint_id, k_retired_states[cursor.state], before, cursor, limit);
    std::unordered_set<std::string> seen;
    for (const auto& j : jobs) {
      if (!seen.insert(j.event_id).second) continue;
      // The event's jobs: how many, how many are not retired or not due before the cutoff, its first.
      auto q = c.use(
          "SELECT COUNT(*),TOTAL(NOT (state IN ('succeeded','dead') AND next_attempt_at < ?2)),MIN(rowid) "
          "FROM webhook_jobs WHERE event_id=?1");
      q->bind(1, j.event_id);
      q->bind(2, static_cast<int64_t>(before));
      (void)q->executeStep();
      const int64_t n_jobs = q->getColumn(0).getInt64();
      const double kept = q->getColumn(1).getDouble();
      const int64_t first = q->getColumn(2).getInt64();
      if (kept > 0) continue;
      // A dry run meets an event once for each of its jobs: it counts it at its first job only.
      if (dry_run && first != j.rowid) continue;
      const auto bytes = event_bytes(c, j.event_id, before);
      if (!bytes) continue;  // received at or after the cutoff: kept
      out.events += 1;
      out.jobs += n_jobs;
      out.bytes += *bytes;
      if (dry_run) continue;
      // Not a state change: the counts the delete trigger lowers are raised again.
      auto counts = c.use(
          "INSERT INTO webhook_job_counts(endpoint_id,state,n) SELECT endpoint_id,state,COUNT(*) FROM webhook_jobs "
          "WHERE event_id=?1 GROUP BY endpoint_id,state ON CONFLICT (endpoint_id,state) DO UPDATE SET n = n + "
          "excluded.n");
      counts->bind(1, j.event_id);
      counts->exec();
      auto del_jobs = c.use("DELETE FROM webhook_jobs WHERE event_id=?");
      del_jobs->bind(1, j.event_id);
      del_jobs->exec();
      auto del_event = c.use("DELETE FROM webhook_events WHERE id=?");
      del_event->bind(1, j.event_id);
      del_event->exec();
    }
    if (jobs.size() == limit) {
      cursor.at = jobs.back().at;
      cursor.rowid = jobs.back().rowid;
    } else {
      const int next_state = cursor.state + 1;  // this state's range is done
      cursor = RetentionCursor{};
      cursor.state = next_state;
    }
    out.more = cursor.state < static_cast<int>(k_retired_states.size());
  };
  if (dry_run) {
    TRY(read([&] {
      work(m_r);
      return 0;
    }));
    return out;
  }
  auto st = m_writer.write([&] { work(m_w); });
  if (!st) return std::unexpected(st.error());
  return out;
}

Result<int64_t> SqliteWebhookStore::incremental_vacuum(int64_t pages) {
  return m_writer.write_count([&] {
    auto pragma = [&](const std::string& sql) {
      auto q = m_w.use(sql);
      int64_t v = 0;
      while (q->executeStep())
        if (q->getColumnCount() > 0) v = q->getColumn(0).getInt64();
      return v;
    };
    const int64_t page_size = pragma("PRAGMA page_size");
    const int64_t free_before = pragma("PRAGMA freelist_count");
    pragma("PRAGMA incremental_vacuum(" + std::to_string(pages) + ")");
    return (free_before - pragma("PRAGMA freelist_count")) * page_size;
  });
}

Result<StoreSize> SqliteWebhookStore::store_size() {
  StoreSize out;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(m_options.path.string() + suffix, ec);
    if (!ec) out.file_bytes += static_cast<int64_t>(n);
  }
  return read([&] {
    auto q = m_r.use("SELECT f.freelist_count * p.page_size FROM pragma_freelist_count f, pragma_page_size p");
    if (q->executeStep()) out.free_bytes = q->getColumn(0).getInt64();
    return out;
  });
}

}  // namespace alumia::sqlite

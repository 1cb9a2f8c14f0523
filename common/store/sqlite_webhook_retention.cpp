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
// Set-wise: a batch is a fixed handful of statements whatever its size. One SELECT reads the range
// joined to the events it may retire (with what each needs checked: received before the cutoff, no job
// still to deliver, every job retired); then one UPDATE (bodies) or one DELETE per table (rows) takes
// the chosen events by rowid, the list bound as one JSON array (`rowid IN (SELECT value FROM
// json_each(?))`). Statements per event were the sweep's cost (six or seven each): at a full-rate
// load it retired well under half of what arrived (bench/retention.sh).
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

// The batch's range as the CTE `r(job, at, event_id)`: up to ?6 jobs of endpoint ?1 in state ?2 that
// became due before ?3, after the position (?4 next_attempt_at, ?5 rowid).
const std::string k_range =
    "WITH r AS (SELECT rowid AS job,next_attempt_at AS at,event_id FROM webhook_jobs INDEXED BY "
    "webhook_jobs_endpoint_due WHERE endpoint_id=?1 AND state=?2 AND next_attempt_at < ?3 AND next_attempt_at >= ?4 "
    "AND (next_attempt_at > ?4 OR rowid > ?5) ORDER BY next_attempt_at, rowid LIMIT ?6) ";

// The range joined to the events whose body may go: received before the cutoff, not emptied yet, no job
// still to deliver. e.rowid is NULL for a job whose event stays.
const std::string k_bodies_sql =
    k_range +
    "SELECT r.job,r.at,e.rowid,length(e.body)+length(e.headers) FROM r LEFT JOIN webhook_events e "
    "ON e.id=r.event_id AND e.received_at < ?3 AND e.body_removed_at IS NULL AND NOT EXISTS (SELECT 1 FROM "
    "webhook_jobs p WHERE p.event_id=e.id AND p.state IN ('queued','running','failed'))";

// The range joined to the events that may go: received before the cutoff, every job retired before it;
// with each one's jobs (how many, the first).
const std::string k_rows_sql =
    k_range +
    "SELECT r.job,r.at,e.rowid,length(e.body)+length(e.headers),"
    "(SELECT COUNT(*) FROM webhook_jobs WHERE event_id=e.id),(SELECT MIN(rowid) FROM webhook_jobs WHERE event_id=e.id) "
    "FROM r LEFT JOIN webhook_events e ON e.id=r.event_id AND e.received_at < ?3 AND NOT EXISTS (SELECT 1 FROM "
    "webhook_jobs k WHERE k.event_id=e.id AND NOT (k.state IN ('succeeded','dead') AND k.next_attempt_at < ?3))";

// The chosen events, bound as one JSON array of rowids.
constexpr const char* k_chosen = "(SELECT value FROM json_each(?1))";

void bind_range(SQLite::Statement& q, const std::string& endpoint_id, std::string_view state, int64_t before,
                const RetentionCursor& after, std::size_t limit) {
  q.bind(1, endpoint_id);
  q.bind(2, std::string(state));
  q.bind(3, static_cast<int64_t>(before));
  q.bind(4, static_cast<int64_t>(after.at));
  q.bind(5, static_cast<int64_t>(after.rowid));
  q.bind(6, static_cast<int64_t>(limit));
}

// What a batch's SELECT found.
struct Range {
  std::size_t jobs = 0;  // rows of the range read
  RetentionCursor last;  // the last of them (at, rowid)
  std::string chosen;    // the chosen events' rowids, a JSON array
  RetentionBatch counted;

  void saw(int64_t job, int64_t at) {
    ++jobs;
    if (jobs == 1 || at > last.at || (at == last.at && job > last.rowid)) {
      last.at = at;
      last.rowid = job;
    }
  }
  void choose(int64_t rowid) {
    chosen += chosen.empty() ? "[" : ",";
    chosen += std::to_string(rowid);
  }
  bool empty() const { return chosen.empty(); }
  std::string array() const { return chosen.empty() ? "[]" : chosen + "]"; }
};

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
      Range range;
      {
        auto q = m_w.use(k_bodies_sql);
        bind_range(*q, endpoint_id, state, before, mark, left);
        std::unordered_set<int64_t> seen;  // an event with two jobs in the range is emptied once
        while (q->executeStep()) {
          range.saw(q->getColumn(0).getInt64(), q->getColumn(1).getInt64());
          if (q->getColumn(2).isNull() || !seen.insert(q->getColumn(2).getInt64()).second) continue;
          range.choose(q->getColumn(2).getInt64());
          range.counted.events += 1;
          range.counted.bytes += q->getColumn(3).getInt64();
        }
      }
      if (!range.empty()) {
        auto q =
            m_w.use(std::string("UPDATE webhook_events SET body=x'',headers='[]',body_removed_at=?2 WHERE rowid IN ") +
                    k_chosen);
        q->bind(1, range.array());
        q->bind(2, static_cast<int64_t>(now));
        q->exec();
        out.events += range.counted.events;
        out.bytes += range.counted.bytes;
      }
      if (range.jobs > 0) {
        auto q = m_w.use(
            "INSERT INTO webhook_retention_marks(endpoint_id,state,at,job_rowid) VALUES(?,?,?,?) "
            "ON CONFLICT (endpoint_id,state) DO UPDATE SET at=excluded.at,job_rowid=excluded.job_rowid");
        q->bind(1, endpoint_id);
        q->bind(2, std::string(state));
        q->bind(3, static_cast<int64_t>(range.last.at));
        q->bind(4, static_cast<int64_t>(range.last.rowid));
        q->exec();
      }
      left -= range.jobs;
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
    Range range;
    {
      auto q = c.use(k_rows_sql);
      bind_range(*q, endpoint_id, k_retired_states[cursor.state], before, cursor, limit);
      std::unordered_set<int64_t> seen;
      while (q->executeStep()) {
        const int64_t job = q->getColumn(0).getInt64();
        range.saw(job, q->getColumn(1).getInt64());
        if (q->getColumn(2).isNull()) continue;  // kept
        // A dry run meets an event once for each of its jobs, in this batch or a later one: it counts it
        // at its first job only. A real one deletes it at the first it meets.
        if (dry_run ? q->getColumn(5).getInt64() != job : !seen.insert(q->getColumn(2).getInt64()).second) continue;
        range.choose(q->getColumn(2).getInt64());
        range.counted.events += 1;
        range.counted.bytes += q->getColumn(3).getInt64();
        range.counted.jobs += q->getColumn(4).getInt64();
      }
    }
    out = range.counted;
    if (!dry_run && !range.empty()) {
      const std::string chosen = range.array();
      const std::string jobs_of_chosen =
          std::string("SELECT id FROM webhook_events WHERE rowid IN ") + k_chosen;  // their ids, for their jobs
      // Not a state change: the counts the delete trigger lowers are raised again.
      auto counts = c.use(
          "INSERT INTO webhook_job_counts(endpoint_id,state,n) SELECT endpoint_id,state,COUNT(*) FROM webhook_jobs "
          "WHERE event_id IN (" +
          jobs_of_chosen +
          ") GROUP BY endpoint_id,state ON CONFLICT (endpoint_id,state) DO UPDATE SET n = n + excluded.n");
      counts->bind(1, chosen);
      counts->exec();
      auto del_jobs = c.use("DELETE FROM webhook_jobs WHERE event_id IN (" + jobs_of_chosen + ")");
      del_jobs->bind(1, chosen);
      del_jobs->exec();
      auto del_events = c.use(std::string("DELETE FROM webhook_events WHERE rowid IN ") + k_chosen);
      del_events->bind(1, chosen);
      del_events->exec();
    }
    if (range.jobs == limit) {
      cursor.at = range.last.at;
      cursor.rowid = range.last.rowid;
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

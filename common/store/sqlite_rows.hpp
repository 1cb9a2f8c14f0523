#pragma once
// Rows of the SQLite stores (private to the store): the keyset cursor every list query pages with
// (connections, endpoints, events, jobs), and the columns and row readers of the webhook tables.
#include "sqlite_util.hpp"

#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace alumia::sqlite {

// Keyset pagination "ORDER BY <time> DESC, <id> DESC" shared by the list queries: the caller builds
// the filter, condition() adds the cursor's condition and order() the order and limit; bind_cursor()
// binds the cursor after the filter's own parameters, page() the limit, and cuts the extra row that
// tells whether there is a next page. The cursor is encode_cursor(time, id) of the page's last row.
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
  // Binds the cursor values from index i on; returns the next free index (the limit's).
  int bind_cursor(SQLite::Statement& q, int i) const {
    if (m_after) {
      q.bind(i++, static_cast<int64_t>(m_after->first));
      q.bind(i++, static_cast<int64_t>(m_after->first));
      q.bind(i++, m_after->second);
    }
    return i;
  }
  // One page from pages of several ranges read with this keyset (the same cursor and limit), each newest
  // first: the newest `limit` rows of them all, and a next cursor when any range had more or rows were cut.
  // `key` gives a row's (time, id), as in page(). For listings that merge ranges of an index instead of
  // keeping an index of their own (events over a user's endpoints, jobs over the states).
  template <class T, class Key>
  PageResult<T> merge(std::vector<PageResult<T>> parts, Key key) const {
    PageResult<T> out;
    bool more = false;
    for (auto& part : parts) {
      more = more || part.next_cursor.has_value();
      for (auto& item : part.items) out.items.push_back(std::move(item));
    }
    std::sort(out.items.begin(), out.items.end(), [&](const T& a, const T& b) { return key(a) > key(b); });
    if (out.items.size() > m_limit) {
      out.items.resize(m_limit);
      more = true;
    }
    if (more && !out.items.empty()) {
      const auto [t, id] = key(out.items.back());
      out.next_cursor = encode_cursor(t, id);
    }
    return out;
  }

  // Binds the limit at `limit_index`, runs `q` and reads its rows with `read`; `key` gives a row's
  // (time, id) for the next cursor.
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

// SELECT lists whose columns the readers below expect, in this order. The event list ends before
// its FROM (webhook_events e): callers add headers and body when they want them.
extern const char* const k_endpoint_cols;
extern const char* const k_job_cols;
extern const char* const k_event_cols;

// The admin summary's queries (SPEC §9), named so that a test can EXPLAIN them: neither may scan
// webhook_jobs. The user's rows of webhook_job_counts (migration 6), and an endpoint's queued job
// that has waited longest (the index webhook_jobs_endpoint_due).
extern const char* const k_job_counts_sql;
extern const char* const k_oldest_queued_sql;

// The relay's statements on webhook_jobs, named for the same test: each reads one endpoint's range of
// webhook_jobs_endpoint_due (migration 10 dropped the index of all endpoints' jobs by state). Its due jobs
// in a state (?1 endpoint, ?2 state, ?3 now, ?4 limit; the columns of k_job_cols), the earliest next attempt
// in a state (?1, ?2), and the start's requeue of the jobs left running (?1 next attempt, ?2 updated).
extern const char* const k_claim_sql;
extern const char* const k_next_due_sql;
extern const char* const k_requeue_running_sql;

WebhookEndpointRecord read_endpoint(SQLite::Statement& q);
WebhookJob read_job(SQLite::Statement& q);
WebhookEvent read_event(SQLite::Statement& q);  // the columns of k_event_cols; not headers or body

}  // namespace alumia::sqlite

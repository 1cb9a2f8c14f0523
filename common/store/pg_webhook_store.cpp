// PostgreSQL implementation of WebhookStore: the schema, opening it, and the SQL of endpoints, events,
// jobs and the relay's claims (pg_webhook_store.hpp names the parts).
#include "pg_webhook_store.hpp"

#include "pg_schema.hpp"

#include <alumia/base/try.hpp>
#include <alumia/store/store.hpp>

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <tuple>

namespace alumia {
namespace pg {

namespace {

// The "webhooks" part's migrations (pg_schema.hpp: append only). Ids and keys compare byte-wise
// (COLLATE "C"), as in SQLite, so pages and cursors come out in the same order on both backends.
// Times are milliseconds since the epoch (bigint), as in SQLite.
constexpr std::array<std::string_view, 1> k_migrations{
    // 1: endpoints, events, the dedup set (8-day TTL on received_at), relay jobs under a lease, job
    // counts per (endpoint, state) kept by statement-level triggers (one row change per statement and
    // state, not per job), the retention sweep's marks, and a NOTIFY of every endpoint insert and
    // descriptive update (not of the counters) to k_pg_endpoint_channel, sent at commit.
    // No delete trigger: the store deletes jobs only for retention, which must not lower the counts.
    R"sql(
CREATE TABLE webhook_endpoints (
  id text COLLATE "C" PRIMARY KEY, user_id text NOT NULL, provider text NOT NULL, connection_id text,
  label text NOT NULL DEFAULT '', status text NOT NULL, relay_to text, config text NOT NULL DEFAULT '{}',
  max_body_bytes bigint NOT NULL, previous_secret_expires_at bigint,
  received bigint NOT NULL DEFAULT 0, duplicates bigint NOT NULL DEFAULT 0, rejected bigint NOT NULL DEFAULT 0,
  verification_failures bigint NOT NULL DEFAULT 0, rate_limited bigint NOT NULL DEFAULT 0,
  last_delivery_at bigint, last_error_code text, last_error_message text, last_error_at bigint,
  rate_per_second bigint, rate_burst bigint, retention_days bigint,
  created_at bigint NOT NULL, updated_at bigint NOT NULL, deleted_at bigint);
CREATE INDEX webhook_endpoints_user ON webhook_endpoints(user_id, created_at, id);
CREATE TABLE webhook_events (
  id text COLLATE "C" PRIMARY KEY, endpoint_id text COLLATE "C" NOT NULL, user_id text NOT NULL,
  provider text NOT NULL, event_key text NOT NULL, event_type text NOT NULL DEFAULT '',
  headers text NOT NULL DEFAULT '[]', body bytea NOT NULL, received_at bigint NOT NULL, body_removed_at bigint);
CREATE INDEX webhook_events_user ON webhook_events(user_id, received_at, id);
CREATE INDEX webhook_events_endpoint ON webhook_events(endpoint_id, received_at, id);
CREATE TABLE webhook_dedup (
  endpoint_id text COLLATE "C" NOT NULL, event_key text COLLATE "C" NOT NULL, event_id text NOT NULL,
  received_at bigint NOT NULL, PRIMARY KEY (endpoint_id, event_key));
CREATE INDEX webhook_dedup_received ON webhook_dedup(received_at);
CREATE TABLE webhook_jobs (
  seq bigserial UNIQUE, id text COLLATE "C" PRIMARY KEY, event_id text COLLATE "C" NOT NULL,
  endpoint_id text COLLATE "C" NOT NULL, user_id text NOT NULL, state text NOT NULL,
  attempts bigint NOT NULL DEFAULT 0, next_attempt_at bigint NOT NULL, last_status bigint, last_error text,
  created_at bigint NOT NULL, updated_at bigint NOT NULL, finished_at bigint, lease_until bigint, holder text);
CREATE INDEX webhook_jobs_endpoint_due ON webhook_jobs(endpoint_id, state, next_attempt_at, seq);
CREATE INDEX webhook_jobs_due ON webhook_jobs(state, next_attempt_at);
CREATE INDEX webhook_jobs_user ON webhook_jobs(user_id, created_at, id);
CREATE INDEX webhook_jobs_user_state ON webhook_jobs(user_id, state, created_at, id);
CREATE INDEX webhook_jobs_event ON webhook_jobs(event_id, created_at, seq);
CREATE TABLE webhook_job_counts (
  endpoint_id text COLLATE "C" NOT NULL, state text NOT NULL, n bigint NOT NULL, PRIMARY KEY (endpoint_id, state));
CREATE TABLE webhook_retention_marks (
  endpoint_id text COLLATE "C" NOT NULL, state text NOT NULL, at bigint NOT NULL, job_seq bigint NOT NULL,
  PRIMARY KEY (endpoint_id, state));
CREATE FUNCTION webhook_jobs_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO webhook_job_counts(endpoint_id, state, n)
    SELECT endpoint_id, state, count(*) FROM new_jobs GROUP BY endpoint_id, state ORDER BY endpoint_id, state
    ON CONFLICT (endpoint_id, state) DO UPDATE SET n = webhook_job_counts.n + EXCLUDED.n;
  RETURN NULL;
END $$;
CREATE FUNCTION webhook_jobs_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO webhook_job_counts(endpoint_id, state, n)
    SELECT endpoint_id, state, sum(d) FROM (
      SELECT o.endpoint_id, o.state, -1 AS d FROM old_jobs o JOIN new_jobs n ON n.seq = o.seq WHERE o.state <> n.state
      UNION ALL
      SELECT n.endpoint_id, n.state, 1 AS d FROM old_jobs o JOIN new_jobs n ON n.seq = o.seq WHERE o.state <> n.state) x
    GROUP BY endpoint_id, state ORDER BY endpoint_id, state
    ON CONFLICT (endpoint_id, state) DO UPDATE SET n = webhook_job_counts.n + EXCLUDED.n;
  RETURN NULL;
END $$;
CREATE TRIGGER webhook_jobs_count_insert AFTER INSERT ON webhook_jobs REFERENCING NEW TABLE AS new_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_jobs_count_insert();
CREATE TRIGGER webhook_jobs_count_update AFTER UPDATE ON webhook_jobs
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_jobs_count_update();
CREATE FUNCTION webhook_endpoints_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('alumia_webhook_endpoints', NEW.id);
  RETURN NULL;
END $$;
CREATE TRIGGER webhook_endpoints_notify
  AFTER INSERT OR UPDATE OF label, status, relay_to, config, max_body_bytes, previous_secret_expires_at,
    updated_at, deleted_at, rate_per_second, rate_burst, retention_days ON webhook_endpoints
  FOR EACH ROW EXECUTE FUNCTION webhook_endpoints_notify();
)sql",
};

// Only the daemon writes these rows; a provider it does not know is damage, never a verifier to guess.
Result<Provider> provider_column(const Rows& r, int row, int col) {
  if (auto p = parse_provider(r.text(row, col))) return *p;
  return fail(ErrorCode::internal, "unknown provider '" + r.str(row, col) + "' in the webhook store");
}

constexpr const char* k_endpoint_cols =
    "SELECT id,user_id,provider,connection_id,label,status,relay_to,config,max_body_bytes,previous_secret_expires_at,"
    "received,duplicates,rejected,verification_failures,last_delivery_at,created_at,updated_at,deleted_at,"
    "last_error_code,last_error_message,last_error_at,rate_per_second,rate_burst,rate_limited,retention_days FROM "
    "webhook_endpoints";
constexpr const char* k_job_cols =
    "SELECT id,event_id,endpoint_id,user_id,state,attempts,next_attempt_at,last_status,last_error,created_at,"
    "updated_at,finished_at FROM webhook_jobs";
constexpr const char* k_job_returning =
    " RETURNING id,event_id,endpoint_id,user_id,state,attempts,next_attempt_at,last_status,last_error,created_at,"
    "updated_at,finished_at";
// The newest job of an event gives its jobState.
constexpr const char* k_event_cols =
    "SELECT e.id,e.endpoint_id,e.user_id,e.provider,e.event_key,e.event_type,e.received_at,"
    "COALESCE((SELECT j.state FROM webhook_jobs j WHERE j.event_id=e.id ORDER BY j.created_at DESC, j.seq DESC "
    "LIMIT 1),'') AS job_state,e.body_removed_at";

Result<WebhookEndpointRecord> read_endpoint(const Rows& q, int i) {
  WebhookEndpointRecord e;
  e.id = q.str(i, 0);
  e.user_id = q.str(i, 1);
  e.provider = TRY(provider_column(q, i, 2));
  e.connection_id = q.opt_str(i, 3);
  e.label = q.str(i, 4);
  // Text we did not write reads as the state that does least: an endpoint that refuses.
  e.status = parse_endpoint_status(q.text(i, 5)).value_or(EndpointStatus::disabled);
  e.relay_to = q.opt_str(i, 6);
  e.config = q.str(i, 7);
  e.max_body_bytes = q.int64(i, 8);
  e.previous_secret_expires_at = q.opt_int64(i, 9);
  e.received = q.int64(i, 10);
  e.duplicates = q.int64(i, 11);
  e.rejected = q.int64(i, 12);
  e.verification_failures = q.int64(i, 13);
  e.last_delivery_at = q.opt_int64(i, 14);
  e.created_at = q.int64(i, 15);
  e.updated_at = q.int64(i, 16);
  e.deleted_at = q.opt_int64(i, 17);
  if (const auto at = q.opt_int64(i, 20)) e.last_error = EndpointError{q.str(i, 18), q.str(i, 19), *at};
  const auto per_second = q.opt_int64(i, 21);
  const auto burst = q.opt_int64(i, 22);
  if (per_second && burst) e.rate_limit = RateLimit{*per_second, *burst};
  e.rate_limited = q.int64(i, 23);
  e.retention_days = q.opt_int64(i, 24);
  return e;
}

WebhookJob read_job(const Rows& q, int i) {
  WebhookJob j;
  j.id = q.str(i, 0);
  j.event_id = q.str(i, 1);
  j.endpoint_id = q.str(i, 2);
  j.user_id = q.str(i, 3);
  j.state = parse_job_state(q.text(i, 4)).value_or(JobState::dead);
  j.attempts = q.int64(i, 5);
  j.next_attempt_at = q.int64(i, 6);
  j.last_status = q.opt_int64(i, 7);
  j.last_error = q.opt_str(i, 8);
  j.created_at = q.int64(i, 9);
  j.updated_at = q.int64(i, 10);
  j.finished_at = q.opt_int64(i, 11);
  return j;
}

Result<WebhookEvent> read_event(const Rows& q, int i) {
  WebhookEvent e;
  e.id = q.str(i, 0);
  e.endpoint_id = q.str(i, 1);
  e.user_id = q.str(i, 2);
  e.provider = TRY(provider_column(q, i, 3));
  e.event_key = q.str(i, 4);
  e.event_type = q.str(i, 5);
  e.received_at = q.int64(i, 6);
  e.job_state = parse_job_state(q.text(i, 7));  // '': no job
  e.body_removed_at = q.opt_int64(i, 8);
  return e;
}

// Keyset pagination "ORDER BY <time> DESC, <id> DESC" (the SQLite store's, with numbered parameters).
struct Keyset {
  std::size_t limit = 0;
  std::optional<std::pair<int64_t, std::string>> after;

  static Result<Keyset> of(const Page& page) {
    Keyset k;
    k.limit = page.limit;
    if (page.cursor) {
      k.after = decode_cursor(*page.cursor);
      if (!k.after) return fail(ErrorCode::bad_request, "cursor is not valid; pass the nextCursor of a previous page");
    }
    return k;
  }
  // Appends the cursor's condition, the order and the limit (one row more, to tell a next page).
  void finish(Query& q, const std::string& time_col, const std::string& id_col) const {
    if (after) {
      const auto t = q.p(after->first);
      q.sql += " AND (" + time_col + " < " + t + " OR (" + time_col + " = " + t + " AND " + id_col + " < " +
               q.p(after->second) + "))";
    }
    q.sql += " ORDER BY " + time_col + " DESC, " + id_col + " DESC LIMIT " + q.p(static_cast<int64_t>(limit + 1));
  }
  template <class T, class Key>
  PageResult<T> cut(std::vector<T> items, Key key) const {
    PageResult<T> out;
    out.items = std::move(items);
    if (out.items.size() > limit) {
      out.items.resize(limit);
      const auto [t, id] = key(out.items.back());
      out.next_cursor = encode_cursor(t, id);
    }
    return out;
  }
};

std::vector<Param> endpoint_params(const WebhookEndpointRecord& e) {
  return {e.id,
          e.user_id,
          std::string(to_string(e.provider)),
          e.connection_id,
          e.label,
          std::string(to_string(e.status)),
          e.relay_to,
          e.config,
          static_cast<int64_t>(e.max_body_bytes),
          e.previous_secret_expires_at,
          static_cast<int64_t>(e.created_at),
          static_cast<int64_t>(e.updated_at),
          e.deleted_at,
          e.rate_limit ? Param(e.rate_limit->per_second) : Param(),
          e.rate_limit ? Param(e.rate_limit->burst) : Param(),
          e.retention_days};
}

std::string random_holder() {
  std::array<unsigned char, 8> raw{};
  RAND_bytes(raw.data(), static_cast<int>(raw.size()));
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out = "daemon-";
  for (unsigned char c : raw) {
    out += k_hex[c >> 4];
    out += k_hex[c & 15];
  }
  return out;
}

Status ok(const Result<Rows>& r) {
  if (!r) return std::unexpected(r.error());
  return {};
}

}  // namespace

std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string bigint_array(const std::vector<int64_t>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + std::to_string(items[i]);
  return out + "}";
}

// ---- endpoints ----

Status PgWebhookStore::insert_endpoint(const WebhookEndpointRecord& e) {
  return with([&](Connection& c) -> Status {
    return ok(
        c.exec("INSERT INTO webhook_endpoints(id,user_id,provider,connection_id,label,status,relay_to,config,"
               "max_body_bytes,previous_secret_expires_at,created_at,updated_at,deleted_at,rate_per_second,rate_burst,"
               "retention_days) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
               endpoint_params(e)));
  });
}

Status PgWebhookStore::update_endpoint(const WebhookEndpointRecord& e) {
  return with([&](Connection& c) -> Status {
    auto r = TRY(
        c.exec("UPDATE webhook_endpoints SET label=$1,status=$2,relay_to=$3,config=$4,max_body_bytes=$5,"
               "previous_secret_expires_at=$6,updated_at=$7,deleted_at=$8,rate_per_second=$9,rate_burst=$10,"
               "retention_days=$11 WHERE id=$12",
               {e.label, std::string(to_string(e.status)), e.relay_to, e.config, static_cast<int64_t>(e.max_body_bytes),
                e.previous_secret_expires_at, static_cast<int64_t>(e.updated_at), e.deleted_at,
                e.rate_limit ? Param(e.rate_limit->per_second) : Param(),
                e.rate_limit ? Param(e.rate_limit->burst) : Param(), e.retention_days, e.id}));
    if (r.affected() != 1) return fail(ErrorCode::not_found, "endpoint " + e.id + " not found");
    return {};
  });
}

Result<std::optional<WebhookEndpointRecord>> PgWebhookStore::find_endpoint(const std::string& id) {
  settle();
  return with([&](Connection& c) -> Result<std::optional<WebhookEndpointRecord>> {
    auto r = TRY(c.exec(std::string(k_endpoint_cols) + " WHERE id=$1", {id}));
    if (r.empty()) return std::nullopt;
    return TRY(read_endpoint(r, 0));
  });
}

Result<std::optional<std::vector<std::string>>> PgWebhookStore::endpoint_ids() {
  return with([&](Connection& c) -> Result<std::optional<std::vector<std::string>>> {
    auto r = TRY(c.exec("SELECT id FROM webhook_endpoints"));
    std::vector<std::string> ids;
    for (int i = 0; i < r.size(); ++i) ids.push_back(r.str(i, 0));
    return ids;
  });
}

Result<PageResult<WebhookEndpointRecord>> PgWebhookStore::list_endpoints(const std::string& user_id, const Page& page) {
  auto ks = TRY(Keyset::of(page));
  settle();
  return with([&](Connection& c) -> Result<PageResult<WebhookEndpointRecord>> {
    Query q;
    q.sql = std::string(k_endpoint_cols) + " WHERE user_id=" + q.p(user_id) + " AND deleted_at IS NULL";
    ks.finish(q, "created_at", "id");
    auto r = TRY(c.exec(q.sql, q.params));
    std::vector<WebhookEndpointRecord> items;
    for (int i = 0; i < r.size(); ++i) items.push_back(TRY(read_endpoint(r, i)));
    return ks.cut(std::move(items), [](const auto& e) { return std::make_pair(e.created_at, e.id); });
  });
}

// ---- events ----

Result<PageResult<WebhookEvent>> PgWebhookStore::list_events(const EventFilter& f, const Page& page) {
  if (f.job_state) return list_events_in_state(f, page);
  auto ks = TRY(Keyset::of(page));
  settle();
  return with([&](Connection& c) -> Result<PageResult<WebhookEvent>> {
    Query q;
    q.sql = std::string(k_event_cols) + " FROM webhook_events e WHERE e.user_id=" + q.p(f.user_id);
    if (f.endpoint_id) q.sql += " AND e.endpoint_id=" + q.p(*f.endpoint_id);
    if (f.provider) q.sql += " AND e.provider=" + q.p(std::string(to_string(*f.provider)));
    if (f.since) q.sql += " AND e.received_at >= " + q.p(*f.since);
    ks.finish(q, "e.received_at", "e.id");
    auto r = TRY(c.exec(q.sql, q.params));
    std::vector<WebhookEvent> items;
    for (int i = 0; i < r.size(); ++i) items.push_back(TRY(read_event(r, i)));
    return ks.cut(std::move(items), [](const auto& e) { return std::make_pair(e.received_at, e.id); });
  });
}

// The events whose newest job is in the state: the user's jobs in that state (webhook_jobs_user_state),
// newest first, that are their event's newest job; listed by that job's creation, as in SQLite.
Result<PageResult<WebhookEvent>> PgWebhookStore::list_events_in_state(const EventFilter& f, const Page& page) {
  auto ks = TRY(Keyset::of(page));
  settle();
  return with([&](Connection& c) -> Result<PageResult<WebhookEvent>> {
    Query q;
    q.sql =
        "SELECT e.id,e.endpoint_id,e.user_id,e.provider,e.event_key,e.event_type,e.received_at,j.state,"
        "e.body_removed_at,j.created_at,j.id FROM webhook_jobs j JOIN webhook_events e ON e.id=j.event_id "
        "WHERE j.user_id=" +
        q.p(f.user_id) + " AND j.state=" + q.p(std::string(to_string(*f.job_state)));
    if (f.endpoint_id) q.sql += " AND j.endpoint_id=" + q.p(*f.endpoint_id);
    if (f.provider) q.sql += " AND e.provider=" + q.p(std::string(to_string(*f.provider)));
    if (f.since) {
      const auto s = q.p(*f.since);
      q.sql += " AND j.created_at >= " + s + " AND e.received_at >= " + s;
    }
    q.sql +=
        " AND NOT EXISTS (SELECT 1 FROM webhook_jobs k WHERE k.event_id=j.event_id AND (k.created_at > j.created_at "
        "OR (k.created_at = j.created_at AND k.seq > j.seq)))";
    ks.finish(q, "j.created_at", "j.id");
    auto r = TRY(c.exec(q.sql, q.params));
    using Row = std::pair<WebhookEvent, std::pair<int64_t, std::string>>;
    std::vector<Row> rows;
    for (int i = 0; i < r.size(); ++i) rows.push_back(Row{TRY(read_event(r, i)), {r.int64(i, 9), r.str(i, 10)}});
    auto cut = ks.cut(std::move(rows), [](const Row& row) { return row.second; });
    PageResult<WebhookEvent> out;
    out.next_cursor = std::move(cut.next_cursor);
    for (auto& row : cut.items) out.items.push_back(std::move(row.first));
    return out;
  });
}

Result<std::optional<WebhookEvent>> PgWebhookStore::find_event(const std::string& id, bool with_body) {
  return with([&](Connection& c) -> Result<std::optional<WebhookEvent>> {
    auto r = TRY(c.exec(std::string(k_event_cols) + ",e.headers," + (with_body ? "e.body" : "''::bytea") +
                            " FROM webhook_events e WHERE e.id=$1",
                        {id}));
    if (r.empty()) return std::nullopt;
    WebhookEvent e = TRY(read_event(r, 0));
    e.headers = r.str(0, 9);
    e.body = r.bytes(0, 10);
    return e;
  });
}

// ---- jobs ----

Result<std::map<std::string, std::map<JobState, int64_t>>> PgWebhookStore::job_counts(const std::string& user_id) {
  settle();
  return with([&](Connection& c) -> Result<std::map<std::string, std::map<JobState, int64_t>>> {
    auto r = TRY(c.exec(
        "SELECT c.endpoint_id,c.state,c.n FROM webhook_endpoints e JOIN webhook_job_counts c ON c.endpoint_id=e.id "
        "WHERE e.user_id=$1",
        {user_id}));
    std::map<std::string, std::map<JobState, int64_t>> out;
    for (int i = 0; i < r.size(); ++i)
      if (const auto state = parse_job_state(r.text(i, 1))) out[r.str(i, 0)][*state] += r.int64(i, 2);
    return out;
  });
}

Result<std::optional<WebhookJob>> PgWebhookStore::oldest_queued_job(const std::string& endpoint_id) {
  settle();
  return with([&](Connection& c) -> Result<std::optional<WebhookJob>> {
    auto r = TRY(c.exec(
        std::string(k_job_cols) + " WHERE endpoint_id=$1 AND state='queued' ORDER BY next_attempt_at, seq LIMIT 1",
        {endpoint_id}));
    if (r.empty()) return std::nullopt;
    return read_job(r, 0);
  });
}

Status PgWebhookStore::insert_job(const WebhookJob& j) {
  return with([&](Connection& c) -> Status {
    return ok(
        c.exec("INSERT INTO webhook_jobs(id,event_id,endpoint_id,user_id,state,attempts,next_attempt_at,created_at,"
               "updated_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9)",
               {j.id, j.event_id, j.endpoint_id, j.user_id, std::string(to_string(j.state)),
                static_cast<int64_t>(j.attempts), static_cast<int64_t>(j.next_attempt_at),
                static_cast<int64_t>(j.created_at), static_cast<int64_t>(j.updated_at)}));
  });
}

Result<PageResult<WebhookJob>> PgWebhookStore::list_jobs(const JobFilter& f, const Page& page) {
  auto ks = TRY(Keyset::of(page));
  settle();
  return with([&](Connection& c) -> Result<PageResult<WebhookJob>> {
    Query q;
    q.sql = std::string(k_job_cols) + " WHERE user_id=" + q.p(f.user_id);
    if (f.state) q.sql += " AND state=" + q.p(std::string(to_string(*f.state)));
    if (f.event_id) q.sql += " AND event_id=" + q.p(*f.event_id);
    if (f.since) q.sql += " AND created_at >= " + q.p(*f.since);
    ks.finish(q, "created_at", "id");
    auto r = TRY(c.exec(q.sql, q.params));
    std::vector<WebhookJob> items;
    for (int i = 0; i < r.size(); ++i) items.push_back(read_job(r, i));
    return ks.cut(std::move(items), [](const auto& j) { return std::make_pair(j.created_at, j.id); });
  });
}

Result<std::optional<WebhookJob>> PgWebhookStore::find_job(const std::string& id) {
  settle();
  return with([&](Connection& c) -> Result<std::optional<WebhookJob>> {
    auto r = TRY(c.exec(std::string(k_job_cols) + " WHERE id=$1", {id}));
    if (r.empty()) return std::nullopt;
    return read_job(r, 0);
  });
}

namespace {
// A job whose event lost its body to retention cannot be delivered again.
constexpr const char* k_event_kept =
    "(SELECT e.body_removed_at FROM webhook_events e WHERE e.id=webhook_jobs.event_id) IS NULL";
}  // namespace

Result<bool> PgWebhookStore::retry_job(const std::string& id, int64_t now) {
  return with([&](Connection& c) -> Result<bool> {
    auto r = TRY(c.exec(std::string("UPDATE webhook_jobs SET state='queued',attempts=0,next_attempt_at=$1,"
                                    "updated_at=$1,finished_at=NULL,lease_until=NULL,holder=NULL "
                                    "WHERE id=$2 AND state IN ('queued','failed','dead') AND ") +
                            k_event_kept,
                        {now, id}));
    return r.affected() > 0;
  });
}

Result<int64_t> PgWebhookStore::retry_jobs(const std::string& user_id, JobState state, std::optional<int64_t> since,
                                           int64_t now) {
  return with([&](Connection& c) -> Result<int64_t> {
    auto r = TRY(c.exec(std::string("UPDATE webhook_jobs SET state='queued',attempts=0,next_attempt_at=$1,"
                                    "updated_at=$1,finished_at=NULL,lease_until=NULL,holder=NULL "
                                    "WHERE user_id=$2 AND state=$3 AND ($4::bigint IS NULL OR created_at >= $4) AND ") +
                            k_event_kept,
                        {now, user_id, std::string(to_string(state)), since}));
    return r.affected();
  });
}

// ---- relay worker ----

// This holder's running jobs (its last run's, with a fixed holder name) and every job whose lease
// ended; never a job another live daemon holds.
Result<int64_t> PgWebhookStore::requeue_running(int64_t now) {
  return with([&](Connection& c) -> Result<int64_t> {
    auto r = TRY(
        c.exec("UPDATE webhook_jobs SET state='queued',next_attempt_at=$1,updated_at=$1,lease_until=NULL,holder=NULL "
               "WHERE state='running' AND (holder=$2 OR lease_until IS NULL OR lease_until <= $1)",
               {now, m_options.holder}));
    return r.affected();
  });
}

// Endpoints whose jobs the relay worker may claim (the SQLite store's rule): all (nullopt) when a
// default target exists and no endpoint has a limit, else each endpoint with a target whose limit is not 0.
Result<std::vector<std::optional<std::string>>> PgWebhookStore::claim_scopes(
    Connection& c, bool have_default, const std::map<std::string, std::size_t>& limits) {
  std::vector<std::optional<std::string>> scopes;
  if (have_default && limits.empty()) {
    scopes.emplace_back(std::nullopt);
    return scopes;
  }
  auto r =
      TRY(c.exec(have_default ? "SELECT id FROM webhook_endpoints WHERE deleted_at IS NULL"
                              : "SELECT id FROM webhook_endpoints WHERE relay_to IS NOT NULL AND deleted_at IS NULL"));
  for (int i = 0; i < r.size(); ++i) {
    std::string id = r.str(i, 0);
    if (auto it = limits.find(id); it == limits.end() || it->second > 0) scopes.emplace_back(std::move(id));
  }
  return scopes;
}

// One transaction: for each (scope, state) an index range in next_attempt_at order, locked with
// FOR UPDATE SKIP LOCKED (a job another daemon is claiming right now is passed over, not waited for);
// the earliest due up to `limit` are marked running under this holder's lease. A running job whose
// lease ended counts as due since it became due.
Result<std::vector<WebhookJob>> PgWebhookStore::claim_due_jobs(
    int64_t now, std::size_t limit, bool have_default, const std::map<std::string, std::size_t>& endpoint_limits) {
  std::vector<WebhookJob> out;
  if (limit == 0) return out;
  auto lease = m_pool->lease();
  if (!lease) return std::unexpected(lease.error());
  auto st = (*lease)->transaction([&](Connection& tx) -> Status {
    out.clear();
    struct Candidate {
      int64_t due, created, seq;
    };
    std::vector<Candidate> found;
    for (const auto& scope : TRY(claim_scopes(tx, have_default, endpoint_limits)))
      for (const char* state : {"queued", "failed", "running"}) {
        std::size_t scope_limit = limit;
        if (auto it = scope ? endpoint_limits.find(*scope) : endpoint_limits.end(); it != endpoint_limits.end())
          scope_limit = std::min(scope_limit, it->second);
        Query q;
        q.sql = "SELECT next_attempt_at,created_at,seq FROM webhook_jobs WHERE ";
        if (scope) q.sql += "endpoint_id=" + q.p(*scope) + " AND ";
        q.sql += "state=" + q.p(state) + " AND next_attempt_at <= " + q.p(now);
        if (std::string_view(state) == "running") q.sql += " AND lease_until <= " + q.p(now);
        q.sql += " ORDER BY next_attempt_at, seq LIMIT " + q.p(static_cast<int64_t>(scope_limit)) +
                 " FOR UPDATE SKIP LOCKED";
        auto r = TRY(tx.exec(q.sql, q.params));
        for (int i = 0; i < r.size(); ++i) found.push_back({r.int64(i, 0), r.int64(i, 1), r.int64(i, 2)});
      }
    if (found.empty()) return {};
    std::sort(found.begin(), found.end(), [](const Candidate& a, const Candidate& b) {
      return std::tie(a.due, a.created, a.seq) < std::tie(b.due, b.created, b.seq);
    });
    if (found.size() > limit) found.resize(limit);
    std::string seqs = "{";
    for (std::size_t i = 0; i < found.size(); ++i) seqs += (i ? "," : "") + std::to_string(found[i].seq);
    seqs += "}";
    auto r = TRY(tx.exec(std::string("UPDATE webhook_jobs SET state='running',updated_at=$1,lease_until=$2,holder=$3 "
                                     "WHERE seq = ANY($4::bigint[])") +
                             k_job_returning,
                         {now, now + m_options.lease_ms, m_options.holder, seqs}));
    for (int i = 0; i < r.size(); ++i) out.push_back(read_job(r, i));
    std::sort(out.begin(), out.end(), [](const WebhookJob& a, const WebhookJob& b) {
      return std::tie(a.next_attempt_at, a.created_at) < std::tie(b.next_attempt_at, b.created_at);
    });
    return {};
  });
  if (!st) return std::unexpected(st.error());
  return out;
}

Result<std::optional<int64_t>> PgWebhookStore::next_due_at(bool have_default,
                                                           const std::map<std::string, std::size_t>& endpoint_limits) {
  settle();
  return with([&](Connection& c) -> Result<std::optional<int64_t>> {
    std::optional<int64_t> earliest;
    for (const auto& scope : TRY(claim_scopes(c, have_default, endpoint_limits))) {
      Query q;
      const std::string where = scope ? "endpoint_id=" + q.p(*scope) + " AND " : "";
      // A running job is claimable again when its lease ends.
      q.sql = "SELECT LEAST((SELECT MIN(next_attempt_at) FROM webhook_jobs WHERE " + where +
              "state='queued'),(SELECT MIN(next_attempt_at) FROM webhook_jobs WHERE " + where +
              "state='failed'),(SELECT MIN(lease_until) FROM webhook_jobs WHERE " + where + "state='running'))";
      auto r = TRY(c.exec(q.sql, q.params));
      if (auto v = r.opt_int64(0, 0); v && (!earliest || *v < *earliest)) earliest = v;
    }
    return earliest;
  });
}

// The outcome of one attempt, recorded only while this holder still holds the job: after its lease
// ended another daemon may have claimed it, and that one's outcome counts.
Status PgWebhookStore::write_outcome(Connection& tx, const WebhookJob& j) {
  return ok(tx.exec(
      "UPDATE webhook_jobs SET state=$1,attempts=$2,next_attempt_at=$3,last_status=$4,last_error=$5,updated_at=$6,"
      "finished_at=$7,lease_until=NULL,holder=NULL WHERE id=$8 AND state='running' AND holder=$9",
      {std::string(to_string(j.state)), static_cast<int64_t>(j.attempts), static_cast<int64_t>(j.next_attempt_at),
       j.last_status, j.last_error, static_cast<int64_t>(j.updated_at), j.finished_at, j.id, m_options.holder}));
}

Status PgWebhookStore::write_outcomes(Connection& tx, const std::vector<const WebhookJob*>& jobs) {
  std::vector<std::string> ids, states;
  std::vector<int64_t> attempts, next, updated;
  // Arrays with NULLs (an unquoted NULL element).
  std::string status_array = "{", finished_array = "{", error_array = "{";
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const WebhookJob& j = *jobs[i];
    ids.push_back(j.id);
    states.push_back(std::string(to_string(j.state)));
    attempts.push_back(j.attempts);
    next.push_back(j.next_attempt_at);
    updated.push_back(j.updated_at);
    const char* sep = i ? "," : "";
    status_array += sep + (j.last_status ? std::to_string(*j.last_status) : "NULL");
    finished_array += sep + (j.finished_at ? std::to_string(*j.finished_at) : "NULL");
    if (j.last_error) {
      const std::string quoted = text_array({*j.last_error});  // {"…"}
      error_array += sep + quoted.substr(1, quoted.size() - 2);
    } else {
      error_array += std::string(sep) + "NULL";
    }
  }
  status_array += "}";
  finished_array += "}";
  error_array += "}";
  return ok(
      tx.exec("UPDATE webhook_jobs j SET state=x.state,attempts=x.attempts,next_attempt_at=x.next,last_status=x.status,"
              "last_error=x.error,updated_at=x.updated,finished_at=x.finished,lease_until=NULL,holder=NULL FROM "
              "unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[], "
              "$8::bigint[]) AS x(id, state, attempts, next, status, error, updated, finished) "
              "WHERE j.id = x.id AND j.state='running' AND j.holder=$9",
              {text_array(ids), text_array(states), bigint_array(attempts), bigint_array(next), status_array,
               error_array, bigint_array(updated), finished_array, m_options.holder}));
}

Status PgWebhookStore::finish_job(const WebhookJob& j) {
  return with([&](Connection& c) -> Status { return write_outcome(c, j); });
}

void PgWebhookStore::finish_job_later(const WebhookJob& j) {
  Op op;
  op.kind = Op::Kind::finish;
  op.job = j;
  m_queued_writes.fetch_add(1);
  enqueue(std::move(op));
}

Status PgWebhookStore::cancel_endpoint_jobs(const std::string& endpoint_id, int64_t now) {
  return with([&](Connection& c) -> Status {
    return ok(
        c.exec("UPDATE webhook_jobs SET state='dead',last_error='endpoint deleted',updated_at=$1,finished_at=$1 "
               "WHERE endpoint_id=$2 AND state IN ('queued','failed')",
               {now, endpoint_id}));
  });
}

Result<int64_t> PgWebhookStore::prune_dedup(int64_t cutoff) {
  return with([&](Connection& c) -> Result<int64_t> {
    auto r = TRY(c.exec("DELETE FROM webhook_dedup WHERE received_at < $1", {cutoff}));
    return r.affected();
  });
}

}  // namespace pg

Result<std::unique_ptr<WebhookStore>> open_postgres_webhook_store(const PgWebhookStoreOptions& options) {
  PgWebhookStoreOptions o = options;
  if (o.holder.empty()) o.holder = pg::random_holder();
  if (o.pool_size == 0) o.pool_size = 1;
  if (o.max_batch == 0) o.max_batch = 1;
  if (o.lease_ms <= 0) return fail(ErrorCode::bad_request, "the relay lease must be positive");
  auto writer = TRY(pg::Connection::open(o.conninfo));
  TRY(pg::migrate(*writer, "webhooks", pg::k_migrations));
  // A delivery is acknowledged only after its commit is on the server's disk, whatever the
  // server's default.
  TRY(writer->exec("SET synchronous_commit = on"));
  auto pool = TRY(pg::Pool::open(o.conninfo, o.pool_size));
  return std::unique_ptr<WebhookStore>(std::make_unique<pg::PgWebhookStore>(o, std::move(pool), std::move(writer)));
}

}  // namespace alumia

#pragma once
// Persistence of webhook endpoints, events, jobs and the dedup set (SPEC §7). Kept apart from Store
// because its write path is different: every accepted delivery must be on disk before the provider
// gets its 2xx. The SQLite implementation makes a delivery durable in an append-only intake log
// (one write of the waiting records per disk round trip, group commit) and applies it to the
// SQLite tables afterwards on its writer thread, which commits whatever is waiting as one batch.
// Dedup is decided before the append, against the deliveries still in the log and the stored set.
// Reads go through a separate connection; those that must see every acknowledged delivery (events,
// jobs, endpoint counters) first wait until the log has been applied.
//
// Sealed endpoint secrets are not here: they live in Store's secrets table (owner_table
// "webhook_endpoints").
#include <alumia/base/error.hpp>
#include <alumia/store/domain.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace alumia {

inline constexpr std::string_view k_webhook_endpoints_table = "webhook_endpoints";

// Why the receiver last refused a delivery to an endpoint, for its owner (the sender only gets a
// generic answer, SPEC §7). `code` is the wire code of the detailed error, e.g. "UNAUTHORIZED".
struct EndpointError {
  std::string code;
  std::string message;
  int64_t at = 0;
};

// An endpoint's rate limit (SPEC §7): a token bucket of `burst` deliveries refilled at `per_second`.
struct RateLimit {
  int64_t per_second = 0;
  int64_t burst = 0;
  bool operator==(const RateLimit&) const = default;
};

struct WebhookEndpointRecord {
  std::string id;
  std::string user_id;
  Provider provider = Provider::github;
  std::optional<std::string> connection_id;
  std::string label;
  EndpointStatus status = EndpointStatus::active;
  std::optional<std::string> relay_to;
  std::string config = "{}";  // non-secret provider extras as JSON (audience, jwksUrl, botId, ...)
  int64_t max_body_bytes = 256 * 1024;
  std::optional<int64_t> previous_secret_expires_at;  // rotation grace of the old secret
  std::optional<RateLimit> rate_limit;                // the endpoint's own; nullopt: the daemon's default
  std::optional<int64_t> retention_days;              // the endpoint's own; nullopt: the daemon's default
  int64_t received = 0;
  int64_t duplicates = 0;
  int64_t rejected = 0;
  int64_t verification_failures = 0;
  int64_t rate_limited = 0;
  std::optional<int64_t> last_delivery_at;
  std::optional<EndpointError> last_error;  // written by add_refusals(), never by update_endpoint()
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::optional<int64_t> deleted_at;
};

struct WebhookEvent {
  std::string id;
  std::string endpoint_id;
  std::string user_id;
  Provider provider = Provider::github;
  std::string event_key;
  std::string event_type;
  int64_t received_at = 0;
  std::optional<JobState> job_state;       // state of the newest job of the event, if any
  std::string headers;                     // JSON array of [name, value], secrets already removed
  std::string body;                        // raw bytes (only when asked for)
  std::optional<int64_t> body_removed_at;  // when retention dropped the body and headers (both empty since)
};

struct WebhookJob {
  std::string id;
  std::string event_id;
  std::string endpoint_id;
  std::string user_id;
  JobState state = JobState::queued;
  int64_t attempts = 0;
  int64_t next_attempt_at = 0;
  std::optional<int64_t> last_status;
  std::optional<std::string> last_error;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::optional<int64_t> finished_at;
};

// One accepted delivery: dedup keys + event + first job, committed together.
struct IngestRequest {
  std::string endpoint_id;
  std::string user_id;
  Provider provider = Provider::github;
  std::string event_key;
  std::vector<std::string> alias_keys;  // a hit on any of them is a duplicate
  std::vector<std::string> item_keys;   // batched deliveries: duplicate only when all are known
  std::string event_type;
  std::string headers;
  std::string body;
  int64_t received_at = 0;
  std::string event_id;  // fresh ids chosen by the caller
  std::string job_id;
};

struct IngestOutcome {
  bool duplicate = false;
  std::string event_id;  // the new event, or the original one for a duplicate
};

enum class EndpointCounter { rejected, verification_failure, rate_limited, duplicate };

// Refusals of one endpoint summed in memory by the receiver (webhooks/refusal_tally.hpp), and the
// newest reason among them.
struct EndpointRefusals {
  int64_t rejected = 0;
  int64_t verification_failures = 0;
  int64_t rate_limited = 0;
  std::optional<EndpointError> last_error;
  bool empty() const { return rejected == 0 && verification_failures == 0 && rate_limited == 0 && !last_error; }
};

struct EventFilter {
  std::string user_id;
  std::optional<std::string> endpoint_id;
  std::optional<Provider> provider;
  std::optional<JobState> job_state;
  std::optional<int64_t> since;  // received_at >= since
};

// Retention (SPEC §9 "Retention"): what one batch of the sweep or of a prune did (or, dry, would do).
struct RetentionBatch {
  int64_t events = 0;  // events whose body and headers (drop_event_bodies) or rows (delete_events) went
  int64_t jobs = 0;    // job rows deleted with them
  int64_t bytes = 0;   // bytes of bodies and headers given up
  bool more = false;   // the batch was full: there may be more
};

// Where a pass of delete_events() has got to: the job state it walks (succeeded, then dead) and the
// last job examined in the order of the index webhook_jobs_endpoint_due (next_attempt_at, then rowid).
// A pass starts with the default.
struct RetentionCursor {
  int state = 0;  // 0 succeeded, 1 dead
  int64_t at = INT64_MIN;
  int64_t rowid = 0;
};

struct EndpointRetention {
  std::string id;
  std::string user_id;
  std::optional<int64_t> retention_days;  // nullopt: the daemon's default
};

// The store's files: store.db and its WAL, and the free pages inside store.db that an incremental
// vacuum gives back.
struct StoreSize {
  int64_t file_bytes = 0;
  int64_t free_bytes = 0;
};

struct JobFilter {
  std::string user_id;
  std::optional<JobState> state;
  std::optional<std::string> event_id;
  std::optional<int64_t> since;  // created_at >= since
};

class WebhookStore {
 public:
  virtual ~WebhookStore() = default;

  // Endpoints. find_endpoint returns deleted rows too; callers decide.
  virtual Status insert_endpoint(const WebhookEndpointRecord& e) = 0;
  // Updates the descriptive columns (status, relay_to, config, grace, rate limit, deleted_at), not the counters.
  virtual Status update_endpoint(const WebhookEndpointRecord& e) = 0;
  virtual Result<std::optional<WebhookEndpointRecord>> find_endpoint(const std::string& id) = 0;
  virtual Result<PageResult<WebhookEndpointRecord>> list_endpoints(const std::string& user_id, const Page& page) = 0;
  // The id of every endpoint row, deleted ones too (EndpointCache: "no such endpoint" from memory).
  // A store that cannot list them answers nullopt, and the cache reads the store for every unknown id.
  virtual Result<std::optional<std::vector<std::string>>> endpoint_ids() {
    return std::optional<std::vector<std::string>>();
  }

  // The hot path: decides dedup, then blocks until the delivery is durable (in the intake log, or
  // committed with synchronous=FULL). A duplicate of a delivery still being written waits for it.
  // SERVICE_UNAVAILABLE when the write failed; the delivery then counts as not received.
  virtual Result<IngestOutcome> ingest(IngestRequest request) = 0;  // taken: the body moves, not copies
  // ingest() for a caller that must not block (the public listener's poll thread): false, with
  // `request` untouched, when it cannot be settled without waiting — dedup would read the table (the
  // filter says "maybe"), or wait for a copy still being written, or the delivery does not go through
  // the intake log; the caller then calls ingest() where it may block. Else true, `request` taken, and
  // `done` gets the outcome exactly once: a repeat's or a failure's at once on this thread, a new
  // delivery's on the intake log's flusher thread once its record is on disk (`done` must not block).
  virtual bool ingest_async(IngestRequest& request, std::function<void(Result<IngestOutcome>)> done) {
    (void)request;
    (void)done;
    return false;
  }
  // Adds refusals the receiver summed (counters, and lastError where the newest `at` wins): one
  // writer operation per call, committed with the next batch, not waited for. The receiver calls it
  // at a bounded rate per endpoint, never once per refused request (RefusalTally).
  virtual void add_refusals(const std::string& endpoint_id, EndpointRefusals refusals) = 0;
  // Write transactions committed (or tried) since the store opened: what a flood must not drive up.
  virtual uint64_t write_transactions() const = 0;

  // Events.
  virtual Result<PageResult<WebhookEvent>> list_events(const EventFilter& filter, const Page& page) = 0;
  virtual Result<std::optional<WebhookEvent>> find_event(const std::string& id, bool with_body) = 0;

  // Jobs.
  // The user's jobs per endpoint and state (endpoints deleted since included), from counts the store
  // keeps as jobs change (migration 6's triggers): a few rows read whatever the number of jobs. A
  // state no job of the endpoint is in may be missing or 0.
  virtual Result<std::map<std::string, std::map<JobState, int64_t>>> job_counts(const std::string& user_id) = 0;
  // The queued job of the endpoint that has waited longest (smallest next_attempt_at: when it was
  // queued, retried or requeued), one probe of the index webhook_jobs_endpoint_due; nullopt: none.
  virtual Result<std::optional<WebhookJob>> oldest_queued_job(const std::string& endpoint_id) = 0;
  virtual Status insert_job(const WebhookJob& job) = 0;
  virtual Result<PageResult<WebhookJob>> list_jobs(const JobFilter& filter, const Page& page) = 0;
  virtual Result<std::optional<WebhookJob>> find_job(const std::string& id) = 0;
  // Makes the job due now (queued, attempts reset) when it is queued, failed or dead; false otherwise.
  virtual Result<bool> retry_job(const std::string& id, int64_t now) = 0;
  // Same for every job of the user in `state` (failed or dead) created at or after `since`.
  virtual Result<int64_t> retry_jobs(const std::string& user_id, JobState state, std::optional<int64_t> since,
                                     int64_t now) = 0;

  // Relay worker.
  // Jobs left running by a crash go back to queued.
  virtual Result<int64_t> requeue_running(int64_t now) = 0;
  // Marks up to `limit` due jobs (queued, or failed with next_attempt_at <= now) running and
  // returns them. Jobs of endpoints without relay_to are skipped unless `have_default_target`; an
  // endpoint named in `endpoint_limits` gives at most that many (0: none), so that the relay worker
  // claims no more for a target than it may hold.
  virtual Result<std::vector<WebhookJob>> claim_due_jobs(
      int64_t now, std::size_t limit, bool have_default_target,
      const std::map<std::string, std::size_t>& endpoint_limits = {}) = 0;
  // The earliest next_attempt_at of a claimable job (with a limit of 0: none), for the worker's sleep.
  virtual Result<std::optional<int64_t>> next_due_at(
      bool have_default_target, const std::map<std::string, std::size_t>& endpoint_limits = {}) = 0;
  // Records the outcome of an attempt (state succeeded, failed or dead).
  virtual Status finish_job(const WebhookJob& job) = 0;
  // The same, committed with the next batch without waiting for it (the relay worker's path). If the
  // daemon dies before that commit the job is still `running` and the next start queues it again:
  // the relay delivers at least once, as it must anyway (a POST can succeed and its record fail).
  virtual void finish_job_later(const WebhookJob& job) = 0;
  // Endpoint deleted: its pending jobs become dead.
  virtual Status cancel_endpoint_jobs(const std::string& endpoint_id, int64_t now) = 0;
  // Drops dedup keys received before `cutoff` (the 8-day TTL).
  virtual Result<int64_t> prune_dedup(int64_t cutoff) = 0;

  // Retention (SPEC §9). An event is retired only when every job of it is succeeded or dead; its
  // candidates are the endpoint's succeeded and dead jobs in the order of webhook_jobs_endpoint_due
  // (next_attempt_at: when the job last became due, at or after the event was received), so a batch
  // is an index range, never a pass over the events. Each batch is one writer operation, committed
  // with the deliveries of its group, so ingest waits for a batch at most, never for a whole sweep.
  // The dedup set is not touched: a duplicate of a retired event is still recognised for 8 days.
  //
  // Every endpoint, deleted ones included, with its own window.
  virtual Result<std::vector<EndpointRetention>> retention_endpoints() = 0;
  // Empties the body and headers of up to `limit` events of the endpoint received before `before`
  // (body_removed_at set to `now`). Where it got to per job state is kept in the store
  // (webhook_retention_marks), so no batch reads an event twice, across restarts too.
  virtual Result<RetentionBatch> drop_event_bodies(const std::string& endpoint_id, int64_t before, std::size_t limit,
                                                   int64_t now) = 0;
  // Deletes the endpoint's events (and their jobs) all of whose jobs are succeeded or dead and last
  // became due before `before`, examining up to `limit` jobs after `cursor` (advanced). The job counts
  // (job_counts()) are not lowered: a retired job still counts in the state it ended in. `dry_run`
  // counts what would go and changes nothing.
  virtual Result<RetentionBatch> delete_events(const std::string& endpoint_id, int64_t before, std::size_t limit,
                                               bool dry_run, RetentionCursor& cursor) = 0;
  // Gives up to `pages` free pages of store.db back to the file system (auto_vacuum=INCREMENTAL);
  // returns the bytes given back.
  virtual Result<int64_t> incremental_vacuum(int64_t pages) = 0;
  virtual Result<StoreSize> store_size() = 0;
};

struct WebhookStoreOptions {
  std::filesystem::path path;    // the store.db that open_sqlite_store already migrated
  std::size_t max_batch = 1024;  // operations per transaction
  bool synchronous_full = true;
  // Size of the intake log (<path>-intake) when it is created; 0: no log, every delivery is
  // committed into the SQLite tables before ingest() returns (slower; kept for comparison).
  std::size_t intake_log_bytes = 16u << 20;
  // Memory of the dedup filter of stored keys, the dedup index's bound whatever the number of keys:
  // with up to ~bytes*8/10 keys (3.3M here) about 1% of new keys cost a table lookup, more beyond
  // (common/store/dedup_index.hpp). Dedup stays exact at any size.
  std::size_t dedup_filter_bytes = 4u << 20;
};

Result<std::unique_ptr<WebhookStore>> open_sqlite_webhook_store(const WebhookStoreOptions& options);

// The PostgreSQL implementation (SPEC §12, docs/SCALE-OUT.md): several daemons share one database.
// Its differences from SQLite, all inside the interface's contract:
// - ingest() commits dedup keys + event + first job before it returns (synchronous_commit on); the
//   deliveries waiting meanwhile are committed together by one writer thread (one transaction per
//   batch). Dedup is the unique key (endpoint_id, event_key) of webhook_dedup, so two daemons that
//   take the same delivery store it once: the second waits for the first's commit and answers a repeat.
// - claim_due_jobs() locks its jobs with FOR UPDATE SKIP LOCKED and holds them under a lease
//   (`lease_ms` after the claim's `now`); a job still running when its lease ends is claimable again
//   (how a killed daemon's jobs are taken over). requeue_running() requeues only jobs of this holder
//   or whose lease ended, never those a live daemon holds; finish_job(_later) changes a job only while
//   this holder still holds it. The relay's request timeout must stay well below the lease.
// - Endpoint inserts and updates NOTIFY the channel k_pg_endpoint_channel with the endpoint id (sent at
//   commit), so that other daemons can drop what they cached.
// - incremental_vacuum() gives back nothing (0): PostgreSQL's autovacuum reuses the space; store_size()
//   is the webhook tables' pg_total_relation_size, free_bytes 0.
inline constexpr std::string_view k_pg_endpoint_channel = "alumia_webhook_endpoints";

struct PgWebhookStoreOptions {
  std::string conninfo;         // a libpq connection string or postgres:// URI (never logged)
  std::size_t pool_size = 4;    // connections for reads, claims and admin writes (the writer has its own)
  std::size_t max_batch = 512;  // operations per writer transaction
  int64_t lease_ms = 60'000;    // how long a claim holds a job
  std::string holder;           // this daemon's name in claims; empty: a fresh random one per open
};

// Runs the "webhooks" part's migrations (under the advisory lock) and opens the store.
// SERVICE_UNAVAILABLE when the server cannot be reached.
Result<std::unique_ptr<WebhookStore>> open_postgres_webhook_store(const PgWebhookStoreOptions& options);

}  // namespace alumia

#pragma once
// PostgreSQL implementation of WebhookStore (private to the store; the contract and its differences
// from SQLite are in webhook_store.hpp). Several daemons share one database, so every guarantee rests
// on the database, never on this process's memory:
//
//   dedup        the primary key (endpoint_id, event_key) of webhook_dedup: a delivery's keys are
//                inserted with ON CONFLICT DO NOTHING … RETURNING, and a key that is not returned was
//                already stored — by another daemon (whose commit the insert waited for), or by an
//                earlier delivery of the same batch. A repeat's own new keys are deleted again.
//   durability   ingest() returns once the transaction holding the delivery committed
//                (synchronous_commit on). One writer thread (pg_webhook_ingest.cpp) takes every
//                operation waiting — deliveries, outcomes of relay attempts, refusal counts — and
//                commits them in one transaction, so concurrent deliveries share a commit.
//   jobs         claimed with FOR UPDATE SKIP LOCKED under a lease (lease_until, holder): a job is
//                delivered by one daemon at a time, and a running job whose lease ended is claimable
//                again (a killed daemon's jobs are taken over).
//   counters     endpoint counters are added once per batch; job counts per (endpoint, state) are kept
//                by statement-level triggers (migration 1), never counted from the jobs.
//
// Files: pg_webhook_store.cpp (opening, schema, endpoints, events, jobs, relay), pg_webhook_ingest.cpp
// (the writer thread and the ingest path), pg_webhook_retention.cpp (the retention sweep's batches).
#include "pg_conn.hpp"

#include <alumia/store/webhook_store.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace alumia::pg {

// A text[] literal for a parameter ("{"a","b"}"), each element quoted; a bigint[] one.
std::string text_array(const std::vector<std::string>& items);
std::string bigint_array(const std::vector<int64_t>& items);

// SQL text with its parameters numbered as they are added: sql += p(value) appends "$n".
struct Query {
  std::string sql;
  std::vector<Param> params;
  std::string p(Param v) {
    params.push_back(std::move(v));
    return "$" + std::to_string(params.size());
  }
};

class PgWebhookStore final : public WebhookStore {
 public:
  PgWebhookStore(const PgWebhookStoreOptions& options, std::unique_ptr<Pool> pool, std::unique_ptr<Connection> writer);
  ~PgWebhookStore() override;

  Status insert_endpoint(const WebhookEndpointRecord& e) override;
  Status update_endpoint(const WebhookEndpointRecord& e) override;
  Result<std::optional<WebhookEndpointRecord>> find_endpoint(const std::string& id) override;
  Result<PageResult<WebhookEndpointRecord>> list_endpoints(const std::string& user_id, const Page& page) override;
  Result<std::optional<std::vector<std::string>>> endpoint_ids() override;

  Result<IngestOutcome> ingest(IngestRequest r) override;
  void add_refusals(const std::string& endpoint_id, EndpointRefusals refusals) override;
  uint64_t write_transactions() const override { return m_transactions.load(std::memory_order_relaxed); }

  Result<PageResult<WebhookEvent>> list_events(const EventFilter& f, const Page& page) override;
  Result<std::optional<WebhookEvent>> find_event(const std::string& id, bool with_body) override;

  Result<std::map<std::string, std::map<JobState, int64_t>>> job_counts(const std::string& user_id) override;
  Result<std::optional<WebhookJob>> oldest_queued_job(const std::string& endpoint_id) override;
  Status insert_job(const WebhookJob& j) override;
  Result<PageResult<WebhookJob>> list_jobs(const JobFilter& f, const Page& page) override;
  Result<std::optional<WebhookJob>> find_job(const std::string& id) override;
  Result<bool> retry_job(const std::string& id, int64_t now) override;
  Result<int64_t> retry_jobs(const std::string& user_id, JobState state, std::optional<int64_t> since,
                             int64_t now) override;

  Result<int64_t> requeue_running(int64_t now) override;
  Result<std::vector<WebhookJob>> claim_due_jobs(
      int64_t now, std::size_t limit, bool have_default,
      const std::map<std::string, std::size_t>& endpoint_limits = {}) override;
  Result<std::optional<int64_t>> next_due_at(bool have_default,
                                             const std::map<std::string, std::size_t>& endpoint_limits = {}) override;
  Status finish_job(const WebhookJob& j) override;
  void finish_job_later(const WebhookJob& j) override;
  Status cancel_endpoint_jobs(const std::string& endpoint_id, int64_t now) override;
  Result<int64_t> prune_dedup(int64_t cutoff) override;

  // pg_webhook_retention.cpp
  Result<std::vector<EndpointRetention>> retention_endpoints() override;
  Result<RetentionBatch> drop_event_bodies(const std::string& endpoint_id, int64_t before, std::size_t limit,
                                           int64_t now) override;
  Result<RetentionBatch> delete_events(const std::string& endpoint_id, int64_t before, std::size_t limit, bool dry_run,
                                       RetentionCursor& cursor) override;
  Result<int64_t> incremental_vacuum(int64_t pages) override;
  Result<StoreSize> store_size() override;

  const std::string& holder() const { return m_options.holder; }

 private:
  // One operation for the writer thread.
  struct Op {
    enum class Kind { ingest, finish, refusals, barrier } kind = Kind::barrier;
    IngestRequest request;                            // ingest
    WebhookJob job;                                   // finish
    std::string endpoint_id;                          // refusals
    EndpointRefusals refusals;                        // refusals
    std::function<void(Result<IngestOutcome>)> done;  // ingest and barrier: called once, after the commit
  };
  struct CounterDelta {
    int64_t received = 0;
    int64_t duplicates = 0;
    int64_t rejected = 0;
    int64_t verification_failures = 0;
    int64_t rate_limited = 0;
    int64_t last_delivery_at = 0;
    std::optional<EndpointError> last_error;
  };

  // pg_webhook_ingest.cpp
  void enqueue(Op op);
  void writer_loop();
  // Runs `ops` in one transaction; their outcomes in `outcomes` (ingest ops only).
  // `per_delivery`: each delivery's dedup on its own (apply_ingest), else the batch's set-wise (apply_ingests).
  Status apply_batch(Connection& tx, std::vector<Op>& ops, std::vector<IngestOutcome>& outcomes, bool per_delivery);
  // The first jobs of a batch's new deliveries, inserted by one statement at its end.
  struct NewJobs {
    std::vector<std::string> ids, event_ids, endpoint_ids, user_ids;
    std::vector<int64_t> at;
    // A delivery stored: its first job to insert, and its endpoint's counters.
    void add_stored(const IngestRequest& r, std::map<std::string, CounterDelta>& deltas);
  };
  Status apply_ingests(Connection& tx, const std::vector<Op>& ops, const std::vector<std::size_t>& which,
                       std::vector<IngestOutcome>& outcomes, std::map<std::string, CounterDelta>& deltas,
                       NewJobs& jobs);
  Result<IngestOutcome> apply_ingest(Connection& tx, const IngestRequest& r,
                                     std::map<std::string, CounterDelta>& deltas, NewJobs& jobs);
  Status flush_counters(Connection& tx, const std::map<std::string, CounterDelta>& deltas);
  // Read barrier: waits until the operations queued so far (refusals, finished jobs) are committed.
  void settle();

  Status write_outcome(Connection& tx, const WebhookJob& j);
  // Several outcomes in one UPDATE (the writer's batch).
  Status write_outcomes(Connection& tx, const std::vector<const WebhookJob*>& jobs);
  Result<std::vector<std::optional<std::string>>> claim_scopes(Connection& c, bool have_default,
                                                               const std::map<std::string, std::size_t>& limits);
  Result<PageResult<WebhookEvent>> list_events_in_state(const EventFilter& f, const Page& page);

  // A pooled connection for `f(Connection&)` -> Result<T>, once more after a restart dropped it
  // (pg::Pool::run: the first delivery or API call after a database restart no longer answers 503).
  template <class F>
  auto with(F&& f) -> decltype(f(std::declval<Connection&>())) {
    return m_pool->run(std::forward<F>(f));
  }

  PgWebhookStoreOptions m_options;
  std::unique_ptr<Pool> m_pool;
  std::unique_ptr<Connection> m_writer_conn;  // the writer thread's only
  std::atomic<uint64_t> m_transactions{0};
  std::atomic<int64_t> m_queued_writes{0};  // refusals and finished jobs not yet committed
  bool m_raced = false;  // writer thread: the set-wise batch met a key another daemon stored meanwhile

  std::mutex m_mutex;
  std::condition_variable m_wake;
  std::deque<Op> m_queue;
  bool m_stopping = false;
  std::thread m_writer;
};

}  // namespace alumia::pg

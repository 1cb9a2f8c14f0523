#pragma once
// SQLite implementation of WebhookStore (private to the store): the SQL of endpoints, events and
// jobs (sqlite_webhook_store.cpp) and the ingest path with its crash recovery
// (sqlite_webhook_ingest.cpp), over the parts it is built from:
//
//   intake_record   the intake log's record of a delivery (encode, decode)
//   dedup_index     dedup before the write: keys in flight, a fixed-size filter of the stored keys
//   group_writer    the one writer connection (group commit) and the checkpointer
//   sqlite_rows     the keyset cursor and the webhook tables' row readers
//   sqlite_webhook_retention  the retention sweep's batches (SPEC §9)
//
// Connections of their own to the store.db that SqliteStore migrated: the writer's, the
// checkpointer's, the dedup index's and one for reads.
#include "dedup_index.hpp"
#include "dedup_runs.hpp"
#include "group_writer.hpp"
#include "sqlite_util.hpp"

#include <alumia/store/intake_log.hpp>
#include <alumia/store/webhook_store.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace alumia::sqlite {

class SqliteWebhookStore final : public WebhookStore {
 public:
  SqliteWebhookStore(const WebhookStoreOptions& options, const std::string& db_name);
  ~SqliteWebhookStore() override;

  // Applies what the intake log holds from the last run (a crash or a kill left it there), then
  // opens the log for new deliveries. Fails, and the daemon does not start, when a delivery the
  // last run acknowledged cannot be stored: starting would overwrite it.
  Status init();

  Status insert_endpoint(const WebhookEndpointRecord& e) override;
  Status update_endpoint(const WebhookEndpointRecord& e) override;
  Result<std::optional<WebhookEndpointRecord>> find_endpoint(const std::string& id) override;
  Result<PageResult<WebhookEndpointRecord>> list_endpoints(const std::string& user_id, const Page& page) override;
  Result<std::optional<std::vector<std::string>>> endpoint_ids() override;

  Result<IngestOutcome> ingest(IngestRequest r) override;
  bool ingest_async(IngestRequest& r, std::function<void(Result<IngestOutcome>)> done) override;
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

  // sqlite_webhook_retention.cpp
  Result<std::vector<EndpointRetention>> retention_endpoints() override;
  Result<RetentionBatch> drop_event_bodies(const std::string& endpoint_id, int64_t before, std::size_t limit,
                                           int64_t now) override;
  Result<RetentionBatch> delete_events(const std::string& endpoint_id, int64_t before, std::size_t limit, bool dry_run,
                                       RetentionCursor& cursor) override;
  Result<int64_t> incremental_vacuum(int64_t pages) override;
  Result<StoreSize> store_size() override;

  // What the dedup index did (tests).
  DedupIndex::Stats dedup_stats() const { return m_dedup.stats(); }

 private:
  static constexpr std::size_t k_job_states = static_cast<std::size_t>(JobState::dead) + 1;
  // Counter changes of one batch, per endpoint, written in one UPDATE before COMMIT; the jobs the batch
  // inserted, one upsert per state into webhook_job_counts.
  struct CounterDelta {
    int64_t received = 0;
    int64_t duplicates = 0;
    int64_t rejected = 0;
    int64_t verification_failures = 0;
    int64_t rate_limited = 0;
    int64_t last_delivery_at = 0;
    std::optional<EndpointError> last_error;
    std::array<int64_t, k_job_states> jobs{};  // jobs inserted, by JobState (flush_job_counts)
  };

  // sqlite_webhook_ingest.cpp: the ingest path, applying the log, recovery, counters.
  Status recover_and_open_log();
  Result<IngestOutcome> store_new(IngestRequest r, std::vector<std::string> claimed);
  // The intake log's on_durable for a new delivery: its keys durable, its apply queued.
  std::function<void(uint64_t)> on_durable(std::shared_ptr<const IngestRequest> rec,
                                           std::shared_ptr<const std::vector<std::string>> keys);
  void enqueue_apply(std::shared_ptr<const IngestRequest> rec, uint64_t seq,
                     std::shared_ptr<const std::vector<std::string>> claimed, int attempt);
  void ingest_one(const IngestRequest& r, IngestOutcome& outcome, bool decided = false);
  void insert_rows(const IngestRequest& r);  // its dedup keys (the batch's loose run), event and first job
  void write_staged();                       // BatchHooks::flush: the staged deliveries' rows, many a statement
  std::optional<std::string> stored_original(const IngestRequest& r);
  // sqlite_dedup_runs.cpp: the stored dedup keys as sorted runs of blocks (dedup_runs.hpp).
  struct DedupKeyRef {
    const std::string* endpoint_id;
    dedup_runs::Entry entry;
  };
  static void add_dedup_keys(std::vector<DedupKeyRef>& keys, const IngestRequest& r);  // `r` outlives them
  void write_dedup_run(std::vector<DedupKeyRef>& keys);               // a new run of these keys (sorted here)
  void write_loose_dedup_keys(const std::vector<DedupKeyRef>& keys);  // into the batch's run of one-key blocks
  int64_t new_dedup_run();
  void queue_dedup_merge();
  bool dedup_merge_step();
  void merge_chunk(int64_t out);
  void convert_v11_dedup();  // migration 12's second half: the keys of a store made before it, as one run
  void flush_counters();
  void flush_job_counts();
  void job_inserted(const std::string& endpoint_id, JobState state);
  void count(const std::string& endpoint_id, EndpointCounter counter);  // duplicates, from ingest()

  // sqlite_webhook_store.cpp
  Result<PageResult<WebhookEvent>> list_events_in_state(const EventFilter& f, const Page& page);
  Result<std::optional<WebhookEvent>> read_event_row(const std::string& id, bool with_body);
  void write_outcome(const WebhookJob& j);
  static std::vector<std::string> claim_scopes(StatementCache& c, bool have_default,
                                               const std::map<std::string, std::size_t>& limits = {});

  template <class F>
  auto read(F&& f) -> Result<decltype(f())> {
    return locked(m_reader_mutex, "webhook store", std::forward<F>(f));
  }
  // Read barrier: waits until every delivery acknowledged so far, and every refusal handed over, is
  // in the tables.
  void settle() {
    if (m_unapplied.load() > 0 || m_refusals_queued.load() > 0) (void)m_writer.write([] {});
  }
  // A lookup by id: read; on a miss while deliveries wait in the log, settle and read again.
  template <class F>
  auto settled_lookup(F&& lookup) -> decltype(lookup()) {
    auto got = lookup();
    if (got && !*got && m_unapplied.load() > 0) {
      settle();
      got = lookup();
    }
    return got;
  }

  WebhookStoreOptions m_options;
  GroupWriter m_writer;
  StatementCache& m_w;  // m_writer.statements(): in writer operations only
  std::mutex m_reader_mutex;
  SQLite::Database m_reader_db;
  StatementCache m_r;  // under m_reader_mutex
  DedupIndex m_dedup;
  std::unique_ptr<IntakeLog> m_log;           // null: no log (intake_log_bytes 0)
  std::atomic<int64_t> m_refusals_queued{0};  // counter operations (add_refusals, count) not yet committed
  std::atomic<uint64_t> m_transactions{0};
  std::atomic<int64_t> m_unapplied{0};                     // durable in the log, not yet committed into the tables
  std::unordered_map<std::string, CounterDelta> m_deltas;  // writer thread only; one batch's changes
  // Writer thread only: deliveries of the batch whose rows are still to be written (write_staged). Each is
  // held by its stageable operation, which stays in the batch until after the COMMIT.
  std::vector<const IngestRequest*> m_staged;
  int64_t m_next_run = 0;                   // writer thread: the next dedup run's number (0: not read yet)
  int64_t m_loose_run = 0;                  // writer thread: this batch's run of one-key blocks (0: none yet)
  std::atomic<bool> m_merge_queued{false};  // a merge step is queued
  bool m_merge_more = false;                // writer thread: the last step left work
  bool m_merge_wanted = false;              // writer thread: a run listed since the last step looked
};

}  // namespace alumia::sqlite

#pragma once
// Retention of webhook events (SPEC §9 "Retention"). Events are kept forever otherwise (~2.3 KB each
// on disk), so a delivered or dead event older than its endpoint's window (the endpoint's
// retentionDays, else the setting events-retention-days, 30 days) loses its body and headers, and at
// three windows its row and its jobs' rows. An event with a job still to deliver (queued, running,
// failed) is kept whatever its age. The dedup set keeps its own 8 days (dedup_ttl_ms): the sweep
// drops older keys every eighth of that (at most every 10 minutes), before it gives space back; the
// endpoint counters and the job counts per state are not lowered by what goes.
//
// The RetentionSweeper runs that on its own thread every interval, in batches, each one writer
// operation committed with the deliveries of its group and followed by a pause, so that ingest waits
// for one batch at most; after a pass that removed something it gives the free pages back
// (incremental vacuum, a bounded number per step). `alumia-connect events prune` uses
// retire_events() with the caller's own cutoff.
//
// Batches are sized by time, not by a fixed count: a batch costs the writer a few statements plus
// its rows (sqlite_webhook_retention.cpp), so the sweep keeps up with a steady load only when a batch
// is large, and ingest waits for one batch at most only when it is short. The sweeper starts at
// `batch` rows and doubles it after a full batch that took under half of `batch_time` (the call as a
// whole: waiting for the writer, the rows, the commit), halves it after one that took longer, between
// `batch` and `max_batch`; the size carries over from one pass to the next.
#include <alumia/base/clock.hpp>
#include <alumia/base/error.hpp>
#include <alumia/store/webhook_store.hpp>
#include <alumia/webhooks/webhook_limits.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace alumia {

inline constexpr int64_t k_default_retention_days = 30;
inline constexpr int64_t k_max_retention_days = 36'500;
// An event's row goes at this many windows (its body and headers at one).
inline constexpr int64_t k_retention_row_windows = 3;

struct RetentionOptions {
  int64_t default_days = k_default_retention_days;
  int64_t day_ms = 86'400'000;  // the length of a day of the windows (tests and bench/retention.sh shorten it)
  std::chrono::milliseconds interval{60'000};
  std::size_t batch = 200;                   // rows a batch examines at first, and at least
  std::size_t max_batch = 20'000;            // and at most
  std::chrono::milliseconds batch_time{20};  // what a batch may take (the writer's background gather)
  std::chrono::milliseconds pause{5};        // after each batch: the writer takes the deliveries waiting first
  int64_t vacuum_pages = 1024;               // pages given back per incremental vacuum step (4 MiB)
  int64_t dedup_ttl_ms = k_dedup_ttl_ms;     // dedup keys older than this go (test hook dedup-ttl-ms)
  // How often they go: an eighth of the TTL, at most every 10 minutes (a prune rebuilds the dedup
  // filter from every stored key).
  int64_t dedup_prune_every_ms() const { return std::min<int64_t>(600'000, dedup_ttl_ms / 8); }
};

// What a pass (or a prune) did, summed over its batches.
struct RetentionTotals {
  RetentionBatch bodies;                    // events that lost their body and headers
  RetentionBatch rows;                      // events (and jobs) deleted
  int64_t vacuumed = 0;                     // bytes given back to the file system
  int64_t dedup_pruned = 0;                 // dedup keys dropped (past dedup_ttl_ms)
  std::chrono::microseconds dedup_busy{0};  // the prune's time (the store's delete and the filter's rebuild)
  std::chrono::microseconds busy{0};        // the store calls' time, pauses left out (what the pass cost the writer)
};

// Deletes (or, dry, counts) the events of `endpoint_ids` all of whose jobs are succeeded or dead and
// were due before `before`, batch by batch.
Result<RetentionBatch> retire_events(WebhookStore& store, const std::vector<std::string>& endpoint_ids, int64_t before,
                                     bool dry_run, std::size_t batch);
// Gives every free page back, `pages` per step; the bytes given back.
Result<int64_t> give_back_space(WebhookStore& store, int64_t pages);

class RetentionSweeper {
 public:
  RetentionSweeper(WebhookStore& store, const Clock& clock, RetentionOptions options);
  ~RetentionSweeper();
  RetentionSweeper(const RetentionSweeper&) = delete;
  RetentionSweeper& operator=(const RetentionSweeper&) = delete;

  void start();  // a pass every interval, the first one interval after the start
  void stop();
  // One whole pass over every endpoint (the thread's; tests call it directly).
  Result<RetentionTotals> sweep();

  int64_t default_days() const { return m_options.default_days; }
  // An endpoint's window in milliseconds: its own days, else the default.
  int64_t window_ms(std::optional<int64_t> days) const {
    return days.value_or(m_options.default_days) * m_options.day_ms;
  }
  // Rows the next batch examines (tests).
  std::size_t batch_size() const { return m_batch; }

 private:
  void loop();
  void pause();  // between batches; returns early when stopping
  // One batch: `call(rows)` timed, the size adjusted after it (thread of sweep() only).
  template <class F>
  auto batch(F&& call, std::chrono::microseconds& busy) -> decltype(call(std::size_t{}));

  WebhookStore& m_store;
  const Clock& m_clock;
  RetentionOptions m_options;
  std::size_t m_batch;                  // rows of the next batch (thread of sweep() only)
  std::optional<int64_t> m_last_prune;  // when sweep() last dropped dedup keys (thread of sweep() only)
  std::mutex m_mutex;
  std::condition_variable m_cv;
  bool m_stopping = false;
  std::thread m_thread;
};

}  // namespace alumia

// The webhook store's writer (group commit) and checkpointer (group_writer.hpp).
#include "group_writer.hpp"

#include "store_metrics.hpp"

#include <malloc.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

namespace alumia::sqlite {
namespace {

// Every k_checkpoint_bytes of new WAL the checkpoint thread copies them into the database file
// with a PASSIVE checkpoint, which never blocks the writer. Under a steady stream of commits such a
// checkpoint never catches up with the end of the WAL, so the WAL cannot start over; when it
// reaches k_restart_bytes the writer itself runs a RESTART checkpoint between two batches. A
// RESTART waits for the rest of the WAL to be copied, so it is made rare: every 64 MiB of WAL, a
// stall of a few milliseconds once per thousands of commits. After it the writer overwrites the
// WAL from its start (no file growth, no block allocation per commit); journal_size_limit trims
// the file after a burst. Both are bytes, turned into the store's pages at the start (the WAL hook
// counts pages; a new store's pages are 8 KiB, sqlite_store.cpp; an older store keeps its 4 KiB).
//
// Small checkpoints, because every flush of the disk's cache carries what was written before it:
// the fsync that ends a checkpoint of 4 MiB held intake-log writes (which acknowledge deliveries)
// for 20-60 ms. With 1 MiB the median p99 of bench/ingest went from 11.9 to 8.2 ms (5 rounds each),
// at the same rate.
constexpr int k_checkpoint_bytes = 1 << 20;  // 1 MiB
constexpr int k_restart_bytes = 64 << 20;    // 64 MiB
constexpr auto k_background_gather = std::chrono::milliseconds(20);

// A backlog of this many queued operations (deliveries waiting to be applied while a RESTART or a slow
// disk held the writer: ~2 KiB of heap each, the record and its closure) is handed back to the system
// once the queue is empty again; see trim_after_backlog().
constexpr std::size_t k_trim_backlog = 2048;

Error db_error(const std::exception& e) { return to_error(e, "webhook store"); }

// The writer runs below the request path's priority while it keeps up. A delivery is acknowledged once the
// intake log's flusher has written it; applying it to the tables comes after, so no provider waits for the
// writer. On two CPUs shared with the listener's poll thread and the flusher, a writer at the same priority
// takes a CPU from them for several milliseconds of every 20 ms batch at full ingest (~20 us a delivery):
// at 8 connections nice 0 / 5 / 10 / 19 answered 13.4k / 13.7k / 14.9k / ~15k req/s (interleaved runs, 2
// CPUs); RocksDB lowers its compaction threads' priority for the same reason. But when the daemon is
// saturated (256 connections, the writer's backlog growing), a writer at nice 19 held the senders back:
// 12 % of the rate and p99 28 ms against 20.8 ms at nice 0. An unprivileged thread cannot lower its nice
// value again, so the connection goes to a second thread at the daemon's priority while a backlog builds
// (pass_the_connection_if_due), and back once it is gone. The checkpointer, which the writer's RESTART
// would otherwise replace with a long stall, stays at nice 10. Linux keeps a nice value per thread.
constexpr int k_writer_nice = 19;
constexpr int k_checkpointer_nice = 10;

void become_background_thread(const char* name, int nice) {
  ::pthread_setname_np(::pthread_self(), name);
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice) != 0)
    spdlog::debug("webhook store: {} keeps its priority (setpriority failed)", name);
}

}  // namespace

GroupWriter::GroupWriter(const std::string& db_name, bool synchronous_full, std::size_t max_batch)
    : m_max_batch(max_batch == 0 ? 1 : max_batch),
      // NOMUTEX: each of the two connections is used by one thread at a time (the writer's, the checkpoint
      // thread's; construction before either starts), so SQLite's per-call connection mutex (a lock, an
      // unlock and memory barriers around every step, bind and reset: ~10 % of the writer's time) buys
      // nothing here.
      m_db(db_name, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX | k_open_nofollow),
      m_statements(m_db),
      m_checkpoint_db(db_name, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX | k_open_nofollow),
      m_next_checkpoint(0) {
  open_webhook_pragmas(m_db, synchronous_full);
  const int page_size = std::max(512, m_db.execAndGet("PRAGMA page_size").getInt());
  m_checkpoint_pages = std::max(1, k_checkpoint_bytes / page_size);
  m_restart_pages = std::max(m_checkpoint_pages, k_restart_bytes / page_size);
  m_next_checkpoint = m_checkpoint_pages;
  open_webhook_pragmas(m_checkpoint_db, synchronous_full);
  // Replaces the writer's auto-checkpoint: the checkpoint runs on m_checkpoint_thread instead.
  sqlite3_wal_hook(m_db.getHandle(), &GroupWriter::on_wal_commit, this);
}

GroupWriter::~GroupWriter() { stop(); }

void GroupWriter::start(BatchHooks hooks) {
  m_hooks = std::move(hooks);
  m_checkpoint_thread = std::thread([this] { checkpoint_loop(); });
  m_thread = std::thread([this] { writer_loop(false); });
  m_catch_up_thread = std::thread([this] { writer_loop(true); });
}

// The writer drains its queue first; then the checkpointer stops.
void GroupWriter::stop() {
  {
    std::lock_guard lock(m_queue_mutex);
    m_stopping = true;
  }
  for (auto& cv : m_queue_cv) cv.notify_all();
  if (m_thread.joinable()) m_thread.join();
  if (m_catch_up_thread.joinable()) m_catch_up_thread.join();
  {
    std::lock_guard lock(m_checkpoint_mutex);
    m_checkpoint_stopping = true;
  }
  m_checkpoint_cv.notify_all();
  if (m_checkpoint_thread.joinable()) m_checkpoint_thread.join();
}

void GroupWriter::enqueue(WriterOp op) {
  bool wake = false;
  int holder = 0;  // the writer thread that holds the connection
  {
    std::lock_guard lock(m_queue_mutex);
    if (m_stopping) {
      if (op.done) op.done->set_value(fail(ErrorCode::service_unavailable, "the daemon is shutting down"));
      return;
    }
    // The writer needs waking for a waiter, for the first op of a gather, and for a full batch;
    // not for every background op in between (a futex wake per delivery otherwise).
    wake = op.done != nullptr || m_queue.empty() || m_queue.size() + 1 >= m_max_batch;
    if (op.done) ++m_queued_waiters;
    m_queue.push_back(std::move(op));
    holder = m_catching_up ? 1 : 0;
  }
  if (wake) m_queue_cv[holder].notify_one();
}

Status GroupWriter::write(std::function<void()> op) {
  auto done = std::make_shared<std::promise<Status>>();
  auto fut = done->get_future();
  enqueue(WriterOp{std::move(op), done, nullptr});
  return fut.get();
}

// Group commit with a short gather: right after a commit its waiters answer their clients, and
// those clients' next requests arrive a fraction of a millisecond later. Starting the next
// transaction with the first one alone would split them over two fsyncs, so when fewer requests
// wait than the last batch held (the current concurrency), the writer waits for them a little —
// at most a quarter of the recent commit time, so the wait never costs more than it saves
// (PostgreSQL's commit_delay, made adaptive).
//
// Work nobody waits for (applying the intake log, counters, relay outcomes) is gathered for up to
// k_background_gather or a full batch: one commit of many deliveries writes far fewer pages per
// delivery than many small ones, and each commit's flush competes with the intake log's writes
// for the disk.
void GroupWriter::writer_loop(bool catching_up) {
  if (catching_up) ::pthread_setname_np(::pthread_self(), "store-catchup");
  else become_background_thread("store-writer", k_writer_nice);
  using clock = std::chrono::steady_clock;
  auto& cv = m_queue_cv[catching_up ? 1 : 0];
  std::vector<WriterOp> batch;
  for (;;) {
    batch.clear();
    {
      std::unique_lock lock(m_queue_mutex);
      cv.wait(lock, [&] { return m_stopping || (m_catching_up == catching_up && !m_queue.empty()); });
      if (m_catching_up != catching_up) return;  // stopping: the other thread drains the queue
      if (m_queue.empty()) return;               // stopping and drained
      if (!m_stopping && m_queued_waiters == 0 && m_queue.size() < m_max_batch)
        cv.wait_until(lock, clock::now() + k_background_gather,
                      [&] { return m_stopping || m_queued_waiters > 0 || m_queue.size() >= m_max_batch; });
      const std::size_t want = std::min(m_last_waiters, m_max_batch);
      if (!m_stopping && m_queue.size() < want) {
        const auto gather = std::min(m_commit_time / 4, std::chrono::microseconds(2000));
        cv.wait_until(lock, clock::now() + gather, [&] { return m_stopping || m_queue.size() >= want; });
      }
      m_queue_peak = std::max(m_queue_peak, m_queue.size());
      while (!m_queue.empty() && batch.size() < m_max_batch) {
        if (m_queue.front().done) --m_queued_waiters;
        batch.push_back(std::move(m_queue.front()));
        m_queue.pop_front();
      }
    }
    store_metrics::write_batch_sizes().observe(static_cast<double>(batch.size()));
    const auto started = clock::now();
    run_batch(batch);
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - started);
    m_commit_time = (m_commit_time * 7 + took) / 8;
    restart_wal_if_due();
    trim_after_backlog();
    m_last_waiters = static_cast<std::size_t>(
        std::count_if(batch.begin(), batch.end(), [](const WriterOp& op) { return op.done != nullptr; }));
    pass_the_connection_if_due(catching_up);
  }
}

// Between two batches, by the thread that holds the connection: a backlog of more than a full batch left
// after taking one goes to the thread at the daemon's priority; once it is down to a quarter batch, back to
// the background one. Never while stopping (the holder drains the queue). The handover is under
// m_queue_mutex, which the next holder takes before its first batch, so the connection, its statements and
// the members above are never used by both.
void GroupWriter::pass_the_connection_if_due(bool catching_up) {
  std::lock_guard lock(m_queue_mutex);
  if (m_stopping) return;
  const bool behind = catching_up ? m_queue.size() > m_max_batch / 4 : m_queue.size() >= m_max_batch;
  if (behind == catching_up) return;
  m_catching_up = behind;
  store_metrics::writer_handovers().inc();
  m_queue_cv[behind ? 1 : 0].notify_one();
}

// One transaction for the batch. First without savepoints: a SAVEPOINT per operation makes
// SQLite keep a statement journal (a copy of every page the operation touches), which cost more
// than the inserts themselves. Only when an operation fails is the batch rolled back and run
// again with a SAVEPOINT around each operation, so the failure stays with its own request.
// In the first pass stageable operations may stage their rows: the store writes a run of them
// (the deliveries applied from the intake log, hundreds a batch at full rate) with multi-row
// INSERTs, before the next operation that is not stageable reads or writes anything.
void GroupWriter::run_batch(std::vector<WriterOp>& batch) {
  if (batch.size() > 1) {
    m_hooks.begin();
    try {
      exec("BEGIN IMMEDIATE");
      m_staging = static_cast<bool>(m_hooks.flush);
      for (auto& op : batch) {
        if (m_staging && !op.stageable) m_hooks.flush();
        op.run();
      }
      if (m_staging) m_hooks.flush();
      m_staging = false;
      m_hooks.before_commit();
      exec("COMMIT");
      for (auto& op : batch)
        if (op.after) op.after(true);
      for (auto& op : batch)
        if (op.done) op.done->set_value({});
      return;
    } catch (const std::exception&) {
      m_staging = false;
      try {
        if (!m_db.getHandle() || !sqlite3_get_autocommit(m_db.getHandle())) exec("ROLLBACK");
      } catch (const std::exception&) {
      }
    }
  }
  run_isolated(batch);
}

void GroupWriter::run_isolated(std::vector<WriterOp>& batch) {
  std::vector<Status> results(batch.size());
  m_hooks.begin();
  try {
    exec("BEGIN IMMEDIATE");
  } catch (const std::exception& e) {
    for (auto& op : batch) {
      if (op.after) op.after(false);
      if (op.done) op.done->set_value(std::unexpected(db_error(e)));
    }
    return;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    try {
      exec("SAVEPOINT op");
      batch[i].run();
      exec("RELEASE op");
    } catch (const std::exception& e) {
      results[i] = std::unexpected(db_error(e));
      try {
        exec("ROLLBACK TO op");
        exec("RELEASE op");
      } catch (const std::exception&) {
      }
    }
  }
  m_hooks.before_commit();
  try {
    exec("COMMIT");
  } catch (const std::exception& e) {
    spdlog::error("webhook store commit of {} operations failed: {}", batch.size(), e.what());
    try {
      exec("ROLLBACK");
    } catch (const std::exception&) {
    }
    for (auto& r : results)
      if (r) r = std::unexpected(db_error(e));
  }
  for (std::size_t i = 0; i < batch.size(); ++i)
    if (batch[i].after) batch[i].after(results[i].has_value());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].done) batch[i].done->set_value(std::move(results[i]));
    else if (!results[i]) spdlog::warn("webhook store: a background write failed: {}", results[i].error().message);
  }
}

// Writer thread, between batches. Deliveries arrive while a WAL RESTART (or a slow flush) holds the
// writer, and wait in the queue as operations: at thousands a second a stall of a second or two queues
// thousands, ~2 KiB of heap each. Freed once applied, that heap stays with the process (glibc keeps
// the free chunks of its arenas): the 10-minute run at full rate showed it as a one-time step of RSS
// (30.6 -> 42.6 MiB at the first RESTART, 38.7 after it, flat since). After such a backlog is gone,
// malloc_trim gives the free pages back (a few ms, once per backlog, never per batch).
void GroupWriter::trim_after_backlog() {
  if (m_queue_peak < k_trim_backlog) return;
  {
    std::lock_guard lock(m_queue_mutex);
    if (!m_queue.empty()) return;  // still draining
  }
  m_queue_peak = 0;
  ::malloc_trim(0);
}

// sqlite3_wal_hook: called on the writer thread after each commit with the WAL's page count.
int GroupWriter::on_wal_commit(void* self, sqlite3*, const char*, int pages) {
  auto* w = static_cast<GroupWriter*>(self);
  if (pages < w->m_wal_pages) w->m_next_checkpoint = w->m_checkpoint_pages;  // the WAL started over
  w->m_wal_pages = pages;
  if (pages >= w->m_restart_pages) w->m_restart_due = true;
  if (pages >= w->m_next_checkpoint) {
    w->m_next_checkpoint = pages + w->m_checkpoint_pages;
    {
      std::lock_guard lock(w->m_checkpoint_mutex);
      w->m_checkpoint_due = true;
    }
    w->m_checkpoint_cv.notify_one();
  }
  return SQLITE_OK;
}

// Writer thread, between batches: bounds the WAL when the checkpoint thread could not.
void GroupWriter::restart_wal_if_due() {
  if (!m_restart_due) return;
  m_restart_due = false;
  int log = 0, copied = 0;
  const auto started = std::chrono::steady_clock::now();
  const int rc = sqlite3_wal_checkpoint_v2(m_db.getHandle(), nullptr, SQLITE_CHECKPOINT_RESTART, &log, &copied);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) spdlog::warn("webhook store: WAL restart failed: {}", sqlite3_errstr(rc));
  std::size_t queued = 0;
  {
    std::lock_guard lock(m_queue_mutex);
    queued = m_queue.size();
  }
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  // A long one is worth a line: deliveries are still acknowledged meanwhile, but wait to be applied.
  spdlog::log(took >= 250 ? spdlog::level::info : spdlog::level::debug,
              "webhook store: WAL restart took {} ms ({} of {} frames copied); {} operations queued meanwhile", took,
              copied, log, queued);
}

// PASSIVE checkpoints never block the writer; when one has copied every frame, the next write
// transaction starts the WAL from its beginning again, so the file stays bounded.
void GroupWriter::checkpoint_loop() {
  become_background_thread("store-ckpt", k_checkpointer_nice);
  for (;;) {
    {
      std::unique_lock lock(m_checkpoint_mutex);
      m_checkpoint_cv.wait(lock, [&] { return m_checkpoint_stopping || m_checkpoint_due; });
      if (m_checkpoint_stopping) return;
      m_checkpoint_due = false;
    }
    int log = 0, copied = 0;
    const int rc =
        sqlite3_wal_checkpoint_v2(m_checkpoint_db.getHandle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
      spdlog::warn("webhook store: WAL checkpoint failed: {}", sqlite3_errstr(rc));
  }
}

}  // namespace alumia::sqlite

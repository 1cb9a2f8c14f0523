#pragma once
// The webhook store's one SQLite writer and its checkpointer (private to the store).
//
// Why a writer thread: with synchronous=FULL every commit is an fsync of the WAL, so a commit per
// operation caps writes at the disk's fsync rate, while the same rows in batches go through many
// times faster. Operations queue while a commit is in flight and the next transaction takes all
// of them (group commit); each waiter is woken only after COMMIT returned.
//
// Checkpoints off the writer: the writer's wal hook replaces SQLite's auto-checkpoint (which the
// committing thread would run): a checkpoint thread runs PASSIVE checkpoints, and the writer itself
// a rare RESTART between two batches so the WAL starts over instead of growing.
#include "sqlite_util.hpp"

#include <alumia/base/error.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace alumia::sqlite {

// One operation queued for the writer.
struct WriterOp {
  // Writer thread, inside the batch's transaction. Written to be run again from the start: a batch
  // in which an operation fails is run again with a savepoint around each one.
  std::function<void()> run;
  std::shared_ptr<std::promise<Status>> done;  // null: nobody waits (counters, applying the log)
  std::function<void(bool stored)> after;      // writer thread, after the batch's COMMIT (or its failure)
  // True: `run` may leave its rows staged (GroupWriter::staging) for the store's BatchHooks::flush, which
  // writes them, many rows a statement, before the next operation that is not stageable and before the
  // COMMIT. So an operation that reads or changes rows always sees every earlier operation's; one that
  // touches no row (a counter summed in memory) is stageable too, so as not to split a run of staged rows.
  bool stageable = false;
};

class GroupWriter {
 public:
  // What the store does around each transaction, on the writer thread.
  struct BatchHooks {
    std::function<void()> begin;          // before the first operation (again when a batch is re-run)
    std::function<void()> before_commit;  // after the last operation, inside the transaction
    // Writes the rows stageable operations staged (nothing staged: nothing to do). A throw fails the
    // batch like a failed operation: it is rolled back and run again with a savepoint around each
    // operation, where nothing is staged.
    std::function<void()> flush;
  };

  GroupWriter(const std::string& db_name, bool synchronous_full, std::size_t max_batch);
  ~GroupWriter();  // stop()

  // Starts the checkpoint thread and the writer thread.
  void start(BatchHooks hooks);
  // Applies what is queued, then stops both threads; later operations fail with SERVICE_UNAVAILABLE.
  void stop();

  void enqueue(WriterOp op);
  // Runs `op` inside the next batch; returns after the commit.
  Status write(std::function<void()> op);
  // write() for an operation that reports how many rows it changed.
  template <class F>
  Result<int64_t> write_count(F&& f) {
    int64_t n = 0;
    auto st = write([&] { n = f(); });
    if (!st) return std::unexpected(st.error());
    return n;
  }

  // The writer connection's statements: for operations, on the writer thread only.
  StatementCache& statements() { return m_statements; }
  // Writer thread, in a stageable operation: whether it may stage its rows (a batch of several run
  // without savepoints) or must write them itself (run_isolated, or a batch of one).
  bool staging() const { return m_staging; }

 private:
  void writer_loop(bool catching_up);
  void pass_the_connection_if_due(bool catching_up);
  void run_batch(std::vector<WriterOp>& batch);
  void run_isolated(std::vector<WriterOp>& batch);
  void exec(const char* sql) { m_statements.use(sql)->exec(); }
  static int on_wal_commit(void* self, sqlite3*, const char*, int pages);
  void restart_wal_if_due();
  void trim_after_backlog();
  void checkpoint_loop();

  // "The writer thread" below: whichever of the two writer threads holds the connection (m_catching_up),
  // one at a time; the handover is under m_queue_mutex (pass_the_connection_if_due).
  std::size_t m_max_batch;
  BatchHooks m_hooks;
  SQLite::Database m_db;             // only the writer thread touches it after construction
  StatementCache m_statements;       // writer thread only
  SQLite::Database m_checkpoint_db;  // only the checkpoint thread
  int m_checkpoint_pages;            // k_checkpoint_bytes and k_restart_bytes in this store's pages
  int m_restart_pages;
  int m_wal_pages = 0;           // writer thread only (wal hook)
  int m_next_checkpoint;         // writer thread only (wal hook)
  bool m_restart_due = false;    // writer thread only (wal hook)
  bool m_staging = false;        // writer thread only: inside run_batch's first try
  std::size_t m_queue_peak = 0;  // writer thread only: the longest queue since the last trim
  std::mutex m_queue_mutex;
  // One per writer thread: [0] the background one (nice 19), [1] the one at the daemon's priority that
  // takes over while a backlog builds (m_catching_up says which one holds the connection).
  std::condition_variable m_queue_cv[2];
  bool m_catching_up = false;                  // under m_queue_mutex
  std::size_t m_last_waiters = 0;              // the thread holding the connection only
  std::chrono::microseconds m_commit_time{0};  // moving average; the thread holding the connection only
  std::deque<WriterOp> m_queue;
  std::size_t m_queued_waiters = 0;  // operations in m_queue with a `done`
  bool m_stopping = false;
  std::mutex m_checkpoint_mutex;
  std::condition_variable m_checkpoint_cv;
  bool m_checkpoint_due = false;
  bool m_checkpoint_stopping = false;
  std::thread m_checkpoint_thread;
  std::thread m_thread;
  std::thread m_catch_up_thread;
};

}  // namespace alumia::sqlite

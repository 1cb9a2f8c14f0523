#pragma once
// IntakeLog: the durable front of the webhook write path (used by the SQLite webhook store).
//
// Why it exists: the provider may get its 2xx only once the delivery is on disk. Committing it
// into the SQLite store first costs a B-tree update of five tables and indexes per delivery —
// ~44 WAL pages (180 KiB) written and flushed per group commit of 8 deliveries, which capped
// ingest at ~2.7k req/s on this machine class. Appending the delivery to a preallocated log costs
// one O_DIRECT|O_DSYNC write of the records themselves (a few KiB), which the disk takes in
// ~0.25 ms. So an accepted delivery is made durable here, by one flusher thread that writes every
// record waiting at that moment in one write (group commit), and the SQLite store applies it
// afterwards, off the request path; a record's space is reused only after the store has committed
// it (release()).
//
// File layout: a 512-byte head block {magic, epoch}, then a ring of records, each starting on a
// 512-byte boundary: {magic, crc32c, epoch, seq, payload length, padded length} + payload. The
// epoch changes at every start (after the caller has applied what the previous run left), so a
// scan after a crash accepts only records of the last run: stale records further along the ring
// from earlier runs are never applied twice. A torn or partial record fails its CRC and is skipped;
// it was never acknowledged (its write had not returned).
#include <alumia/base/error.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace alumia {

// CRC-32C (Castagnoli), SSE4.2 instruction where the CPU has it.
uint32_t crc32c(const void* data, std::size_t n, uint32_t crc = 0);

class IntakeLog {
 public:
  struct Options {
    std::filesystem::path path;
    std::size_t bytes = 16u << 20;  // whole file, head block included; used only when the file is created
  };
  struct Record {
    uint64_t seq = 0;
    std::string payload;
  };

  // Opens the log, creating and zero-filling it the first time, and returns in `left` every intact
  // record the last run wrote (oldest first): released ones too, as release() is not written down,
  // so the caller skips what it already holds. The caller applies the rest durably, then calls
  // start(); records of earlier runs are never returned again.
  static Result<std::unique_ptr<IntakeLog>> open(const Options& options, std::vector<Record>& left);
  ~IntakeLog();  // stops the flusher; appends still waiting fail with SERVICE_UNAVAILABLE

  // Begins a new epoch (everything left was applied) and starts the flusher thread.
  Status start();

  // The largest payload append() takes; larger deliveries go to the store directly.
  std::size_t max_payload() const;

  // Appends one record and returns its seq once it is on disk. `on_durable` runs on the flusher
  // thread, in log order, after the write and before append() returns. Waits (up to
  // `space_timeout`) while the ring is full of records not yet released.
  Result<uint64_t> append(std::string payload, std::function<void(uint64_t seq)> on_durable);
  // append() without waiting: `done` gets the seq on the flusher thread right after `on_durable`
  // (or the failure: on the caller's thread for a payload over max_payload() or a log not started,
  // else on the flusher's), exactly once. It must not block: it runs inside the flusher's loop, and
  // every record behind it waits for it (the listener's completion resumes a connection).
  void append_async(std::string payload, std::function<void(uint64_t seq)> on_durable,
                    std::function<void(Result<uint64_t>)> done);

  // The record `seq` is durable elsewhere now; its space is reused once every older record is
  // released too.
  void release(uint64_t seq);

  // Records appended and not yet released (for the store's read barrier and tests).
  std::size_t unreleased() const;

  static constexpr std::size_t k_block = 512;

 private:
  struct Waiting;
  struct Live {
    uint64_t seq;
    uint64_t start;  // logical ring offset of the record (wrap padding before it included)
    bool released;
  };
  IntakeLog(int fd, bool direct, std::filesystem::path path, uint64_t file_bytes, uint64_t epoch, uint64_t next_seq);
  void flusher_loop();
  bool write_all(const char* data, std::size_t n, uint64_t offset);

  int m_fd;       // the flusher's (start() before it runs)
  bool m_direct;  // m_fd has O_DIRECT
  std::filesystem::path m_path;
  uint64_t m_ring;  // bytes of the ring (file minus head block)
  uint64_t m_epoch;
  uint64_t m_next_seq;

  mutable std::mutex m_mutex;
  std::condition_variable m_work_cv;   // flusher: records waiting / stop
  std::condition_variable m_space_cv;  // flusher: space released / stop
  std::deque<std::shared_ptr<Waiting>> m_queue;
  std::deque<Live> m_live;  // appended, oldest first
  uint64_t m_head = 0;      // logical end of the last record (monotonic)
  bool m_stopping = false;
  bool m_started = false;
  std::thread m_flusher;
};

}  // namespace alumia

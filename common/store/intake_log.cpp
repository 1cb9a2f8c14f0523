#include <alumia/base/fs.hpp>
#include <alumia/store/intake_log.hpp>

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>

namespace alumia {
namespace {

constexpr uint32_t k_head_magic = 0x41494c48;    // "HLIA"
constexpr uint32_t k_record_magic = 0x41494c52;  // "RLIA"
constexpr std::size_t k_header = 32;             // magic, crc, epoch, seq, payload length, padded length
constexpr auto k_space_timeout = std::chrono::seconds(10);
constexpr std::size_t k_min_bytes = 1u << 20;

uint64_t round_up(uint64_t n) { return (n + IntakeLog::k_block - 1) / IntakeLog::k_block * IntakeLog::k_block; }

template <class T>
void put(char* p, T v) {
  std::memcpy(p, &v, sizeof v);  // little-endian hosts only (x86_64, aarch64)
}
template <class T>
T get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    t[i] = c;
  }
  return t;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc32c_hw(const unsigned char* p, std::size_t n, uint32_t crc) {
  uint64_t c = crc;
  for (; n >= 8; n -= 8, p += 8) c = __builtin_ia32_crc32di(c, get<uint64_t>(reinterpret_cast<const char*>(p)));
  auto c32 = static_cast<uint32_t>(c);
  for (; n > 0; --n, ++p) c32 = __builtin_ia32_crc32qi(c32, *p);
  return c32;
}
#endif

// An aligned, zeroed buffer for O_DIRECT writes.
struct AlignedBuffer {
  explicit AlignedBuffer(std::size_t n) : size(n), data(static_cast<char*>(std::aligned_alloc(4096, round4k(n)))) {
    if (!data) throw std::bad_alloc();
    std::memset(data, 0, n);
  }
  ~AlignedBuffer() { std::free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  static std::size_t round4k(std::size_t n) { return (n + 4095) / 4096 * 4096; }
  std::size_t size;
  char* data;
};

Status errno_error(const std::string& what) { return fail(ErrorCode::internal, what + ": " + std::strerror(errno)); }

// The file mapped read-only for the scan at open. Not a heap buffer: a 16 MiB allocation freed
// raises glibc's mmap threshold to its size, after which every allocation below it comes from the
// heap, where the daemon's RSS then stays after a burst.
struct ReadMapping {
  const char* data = nullptr;
  std::size_t size = 0;
  ReadMapping(int fd, std::size_t n) : size(n) {
    void* p = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) return;
    ::madvise(p, n, MADV_SEQUENTIAL);
    data = static_cast<const char*>(p);
  }
  ~ReadMapping() {
    if (data) ::munmap(const_cast<char*>(data), size);
  }
  ReadMapping(const ReadMapping&) = delete;
  ReadMapping& operator=(const ReadMapping&) = delete;
};

}  // namespace

uint32_t crc32c(const void* data, std::size_t n, uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
#if defined(__x86_64__)
  static const bool hw = __builtin_cpu_supports("sse4.2");
  if (hw) return ~crc32c_hw(p, n, crc);
#endif
  static const auto table = make_crc_table();
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

struct IntakeLog::Waiting {
  std::string payload;
  std::function<void(uint64_t)> on_durable;
  std::function<void(Result<uint64_t>)> done;  // exactly once: the seq once durable, or the failure
  uint64_t seq = 0;
  uint64_t start = 0;    // logical offset where this record's space begins (wrap padding included)
  uint64_t logical = 0;  // logical offset of the record itself
};

Result<std::unique_ptr<IntakeLog>> IntakeLog::open(const Options& o, std::vector<Record>& left) {
  left.clear();
  const std::string path = o.path.string();
  // Opened without following a symbolic link at the
  // name (a link planted there would have us overwrite its target), and only if the file is the
  // daemon user's and private (fs.hpp).
  auto opened = open_owned_file(o.path, O_RDWR | O_CREAT, Privacy::secret, 0600);
  if (!opened) return fail(opened.error().code, "cannot open the intake log: " + opened.error().message);
  UniqueFd fd = std::move(*opened);
  const int rfd = fd.get();
  struct stat st {};
  if (::fstat(rfd, &st) != 0) return std::unexpected(errno_error("cannot stat " + path).error());
  uint64_t file_bytes = static_cast<uint64_t>(st.st_size) / k_block * k_block;
  if (file_bytes < k_block + k_min_bytes) {
    // New (or cut short before it was ever used): zero-fill the whole file now, so that appends
    // overwrite allocated blocks and each needs no metadata update to be durable.
    file_bytes = std::max<uint64_t>(round_up(o.bytes), k_block + k_min_bytes);
    // In 64 KiB writes: a buffer under glibc's mmap threshold (128 KiB), so that freeing it does not
    // raise the threshold (see ReadMapping).
    const std::string zeros(64u << 10, '\0');
    for (uint64_t off = 0; off < file_bytes; off += zeros.size()) {
      const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(zeros.size(), file_bytes - off));
      if (::pwrite(rfd, zeros.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n))
        return std::unexpected(errno_error("cannot write the intake log " + path).error());
    }
    if (::fsync(rfd) != 0) return std::unexpected(errno_error("cannot fsync " + path).error());
    const int dfd =
        ::open(o.path.parent_path().empty() ? "." : o.path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
  const ReadMapping mapped(rfd, static_cast<std::size_t>(file_bytes));
  if (!mapped.data) return std::unexpected(errno_error("cannot read the intake log " + path).error());
  const char* data = mapped.data;

  uint64_t epoch = 0;
  if (get<uint32_t>(data) == k_head_magic) {
    epoch = get<uint64_t>(data + 8);
  } else if (std::any_of(data, data + k_block, [](char c) { return c != 0; })) {
    return fail(ErrorCode::internal, "the intake log " + path +
                                         " has a damaged head block; move it aside to start "
                                         "(deliveries in it that were not yet in the store would be lost)");
  }
  uint64_t max_seq = 0;
  const uint64_t ring = file_bytes - k_block;
  const char* base = data + k_block;
  for (uint64_t off = 0; off + k_header <= ring;) {
    const char* h = base + off;
    const auto len = get<uint32_t>(h + 24);
    const auto padded = get<uint32_t>(h + 28);
    if (get<uint32_t>(h) == k_record_magic && get<uint64_t>(h + 8) == epoch && padded == round_up(k_header + len) &&
        off + padded <= ring && get<uint32_t>(h + 4) == crc32c(h + 8, k_header - 8 + len)) {
      Record r;
      r.seq = get<uint64_t>(h + 16);
      r.payload.assign(h + k_header, len);
      max_seq = std::max(max_seq, r.seq);
      left.push_back(std::move(r));
      off += padded;
    } else {
      off += k_block;
    }
  }
  std::sort(left.begin(), left.end(), [](const Record& a, const Record& b) { return a.seq < b.seq; });

  // Appends: O_DIRECT|O_DSYNC, so one write is one trip to the disk with no page cache copy. File
  // systems without O_DIRECT (tmpfs) refuse the flag (EINVAL) and get O_DSYNC alone. The name is
  // opened again (O_DSYNC cannot be added to an open descriptor); it must still be the same file.
  auto writer = open_owned_file(o.path, O_WRONLY | O_DSYNC, Privacy::secret);
  if (!writer) return fail(writer.error().code, "cannot open the intake log for writing: " + writer.error().message);
  struct stat wst {};
  if (::fstat(writer->get(), &wst) != 0) return std::unexpected(errno_error("cannot stat " + path).error());
  if (wst.st_dev != st.st_dev || wst.st_ino != st.st_ino)
    return fail(ErrorCode::internal, "the intake log " + path + " was replaced while it was being opened");
  const int flags = ::fcntl(writer->get(), F_GETFL);
  if (flags < 0) return std::unexpected(errno_error("cannot read the flags of " + path).error());
  const bool direct = ::fcntl(writer->get(), F_SETFL, flags | O_DIRECT) == 0;
  return std::unique_ptr<IntakeLog>(new IntakeLog(writer->release(), direct, o.path, file_bytes, epoch, max_seq + 1));
}

IntakeLog::IntakeLog(int fd, bool direct, std::filesystem::path path, uint64_t file_bytes, uint64_t epoch,
                     uint64_t next_seq)
    : m_fd(fd),
      m_direct(direct),
      m_path(std::move(path)),
      m_ring(file_bytes - k_block),
      m_epoch(epoch),
      m_next_seq(next_seq) {}

IntakeLog::~IntakeLog() {
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_work_cv.notify_all();
  m_space_cv.notify_all();
  if (m_flusher.joinable()) m_flusher.join();
  for (auto& w : m_queue) w->done(fail(ErrorCode::service_unavailable, "the daemon is shutting down"));
  ::close(m_fd);
}

Status IntakeLog::start() {
  AlignedBuffer head(k_block);
  put<uint32_t>(head.data, k_head_magic);
  put<uint64_t>(head.data + 8, m_epoch + 1);
  if (!write_all(head.data, k_block, 0)) return errno_error("cannot write the intake log head " + m_path.string());
  std::lock_guard lock(m_mutex);
  m_epoch += 1;
  m_started = true;
  m_flusher = std::thread([this] { flusher_loop(); });
  return {};
}

std::size_t IntakeLog::max_payload() const { return m_ring / 4 - k_header; }

std::size_t IntakeLog::unreleased() const {
  std::lock_guard lock(m_mutex);
  return m_live.size() + m_queue.size();
}

Result<uint64_t> IntakeLog::append(std::string payload, std::function<void(uint64_t)> on_durable) {
  std::promise<Result<uint64_t>> done;
  auto fut = done.get_future();
  append_async(std::move(payload), std::move(on_durable),
               [&done](Result<uint64_t> seq) { done.set_value(std::move(seq)); });
  return fut.get();
}

void IntakeLog::append_async(std::string payload, std::function<void(uint64_t seq)> on_durable,
                             std::function<void(Result<uint64_t>)> done) {
  if (payload.size() > max_payload())
    return done(fail(ErrorCode::internal,
                     "intake record of " + std::to_string(payload.size()) + " bytes exceeds the log's limit"));
  auto w = std::make_shared<Waiting>();
  w->payload = std::move(payload);
  w->on_durable = std::move(on_durable);
  w->done = std::move(done);
  {
    std::unique_lock lock(m_mutex);
    if (m_stopping || !m_started) {
      lock.unlock();
      return w->done(fail(ErrorCode::service_unavailable, "the daemon is shutting down"));
    }
    m_queue.push_back(std::move(w));
  }
  m_work_cv.notify_one();
}

void IntakeLog::release(uint64_t seq) {
  {
    std::lock_guard lock(m_mutex);
    if (m_live.empty() || seq < m_live.front().seq) return;
    const uint64_t i = seq - m_live.front().seq;
    if (i >= m_live.size()) return;
    m_live[i].released = true;
    if (i != 0) return;
    while (!m_live.empty() && m_live.front().released) m_live.pop_front();
  }
  m_space_cv.notify_one();
}

bool IntakeLog::write_all(const char* data, std::size_t n, uint64_t offset) {
  while (n > 0) {
    const ssize_t r = ::pwrite(m_fd, data, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EINVAL && m_direct) {
      // A device whose blocks are larger than 512 bytes refuses these O_DIRECT writes: go on with
      // O_DSYNC through the page cache (slower, as durable), on the same descriptor.
      const int flags = ::fcntl(m_fd, F_GETFL);
      if (flags < 0 || ::fcntl(m_fd, F_SETFL, flags & ~O_DIRECT) != 0) return false;
      m_direct = false;
      spdlog::warn("intake log {}: O_DIRECT writes refused by the device; using O_DSYNC alone", m_path.string());
      continue;
    }
    if (r <= 0) return false;
    data += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return true;
}

// Group commit: every record waiting when the previous write returned goes into the next write.
// While one write is on its way to the disk, new records queue; so the batch size follows the
// concurrency by itself, with no timer.
void IntakeLog::flusher_loop() {
  ::pthread_setname_np(::pthread_self(), "intake-flush");  // ps -L, top -H, perf: which thread is which
  const uint64_t max_batch_bytes = std::min<uint64_t>(m_ring / 2, 4u << 20);
  std::unique_lock lock(m_mutex);
  for (;;) {
    m_work_cv.wait(lock, [&] { return m_stopping || !m_queue.empty(); });
    if (m_stopping) return;
    std::vector<std::shared_ptr<Waiting>> batch;
    uint64_t bytes = 0;
    while (!m_queue.empty()) {
      const uint64_t need = round_up(k_header + m_queue.front()->payload.size());
      if (!batch.empty() && bytes + need > max_batch_bytes) break;
      bytes += need;
      batch.push_back(std::move(m_queue.front()));
      m_queue.pop_front();
    }
    // Place the records after m_head; a record that would cross the end of the ring starts at its
    // beginning instead, and the gap counts as used until that record is released.
    uint64_t pos = m_head;
    for (auto& w : batch) {
      const uint64_t len = round_up(k_header + w->payload.size());
      w->start = pos;
      if (pos % m_ring + len > m_ring) pos += m_ring - pos % m_ring;
      w->logical = pos;
      pos += len;
    }
    const auto used = [&] { return m_head - (m_live.empty() ? m_head : m_live.front().start); };
    const uint64_t total = pos - m_head;
    if (used() + total > m_ring &&
        !m_space_cv.wait_for(lock, k_space_timeout, [&] { return m_stopping || used() + total <= m_ring; })) {
      spdlog::error("intake log {}: full for {} s (the store is not applying records); refusing deliveries",
                    m_path.string(), k_space_timeout.count());
      lock.unlock();
      for (auto& w : batch) w->done(fail(ErrorCode::service_unavailable, "the intake log is full; retry"));
      lock.lock();
      continue;
    }
    if (m_stopping) {
      m_queue.insert(m_queue.begin(), batch.begin(), batch.end());  // failed by the destructor
      return;
    }
    for (auto& w : batch) w->seq = m_next_seq++;
    const uint64_t epoch = m_epoch;
    lock.unlock();

    // At most two runs: before and after the end of the ring.
    bool ok = true;
    std::size_t i = 0;
    while (ok && i < batch.size()) {
      std::size_t j = i;
      uint64_t run = 0;
      const uint64_t first = batch[i]->logical;
      while (j < batch.size() && batch[j]->logical == first + run) {
        run += round_up(k_header + batch[j]->payload.size());
        ++j;
      }
      AlignedBuffer buf(run);
      uint64_t at = 0;
      for (std::size_t k = i; k < j; ++k) {
        const auto& w = *batch[k];
        char* h = buf.data + at;
        const auto len = static_cast<uint32_t>(w.payload.size());
        const auto padded = static_cast<uint32_t>(round_up(k_header + len));
        put<uint32_t>(h, k_record_magic);
        put<uint64_t>(h + 8, epoch);
        put<uint64_t>(h + 16, w.seq);
        put<uint32_t>(h + 24, len);
        put<uint32_t>(h + 28, padded);
        std::memcpy(h + k_header, w.payload.data(), len);
        put<uint32_t>(h + 4, crc32c(h + 8, k_header - 8 + len));
        at += padded;
      }
      ok = write_all(buf.data, run, k_block + first % m_ring);
      i = j;
    }
    const int write_errno = errno;

    lock.lock();
    if (!ok) {
      spdlog::error("intake log {}: write failed: {}", m_path.string(), std::strerror(write_errno));
      lock.unlock();
      for (auto& w : batch) w->done(fail(ErrorCode::service_unavailable, "the event could not be stored; retry"));
      lock.lock();
      continue;
    }
    for (auto& w : batch) m_live.push_back(Live{w->seq, w->start, false});
    m_head = pos;
    lock.unlock();
    for (auto& w : batch) {
      w->on_durable(w->seq);
      w->done(w->seq);
    }
    lock.lock();
  }
}

}  // namespace alumia

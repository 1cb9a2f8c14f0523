// The dedup index of the webhook store (dedup_index.hpp).
#include "dedup_index.hpp"

#include <sys/mman.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <new>

namespace alumia::sqlite {
namespace {

// A key of the index: endpoint id, a separator no id contains, the provider's key.
std::string index_key(std::string_view endpoint_id, std::string_view key) {
  std::string k;
  k.reserve(endpoint_id.size() + 1 + key.size());
  k += endpoint_id;
  k += '\x1f';
  k += key;
  return k;
}

// The fingerprint of a key: what the filter and the lock stripes use.
uint64_t fingerprint(const std::string& index_key) { return std::hash<std::string>{}(index_key); }

// splitmix64's finalizer: the bits inside a block come from a mix of the fingerprint, so they do
// not repeat the bits that chose the block.
uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

constexpr int k_bits_per_key = 6;  // of the 512 bits of a block; 6 x 9 bits of the mix

}  // namespace

KeyFilter::KeyFilter(std::size_t bytes) : m_blocks(std::clamp<std::size_t>(bytes / k_block_bytes, 1, k_max_blocks)) {
  void* p = ::mmap(nullptr, m_blocks * k_block_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  m_words = static_cast<uint64_t*>(p);
}

KeyFilter::~KeyFilter() { ::munmap(m_words, m_blocks * k_block_bytes); }

// The block: the fingerprint's high 32 bits scaled to the number of blocks (at most 2^24, so the
// product fits), without a division.
std::size_t KeyFilter::block_of(uint64_t fp) const { return static_cast<std::size_t>(((fp >> 32) * m_blocks) >> 32); }

void KeyFilter::add(uint64_t fp) {
  uint64_t* block = m_words + block_of(fp) * 8;
  uint64_t bits = mix(fp);
  for (int i = 0; i < k_bits_per_key; ++i, bits >>= 9) block[(bits >> 6) & 7] |= uint64_t{1} << (bits & 63);
}

bool KeyFilter::may_contain(uint64_t fp) const {
  const uint64_t* block = m_words + block_of(fp) * 8;
  uint64_t bits = mix(fp);
  for (int i = 0; i < k_bits_per_key; ++i, bits >>= 9)
    if (!(block[(bits >> 6) & 7] & (uint64_t{1} << (bits & 63)))) return false;
  return true;
}

DedupIndex::DedupIndex(const std::string& db_name, bool synchronous_full, std::size_t filter_bytes)
    : m_db_name(db_name),
      m_filter_bytes(filter_bytes),
      m_filter(std::make_unique<KeyFilter>(filter_bytes)),
      m_db(db_name, SQLite::OPEN_READWRITE | k_open_nofollow),
      m_q(m_db) {
  open_webhook_pragmas(m_db, synchronous_full);
}

void DedupIndex::remember_fingerprint(uint64_t fp) {
  m_filter->add(fp);
  if (m_rebuilding) m_added_while_rebuilding.push_back(fp);
}

// A fresh filter read from the table replaces the old one, which answers meanwhile. Keys that were
// in flight when the read began, or went in flight while it ran, may be committed after the read's
// snapshot: they are added at the swap. The read (every stored key: seconds for millions) has a
// connection of its own, so that lookups of "maybe" keys do not wait for it.
DedupIndex::~DedupIndex() {
  m_stop.store(true);
  if (m_rebuilder.joinable()) m_rebuilder.join();
}

void DedupIndex::rebuild_filter_in_background() {
  m_rebuilder = std::thread([this] {
    if (auto st = rebuild_filter(); !st && !m_stop.load())
      spdlog::warn("webhook store: the dedup filter could not be built ({}); every key is looked up in the table",
                   st.error().message);
  });
}

Status DedupIndex::rebuild_filter() {
  std::lock_guard one_at_a_time(m_rebuild_mutex);
  {
    std::lock_guard lock(m_in_flight_mutex);
    m_rebuilding = true;
    m_added_while_rebuilding.clear();
    for (const auto& [k, ignored] : m_in_flight) m_added_while_rebuilding.push_back(fingerprint(k));
  }
  std::unique_ptr<KeyFilter> fresh;
  Status st;
  try {
    // This thread's own connection: no SQLite mutex around each step.
    SQLite::Database db(m_db_name, SQLite::OPEN_READONLY | SQLITE_OPEN_NOMUTEX | k_open_nofollow);
    db.setBusyTimeout(5000);
    fresh = std::make_unique<KeyFilter>(m_filter_bytes);
    dedup_runs::for_each_key(
        db,
        [&](const std::string& endpoint_id, const dedup_runs::Entry& e) {
          fresh->add(fingerprint(index_key(endpoint_id, e.key)));
        },
        &m_stop);
    if (m_stop.load()) st = fail(ErrorCode::service_unavailable, "the webhook store is closing");
  } catch (const std::exception& e) {
    st = std::unexpected(to_error(e, "webhook store"));
  }
  std::lock_guard lock(m_in_flight_mutex);
  m_rebuilding = false;
  if (!st) return st;  // the old filter stays: it still holds every stored key
  for (auto fp : m_added_while_rebuilding) fresh->add(fp);
  m_added_while_rebuilding.clear();
  m_added_while_rebuilding.shrink_to_fit();
  m_filter.swap(fresh);
  m_filter_complete = true;
  return {};
}

DedupIndex::Stats DedupIndex::stats() const {
  std::lock_guard lock(m_in_flight_mutex);
  return Stats{.filter_bytes = m_filter->bytes(),
               .table_lookups = m_table_lookups.load(),
               .false_positives = m_false_positives.load(),
               .in_flight = m_in_flight.size(),
               .waiting = m_waiting};
}

std::optional<KeyHit> DedupIndex::known_in_memory(const DedupKey& k, bool& settled) {
  std::lock_guard lock(m_in_flight_mutex);
  settled = true;
  if (auto it = m_in_flight.find(k.index_key); it != m_in_flight.end())
    return KeyHit{it->second.event_id, it->second.durable ? std::nullopt : std::optional<std::string>(k.index_key)};
  // Certainly never stored: no read. Until the first build is complete every key is a "maybe".
  settled = m_filter_complete && !m_filter->may_contain(k.fp);
  return std::nullopt;
}

std::optional<KeyHit> DedupIndex::known_key(const std::string& endpoint_id, const DedupKey& k) {
  bool settled = false;
  if (auto hit = known_in_memory(k, settled); hit || settled) return hit;
  bool complete = false;
  {
    std::lock_guard lock(m_in_flight_mutex);
    complete = m_filter_complete;
  }
  // Maybe stored: the table's primary key settles it.
  m_table_lookups.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(m_db_mutex);
  auto event_id = dedup_runs::find(m_q, endpoint_id, *k.key);
  if (!event_id) {
    if (complete) m_false_positives.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  return KeyHit{std::move(*event_id), std::nullopt};
}

std::vector<DedupIndex::DedupKey> DedupIndex::keys_of(const IngestRequest& r) const {
  std::vector<DedupKey> keys;  // in the order find_original() numbers them
  keys.reserve(1 + r.item_keys.size() + r.alias_keys.size());
  auto add = [&](const std::string& k) {
    auto ik = index_key(r.endpoint_id, k);
    const uint64_t fp = fingerprint(ik);
    keys.push_back(DedupKey{&k, std::move(ik), fp});
  };
  add(r.event_key);
  for (const auto& k : r.item_keys) add(k);
  for (const auto& k : r.alias_keys) add(k);
  return keys;
}

// The key locks held: a new delivery's keys go in flight.
DedupIndex::Admission DedupIndex::claim(const std::vector<DedupKey>& keys, const std::string& event_id) {
  Admission admitted;
  std::lock_guard lock(m_in_flight_mutex);
  for (const auto& k : keys) {
    remember_fingerprint(k.fp);
    if (m_in_flight.emplace(k.index_key, InFlight{event_id, false}).second) admitted.claimed.push_back(k.index_key);
  }
  return admitted;
}

std::vector<std::size_t> DedupIndex::lock_order(const std::vector<DedupKey>& keys) {
  std::vector<std::size_t> locks;
  for (const auto& k : keys) locks.push_back(k.fp % k_key_locks);
  std::sort(locks.begin(), locks.end());
  locks.erase(std::unique(locks.begin(), locks.end()), locks.end());
  return locks;
}

Result<DedupIndex::Admission> DedupIndex::admit(const IngestRequest& r) {
  const std::vector<DedupKey> keys = keys_of(r);
  const std::vector<std::size_t> locks = lock_order(keys);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    std::vector<std::unique_lock<std::mutex>> held;
    for (auto i : locks) held.emplace_back(m_key_locks[i]);
    auto original =
        find_original(r, [&](std::size_t i, const std::string&) { return known_key(r.endpoint_id, keys[i]); });
    if (!original) return claim(keys, r.event_id);
    held.clear();
    if (!original->writing) return Admission{std::move(original->event_id), {}};
    // A copy of a delivery whose write has not returned: answer once that one is durable, or take
    // its place if it failed.
    std::unique_lock lock(m_in_flight_mutex);
    ++m_waiting;
    const bool settled = m_in_flight_cv.wait_until(lock, give_up, [&] {
      auto it = m_in_flight.find(*original->writing);
      return it == m_in_flight.end() || it->second.event_id != original->event_id || it->second.durable;
    });
    --m_waiting;
    if (!settled) return fail(ErrorCode::service_unavailable, "the event could not be stored; retry");
  }
}

std::optional<DedupIndex::Admission> DedupIndex::try_admit(const IngestRequest& r) {
  const std::vector<DedupKey> keys = keys_of(r);
  std::vector<std::unique_lock<std::mutex>> held;
  for (auto i : lock_order(keys)) {
    held.emplace_back(m_key_locks[i], std::try_to_lock);
    if (!held.back().owns_lock()) return std::nullopt;  // another admission may be reading the table
  }
  bool settled = true;
  auto original = find_original(r, [&](std::size_t i, const std::string&) -> std::optional<KeyHit> {
    if (!settled) return std::nullopt;
    return known_in_memory(keys[i], settled);
  });
  if (!settled) return std::nullopt;
  if (!original) return claim(keys, r.event_id);
  if (original->writing) return std::nullopt;  // admit() waits for it
  return Admission{std::move(original->event_id), {}};
}

void DedupIndex::mark_durable(const std::vector<std::string>& claimed) {
  {
    std::lock_guard lock(m_in_flight_mutex);
    for (const auto& k : claimed)
      if (auto it = m_in_flight.find(k); it != m_in_flight.end()) it->second.durable = true;
  }
  m_in_flight_cv.notify_all();
}

void DedupIndex::release(const std::vector<std::string>& claimed) {
  if (claimed.empty()) return;
  {
    std::lock_guard lock(m_in_flight_mutex);
    for (const auto& k : claimed) m_in_flight.erase(k);
  }
  m_in_flight_cv.notify_all();
}

}  // namespace alumia::sqlite

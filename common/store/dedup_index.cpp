// The dedup index of the webhook store (dedup_index.hpp).
#include "dedup_index.hpp"

#include <algorithm>
#include <chrono>
#include <functional>

namespace alumia::sqlite {
namespace {

// A key of the index: endpoint id, a separator no id contains, the provider's key.
std::string index_key(const std::string& endpoint_id, const std::string& key) {
  std::string k;
  k.reserve(endpoint_id.size() + 1 + key.size());
  k += endpoint_id;
  k += '\x1f';
  k += key;
  return k;
}

// Fingerprints of every stored key (and of every key that went in flight since): a miss proves a
// key new without a read; a hit (a repeat, or a collision) is checked against the table. Stale
// fingerprints only cost a read.
uint64_t fingerprint(const std::string& index_key) { return std::hash<std::string>{}(index_key); }

}  // namespace

DedupIndex::DedupIndex(const std::string& db_name, bool synchronous_full)
    : m_db(db_name, SQLite::OPEN_READWRITE | k_open_nofollow), m_q(m_db) {
  open_webhook_pragmas(m_db, synchronous_full);
}

void DedupIndex::remember_fingerprint(uint64_t fp) {
  m_fingerprints.insert(fp);
  if (m_fingerprints_rebuilding) m_fingerprints_since.push_back(fp);
}

// Keys that were in flight when the read began, or went in flight while it ran, may be committed
// after the read's snapshot: they are added at the swap.
Status DedupIndex::rebuild_fingerprints() {
  {
    std::lock_guard lock(m_in_flight_mutex);
    m_fingerprints_rebuilding = true;
    m_fingerprints_since.clear();
    for (const auto& [k, ignored] : m_in_flight) m_fingerprints_since.push_back(fingerprint(k));
  }
  std::unordered_set<uint64_t> fresh;
  auto st = locked(m_db_mutex, "webhook store", [&] {
    auto q = m_q.use("SELECT endpoint_id, event_key FROM webhook_dedup");
    while (q->executeStep())
      fresh.insert(fingerprint(index_key(q->getColumn(0).getString(), q->getColumn(1).getString())));
  });
  std::lock_guard lock(m_in_flight_mutex);
  m_fingerprints_rebuilding = false;
  if (!st) return st;  // the old set stays: it still holds every stored key
  for (auto fp : m_fingerprints_since) fresh.insert(fp);
  m_fingerprints_since.clear();
  m_fingerprints.swap(fresh);
  return {};
}

std::optional<KeyHit> DedupIndex::known_key(const std::string& endpoint_id, const DedupKey& k) {
  {
    std::lock_guard lock(m_in_flight_mutex);
    if (auto it = m_in_flight.find(k.index_key); it != m_in_flight.end())
      return KeyHit{it->second.event_id, it->second.durable ? std::nullopt : std::optional<std::string>(k.index_key)};
    if (!m_fingerprints.contains(k.fp)) return std::nullopt;  // never stored: no read
  }
  std::lock_guard lock(m_db_mutex);
  auto q = m_q.use("SELECT event_id FROM webhook_dedup WHERE endpoint_id=? AND event_key=?");
  q->bind(1, endpoint_id);
  q->bind(2, *k.key);
  if (!q->executeStep()) return std::nullopt;
  return KeyHit{q->getColumn(0).getString(), std::nullopt};
}

Result<DedupIndex::Admission> DedupIndex::admit(const IngestRequest& r) {
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
  std::vector<std::size_t> locks;
  for (const auto& k : keys) locks.push_back(k.fp % k_key_locks);
  std::sort(locks.begin(), locks.end());
  locks.erase(std::unique(locks.begin(), locks.end()), locks.end());
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    std::vector<std::unique_lock<std::mutex>> held;
    for (auto i : locks) held.emplace_back(m_key_locks[i]);
    auto original =
        find_original(r, [&](std::size_t i, const std::string&) { return known_key(r.endpoint_id, keys[i]); });
    if (!original) {
      Admission admitted;
      {
        std::lock_guard lock(m_in_flight_mutex);
        for (const auto& k : keys) {
          remember_fingerprint(k.fp);
          if (m_in_flight.emplace(k.index_key, InFlight{r.event_id, false}).second)
            admitted.claimed.push_back(k.index_key);
        }
      }
      return admitted;
    }
    held.clear();
    if (!original->writing) return Admission{std::move(original->event_id), {}};
    // A copy of a delivery whose write has not returned: answer once that one is durable, or take
    // its place if it failed.
    std::unique_lock lock(m_in_flight_mutex);
    const bool settled = m_in_flight_cv.wait_until(lock, give_up, [&] {
      auto it = m_in_flight.find(*original->writing);
      return it == m_in_flight.end() || it->second.event_id != original->event_id || it->second.durable;
    });
    if (!settled) return fail(ErrorCode::service_unavailable, "the event could not be stored; retry");
  }
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

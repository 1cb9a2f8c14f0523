#pragma once
// The dedup index of the webhook store (private to the store): decides, before a delivery is
// written, whether it repeats one already accepted.
//
// A delivery's keys are looked up, under a lock per key (64 stripes), among the keys in flight
// (deliveries accepted and not yet committed into the tables, in memory) and then in the stored
// set (webhook_dedup, through a connection of its own). The stored set is read only when a key's
// 64-bit fingerprint is among those of the stored keys (kept in memory, rebuilt after each prune):
// almost every delivery is new, and a fingerprint miss proves it without a read. A new delivery's
// keys go in flight before the locks are let go, and leave only after the commit that stored them
// (release()), so the two lookups never both miss a known key.
#include "sqlite_util.hpp"

#include <alumia/base/error.hpp>
#include <alumia/store/webhook_store.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace alumia::sqlite {

// A known dedup key: the event that holds it, and whether that delivery is still being written.
struct KeyHit {
  std::string event_id;
  std::optional<std::string> writing;  // the key in flight, while its delivery is not durable yet
};

// The delivery `r` repeats, by the rule of IngestRequest, written once for both lookups (the
// index's before the write, the writer's in its transaction): with item keys, a repeat only when
// every item key is known (of their hits, one still being written first, else the first); without,
// the event key's hit, else the first alias's. lookup(i, key) -> optional<KeyHit>, where i is the
// key's place in the order of dedup_keys(): the event key, the item keys, the alias keys.
template <class Lookup>
std::optional<KeyHit> find_original(const IngestRequest& r, Lookup&& lookup) {
  if (!r.item_keys.empty()) {
    std::optional<KeyHit> original;
    for (std::size_t i = 0; i < r.item_keys.size(); ++i) {
      auto hit = lookup(1 + i, r.item_keys[i]);
      if (!hit) return std::nullopt;
      if (!original || (hit->writing && !original->writing)) original = std::move(hit);
    }
    return original;
  }
  if (auto hit = lookup(0, r.event_key)) return hit;
  for (std::size_t i = 0; i < r.alias_keys.size(); ++i)
    if (auto hit = lookup(1 + i, r.alias_keys[i])) return hit;
  return std::nullopt;
}

class DedupIndex {
 public:
  DedupIndex(const std::string& db_name, bool synchronous_full);

  struct Admission {
    std::optional<std::string> original;  // the event this delivery repeats; nullopt: a new delivery
    std::vector<std::string> claimed;     // new: the keys in flight it added (an item key may be known)
  };
  // Decides dedup for `r`. A new delivery's keys are in flight when this returns: mark_durable()
  // them once the delivery is durable, release() them once it is committed or failed. A repeat of
  // a delivery still being written waits for it (and is new if that write failed); SERVICE_UNAVAILABLE
  // after 30 s. Throws on a failed read of the stored set.
  Result<Admission> admit(const IngestRequest& r);
  void mark_durable(const std::vector<std::string>& claimed);
  void release(const std::vector<std::string>& claimed);

  // (Re)builds the fingerprints of the stored keys from the table: at open and after a prune.
  Status rebuild_fingerprints();

 private:
  struct InFlight {
    std::string event_id;
    bool durable = false;  // false while its delivery is being written
  };
  // One key of a delivery, with its index form and fingerprint worked out once.
  struct DedupKey {
    const std::string* key;
    std::string index_key;
    uint64_t fp;
  };
  static constexpr std::size_t k_key_locks = 64;

  std::optional<KeyHit> known_key(const std::string& endpoint_id, const DedupKey& k);
  void remember_fingerprint(uint64_t fp);  // under m_in_flight_mutex

  std::array<std::mutex, k_key_locks> m_key_locks;
  std::mutex m_in_flight_mutex;
  std::condition_variable m_in_flight_cv;
  std::unordered_map<std::string, InFlight> m_in_flight;  // keys of deliveries not yet committed
  std::unordered_set<uint64_t> m_fingerprints;            // under m_in_flight_mutex
  bool m_fingerprints_rebuilding = false;
  std::vector<uint64_t> m_fingerprints_since;
  std::mutex m_db_mutex;
  SQLite::Database m_db;  // lookups of the stored set, under m_db_mutex
  StatementCache m_q;     // under m_db_mutex
};

}  // namespace alumia::sqlite

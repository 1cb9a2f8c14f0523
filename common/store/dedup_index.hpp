#pragma once
// The dedup index of the webhook store (private to the store): decides, before a delivery is
// written, whether it repeats one already accepted. Exact, in bounded memory.
//
// A delivery's keys are looked up, under a lock per key (64 stripes), among the keys in flight
// (deliveries accepted and not yet committed into the tables, in memory) and then in the stored
// set (webhook_dedup, through a connection of its own: dedup_runs::find). A new delivery's keys
// go in flight before the locks are let go, and leave only after the commit that stored them
// (release()), so the two lookups never both miss a known key, and a repeat of a delivery still
// being written finds it in flight and waits for it.
//
// Why a filter: almost every delivery is new, and proving a key new by reading the table costs a
// b-tree descent per key and stored run (dedup_runs.hpp). A KeyFilter (below) of every stored key
// answers "certainly new" without a read, or "maybe seen", which the table settles. Keys are kept
// 8 days, so an exact in-memory set grows with the traffic of a week (a hash set of 64-bit
// fingerprints cost ~40 bytes a key: 25 MB per 625k deliveries); the filter has a fixed size instead
// (WebhookStoreOptions::dedup_filter_bytes, setting `dedup-filter-bytes`), whatever the number of keys.
//
// The memory bound: the filter's bytes, as much again while it is rebuilt after a prune (the old
// one answers until the new one, read from the table through a connection of its own, replaces
// it), the page cache of the lookup connection (SQLite's default, 2 MB; the rebuild's too while it
// reads), and the keys in flight (~200 bytes each), bounded by the intake log (a record takes at
// least 512 bytes of its ring: at most 32k deliveries in 16 MiB) and by the requests being served.
//
// The trade-off: a filter of B bytes holding n keys answers "maybe" for a new key at a rate of
// about 1% while n <= B*8/10 (10 bits a key), 7% at B*8/6, 22% at B*8/4, 74% at B*8/2 (the default
// 4 MiB: 1% up to 3.3M keys, 22% at 8.4M), and every "maybe" costs one lookup of the table
// (bench/README.md, dedup_rss, measures what it costs when every key is a "maybe"). Dedup stays
// exact at any n: a "maybe" always reads the table, and a "certainly new" is never wrong (nothing
// is removed from a filter; a pruned key stays in it until the rebuild, costing only a lookup).
#include "dedup_runs.hpp"
#include "sqlite_util.hpp"

#include <alumia/base/error.hpp>
#include <alumia/store/webhook_store.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
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

// A blocked Bloom filter of 64-bit fingerprints in a fixed number of bytes: may_contain() is false
// only for a fingerprint never added. A fingerprint sets 6 bits of one 64-byte block (one cache
// line per lookup), chosen by a mix of the fingerprint. The memory is mapped anonymous and zero:
// pages cost RSS only once a key lands in them, and go back to the system with the filter.
class KeyFilter {
 public:
  static constexpr std::size_t k_block_bytes = 64;
  static constexpr std::size_t k_max_blocks = std::size_t{1} << 24;  // 1 GiB
  // `bytes` rounded down to whole blocks, from one block to 1 GiB; throws bad_alloc.
  explicit KeyFilter(std::size_t bytes);
  ~KeyFilter();
  KeyFilter(const KeyFilter&) = delete;
  KeyFilter& operator=(const KeyFilter&) = delete;

  void add(uint64_t fp);
  bool may_contain(uint64_t fp) const;
  std::size_t bytes() const { return m_blocks * k_block_bytes; }

 private:
  std::size_t block_of(uint64_t fp) const;

  uint64_t* m_words;
  std::size_t m_blocks;
};

class DedupIndex {
 public:
  // `filter_bytes`: the size of the filter of stored keys (KeyFilter), the index's memory bound.
  DedupIndex(const std::string& db_name, bool synchronous_full, std::size_t filter_bytes);
  ~DedupIndex();  // stops a build still running and waits for it
  DedupIndex(const DedupIndex&) = delete;
  DedupIndex& operator=(const DedupIndex&) = delete;

  struct Admission {
    std::optional<std::string> original;  // the event this delivery repeats; nullopt: a new delivery
    std::vector<std::string> claimed;     // new: the keys in flight it added (an item key may be known)
  };
  // Decides dedup for `r`. A new delivery's keys are in flight when this returns: mark_durable()
  // them once the delivery is durable, release() them once it is committed or failed. A repeat of
  // a delivery still being written waits for it (and is new if that write failed); SERVICE_UNAVAILABLE
  // after 30 s. Throws on a failed read of the stored set.
  Result<Admission> admit(const IngestRequest& r);
  // admit() when memory settles it: nullopt when it would block — a key the filter calls "maybe"
  // (a table read), a copy still being written (a wait), or a key lock held by another admission.
  std::optional<Admission> try_admit(const IngestRequest& r);
  void mark_durable(const std::vector<std::string>& claimed);
  void release(const std::vector<std::string>& claimed);

  // (Re)builds the filter of the stored keys from the table: after a prune (the old filter answers
  // meanwhile). One build at a time.
  Status rebuild_filter();
  // The first build, at open, on a thread of its own, so that the daemon's start does not grow with
  // the number of stored keys (a million: ~0.5 s). Until it is complete the filter proves nothing new:
  // every key is looked up in the table (exact, dedup_runs::find); keys that go in flight meanwhile
  // are added at the swap, as after a prune. When it fails, that stays so (logged).
  void rebuild_filter_in_background();

  // What the index did so far, for tests and the benchmark's notes.
  struct Stats {
    std::size_t filter_bytes = 0;
    uint64_t table_lookups = 0;    // keys the filter could not prove new ("maybe"), read from the table
    uint64_t false_positives = 0;  // of those, keys the table did not hold
    std::size_t in_flight = 0;
    std::size_t waiting = 0;  // repeats waiting now for the write of their original
  };
  Stats stats() const;

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
  // What memory says of `k`: a hit, certainly unknown (nullopt), or nothing settled (a "maybe": unset
  // `settled`).
  std::optional<KeyHit> known_in_memory(const DedupKey& k, bool& settled);
  std::vector<DedupKey> keys_of(const IngestRequest& r) const;
  Admission claim(const std::vector<DedupKey>& keys, const std::string& event_id);
  static std::vector<std::size_t> lock_order(const std::vector<DedupKey>& keys);  // key lock stripes, sorted
  void remember_fingerprint(uint64_t fp);                                         // under m_in_flight_mutex

  std::string m_db_name;  // for the rebuild's own connection
  std::size_t m_filter_bytes;
  std::array<std::mutex, k_key_locks> m_key_locks;
  mutable std::mutex m_in_flight_mutex;
  std::condition_variable m_in_flight_cv;
  std::unordered_map<std::string, InFlight> m_in_flight;  // keys of deliveries not yet committed
  std::unique_ptr<KeyFilter> m_filter;                    // under m_in_flight_mutex
  bool m_filter_complete = false;                         // under m_in_flight_mutex: it holds every stored key
  bool m_rebuilding = false;
  std::vector<uint64_t> m_added_while_rebuilding;
  std::atomic<uint64_t> m_table_lookups{0};
  std::atomic<uint64_t> m_false_positives{0};
  std::size_t m_waiting = 0;  // under m_in_flight_mutex
  std::mutex m_db_mutex;
  SQLite::Database m_db;  // lookups of the stored set, under m_db_mutex
  StatementCache m_q;     // under m_db_mutex
  std::mutex m_rebuild_mutex;
  std::atomic<bool> m_stop{false};
  std::thread m_rebuilder;  // the first build (last: joined before the rest goes)
};

}  // namespace alumia::sqlite

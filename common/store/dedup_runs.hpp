#pragma once
// The stored dedup keys of the SQLite webhook store (private to the store): sorted runs of packed blocks.
//
// Why: a provider's event ids come in no order (GitHub's X-GitHub-Delivery is a GUID). Kept as one b-tree row
// a key, keyed by (endpoint, key), a batch of k random keys dirtied about L(1 - e^(-k/L)) of the table's L
// leaves: with ~700 deliveries a batch and ~55 keys a leaf, past ~36k stored keys every key rewrote a leaf of
// its own (8 KiB into the WAL, and again at the checkpoint), and the store fell to ~0.6 of the durable ceiling
// and lower as the table grew (bench/README, "Issue 13's tenth session"). Merging such rows into sorted runs
// instead costs ~17k instructions a key each time it moves (SQLite's row insert and delete), a third of what
// a whole delivery costs the writer. So keys are packed: a block holds up to ~k_block_bytes of one endpoint's
// keys, sorted, as one row, and everything below moves blocks, not keys.
//
// The format. webhook_dedup(run, endpoint_id, first_key, keys, oldest, block), primary key (run, endpoint_id,
// first_key), WITHOUT ROWID: within a run, the blocks of an endpoint cover disjoint key ranges in order, each
// named by its first key; `keys` counts its entries and `oldest` is their earliest received_at. An entry of a
// block: the key's length (LEB128), the key, the event id's length (LEB128), the event id, received_at (8 bytes,
// little-endian); entries sorted by key, each key once. webhook_dedup_runs lists every run (a lookup reads only
// listed runs): `keys`, `oldest`/`newest` (bounds of received_at, for the prune), and for a merge in progress
// `into_run` on each input and the output's cursor (`done_endpoint`, `done_key`; NULL before the first step).
//
// Where runs come from (sqlite_dedup_runs.cpp): each flush of a batch's staged deliveries writes their keys as a
// new run (a new, highest number: the table's right edge, a few pages a batch, whatever the keys' order); the
// deliveries a batch writes one by one share its loose run, of one-key blocks. A background merge folds runs of
// the same size tier 4 at a time.
//
// The contract: a stored key is in exactly one block of a run at every commit (a merge moves it within one
// transaction), so a lookup reads one block a listed run, in one statement (one snapshot). A key stored twice
// (an item key a later delivery repeated, in two runs) answers with its earliest delivery: lookups take the
// earliest received_at, and a merge keeps it.
#include "sqlite_util.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace alumia::sqlite::dedup_runs {

inline constexpr std::size_t k_block_bytes = 1800;  // a block and its row fit in an 8 KiB page without overflow

struct Entry {
  std::string_view key;
  std::string_view event_id;
  int64_t received_at = 0;
};

inline void put_varint(std::string& out, std::size_t n) {
  do {
    const auto b = static_cast<unsigned char>(n & 0x7f);
    n >>= 7;
    out.push_back(static_cast<char>(n ? b | 0x80 : b));
  } while (n);
}

inline void append(std::string& block, const Entry& e) {
  put_varint(block, e.key.size());
  block += e.key;
  put_varint(block, e.event_id.size());
  block += e.event_id;
  uint64_t at = static_cast<uint64_t>(e.received_at);
  for (int i = 0; i < 8; ++i, at >>= 8) block.push_back(static_cast<char>(at & 0xff));
}

// Calls f(Entry) for each entry of `block` in order; stops early when f returns false. False: the block is
// malformed (from its first bad byte on, nothing is reported).
template <class F>
bool for_each(std::string_view block, F&& f) {
  std::size_t p = 0;
  auto varint = [&](std::size_t& n) {
    n = 0;
    for (int shift = 0; p < block.size() && shift < 35; shift += 7) {
      const auto b = static_cast<unsigned char>(block[p++]);
      n |= static_cast<std::size_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  };
  while (p < block.size()) {
    Entry e;
    std::size_t n = 0;
    if (!varint(n) || block.size() - p < n) return false;
    e.key = block.substr(p, n);
    p += n;
    if (!varint(n) || block.size() - p < n) return false;
    e.event_id = block.substr(p, n);
    p += n;
    if (block.size() - p < 8) return false;
    uint64_t at = 0;
    for (int i = 7; i >= 0; --i) at = (at << 8) | static_cast<unsigned char>(block[p + static_cast<std::size_t>(i)]);
    p += 8;
    e.received_at = static_cast<int64_t>(at);
    if (!f(e)) return true;
  }
  return true;
}

inline std::string_view blob_of(const SQLite::Column& c) {
  return {static_cast<const char*>(c.getBlob()), static_cast<std::size_t>(c.getBytes())};
}

// The event of the stored key (endpoint_id, key): its earliest delivery among the listed runs. Through any
// connection's statements (the writer's sees its own transaction).
inline std::optional<std::string> find(StatementCache& c, const std::string& endpoint_id, const std::string& key) {
  auto q = c.use(
      "SELECT r.run, (SELECT b.block FROM webhook_dedup b WHERE b.run = r.run AND b.endpoint_id = ?1 AND "
      "b.first_key <= ?2 ORDER BY b.first_key DESC LIMIT 1) FROM webhook_dedup_runs r");
  q->bindNoCopy(1, endpoint_id);
  q->bindNoCopy(2, key);
  std::optional<std::string> event_id;
  int64_t at = 0, run = 0;
  while (q->executeStep()) {
    if (q->getColumn(1).isNull()) continue;
    const int64_t this_run = q->getColumn(0).getInt64();
    for_each(blob_of(q->getColumn(1)), [&](const Entry& e) {
      if (e.key < key) return true;
      if (e.key == key && (!event_id || std::pair(e.received_at, this_run) < std::pair(at, run))) {
        event_id = std::string(e.event_id);
        at = e.received_at;
        run = this_run;
      }
      return false;
    });
  }
  return event_id;
}

// Calls f(endpoint_id, Entry) for every stored key (a key stored twice, twice), in no order; through `db`.
template <class F>
void for_each_key(SQLite::Database& db, F&& f, const std::atomic<bool>* stop = nullptr) {
  SQLite::Statement q(db, "SELECT endpoint_id, block FROM webhook_dedup");
  while ((!stop || !stop->load(std::memory_order_relaxed)) && q.executeStep()) {
    const std::string endpoint_id = q.getColumn(0).getString();
    for_each(blob_of(q.getColumn(1)), [&](const Entry& e) {
      f(endpoint_id, e);
      return true;
    });
  }
}

}  // namespace alumia::sqlite::dedup_runs

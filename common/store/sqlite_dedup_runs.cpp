// The writer's side of the stored dedup keys (dedup_runs.hpp: the format, why, the contract): a new run a
// flush, the background merge, the exact prune, and migration 12's conversion.
//
// The merge (size-tiered, as an LSM tree's): idle runs of one tier (floor(log4(keys))) are merged 4 at a time
// into a new run, so at most 3 idle runs a tier remain (a million keys in batches of ~700: ~6 tiers, under 20
// runs, each a descent a lookup), and a key moves about once a tier, in a block. A step is one writer operation,
// committed with the deliveries of its batch: from each input it reads up to k_merge_blocks blocks past the cursor,
// moves every key up to a bound (the lowest of the full inputs' last keys read) into the output in order, and deletes
// them from the inputs (a block the bound cuts is written again with its rest), so a step's cost is bounded and every
// key is in exactly one block at every commit. The state is only in the tables: a merge a stop cut goes on at the next
// start. Any number of merges may be in progress (at most about one a tier); each step moves the smallest, so a long
// merge of large runs does not let a batch's runs pile up behind it.
//
// The prune is exact: a run whose newest key is past the cutoff goes whole; in one that straddles it, each block
// holding an expired key (its `oldest`) is written again without them.
#include "sqlite_webhook_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <map>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

namespace alumia::sqlite {

namespace {

constexpr std::size_t k_merge_fan_in = 4;
constexpr int64_t k_merge_blocks = 16;                 // blocks an input gives a step, at most (~30 KB)
constexpr std::chrono::milliseconds k_merge_slice{5};  // of merge steps a batch

// floor(log4(keys)): runs of one tier hold within 4x as many keys.
int tier_of(int64_t keys) { return keys <= 1 ? 0 : (std::bit_width(static_cast<uint64_t>(keys)) - 1) / 2; }

// Writes entries, given in (endpoint, key) order, into blocks of run `run`: a block ends at k_block_bytes, at a
// change of endpoint, and at finish().
class BlockWriter {
 public:
  BlockWriter(StatementCache& c, int64_t run) : m_c(c), m_run(run) {}
  void add(const std::string& endpoint_id, const dedup_runs::Entry& e) {
    if (!m_block.empty() && (endpoint_id != m_endpoint || m_block.size() >= dedup_runs::k_block_bytes)) finish();
    if (m_block.empty()) {
      m_endpoint = endpoint_id;
      m_first_key = e.key;
      m_block_oldest = e.received_at;
    }
    dedup_runs::append(m_block, e);
    ++m_block_keys;
    m_block_oldest = std::min(m_block_oldest, e.received_at);
    m_oldest = m_keys == 0 ? e.received_at : std::min(m_oldest, e.received_at);
    m_newest = m_keys == 0 ? e.received_at : std::max(m_newest, e.received_at);
    ++m_keys;
  }
  void finish() {
    if (m_block.empty()) return;
    auto q = m_c.use("INSERT INTO webhook_dedup(run,endpoint_id,first_key,keys,oldest,block) VALUES(?,?,?,?,?,?)");
    q->bind(1, m_run);
    q->bindNoCopy(2, m_endpoint);
    q->bindNoCopy(3, m_first_key);
    q->bind(4, m_block_keys);
    q->bind(5, m_block_oldest);
    q->bindNoCopy(6, m_block.data(), static_cast<int>(m_block.size()));
    q->exec();
    m_block.clear();
    m_block_keys = 0;
  }
  // finish(), then the run listed in webhook_dedup_runs with the keys written (a new run: nothing else in it).
  void list_run() {
    finish();
    auto q = m_c.use("INSERT INTO webhook_dedup_runs(run,keys,oldest,newest) VALUES(?,?,?,?)");
    q->bind(1, m_run);
    q->bind(2, m_keys);
    q->bind(3, m_oldest);
    q->bind(4, m_newest);
    q->exec();
  }
  int64_t keys() const { return m_keys; }

 private:
  StatementCache& m_c;
  int64_t m_run;
  std::string m_endpoint, m_first_key, m_block;
  int64_t m_block_keys = 0, m_block_oldest = 0;
  int64_t m_keys = 0, m_oldest = 0, m_newest = 0;
};

// `keys` ({endpoint_id*, entry}) sorted by endpoint, key and time, each key once (its earliest, or its first of
// equal times: the sort is stable), into `w`.
template <class KeyRef>
void write_sorted(BlockWriter& w, std::vector<KeyRef>& keys) {
  std::ranges::stable_sort(keys, [](const KeyRef& a, const KeyRef& b) {
    return std::tie(*a.endpoint_id, a.entry.key, a.entry.received_at) <
           std::tie(*b.endpoint_id, b.entry.key, b.entry.received_at);
  });
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i > 0 && *keys[i].endpoint_id == *keys[i - 1].endpoint_id && keys[i].entry.key == keys[i - 1].entry.key)
      continue;
    w.add(*keys[i].endpoint_id, keys[i].entry);
  }
}

// A block read back, with its entries.
struct Block {
  std::size_t input = 0;
  std::string endpoint_id, first_key, data;
  std::vector<dedup_runs::Entry> entries;  // views into `data`
};

void decode(Block& b) {
  if (!dedup_runs::for_each(b.data, [&](const dedup_runs::Entry& e) {
        b.entries.push_back(e);
        return true;
      }))
    throw std::runtime_error("a dedup block of endpoint " + b.endpoint_id + " is malformed");
}

void delete_block(StatementCache& c, int64_t run, const Block& b) {
  auto q = c.use("DELETE FROM webhook_dedup WHERE run=? AND endpoint_id=? AND first_key=?");
  q->bind(1, run);
  q->bindNoCopy(2, b.endpoint_id);
  q->bindNoCopy(3, b.first_key);
  q->exec();
}

void add_run_keys(StatementCache& c, int64_t run, int64_t delta) {
  auto q = c.use("UPDATE webhook_dedup_runs SET keys=keys+?2 WHERE run=?1");
  q->bind(1, run);
  q->bind(2, delta);
  q->exec();
}

}  // namespace

// Writer thread: a new run's number, above every run stored.
int64_t SqliteWebhookStore::new_dedup_run() {
  if (m_next_run == 0) {
    auto q = m_w.use(
        "SELECT MAX((SELECT COALESCE(MAX(run),0) FROM webhook_dedup_runs), (SELECT COALESCE(MAX(run),0) FROM "
        "webhook_dedup))");
    q->executeStep();
    m_next_run = q->getColumn(0).getInt64() + 1;
  }
  return m_next_run++;
}

// Writer thread, inside the batch: `keys` as a new run, listed (a lookup finds them from this commit on), and a
// merge step queued. A key twice keeps its earliest delivery (write_sorted).
void SqliteWebhookStore::write_dedup_run(std::vector<DedupKeyRef>& keys) {
  if (keys.empty()) return;
  BlockWriter w(m_w, new_dedup_run());
  write_sorted(w, keys);
  w.list_run();
  m_merge_wanted = true;
  queue_dedup_merge();
}

// Writer thread, inside the batch: the keys of a delivery written by itself (not staged: a batch of one, a
// batch run again operation by operation, the intake log's recovery, a body too large for the log) into the
// batch's loose run, one block a key. One-key blocks never overlap, so the run takes keys in any order from
// any number of deliveries, each checked against the earlier ones by the writer's own lookups; the run is
// listed (or its count raised) with them, so a savepoint rolled back takes both. A key already in it keeps its
// first delivery.
void SqliteWebhookStore::write_loose_dedup_keys(const std::vector<DedupKeyRef>& keys) {
  if (keys.empty()) return;
  if (m_loose_run == 0) m_loose_run = new_dedup_run();
  int64_t added = 0, oldest = keys.front().entry.received_at, newest = oldest;
  std::string block;
  for (const auto& k : keys) {
    block.clear();
    dedup_runs::append(block, k.entry);
    const std::string first_key(k.entry.key);
    auto q =
        m_w.use("INSERT OR IGNORE INTO webhook_dedup(run,endpoint_id,first_key,keys,oldest,block) VALUES(?,?,?,1,?,?)");
    q->bind(1, m_loose_run);
    q->bindNoCopy(2, *k.endpoint_id);
    q->bindNoCopy(3, first_key);
    q->bind(4, k.entry.received_at);
    q->bindNoCopy(5, block.data(), static_cast<int>(block.size()));
    added += q->exec();
    oldest = std::min(oldest, k.entry.received_at);
    newest = std::max(newest, k.entry.received_at);
  }
  auto q = m_w.use(
      "INSERT INTO webhook_dedup_runs(run,keys,oldest,newest) VALUES(?1,?2,?3,?4) ON CONFLICT(run) DO UPDATE SET "
      "keys=keys+excluded.keys, oldest=MIN(oldest,excluded.oldest), newest=MAX(newest,excluded.newest)");
  q->bind(1, m_loose_run);
  q->bind(2, added);
  q->bind(3, oldest);
  q->bind(4, newest);
  q->exec();
  m_merge_wanted = true;
  queue_dedup_merge();
}

// One merge step queued unless one is; the step queues the next while there is work, or when a run was listed
// after it looked (in its own batch, or while it was queued).
void SqliteWebhookStore::queue_dedup_merge() {
  if (m_merge_queued.exchange(true)) return;
  m_writer.enqueue(WriterOp{[this] {
                              // Steps for up to k_merge_slice a batch: under load the merge keeps up with the
                              // runs the batches write (a key moves about once a tier), a step's memory stays small.
                              m_merge_wanted = false;
                              const auto until = std::chrono::steady_clock::now() + k_merge_slice;
                              while ((m_merge_more = dedup_merge_step()) && std::chrono::steady_clock::now() < until) {
                              }
                            },
                            nullptr,
                            [this](bool stored) {
                              m_merge_queued = false;
                              if ((stored && m_merge_more) || m_merge_wanted) queue_dedup_merge();
                            }});
}

// Writer thread: starts the merges that are due, then moves one chunk of the smallest merge in progress.
// Whether there was anything to do (the next step looks again).
bool SqliteWebhookStore::dedup_merge_step() {
  struct Run {
    int64_t run, keys;
    std::optional<int64_t> into;
  };
  std::vector<Run> runs;
  {
    auto q = m_w.use("SELECT run, keys, into_run FROM webhook_dedup_runs ORDER BY run");
    while (q->executeStep())
      runs.push_back({q->getColumn(0).getInt64(), q->getColumn(1).getInt64(),
                      q->getColumn(2).isNull() ? std::nullopt : std::optional(q->getColumn(2).getInt64())});
  }
  std::map<int64_t, int64_t> merging;  // output -> its inputs' keys
  for (const auto& r : runs)
    if (r.into) merging[*r.into] += r.keys;
  std::map<int, std::vector<const Run*>> idle;  // by tier, oldest first
  for (const auto& r : runs)                    // not the loose run, which this batch may still write
    if (!r.into && !merging.contains(r.run) && r.run != m_loose_run) idle[tier_of(r.keys)].push_back(&r);
  for (const auto& [tier, members] : idle) {
    if (members.size() < k_merge_fan_in) continue;
    const int64_t out = new_dedup_run();
    int64_t keys = 0;
    for (std::size_t i = 0; i < k_merge_fan_in; ++i) {
      auto q = m_w.use("UPDATE webhook_dedup_runs SET into_run=?2 WHERE run=?1");
      q->bind(1, members[i]->run);
      q->bind(2, out);
      q->exec();
      keys += members[i]->keys;
    }
    auto q = m_w.use(
        "INSERT INTO webhook_dedup_runs(run,keys,oldest,newest) SELECT ?1, 0, MIN(oldest), MAX(newest) FROM "
        "webhook_dedup_runs WHERE into_run=?1");
    q->bind(1, out);
    q->exec();
    merging[out] = keys;
  }
  if (merging.empty()) return false;
  merge_chunk(std::ranges::min_element(merging, {}, &std::pair<const int64_t, int64_t>::second)->first);
  return true;  // the next step looks again
}

// Writer thread: one step of the merge into run `out`.
void SqliteWebhookStore::merge_chunk(int64_t out) {
  using Key = std::pair<std::string_view, std::string_view>;  // (endpoint, key)
  std::string done_endpoint, done_key;                        // the cursor: ("", "") sorts before every key
  {
    auto q = m_w.use("SELECT done_endpoint, done_key FROM webhook_dedup_runs WHERE run=? AND done_key IS NOT NULL");
    q->bind(1, out);
    if (q->executeStep()) {
      done_endpoint = q->getColumn(0).getString();
      done_key = q->getColumn(1).getString();
    }
  }
  std::vector<int64_t> inputs;
  {
    auto q = m_w.use("SELECT run FROM webhook_dedup_runs WHERE into_run=? ORDER BY run");
    q->bind(1, out);
    while (q->executeStep()) inputs.push_back(q->getColumn(0).getInt64());
  }
  // Each input's next blocks (every block of an input holds only keys past the cursor).
  std::vector<Block> blocks;
  std::vector<bool> full(inputs.size(), false);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    auto q = m_w.use(
        "SELECT endpoint_id, first_key, block FROM webhook_dedup WHERE run=?1 AND (endpoint_id,first_key) > (?2,?3) "
        "ORDER BY endpoint_id, first_key LIMIT ?4");
    q->bind(1, inputs[i]);
    q->bindNoCopy(2, done_endpoint);
    q->bindNoCopy(3, done_key);
    q->bind(4, k_merge_blocks);
    int64_t n = 0;
    while (q->executeStep()) {
      blocks.push_back(Block{i,
                             q->getColumn(0).getString(),
                             q->getColumn(1).getString(),
                             std::string(dedup_runs::blob_of(q->getColumn(2))),
                             {}});
      ++n;
    }
    full[i] = n == k_merge_blocks;
  }
  std::optional<Key> bound;  // none: this step reads every key left and ends the merge
  for (auto& b : blocks) decode(b);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const auto& b = blocks[i];
    const bool last_of_full = full[b.input] && (i + 1 == blocks.size() || blocks[i + 1].input != b.input);
    if (!last_of_full || b.entries.empty()) continue;
    const Key last{b.endpoint_id, b.entries.back().key};
    if (!bound || last < *bound) bound = last;
  }
  std::vector<DedupKeyRef> moved;
  std::vector<int64_t> taken(inputs.size(), 0);
  for (const auto& b : blocks) {
    if (bound && Key{b.endpoint_id, b.first_key} > *bound) continue;  // wholly past the bound: stays
    BlockWriter rest(m_w, inputs[b.input]);
    delete_block(m_w, inputs[b.input], b);
    for (const auto& e : b.entries)
      if (!bound || Key{b.endpoint_id, e.key} <= *bound) {
        moved.push_back({&b.endpoint_id, e});
        ++taken[b.input];
      } else {
        rest.add(b.endpoint_id, e);  // the part of a block the bound cuts, written again
      }
    rest.finish();
  }
  BlockWriter w(m_w, out);
  write_sorted(w, moved);  // the same key from two inputs: the earliest stays
  w.finish();
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (taken[i]) add_run_keys(m_w, inputs[i], -taken[i]);
  if (!bound) {
    auto q = m_w.use("DELETE FROM webhook_dedup_runs WHERE into_run=?");
    q->bind(1, out);
    q->exec();
  }
  auto q = m_w.use("UPDATE webhook_dedup_runs SET keys=keys+?2, done_endpoint=?3, done_key=?4 WHERE run=?1");
  q->bind(1, out);
  q->bind(2, w.keys());
  const std::string be = bound ? std::string(bound->first) : "", bk = bound ? std::string(bound->second) : "";
  if (bound) {
    q->bindNoCopy(3, be);
    q->bindNoCopy(4, bk);
  }  // else NULL: the merge is complete
  q->exec();
}

Result<int64_t> SqliteWebhookStore::prune_dedup(int64_t cutoff) {
  auto n = m_writer.write_count([&] {
    std::vector<std::pair<int64_t, bool>> runs;  // run, whole
    {
      auto q = m_w.use("SELECT run, newest < ?1 FROM webhook_dedup_runs WHERE oldest < ?1");
      q->bind(1, cutoff);
      while (q->executeStep()) runs.emplace_back(q->getColumn(0).getInt64(), q->getColumn(1).getInt() != 0);
    }
    int64_t pruned = 0;
    for (const auto& [run, whole] : runs) {
      int64_t gone = 0;
      if (whole) {
        auto count = m_w.use("SELECT COALESCE(SUM(keys),0) FROM webhook_dedup WHERE run=?");
        count->bind(1, run);
        count->executeStep();
        gone = count->getColumn(0).getInt64();
        auto q = m_w.use("DELETE FROM webhook_dedup WHERE run=?");
        q->bind(1, run);
        q->exec();
      } else {
        std::vector<Block> expiring;
        {
          auto q = m_w.use("SELECT endpoint_id, first_key, block FROM webhook_dedup WHERE run=?1 AND oldest < ?2");
          q->bind(1, run);
          q->bind(2, cutoff);
          while (q->executeStep())
            expiring.push_back(Block{0,
                                     q->getColumn(0).getString(),
                                     q->getColumn(1).getString(),
                                     std::string(dedup_runs::blob_of(q->getColumn(2))),
                                     {}});
        }
        for (auto& b : expiring) {
          decode(b);
          delete_block(m_w, run, b);
          BlockWriter kept(m_w, run);
          for (const auto& e : b.entries)
            if (e.received_at < cutoff) ++gone;
            else kept.add(b.endpoint_id, e);
          kept.finish();
        }
      }
      pruned += gone;
      auto u = m_w.use("UPDATE webhook_dedup_runs SET keys=keys-?2, oldest=MAX(oldest,?3) WHERE run=?1");
      u->bind(1, run);
      u->bind(2, gone);
      u->bind(3, cutoff);
      u->exec();
    }
    // Emptied runs go, but not a merge's output while the merge lists it.
    m_w.use(
           "DELETE FROM webhook_dedup_runs WHERE keys <= 0 AND run NOT IN (SELECT into_run FROM webhook_dedup_runs "
           "WHERE into_run IS NOT NULL)")
        ->exec();
    return pruned;
  });
  if (n && *n > 0)
    if (auto st = m_dedup.rebuild_filter(); !st)
      spdlog::warn("webhook store: dedup filter not rebuilt: {}", st.error().message);
  return n;
}

// Writer thread, at open, when the table is there: the keys a store made before migration 12 holds (renamed
// webhook_dedup_v11 by it), as one run, in one transaction (a million keys: a few seconds, once).
void SqliteWebhookStore::convert_v11_dedup() {
  const int64_t run = new_dedup_run();
  BlockWriter w(m_w, run);
  {
    auto q = m_w.use(
        "SELECT endpoint_id, event_key, event_id, received_at FROM webhook_dedup_v11 ORDER BY endpoint_id, event_key");
    while (q->executeStep()) {
      const std::string endpoint_id = q->getColumn(0).getString(), key = q->getColumn(1).getString(),
                        event_id = q->getColumn(2).getString();
      w.add(endpoint_id, {key, event_id, q->getColumn(3).getInt64()});
    }
  }
  if (w.keys() > 0) {
    w.list_run();
    spdlog::info("webhook store: {} dedup keys converted to sorted runs (once)", w.keys());
  }
  m_w.use("DROP TABLE webhook_dedup_v11")->exec();
}

}  // namespace alumia::sqlite

// The webhook store's dedup index in bounded memory (common/store/dedup_index.hpp): the filter never
// calls a stored key new, dedup stays exact with far more keys than the filter holds and after a
// restart with the keys only in SQLite, and a repeat of a delivery still being written waits for it; the
// stored keys' sorted runs merge, survive a stop mid-merge and a migration, and are pruned exactly.
#include "../../common/store/dedup_index.hpp"
#include "../../common/store/sqlite_webhook_store.hpp"
#include "process.hpp"
#include "webhook_store_fixture.hpp"

#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>

#include <SQLiteCpp/SQLiteCpp.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace alumia;

namespace {

IngestRequest request(const std::string& key, int n) { return test::ingest_request(key, n); }

std::string key(int n) { return "github:delivery-" + std::to_string(n); }

// A migrated store.db with endpoint ep1, and the webhook store over it with a dedup filter of
// `filter_bytes`; reopen() closes the webhook store and opens it again on the same file.
struct Fixture : test::WebhookStoreFixture {
  explicit Fixture(std::size_t bytes) : WebhookStoreFixture({"ep1"}, {.path = {}, .dedup_filter_bytes = bytes}) {}
  sqlite::DedupIndex::Stats stats() const {
    return dynamic_cast<const sqlite::SqliteWebhookStore&>(*hooks).dedup_stats();
  }
  // Waits until every accepted delivery is in the tables (a list settles the intake log first).
  void settle() {
    EventFilter f;
    f.user_id = "u1";
    Page page;
    page.limit = 1;
    REQUIRE(hooks->list_events(f, page));
  }
};

}  // namespace

TEST_CASE("dedup filter: a key added is never called new; about 1% maybe at 10 bits a key", "[dedup]") {
  constexpr std::size_t k_bytes = 64 * 1024;
  constexpr int k_keys = static_cast<int>(k_bytes * 8 / 10);
  sqlite::KeyFilter filter(k_bytes);
  CHECK(filter.bytes() == k_bytes);
  std::hash<std::string> h;
  for (int i = 0; i < k_keys; ++i) filter.add(h("in-" + std::to_string(i)));
  for (int i = 0; i < k_keys; ++i) REQUIRE(filter.may_contain(h("in-" + std::to_string(i))));
  auto fp_rate = [&](int others) {
    int maybe = 0;
    for (int i = 0; i < others; ++i) maybe += filter.may_contain(h("out-" + std::to_string(i))) ? 1 : 0;
    return static_cast<double>(maybe) / others;
  };
  const double at_capacity = fp_rate(200'000);
  // Past its design size the filter says "maybe" more often, and still never "new" for a key it holds.
  for (int i = k_keys; i < 4 * k_keys; ++i) filter.add(h("in-" + std::to_string(i)));
  for (int i = 0; i < 4 * k_keys; ++i) REQUIRE(filter.may_contain(h("in-" + std::to_string(i))));
  const double at_4x = fp_rate(200'000);
  std::fprintf(stderr, "dedup filter: %zu bytes, %d keys: %.2f%% maybe for new keys; %d keys: %.2f%%\n", k_bytes,
               k_keys, at_capacity * 100, 4 * k_keys, at_4x * 100);
  CHECK(at_capacity < 0.02);
  CHECK(at_4x > at_capacity);
  CHECK(sqlite::KeyFilter(10).bytes() == sqlite::KeyFilter::k_block_bytes);  // at least one block
}

TEST_CASE("dedup: exact with many more keys than the filter holds", "[dedup][webhooks][store]") {
  // One 64-byte block: about 50 keys at 1%; after thousands every new key is a "maybe".
  Fixture f(64);
  constexpr int k_keys = 3000;
  for (int i = 0; i < k_keys; ++i) {
    auto r = f.hooks->ingest(request(key(i), i));
    REQUIRE(r);
    REQUIRE_FALSE(r->duplicate);  // a saturated filter never refuses a new key: the table settles it
  }
  f.settle();
  const auto before = f.stats();
  CHECK(before.filter_bytes == 64);
  CHECK(before.false_positives > 0);  // new keys the filter could not prove new were read from the table
  // Repeats of the oldest keys, long committed and out of flight: duplicates of their originals.
  for (int i = 0; i < 200; ++i) {
    auto r = f.hooks->ingest(request(key(i), k_keys + i));
    REQUIRE(r);
    CHECK(r->duplicate);
    CHECK(r->event_id == "ev-" + std::to_string(i));
  }
  const auto after = f.stats();
  CHECK(after.table_lookups - before.table_lookups == 200);
  CHECK(after.false_positives == before.false_positives);
  auto ep = f.hooks->find_endpoint("ep1");
  REQUIRE(ep);
  CHECK((*ep)->received == k_keys);
}

TEST_CASE("dedup: after a restart the keys are only in SQLite and still refused", "[dedup][webhooks][store]") {
  Fixture f(4096);
  constexpr int k_keys = 2000;
  for (int i = 0; i < k_keys; ++i) REQUIRE_FALSE(f.hooks->ingest(request(key(i), i))->duplicate);
  f.reopen();  // nothing in flight or in memory: the filter is rebuilt from webhook_dedup
  CHECK(f.stats().in_flight == 0);
  for (int i = 0; i < k_keys; i += 7) {
    auto r = f.hooks->ingest(request(key(i), k_keys + i));
    REQUIRE(r);
    CHECK(r->duplicate);
    CHECK(r->event_id == "ev-" + std::to_string(i));
  }
  // New keys are still new; at 4096 bytes for 2000 keys the filter proves most of them new.
  const auto before = f.stats();
  for (int i = 0; i < 1000; ++i) REQUIRE_FALSE(f.hooks->ingest(request(key(10'000 + i), 10'000 + i))->duplicate);
  CHECK(f.stats().false_positives - before.false_positives < 100);
  // Pruned keys leave the table: new again after the filter is rebuilt.
  REQUIRE(f.hooks->prune_dedup(1000 + 100));
  CHECK_FALSE(f.hooks->ingest(request(key(3), 20'000))->duplicate);
  CHECK(f.hooks->ingest(request(key(100), 20'001))->duplicate);
}

TEST_CASE("dedup: a repeat of a delivery still being written waits for it", "[dedup][webhooks][store]") {
  test::TempDir dir;
  auto s = open_sqlite_store({dir.path() / "store.db", true});
  REQUIRE(s);
  sqlite::DedupIndex index((dir.path() / "store.db").string(), true, 64);
  REQUIRE(index.rebuild_filter());
  auto wait_for_waiter = [&] {
    REQUIRE(test::eventually([&] { return index.stats().waiting != 0; }, std::chrono::seconds(10),
                             std::chrono::milliseconds(1)));
    REQUIRE(index.stats().waiting == 1);
  };

  SECTION("the write becomes durable: the repeat is its duplicate") {
    auto first = index.admit(request(key(1), 1));
    REQUIRE(first);
    REQUIRE_FALSE(first->original);
    REQUIRE(first->claimed.size() == 1);
    auto repeat = std::async(std::launch::async, [&] { return index.admit(request(key(1), 2)); });
    wait_for_waiter();
    CHECK(repeat.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
    index.mark_durable(first->claimed);
    auto r = repeat.get();
    REQUIRE(r);
    REQUIRE(r->original);
    CHECK(*r->original == "ev-1");
    CHECK(r->claimed.empty());
    index.release(first->claimed);
  }
  SECTION("the write fails: the repeat takes its place") {
    auto first = index.admit(request(key(1), 1));
    REQUIRE(first);
    auto repeat = std::async(std::launch::async, [&] { return index.admit(request(key(1), 2)); });
    wait_for_waiter();
    index.release(first->claimed);  // never stored
    auto r = repeat.get();
    REQUIRE(r);
    CHECK_FALSE(r->original);
    CHECK(r->claimed == first->claimed);
    CHECK(index.stats().in_flight == 1);
    index.release(r->claimed);
  }
  CHECK(index.stats().in_flight == 0);
  CHECK(index.stats().waiting == 0);
}

TEST_CASE("dedup: before the filter's first build is complete, every key is read from the table", "[dedup][webhooks]") {
  Fixture f(4096);
  constexpr int k_keys = 50;
  for (int i = 0; i < k_keys; ++i) REQUIRE_FALSE(f.hooks->ingest(request(key(i), i))->duplicate);
  f.settle();
  // An index over that store whose first build has not run (the store starts it in the background
  // and does not wait for it): stored keys are still found, new ones still new.
  sqlite::DedupIndex index(f.options.path.string(), true, 4096);
  for (int i = 0; i < k_keys; ++i) {
    auto r = index.admit(request(key(i), k_keys + i));
    REQUIRE(r);
    REQUIRE(r->original);
    CHECK(*r->original == "ev-" + std::to_string(i));
  }
  auto fresh = index.admit(request(key(1000), 1000));
  REQUIRE(fresh);
  CHECK_FALSE(fresh->original);
  CHECK(index.stats().table_lookups == k_keys + 1);
  CHECK(index.stats().false_positives == 0);  // not a filter's mistake: there was no filter yet
  index.release(fresh->claimed);
  // Built, it proves new keys new without a read.
  REQUIRE(index.rebuild_filter());
  const auto before = index.stats().table_lookups;
  auto another = index.admit(request(key(2000), 2000));
  REQUIRE(another);
  CHECK_FALSE(another->original);
  CHECK(index.stats().table_lookups == before);
  index.release(another->claimed);
}

namespace {

// The dedup runs of the store at `path` (sqlite_dedup_runs.cpp), read through a connection of the test's own.
struct Runs {
  int64_t runs = 0, listed_keys = 0, rows = 0, unlisted_rows = 0, merging = 0, bad_blocks = 0;
  std::map<int, int> idle_by_tier;  // tier: floor(log4(keys))
};
Runs read_runs(const std::filesystem::path& path) {
  SQLite::Database d(path.string(), SQLite::OPEN_READONLY);
  Runs r;
  SQLite::Statement q(d,
                      "SELECT keys, into_run IS NOT NULL, run IN (SELECT into_run FROM webhook_dedup_runs) "
                      "FROM webhook_dedup_runs");
  while (q.executeStep()) {
    const int64_t keys = q.getColumn(0).getInt64();
    ++r.runs;
    r.listed_keys += keys;
    if (q.getColumn(1).getInt() || q.getColumn(2).getInt()) ++r.merging;
    else ++r.idle_by_tier[keys <= 1 ? 0 : (std::bit_width(static_cast<uint64_t>(keys)) - 1) / 2];
  }
  r.rows = d.execAndGet("SELECT COALESCE(SUM(keys),0) FROM webhook_dedup").getInt64();
  r.unlisted_rows =
      d.execAndGet("SELECT COUNT(*) FROM webhook_dedup WHERE run NOT IN (SELECT run FROM webhook_dedup_runs)")
          .getInt64();
  // Every block: entries in key order, as many as it says, none before its first key.
  SQLite::Statement b(d, "SELECT first_key, keys, block FROM webhook_dedup");
  while (b.executeStep()) {
    int64_t n = 0;
    std::string last;
    const bool ok = sqlite::dedup_runs::for_each(sqlite::dedup_runs::blob_of(b.getColumn(2)), [&](const auto& e) {
      if (n == 0 && e.key != b.getColumn(0).getString()) r.bad_blocks++;
      if (n > 0 && !(last < e.key)) r.bad_blocks++;
      last = std::string(e.key);
      ++n;
      return true;
    });
    if (!ok || n != b.getColumn(1).getInt64()) r.bad_blocks++;
  }
  return r;
}

// No merge in progress or due: every tier holds fewer than 4 idle runs.
bool merged(const std::filesystem::path& path) {
  const auto r = read_runs(path);
  if (r.merging != 0) return false;
  return std::ranges::all_of(r.idle_by_tier, [](const auto& t) { return t.second < 4; });
}

}  // namespace

TEST_CASE("dedup runs: keys in any order, in many batches, merge into few runs and each is found once",
          "[dedup][webhooks][store]") {
  Fixture f(4096);
  // One key stored twice: a later delivery repeats an item key (its other one is new, so it is a new event).
  auto first = request("whatsapp:first", 1);
  first.item_keys = {"item:x", "item:y"};
  REQUIRE_FALSE(f.hooks->ingest(first)->duplicate);
  f.settle();
  auto second = request("whatsapp:second", 2);
  second.item_keys = {"item:y", "item:z"};
  REQUIRE_FALSE(f.hooks->ingest(second)->duplicate);
  // 3,000 keys in a scrambled order, settled every 10: ~300 batches, each a run of its own.
  constexpr int k_keys = 3000;
  for (int i = 0; i < k_keys; ++i) {
    const int n = (i * 1237) % k_keys;  // 1237 is prime to 3000: every n once
    REQUIRE_FALSE(f.hooks->ingest(request(key(n), 10 + n))->duplicate);
    if (i % 10 == 9) f.settle();
  }
  f.settle();
  REQUIRE(test::eventually([&] { return merged(f.options.path); }, std::chrono::seconds(20)));
  auto runs = read_runs(f.options.path);
  CHECK(runs.rows == k_keys + 2 + 4);  // the item key y twice (first's and second's)
  CHECK(runs.listed_keys == runs.rows);
  CHECK(runs.unlisted_rows == 0);
  CHECK(runs.bad_blocks == 0);
  CHECK(runs.runs < 16);  // ~300 batches' runs, merged 4 at a time
  INFO("runs: " << runs.runs);

  // After a restart (no key in memory), each key is a repeat of its own delivery; y of the first.
  f.reopen();
  for (int n = 0; n < k_keys; n += 7) {
    auto r = f.hooks->ingest(request(key(n), 20'000 + n));
    REQUIRE(r);
    REQUIRE(r->duplicate);
    CHECK(r->event_id == "ev-" + std::to_string(10 + n));
  }
  auto y = request("whatsapp:y-again", 30'000);
  y.item_keys = {"item:y"};
  auto again = f.hooks->ingest(y);
  REQUIRE(again);
  CHECK(again->duplicate);
  CHECK(again->event_id == "ev-1");

  // The prune is exact across runs: the keys received before the cutoff go, the others stay.
  const int64_t cutoff = 1000 + 10 + k_keys / 2;  // n < 1500 goes
  auto pruned = f.hooks->prune_dedup(cutoff);
  REQUIRE(pruned);
  CHECK(*pruned == k_keys / 2 + 2 + 4);  // and the two deliveries' keys, received at 1001 and 1002
  runs = read_runs(f.options.path);
  CHECK(runs.listed_keys == runs.rows);
  CHECK(runs.rows == k_keys / 2);
  CHECK_FALSE(f.hooks->ingest(request(key(10), 40'000))->duplicate);
  auto kept = f.hooks->ingest(request(key(2000), 40'001));
  REQUIRE(kept);
  CHECK(kept->duplicate);
  CHECK(kept->event_id == "ev-2010");
}

// A store as migration 11 left it, with keys 0..n-1 of ep1 (delivery i: event ev-i, received at 1000 + i) in its one
// table; opened, migration 12 and the store's conversion make them one run.
void store_v11_keys(Fixture& f, int n) {
  f.hooks.reset();
  {
    SQLite::Database d(f.options.path.string(), SQLite::OPEN_READWRITE);
    d.exec(test::k_undo_migration_12);
    SQLite::Statement q(d, "INSERT INTO webhook_dedup VALUES ('ep1', ?, ?, ?)");
    for (int i = 0; i < n; ++i) {
      q.bind(1, key(i));
      q.bind(2, "ev-" + std::to_string(i));
      q.bind(3, 1000 + i);
      q.exec();
      q.reset();
    }
    d.exec("PRAGMA user_version=11");
  }
  f.store.reset();
  auto s = open_sqlite_store({f.options.path, true});
  REQUIRE(s);
  f.store = std::move(*s);
  f.reopen();
}

TEST_CASE("dedup runs: a merge the last run left half done goes on at the next start", "[dedup][webhooks][store]") {
  Fixture f(4096);
  constexpr int k_keys = 400;
  store_v11_keys(f, k_keys);  // one run
  REQUIRE(read_runs(f.options.path).runs == 1);
  f.hooks.reset();
  {
    // What a stop between two steps leaves: the keys up to a cursor already in the output (run 200), the rest
    // still in the inputs (the blocks of the merged run split between runs 100 and 101 by their first key).
    SQLite::Database d(f.options.path.string(), SQLite::OPEN_READWRITE);
    d.exec(R"sql(
UPDATE webhook_dedup SET run = CASE WHEN first_key <= 'github:delivery-2' THEN 200
                                    WHEN first_key <= 'github:delivery-3' THEN 100 ELSE 101 END;
DELETE FROM webhook_dedup_runs;
INSERT INTO webhook_dedup_runs(run, keys, oldest, newest, into_run)
  SELECT run, SUM(keys), MIN(oldest), 10000, 200 FROM webhook_dedup WHERE run <> 200 GROUP BY run;
INSERT INTO webhook_dedup_runs(run, keys, oldest, newest, done_endpoint, done_key)
  SELECT 200, SUM(keys), MIN(oldest), 10000, 'ep1', MAX(first_key) FROM webhook_dedup WHERE run = 200;
)sql");
    // The cursor is the last key of the output's last block: set it from the blocks.
    std::string last;
    SQLite::Statement q(d, "SELECT block FROM webhook_dedup WHERE run = 200");
    while (q.executeStep())
      sqlite::dedup_runs::for_each(sqlite::dedup_runs::blob_of(q.getColumn(0)), [&](const auto& e) {
        last = std::max(last, std::string(e.key));
        return true;
      });
    SQLite::Statement u(d, "UPDATE webhook_dedup_runs SET done_key = ? WHERE run = 200");
    u.bind(1, last);
    u.exec();
    const auto runs = read_runs(f.options.path);
    REQUIRE(runs.merging == 3);
    REQUIRE(runs.rows == k_keys);
  }
  f.reopen();
  REQUIRE(test::eventually([&] { return merged(f.options.path); }, std::chrono::seconds(20)));
  const auto runs = read_runs(f.options.path);
  CHECK(runs.runs == 1);
  CHECK(runs.rows == k_keys);
  CHECK(runs.listed_keys == k_keys);
  CHECK(runs.bad_blocks == 0);
  for (int n = 0; n < k_keys; n += 3) {
    auto r = f.hooks->ingest(request(key(n), 10'000 + n));
    REQUIRE(r);
    CHECK(r->duplicate);
  }
}

TEST_CASE("dedup runs: migration 12 keeps the keys a store held", "[dedup][webhooks][store]") {
  Fixture f(4096);
  store_v11_keys(f, 20);
  const auto runs = read_runs(f.options.path);
  CHECK(runs.runs == 1);
  CHECK(runs.rows == 20);
  CHECK(runs.listed_keys == 20);
  CHECK(runs.bad_blocks == 0);
  for (int i = 0; i < 20; ++i) {
    auto r = f.hooks->ingest(request(key(i), 100 + i));
    REQUIRE(r);
    CHECK(r->duplicate);
    CHECK(r->event_id == "ev-" + std::to_string(i));
  }
  CHECK_FALSE(f.hooks->ingest(request(key(20), 200))->duplicate);
}

TEST_CASE("dedup runs: a block holds keys of any length in order, and a cut one is refused", "[dedup]") {
  namespace runs = sqlite::dedup_runs;
  const std::string long_key(70'000, 'k');  // a three-byte length
  const std::vector<std::tuple<std::string, std::string, int64_t>> in{
      {"a", "ev-1", 0}, {std::string(200, 'b'), "ev-2", 1'700'000'000'000}, {long_key, "ev-3", -1}};
  std::string block;
  for (const auto& [k, ev, at] : in) runs::append(block, {k, ev, at});
  std::vector<std::tuple<std::string, std::string, int64_t>> out;
  CHECK(runs::for_each(block, [&](const runs::Entry& e) {
    out.emplace_back(std::string(e.key), std::string(e.event_id), e.received_at);
    return true;
  }));
  CHECK(out == in);
  // Cut anywhere, the entries before the cut are read and the block is called malformed.
  for (std::size_t cut : {std::size_t{1}, std::size_t{5}, block.size() - 1}) {
    std::size_t n = 0;
    CHECK_FALSE(runs::for_each(std::string_view(block).substr(0, cut), [&](const runs::Entry&) { return ++n, true; }));
    CHECK(n <= 2);
  }
}

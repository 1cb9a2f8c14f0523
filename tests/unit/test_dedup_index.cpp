// The webhook store's dedup index in bounded memory (common/store/dedup_index.hpp): the filter never
// calls a stored key new, dedup stays exact with far more keys than the filter holds and after a
// restart with the keys only in SQLite, and a repeat of a delivery still being written waits for it.
#include "../../common/store/dedup_index.hpp"
#include "../../common/store/sqlite_webhook_store.hpp"
#include "process.hpp"
#include "webhook_store_fixture.hpp"

#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <string>
#include <thread>

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

// The group-committing webhook store: dedup semantics, per-request isolation inside a batch, and
// concurrent ingest (each key stored once, every waiter answered).
#include "../../common/store/dedup_runs.hpp"
#include "process.hpp"
#include "webhook_store_fixture.hpp"

#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>
#include <alumia/webhooks/relay_worker.hpp>

#include <SQLiteCpp/SQLiteCpp.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace alumia;

namespace {

struct Fixture : test::WebhookStoreFixture {};

IngestRequest request(const std::string& key, int n) { return test::ingest_request(key, n); }

}  // namespace

TEST_CASE("webhook store: dedup on the event key, aliases and batched item keys", "[webhooks][store]") {
  Fixture f;
  auto first = f.hooks->ingest(request("github:a", 1));
  REQUIRE(first);
  CHECK_FALSE(first->duplicate);
  auto again = f.hooks->ingest(request("github:a", 2));
  REQUIRE(again);
  CHECK(again->duplicate);
  CHECK(again->event_id == "ev-1");

  auto aliased = request("linear:d1", 3);
  aliased.alias_keys = {"linear:content"};
  REQUIRE_FALSE(f.hooks->ingest(aliased)->duplicate);
  CHECK(f.hooks->ingest(request("linear:content", 4))->duplicate);  // a hit on an alias

  auto batch = request("whatsapp:msg:1", 5);
  batch.item_keys = {"whatsapp:msg:1", "whatsapp:msg:2"};
  REQUIRE_FALSE(f.hooks->ingest(batch)->duplicate);
  auto partial = request("whatsapp:msg:2", 6);
  partial.item_keys = {"whatsapp:msg:2", "whatsapp:msg:3"};
  CHECK_FALSE(f.hooks->ingest(partial)->duplicate);  // one new item: not a repeat
  auto all_known = request("whatsapp:msg:1", 7);
  all_known.item_keys = {"whatsapp:msg:1", "whatsapp:msg:3"};
  CHECK(f.hooks->ingest(all_known)->duplicate);

  auto ep = f.hooks->find_endpoint("ep1");
  REQUIRE(ep);
  REQUIRE(*ep);
  CHECK((*ep)->received == 3 + 1);
  CHECK((*ep)->duplicates == 3);

  EventFilter filter;
  filter.user_id = "u1";
  auto events = f.hooks->list_events(filter, Page{});
  REQUIRE(events);
  CHECK(events->items.size() == 4);
  CHECK(events->items.front().job_state == JobState::queued);

  // The TTL pruning forgets keys, after which the same key is new again; keys received after the
  // cutoff still answer as repeats (the dedup filter is rebuilt from what is left).
  REQUIRE(f.hooks->prune_dedup(1002));
  CHECK_FALSE(f.hooks->ingest(request("github:a", 8))->duplicate);
  auto kept = f.hooks->ingest(request("linear:content", 9));
  REQUIRE(kept);
  CHECK(kept->duplicate);
  CHECK(kept->event_id == "ev-3");
  CHECK(f.hooks->ingest(request("github:a", 10))->duplicate);  // stored after the prune
}

TEST_CASE("webhook store: an endpoint's last error is the newest refusal, kept across a reopen (migration 4)",
          "[webhooks][store]") {
  Fixture f;
  CHECK_FALSE(f.hooks->find_endpoint("ep1")->value().last_error);
  f.hooks->add_refusals("ep1", {.verification_failures = 1,
                                .last_error = EndpointError{
                                    "UNAUTHORIZED", "X-Hub-Signature-256 does not match the webhook secret", 2000}});
  // An older refusal, recorded late (in the same batch or not).
  f.hooks->add_refusals("ep1", {.last_error = EndpointError{"BAD_REQUEST", "an older refusal, recorded late", 1500}});
  // Like the counters, written with the next batch, not waited for.
  Result<std::optional<WebhookEndpointRecord>> e;
  REQUIRE(test::eventually(
      [&] {
        e = f.hooks->find_endpoint("ep1");
        return e && *e && (*e)->verification_failures == 1;
      },
      std::chrono::seconds(5)));
  REQUIRE((*e)->last_error);
  CHECK((*e)->last_error->code == "UNAUTHORIZED");
  CHECK((*e)->last_error->message == "X-Hub-Signature-256 does not match the webhook secret");
  CHECK((*e)->last_error->at == 2000);
  CHECK((*e)->verification_failures == 1);
  // update_endpoint (label, status...) leaves it alone.
  WebhookEndpointRecord changed = **e;
  changed.label = "renamed";
  changed.last_error.reset();
  REQUIRE(f.hooks->update_endpoint(changed));
  f.hooks.reset();
  auto reopened = open_sqlite_webhook_store({.path = f.dir.path() / "store.db"});
  REQUIRE(reopened);
  auto again = (*reopened)->find_endpoint("ep1");
  REQUIRE(again);
  REQUIRE(*again);
  CHECK((*again)->label == "renamed");
  REQUIRE((*again)->last_error);
  CHECK((*again)->last_error->at == 2000);
}

TEST_CASE("webhook store: a failing operation does not fail its batch neighbours", "[webhooks][store]") {
  Fixture f;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, failed{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (i % 5 == 0) {
          WebhookEndpointRecord dup;
          dup.id = "ep1";  // primary key conflict
          dup.user_id = "u1";
          dup.provider = Provider::github;
          if (f.hooks->insert_endpoint(dup)) ++ok;
          else ++failed;
        } else {
          const int n = t * 100 + i;
          if (f.hooks->ingest(request("github:" + std::to_string(n), n))) ++ok;
          else ++failed;
        }
      }
    });
  for (auto& th : threads) th.join();
  CHECK(failed == 8 * 4);
  CHECK(ok == 8 * 16);
}

TEST_CASE("webhook store: concurrent ingest stores each key once and answers every waiter", "[webhooks][store]") {
  Fixture f;
  constexpr int k_threads = 16;
  constexpr int k_per_thread = 200;
  std::mutex m;
  std::map<std::string, int> new_per_key;
  std::vector<std::string> failures;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < k_per_thread; ++i) {
        // Every key is sent by two threads.
        const int key = (t / 2) * k_per_thread + i;
        const int n = t * k_per_thread + i;
        auto r = f.hooks->ingest(request("github:" + std::to_string(key), n));
        std::lock_guard lock(m);  // Catch2's assertions are for the main thread: results are checked there
        if (!r) failures.push_back(r.error().message);
        else new_per_key["github:" + std::to_string(key)] += r->duplicate ? 0 : 1;
      }
    });
  for (auto& th : threads) th.join();
  CHECK(failures == std::vector<std::string>{});  // printed when not
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "webhook store: %d ingests from %d threads in %.3f s (%.0f/s)\n", k_threads * k_per_thread,
               k_threads, secs, k_threads * k_per_thread / secs);
  CHECK(new_per_key.size() == static_cast<std::size_t>(k_threads / 2 * k_per_thread));
  for (const auto& [key, n] : new_per_key) {
    INFO(key);
    CHECK(n == 1);
  }
  auto ep = f.hooks->find_endpoint("ep1");
  CHECK((*ep)->received == k_threads / 2 * k_per_thread);
  CHECK((*ep)->duplicates == k_threads / 2 * k_per_thread);
}

TEST_CASE("webhook store: ingest_async answers from the intake log's flusher, declines what would block, stays exact",
          "[webhooks][store]") {
  Fixture f;
  // Until the dedup filter's first build is complete every key is a "maybe" (a table read): declined,
  // and the request is left as it was.
  std::promise<Result<IngestOutcome>> first;
  IngestRequest r = request("github:async-1", 1);
  REQUIRE(test::eventually(
      [&] {
        if (f.hooks->ingest_async(r, [&](Result<IngestOutcome> o) { first.set_value(std::move(o)); })) return true;
        CHECK(r.body == "{}");
        CHECK(r.event_id == "ev-1");
        return false;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(5)));
  auto stored = first.get_future().get();
  REQUIRE(stored);
  CHECK_FALSE(stored->duplicate);
  CHECK(stored->event_id == "ev-1");
  // Answered once durable: after a restart it is there (the intake log is applied at the next open).
  f.reopen();
  auto found = f.hooks->find_event("ev-1", false);
  REQUIRE(found);
  CHECK(*found);

  // Many threads, every key sent by two of them, each through ingest_async with ingest() where it
  // declines: every key stored once, every sender answered.
  constexpr int k_threads = 8;
  constexpr int k_per_thread = 150;
  std::mutex m;
  std::map<std::string, int> new_per_key;
  std::map<std::string, std::string> event_of_key;
  std::vector<std::string> failures;
  std::atomic<int> taken{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < k_per_thread; ++i) {
        const std::string key = "github:c" + std::to_string((t / 2) * k_per_thread + i);
        IngestRequest in = request(key, 100 + t * k_per_thread + i);
        std::promise<Result<IngestOutcome>> answer;
        auto fut = answer.get_future();
        if (f.hooks->ingest_async(in, [&answer](Result<IngestOutcome> o) { answer.set_value(std::move(o)); }))
          taken.fetch_add(1);
        else answer.set_value(f.hooks->ingest(std::move(in)));
        auto o = fut.get();
        std::lock_guard lock(m);  // Catch2's assertions are for the main thread: results are checked there
        if (!o) {
          failures.push_back(key + ": " + o.error().message);
          continue;
        }
        new_per_key[key] += o->duplicate ? 0 : 1;
        if (!o->duplicate) event_of_key[key] = o->event_id;
        else if (!event_of_key[key].empty() && event_of_key[key] != o->event_id)
          failures.push_back(key + ": a duplicate of " + o->event_id + ", stored as " + event_of_key[key]);
      }
    });
  for (auto& th : threads) th.join();
  CHECK(failures == std::vector<std::string>{});  // printed when not
  CHECK(taken.load() > 0);
  CHECK(new_per_key.size() == static_cast<std::size_t>(k_threads / 2 * k_per_thread));
  for (const auto& [key, n] : new_per_key) {
    INFO(key);
    CHECK(n == 1);
  }
  auto ep = f.hooks->find_endpoint("ep1");
  REQUIRE(ep);
  REQUIRE(*ep);
  CHECK((*ep)->received == 1 + k_threads / 2 * k_per_thread);
  CHECK((*ep)->duplicates == k_threads / 2 * k_per_thread);
}

TEST_CASE(
    "webhook store: a new store has 8 KiB pages, one made with 4 KiB keeps them; deliveries applied many a "
    "statement keep every row and key",
    "[webhooks][store]") {
  for (const bool older : {false, true}) {
    INFO((older ? "a store made with 4 KiB pages" : "a new store"));
    test::TempDir dir;
    const auto path = dir.path() / "store.db";
    if (older) {  // content before the first migration: the store's page_size no longer applies
      SQLite::Database raw(path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      raw.exec("PRAGMA page_size=4096");
      raw.exec("CREATE TABLE made_before(x)");
      std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    }
    auto store = open_sqlite_store({path, true});
    INFO((store ? "" : store.error().message));
    REQUIRE(store);
    auto opened = open_sqlite_webhook_store({.path = path});
    REQUIRE(opened);
    auto hooks = std::move(*opened);
    WebhookEndpointRecord e;
    e.id = "ep1";
    e.user_id = "u1";
    e.provider = Provider::github;
    e.created_at = e.updated_at = 1;
    REQUIRE(hooks->insert_endpoint(e));
    // Deliveries from several threads at once, so that the writer applies them from the intake log in
    // batches of many (rows staged and written 16, 4 and 1 to a statement); every fifth with item keys.
    constexpr int k_threads = 24, k_per_thread = 26;
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < k_per_thread; ++i) {
          const int n = t * k_per_thread + i;
          IngestRequest r = request("github:s" + std::to_string(n), n);
          if (n % 5 == 0) r.item_keys = {"item:" + std::to_string(n) + ":a", "item:" + std::to_string(n) + ":b"};
          auto o = hooks->ingest(std::move(r));
          if (!o || o->duplicate) failed.fetch_add(1);
        }
      });
    for (auto& th : threads) th.join();
    CHECK(failed.load() == 0);
    hooks.reset();  // the writer drains; then the rows as they are in the file
    SQLite::Database db(path.string(), SQLite::OPEN_READONLY);
    CHECK(db.execAndGet("PRAGMA page_size").getInt() == (older ? 4096 : 8192));
    constexpr int k_all = k_threads * k_per_thread;
    CHECK(db.execAndGet("SELECT COUNT(*) FROM webhook_events").getInt() == k_all);
    CHECK(db.execAndGet("SELECT COUNT(*) FROM webhook_jobs j JOIN webhook_events e ON e.id = j.event_id "
                        "WHERE j.state = 'queued' AND j.created_at = e.received_at AND e.body = X'7B7D' "
                        "AND e.provider = 'github' AND e.event_type = 'push'")
              .getInt() == k_all);
    CHECK(db.execAndGet("SELECT n FROM webhook_job_counts WHERE endpoint_id = 'ep1' AND state = 'queued'").getInt() ==
          k_all);
    // One dedup key an event, two more for every fifth, each naming its event.
    int64_t named = 0;
    SQLite::Statement event_of(db, "SELECT 1 FROM webhook_events WHERE id = ?");
    sqlite::dedup_runs::for_each_key(db, [&](const std::string&, const sqlite::dedup_runs::Entry& key) {
      event_of.bind(1, std::string(key.event_id));
      named += event_of.executeStep() ? 1 : 0;
      event_of.reset();
    });
    CHECK(named == k_all + 2 * ((k_all + 4) / 5));
    // And they answer as repeats after a reopen.
    auto again = open_sqlite_webhook_store({.path = path});
    REQUIRE(again);
    CHECK((*again)->ingest(request("item:10:b", 9999))->duplicate);
    CHECK((*again)->ingest(request("github:s" + std::to_string(k_all - 1), 9998))->duplicate);
  }
}

namespace {

// ep2, with a relay target, beside the fixture's ep1 (none); six jobs, job-0..job-5, alternating ep1 and
// ep2 (ep2's are 1, 3, 5), each due at 1000 + n.
void add_targeted_endpoint_and_jobs(Fixture& f) {
  WebhookEndpointRecord targeted;
  targeted.id = "ep2";
  targeted.user_id = "u1";
  targeted.provider = Provider::github;
  targeted.relay_to = "http://127.0.0.1:9/hook";
  targeted.created_at = targeted.updated_at = 1;
  REQUIRE(f.hooks->insert_endpoint(targeted));
  for (int n = 0; n < 6; ++n) {
    IngestRequest r = request("github:" + std::to_string(n), n);
    r.endpoint_id = n % 2 == 0 ? "ep1" : "ep2";
    REQUIRE(f.hooks->ingest(r));
  }
}

}  // namespace

TEST_CASE("webhook store: claims take only jobs that have somewhere to go, due first", "[webhooks][store]") {
  Fixture f;
  add_targeted_endpoint_and_jobs(f);
  // Without a default target only ep2's jobs (1, 3, 5) are claimable, oldest due first.
  auto next = f.hooks->next_due_at(false);
  REQUIRE(next);
  CHECK(*next == std::optional<int64_t>(1001));
  auto claimed = f.hooks->claim_due_jobs(5000, 2, false);
  REQUIRE(claimed);
  REQUIRE(claimed->size() == 2);
  CHECK((*claimed)[0].id == "job-1");
  CHECK((*claimed)[1].id == "job-3");
  CHECK((*claimed)[0].state == JobState::running);
  // Not yet due: nothing.
  auto early = f.hooks->claim_due_jobs(1004, 10, false);
  REQUIRE(early);
  CHECK(early->empty());
  auto rest = f.hooks->claim_due_jobs(5000, 10, false);
  REQUIRE(rest);
  REQUIRE(rest->size() == 1);
  CHECK((*rest)[0].id == "job-5");
  auto none = f.hooks->next_due_at(false);
  REQUIRE(none);
  CHECK_FALSE(*none);
  // With a default target every endpoint's jobs go: ep1's three remain.
  auto all = f.hooks->claim_due_jobs(5000, 10, true);
  REQUIRE(all);
  CHECK(all->size() == 3);
  // A failed job comes back when its next attempt is due; running ones are requeued after a crash.
  WebhookJob j = (*claimed)[0];
  j.state = JobState::failed;
  j.attempts = 1;
  j.next_attempt_at = 9000;
  REQUIRE(f.hooks->finish_job(j));
  CHECK(f.hooks->claim_due_jobs(8999, 10, false)->empty());
  auto again = f.hooks->claim_due_jobs(9000, 10, false);
  REQUIRE(again->size() == 1);
  CHECK((*again)[0].id == "job-1");
  CHECK(*f.hooks->requeue_running(10000) == 6);
}

TEST_CASE("webhook store: a claim gives an endpoint no more than its limit, none at 0", "[webhooks][store]") {
  Fixture f;
  add_targeted_endpoint_and_jobs(f);
  // ep2 at 0: nothing to claim and nothing due for the worker's sleep.
  const std::map<std::string, std::size_t> none{{"ep2", 0}};
  CHECK(f.hooks->claim_due_jobs(5000, 10, false, none)->empty());
  CHECK_FALSE(*f.hooks->next_due_at(false, none));
  // With a default target the other endpoints still go: ep1's three, oldest first; ep2 none.
  auto others = f.hooks->claim_due_jobs(5000, 10, true, none);
  REQUIRE(others);
  REQUIRE(others->size() == 3);
  for (const auto& j : *others) CHECK(j.endpoint_id == "ep1");
  // A limit of 1 gives one job, the oldest due.
  auto one = f.hooks->claim_due_jobs(5000, 10, false, {{"ep2", 1}});
  REQUIRE(one);
  REQUIRE(one->size() == 1);
  CHECK((*one)[0].id == "job-1");
}

TEST_CASE("relay worker helpers: backoff schedule parsing and the signature format", "[webhooks]") {
  CHECK(parse_backoff("50,100,200") == std::vector<std::chrono::milliseconds>{std::chrono::milliseconds(50),
                                                                              std::chrono::milliseconds(100),
                                                                              std::chrono::milliseconds(200)});
  CHECK_FALSE(parse_backoff(""));
  CHECK_FALSE(parse_backoff("5,x"));
  CHECK(default_relay_backoff().size() == 8);
  CHECK(default_relay_backoff().back() == std::chrono::hours(6));
  // HMAC-SHA256("secret", "1700000000.{}")
  const std::string sig = relay_signature("secret", 1700000000, "{}");
  CHECK(sig.rfind("t=1700000000,v1=", 0) == 0);
  CHECK(sig.size() == std::string("t=1700000000,v1=").size() + 64);
}

// Retention (SPEC §9): at the store, bodies and headers of delivered and dead events go (never of an
// event with a job still to deliver), then rows with their jobs; the job counts keep counting what
// went, dedup still knows the keys, a removed body cannot be relayed again, and the free pages go back
// to the file system. The sweeper with a fake clock applies each endpoint's window.
#include "fakes.hpp"
#include "process.hpp"
#include "webhook_store_fixture.hpp"

#include <alumia/webhooks/retention.hpp>

#include <catch2/catch.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include <map>
#include <string>

using namespace alumia;
using test::counts;
using test::event;
using test::finish;
using test::settle_first_four;

namespace {

int64_t rows(const std::filesystem::path& db, const std::string& table) {
  SQLite::Database d(db.string(), SQLite::OPEN_READONLY);
  return d.execAndGet("SELECT COUNT(*) FROM " + table).getInt64();
}

// The dedup keys stored (packed in blocks, each counting its keys).
int64_t dedup_keys(const std::filesystem::path& db) {
  SQLite::Database d(db.string(), SQLite::OPEN_READONLY);
  return d.execAndGet("SELECT COALESCE(SUM(keys),0) FROM webhook_dedup").getInt64();
}

}  // namespace

TEST_CASE("retention: bodies of delivered and dead events go, those still to deliver stay", "[webhooks][retention]") {
  test::WebhookStoreFixture f;
  for (int n = 1; n <= 5; ++n) {
    auto r = test::ingest_request("github:k" + std::to_string(n), n);
    r.headers = R"([["x-github-event","push"]])";
    r.body = std::string(100, 'a' + static_cast<char>(n));
    REQUIRE(f.hooks->ingest(r));
  }
  // job-1 delivered, job-2 dead, job-3 failed (to be retried), job-4 running, job-5 queued (not claimed).
  settle_first_four(*f.hooks);

  auto dropped = f.hooks->drop_event_bodies("ep1", 10'000, 100, 20'000);
  REQUIRE(dropped);
  CHECK(dropped->events == 2);
  CHECK(dropped->bytes == 2 * (100 + static_cast<int64_t>(std::string(R"([["x-github-event","push"]])").size())));
  CHECK_FALSE(dropped->more);
  for (const char* id : {"ev-1", "ev-2"}) {
    const auto e = event(*f.hooks, id);
    CHECK(e.body.empty());
    CHECK(e.headers == "[]");
    CHECK(e.body_removed_at == 20'000);
    CHECK(e.event_key.starts_with("github:k"));  // the row stays
  }
  for (const char* id : {"ev-3", "ev-4", "ev-5"}) {
    const auto e = event(*f.hooks, id);
    CHECK(e.body.size() == 100);
    CHECK_FALSE(e.body_removed_at);
  }
  // Only events received before the cutoff.
  auto none = f.hooks->drop_event_bodies("ep1", 1001, 100, 20'000);
  REQUIRE(none);
  CHECK(none->events == 0);

  // A removed body is never relayed again: the dead job is not retried, alone or in bulk.
  CHECK(f.hooks->retry_job("job-2", 30'000) == false);
  CHECK(f.hooks->retry_jobs("u1", JobState::dead, std::nullopt, 30'000) == 0);

  // The failed job is retried and delivered later: the next batch finds its event (its job became due
  // after where the sweep had got to), and reads none of the two already emptied.
  auto claimed = f.hooks->claim_due_jobs(9000, 10, true);
  REQUIRE(claimed);
  REQUIRE(claimed->size() == 2);  // job-3 due again, job-5 queued since
  for (auto j : *claimed) {
    j.state = JobState::succeeded;
    j.finished_at = 9001;
    REQUIRE(f.hooks->finish_job(j));
  }
  auto again = f.hooks->drop_event_bodies("ep1", 10'000, 100, 21'000);
  REQUIRE(again);
  CHECK(again->events == 2);  // ev-3 and ev-5; ev-4's job is still running
  CHECK(event(*f.hooks, "ev-3").body_removed_at == 21'000);
  CHECK(event(*f.hooks, "ev-1").body_removed_at == 20'000);
  CHECK_FALSE(event(*f.hooks, "ev-4").body_removed_at);

  // Batches: one job at a time, each says whether there may be more.
  for (int n = 8101; n <= 8103; ++n)  // received at 9101..9103, after where the sweep got to
    REQUIRE(f.hooks->ingest(test::ingest_request("github:k" + std::to_string(n), n)));
  finish(*f.hooks,
         {{"job-8101", JobState::succeeded}, {"job-8102", JobState::succeeded}, {"job-8103", JobState::succeeded}},
         9500);
  int64_t total = 0;
  for (int i = 0; i < 10; ++i) {
    auto b = f.hooks->drop_event_bodies("ep1", 10'000, 1, 22'000);
    REQUIRE(b);
    total += b->events;
    if (!b->more) break;
  }
  CHECK(total == 3);
}

TEST_CASE("retention: rows go with their jobs, the job counts and dedup stay", "[webhooks][retention]") {
  test::WebhookStoreFixture f({"ep1", "ep2"});
  for (int n = 1; n <= 6; ++n) REQUIRE(f.hooks->ingest(test::ingest_request("github:k" + std::to_string(n), n)));
  auto theirs = test::ingest_request("github:other", 7);
  theirs.endpoint_id = "ep2";
  REQUIRE(f.hooks->ingest(theirs));
  finish(*f.hooks,
         {{"job-1", JobState::succeeded},
          {"job-2", JobState::succeeded},
          {"job-3", JobState::dead},
          {"job-4", JobState::failed},
          {"job-7", JobState::succeeded}},
         2000);
  // ev-1 replayed: a second job, still queued, keeps it.
  WebhookJob replay;
  replay.id = "job-1b";
  replay.event_id = "ev-1";
  replay.endpoint_id = "ep1";
  replay.user_id = "u1";
  replay.next_attempt_at = replay.created_at = replay.updated_at = 2500;
  REQUIRE(f.hooks->insert_job(replay));
  const auto before = counts(*f.hooks);
  CHECK(before.at(JobState::succeeded) == 3);
  CHECK(before.at(JobState::dead) == 1);

  // A dry run counts and changes nothing.
  RetentionCursor dry;
  RetentionBatch counted;
  for (bool more = true; more;) {
    auto b = f.hooks->delete_events("ep1", 10'000, 1, true, dry);
    REQUIRE(b);
    counted.events += b->events;
    counted.jobs += b->jobs;
    more = b->more;
  }
  CHECK(counted.events == 2);  // ev-2 (succeeded) and ev-3 (dead)
  CHECK(counted.jobs == 2);
  CHECK(rows(f.options.path, "webhook_events") == 7);

  auto gone = retire_events(*f.hooks, {"ep1"}, 10'000, false, 1);
  REQUIRE(gone);
  CHECK(gone->events == 2);
  CHECK(gone->jobs == 2);
  CHECK(gone->bytes == 2 * 4);  // "{}" and "[]"
  for (const char* id : {"ev-2", "ev-3"}) {
    auto e = f.hooks->find_event(id, false);
    REQUIRE(e);
    CHECK_FALSE(e->has_value());
  }
  for (const char* id : {"ev-1", "ev-4", "ev-5", "ev-6", "ev-7"}) CHECK(event(*f.hooks, id).id == id);
  CHECK(rows(f.options.path, "webhook_jobs") == 6);
  // Not a state change: the counts still count the jobs that went, in the state they ended in.
  CHECK(counts(*f.hooks) == before);

  // Dedup keeps its own 8 days: a repeat of a removed event is still a duplicate of it.
  auto repeat = test::ingest_request("github:k2", 20);
  auto outcome = f.hooks->ingest(repeat);
  REQUIRE(outcome);
  CHECK(outcome->duplicate);
  CHECK(outcome->event_id == "ev-2");
  f.reopen();  // and from the stored keys after a restart (no keys in flight)
  repeat = test::ingest_request("github:k3", 21);
  outcome = f.hooks->ingest(repeat);
  REQUIRE(outcome);
  CHECK(outcome->duplicate);
  CHECK(outcome->event_id == "ev-3");

  // ep2's delivered event was not asked for.
  CHECK(event(*f.hooks, "ev-7").id == "ev-7");
  // Once the replay is delivered, ev-1 goes with both its jobs.
  auto claimed = f.hooks->claim_due_jobs(3000, 10, true);
  REQUIRE(claimed);
  for (auto j : *claimed)
    if (j.id == "job-1b") {
      j.state = JobState::succeeded;
      j.finished_at = 3000;
      REQUIRE(f.hooks->finish_job(j));
    }
  gone = retire_events(*f.hooks, {"ep1"}, 10'000, false, 100);
  REQUIRE(gone);
  CHECK(gone->events == 1);
  CHECK(gone->jobs == 2);
  auto ev1 = f.hooks->find_event("ev-1", false);
  REQUIRE(ev1);
  CHECK_FALSE(ev1->has_value());
  CHECK(counts(*f.hooks).at(JobState::succeeded) == 4);
}

TEST_CASE("retention: the sweeper applies the default window and an endpoint's own", "[webhooks][retention]") {
  test::WebhookStoreFixture f({"ep1", "ep2"});
  // ep2 keeps its events five days; the default is one. A day is a second here.
  auto ep2 = f.hooks->find_endpoint("ep2");
  REQUIRE(ep2);
  REQUIRE(ep2->has_value());
  auto changed = **ep2;
  changed.retention_days = 5;
  REQUIRE(f.hooks->update_endpoint(changed));
  for (int n = 1; n <= 4; ++n) {
    auto r = test::ingest_request("github:k" + std::to_string(n), n);
    if (n > 2) r.endpoint_id = "ep2";
    REQUIRE(f.hooks->ingest(r));
  }
  auto claimed = f.hooks->claim_due_jobs(1004, 10, true);
  REQUIRE(claimed);
  for (auto j : *claimed) {
    j.state = JobState::succeeded;
    j.finished_at = 1100;
    REQUIRE(f.hooks->finish_job(j));
  }
  test::FakeClock clock(1000);
  RetentionOptions options;
  options.default_days = 1;
  options.day_ms = 1000;  // a day is a second here
  options.batch = 1;
  options.pause = std::chrono::milliseconds(0);
  RetentionSweeper sweeper(*f.hooks, clock, options);
  CHECK(sweeper.window_ms(std::nullopt) == 1000);
  CHECK(sweeper.window_ms(5) == 5000);

  clock.set_ms(1500);  // within every window
  auto pass = sweeper.sweep();
  REQUIRE(pass);
  CHECK(pass->bodies.events == 0);
  CHECK(pass->rows.events == 0);

  clock.set_ms(2500);  // past ep1's window: its bodies go
  pass = sweeper.sweep();
  REQUIRE(pass);
  CHECK(pass->bodies.events == 2);
  CHECK(event(*f.hooks, "ev-1").body_removed_at == 2500);
  CHECK_FALSE(event(*f.hooks, "ev-3").body_removed_at);

  clock.set_ms(4500);  // past three of ep1's windows: its rows go
  pass = sweeper.sweep();
  REQUIRE(pass);
  CHECK(pass->rows.events == 2);
  CHECK(pass->bodies.events == 0);
  CHECK(rows(f.options.path, "webhook_events") == 2);

  clock.set_ms(6500);  // past ep2's five days
  pass = sweeper.sweep();
  REQUIRE(pass);
  CHECK(pass->bodies.events == 2);
  CHECK(event(*f.hooks, "ev-4").body_removed_at == 6500);

  clock.set_ms(16'500);
  pass = sweeper.sweep();
  REQUIRE(pass);
  CHECK(pass->rows.events == 2);
  CHECK(rows(f.options.path, "webhook_events") == 0);
  CHECK(counts(*f.hooks).at(JobState::succeeded) == 4);
}

TEST_CASE("retention: the sweeper drops dedup keys past their TTL, every eighth of it", "[webhooks][retention]") {
  test::WebhookStoreFixture f;
  // Deliveries 1 and 2 are received at 1001 and 1002, the third (key github:k3) at 2500.
  for (int n : {1, 2, 1500})
    REQUIRE(f.hooks->ingest(test::ingest_request("github:k" + std::to_string(n == 1500 ? 3 : n), n)));
  test::FakeClock clock(1000);
  RetentionOptions options;
  options.dedup_ttl_ms = 8000;  // the keys expire at 9001, 9002 and 10'500
  options.pause = std::chrono::milliseconds(0);
  CHECK(options.dedup_prune_every_ms() == 1000);
  RetentionOptions production;
  CHECK(production.dedup_ttl_ms == 8LL * 24 * 3600 * 1000);
  CHECK(production.dedup_prune_every_ms() == 600'000);  // every 10 minutes, as the relay worker did
  RetentionSweeper sweeper(*f.hooks, clock, options);
  const auto repeat_is_duplicate = [&](int n, int at) {
    auto outcome = f.hooks->ingest(test::ingest_request("github:k" + std::to_string(n), at));
    REQUIRE(outcome);
    return outcome->duplicate;
  };

  clock.set_ms(9001);  // the first pass prunes: delivery 1's key is 8000 ms old, not past the TTL
  auto pass = sweeper.sweep();
  REQUIRE(pass);
  CHECK(pass->dedup_pruned == 0);
  clock.set_ms(9500);  // past 1 and 2, but within an eighth of the TTL of the last prune: none go
  pass = sweeper.sweep();
  REQUIRE(pass);
  CHECK(pass->dedup_pruned == 0);
  CHECK(dedup_keys(f.options.path) == 3);
  clock.set_ms(10'002);  // an eighth later: the keys of 1 and 2 go, the third's is 7502 ms old and stays
  pass = sweeper.sweep();
  REQUIRE(pass);
  CHECK(pass->dedup_pruned == 2);
  CHECK(dedup_keys(f.options.path) == 1);
  // A repeat of delivery 3 is still a duplicate; one of delivery 1 is a new event (its key has gone).
  CHECK(repeat_is_duplicate(3, 20));
  CHECK_FALSE(repeat_is_duplicate(1, 21));
}

TEST_CASE("retention: a batch takes its whole range at once, an event with two jobs once", "[webhooks][retention]") {
  test::WebhookStoreFixture f;
  constexpr int k_events = 300;
  for (int n = 1; n <= k_events; ++n) REQUIRE(f.hooks->ingest(test::ingest_request("github:k" + std::to_string(n), n)));
  // ev-1 replayed: two jobs of one event in the same range.
  WebhookJob replay;
  replay.id = "job-1b";
  replay.event_id = "ev-1";
  replay.endpoint_id = "ep1";
  replay.user_id = "u1";
  replay.next_attempt_at = replay.created_at = replay.updated_at = 1500;
  REQUIRE(f.hooks->insert_job(replay));
  auto claimed = f.hooks->claim_due_jobs(2000, k_events + 1, true);
  REQUIRE(claimed);
  REQUIRE(claimed->size() == static_cast<std::size_t>(k_events + 1));
  for (auto j : *claimed) {
    j.state = j.id == "job-7" ? JobState::dead : JobState::succeeded;
    j.finished_at = 2000;
    REQUIRE(f.hooks->finish_job(j));
  }
  const auto before = counts(*f.hooks);

  // One batch reads the whole range (301 jobs, both states) and empties 300 events, ev-1 once.
  auto dropped = f.hooks->drop_event_bodies("ep1", 10'000, 1000, 20'000);
  REQUIRE(dropped);
  CHECK(dropped->events == k_events);
  CHECK(dropped->bytes == k_events * 4);  // "{}" and "[]"
  CHECK_FALSE(dropped->more);
  CHECK(rows(f.options.path, "webhook_events") == k_events);

  // A dry run in batches that split ev-1's two jobs counts it once; so does the delete in one batch.
  RetentionBatch counted;
  RetentionCursor dry;
  for (bool more = true; more;) {
    auto b = f.hooks->delete_events("ep1", 10'000, 7, true, dry);
    REQUIRE(b);
    counted.events += b->events;
    counted.jobs += b->jobs;
    more = b->more;
  }
  CHECK(counted.events == k_events);
  CHECK(counted.jobs == k_events + 1);
  RetentionCursor cursor;
  auto gone = f.hooks->delete_events("ep1", 10'000, 1000, false, cursor);
  REQUIRE(gone);
  CHECK(gone->events == k_events - 1);  // the succeeded range; ev-7 (dead) is in the next one
  CHECK(gone->jobs == k_events);
  CHECK(gone->more);
  gone = f.hooks->delete_events("ep1", 10'000, 1000, false, cursor);
  REQUIRE(gone);
  CHECK(gone->events == 1);
  CHECK(gone->jobs == 1);
  CHECK_FALSE(gone->more);
  CHECK(rows(f.options.path, "webhook_events") == 0);
  CHECK(rows(f.options.path, "webhook_jobs") == 0);
  CHECK(counts(*f.hooks) == before);
}

TEST_CASE("retention: the sweeper sizes its batches by the time they take", "[webhooks][retention]") {
  test::WebhookStoreFixture f;
  constexpr int k_events = 300;
  for (int n = 1; n <= k_events; ++n) REQUIRE(f.hooks->ingest(test::ingest_request("github:k" + std::to_string(n), n)));
  auto claimed = f.hooks->claim_due_jobs(2000, k_events, true);
  REQUIRE(claimed);
  for (auto j : *claimed) {
    j.state = JobState::succeeded;
    j.finished_at = 2000;
    REQUIRE(f.hooks->finish_job(j));
  }
  test::FakeClock clock(1000);
  RetentionOptions options;
  options.default_days = 1;
  options.day_ms = 1000;
  options.batch = 4;
  options.max_batch = 64;
  options.pause = std::chrono::milliseconds(0);

  SECTION("full batches well within their time grow up to the largest") {
    options.batch_time = std::chrono::seconds(60);
    RetentionSweeper sweeper(*f.hooks, clock, options);
    CHECK(sweeper.batch_size() == 4);
    clock.set_ms(3500);
    auto pass = sweeper.sweep();
    REQUIRE(pass);
    CHECK(pass->bodies.events == k_events);
    CHECK(sweeper.batch_size() == 64);  // 4, 8, 16, 32, 64: fewer batches than 300 / 4
    clock.set_ms(10'000);
    pass = sweeper.sweep();
    REQUIRE(pass);
    CHECK(pass->rows.events == k_events);
    CHECK(sweeper.batch_size() == 64);
  }
  SECTION("batches over their time shrink, never below the first size") {
    options.batch = 16;
    options.batch_time = std::chrono::milliseconds(0);  // every batch takes longer
    RetentionSweeper sweeper(*f.hooks, clock, options);
    clock.set_ms(10'000);
    auto pass = sweeper.sweep();
    REQUIRE(pass);
    CHECK(pass->bodies.events == k_events);
    CHECK(pass->rows.events == k_events);
    CHECK(sweeper.batch_size() == 16);
  }
  CHECK(rows(f.options.path, "webhook_events") == 0);
}

TEST_CASE("retention: free pages go back to the file system", "[webhooks][retention]") {
  test::WebhookStoreFixture f;
  {
    SQLite::Database d(f.options.path.string(), SQLite::OPEN_READONLY);
    CHECK(d.execAndGet("PRAGMA auto_vacuum").getInt() == 2);  // a new store: incremental
  }
  constexpr int k_events = 300;
  for (int n = 1; n <= k_events; ++n) {
    auto r = test::ingest_request("github:k" + std::to_string(n), n);
    r.body = std::string(16 * 1024, 'x');
    REQUIRE(f.hooks->ingest(r));
  }
  auto claimed = f.hooks->claim_due_jobs(5000, k_events, true);
  REQUIRE(claimed);
  REQUIRE(claimed->size() == static_cast<std::size_t>(k_events));
  for (auto j : *claimed) {
    j.state = JobState::succeeded;
    j.finished_at = 5000;
    REQUIRE(f.hooks->finish_job(j));
  }
  auto gone = retire_events(*f.hooks, {"ep1"}, 10'000, false, 50);
  REQUIRE(gone);
  CHECK(gone->events == k_events);
  auto size = f.hooks->store_size();
  REQUIRE(size);
  CHECK(size->free_bytes >= k_events * 16 * 1024);  // the bodies' pages, free inside the file
  auto back = give_back_space(*f.hooks, 64);
  REQUIRE(back);
  CHECK(*back >= k_events * 16 * 1024);
  size = f.hooks->store_size();
  REQUIRE(size);
  CHECK(size->free_bytes == 0);
}

TEST_CASE("retention: a store made before incremental vacuum is converted once", "[webhooks][retention][store]") {
  test::WebhookStoreFixture f;
  f.hooks.reset();
  f.store.reset();
  {
    SQLite::Database d(f.options.path.string(), SQLite::OPEN_READWRITE);
    d.exec("PRAGMA auto_vacuum=NONE");
    d.exec("VACUUM");
    REQUIRE(d.execAndGet("PRAGMA auto_vacuum").getInt() == 0);
  }
  auto s = open_sqlite_store({f.options.path, true});
  REQUIRE(s);
  f.store = std::move(*s);
  f.reopen();
  SQLite::Database d(f.options.path.string(), SQLite::OPEN_READONLY);
  CHECK(d.execAndGet("PRAGMA auto_vacuum").getInt() == 2);
  auto ep = f.hooks->find_endpoint("ep1");
  REQUIRE(ep);
  CHECK(ep->has_value());  // what it held is still there
}

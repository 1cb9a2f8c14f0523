// The admin summary (SPEC §9): the job counts (new jobs counted by the writer per batch, changes by
// the triggers of migrations 6 and 9) agree with a count of the jobs table through every change a job
// goes through (and are rebuilt from the rows when migration 6 runs on an existing store, kept when 9
// does), the oldest queued job, the query plans (no scan of the jobs),
// and GET /api/v1/admin/connector-events through dispatch(): its shape and its refusals.
#include "daemon_under_test.hpp"
#include "process.hpp"
#include "webhook_store_fixture.hpp"

#include "../../common/store/sqlite_rows.hpp"

#include <alumia/base/metrics.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include <chrono>
#include <future>
#include <map>
#include <set>
#include <string>

using namespace alumia;
using nlohmann::json;

namespace {

using Counts = std::map<std::string, std::map<JobState, int64_t>>;

// What the counts must be: the jobs table counted (the very scan the store avoids).
Counts counted(const std::filesystem::path& db) {
  SQLite::Database d(db.string(), SQLite::OPEN_READONLY);
  SQLite::Statement q(d, "SELECT endpoint_id,state,COUNT(*) FROM webhook_jobs GROUP BY endpoint_id,state");
  Counts out;
  while (q.executeStep())
    out[q.getColumn(0).getString()][*parse_job_state(q.getColumn(1).getString())] = q.getColumn(2).getInt64();
  return out;
}

// The store's counts without the zeros a state that emptied leaves.
Counts kept(WebhookStore& hooks) {
  auto got = hooks.job_counts("u1");
  REQUIRE(got);
  Counts out;
  for (const auto& [ep, states] : *got)
    for (const auto& [s, n] : states)
      if (n != 0) out[ep][s] = n;
  return out;
}

// The store's counts (read first: its read waits for the deliveries still in the intake log) against
// the table counted.
Counts check_counts(test::WebhookStoreFixture& f) {
  const auto got = kept(*f.hooks);
  CHECK(got == counted(f.options.path));
  return got;
}

std::string plan(SQLite::Database& d, const std::string& sql) {
  SQLite::Statement q(d, "EXPLAIN QUERY PLAN " + sql);
  q.bind(1, "x");
  std::string out;
  while (q.executeStep()) out += q.getColumn(3).getString() + "\n";
  return out;
}

}  // namespace

TEST_CASE("admin: job counts follow every change of a job's state", "[webhooks][store][admin]") {
  test::WebhookStoreFixture f({"ep1", "ep2"});
  for (int n = 1; n <= 6; ++n) REQUIRE(f.hooks->ingest(test::ingest_request("github:k" + std::to_string(n), n)));
  auto other = test::ingest_request("github:other", 7);
  other.endpoint_id = "ep2";
  REQUIRE(f.hooks->ingest(other));
  check_counts(f);
  CHECK(kept(*f.hooks)["ep1"][JobState::queued] == 6);

  // Claimed (running), then each outcome, a retry, and a deleted endpoint's jobs cancelled.
  auto claimed = f.hooks->claim_due_jobs(5000, 4, true);
  REQUIRE(claimed);
  REQUIRE(claimed->size() == 4);
  check_counts(f);
  const JobState outcomes[] = {JobState::succeeded, JobState::failed, JobState::dead, JobState::dead};
  for (std::size_t i = 0; i < claimed->size(); ++i) {
    auto j = (*claimed)[i];
    j.state = outcomes[i];
    j.attempts = 1;
    j.updated_at = 5001;
    if (j.state != JobState::failed) j.finished_at = 5001;
    REQUIRE(f.hooks->finish_job(j));
  }
  check_counts(f);
  REQUIRE(f.hooks->retry_jobs("u1", JobState::dead, std::nullopt, 6000) == 2);
  check_counts(f);
  REQUIRE(f.hooks->cancel_endpoint_jobs("ep1", 7000));
  const auto after = check_counts(f);
  CHECK(after.at("ep1").at(JobState::dead) == 5);  // the 4 queued (2 of them retried) and the failed one
  CHECK(after.at("ep1").at(JobState::succeeded) == 1);
  CHECK(after.at("ep1").count(JobState::queued) == 0);
  CHECK(after.at("ep2").at(JobState::queued) == 1);

  // Another user's endpoints are not counted.
  auto theirs = f.hooks->job_counts("u2");
  REQUIRE(theirs);
  CHECK(theirs->empty());
}

TEST_CASE("admin: migration 6 counts the jobs a store already holds", "[webhooks][store][admin]") {
  test::WebhookStoreFixture f;
  for (int n = 1; n <= 3; ++n) REQUIRE(f.hooks->ingest(test::ingest_request("github:k" + std::to_string(n), n)));
  f.hooks.reset();
  {
    // The store as migration 5 left it, with these jobs in it.
    SQLite::Database d(f.options.path.string(), SQLite::OPEN_READWRITE);
    d.exec(test::k_undo_migration_12);
    d.exec(
        "DROP TRIGGER webhook_jobs_count_update; "
        "DROP TRIGGER webhook_jobs_count_delete; DROP TABLE webhook_job_counts; DROP INDEX webhook_jobs_user_state; "
        // and without what later migrations added (7: retention)
        "DROP TABLE webhook_retention_marks; ALTER TABLE webhook_endpoints DROP COLUMN retention_days; "
        "ALTER TABLE webhook_events DROP COLUMN body_removed_at; "
        // (8: the OAuth flows, tickets and results; 10 and 11 dropped an index each; 12, above: dedup runs)
        "DROP TABLE oauth_flows; DROP TABLE oauth_tickets; DROP TABLE oauth_results; "
        "CREATE INDEX webhook_jobs_due ON webhook_jobs(state, next_attempt_at); "
        "CREATE INDEX webhook_jobs_user ON webhook_jobs(user_id, created_at, id); "
        "PRAGMA user_version=5;");
  }
  f.store.reset();
  auto s = open_sqlite_store({f.options.path, true});
  REQUIRE(s);
  f.store = std::move(*s);
  f.reopen();
  check_counts(f);
  CHECK(kept(*f.hooks)["ep1"][JobState::queued] == 3);
  REQUIRE(f.hooks->ingest(test::ingest_request("github:k4", 4)));  // and new jobs are counted again
  CHECK(kept(*f.hooks)["ep1"][JobState::queued] == 4);
}

namespace {

// Hands `r` over as the public listener does (ingest_async: the writer applies it in a later batch, with
// what else is queued) and returns once it is durable, its apply queued. ingest_async declines while the
// dedup filter's first build runs: then again, until a deadline.
void hand_over(WebhookStore& hooks, IngestRequest r) {
  std::promise<Result<IngestOutcome>> answer;
  REQUIRE(test::eventually(
      [&] { return hooks.ingest_async(r, [&](Result<IngestOutcome> o) { answer.set_value(std::move(o)); }); },
      std::chrono::seconds(20), std::chrono::milliseconds(5)));
  auto got = answer.get_future().get();
  REQUIRE(got);
  CHECK_FALSE(got->duplicate);
}

IngestRequest delivery(const std::string& endpoint, const std::string& name, int64_t at) {
  auto r = test::ingest_request("github:" + name, 0);
  r.endpoint_id = endpoint;
  r.event_id = "ev-" + name;
  r.job_id = "job-" + name;
  r.received_at = at;
  return r;
}

// Every row of a listing, page by page through its cursors (40 pages at most), as `field` of each row; no page
// longer than `limit`.
template <class List, class Field>
std::vector<std::string> page_through(List list, std::size_t limit, Field field) {
  std::vector<std::string> out;
  Page page;
  page.limit = limit;
  for (int pages = 0; pages < 40; ++pages) {
    auto got = list(page);
    REQUIRE(got);
    REQUIRE(got->items.size() <= limit);
    for (const auto& item : got->items) out.push_back(field(item));
    if (!got->next_cursor) break;
    page.cursor = got->next_cursor;
  }
  return out;
}

}  // namespace

// Migration 9: the writer counts the jobs a batch inserts, once per (endpoint, state) before COMMIT. The
// counts must stay exact when a job is claimed in the batch that inserted it (the first job of a new
// endpoint: no row yet for its state), and when an operation of the batch fails and the batch is run again
// with a savepoint per operation (the failed one must leave no count behind).
TEST_CASE("admin: job counts stay exact with new jobs counted per batch", "[webhooks][store][admin]") {
  test::WebhookStoreFixture f({"ep1"});
  for (int round = 0; round < 5; ++round) {
    const std::string n = std::to_string(round);
    const int64_t at = 10'000 + round * 100;
    WebhookEndpointRecord e;
    e.id = "new-" + n;
    e.user_id = "u1";
    e.provider = Provider::github;
    e.created_at = e.updated_at = at;
    REQUIRE(f.hooks->insert_endpoint(e));
    // Three applies queued behind each other: the middle one repeats the first one's job id, so its job
    // INSERT fails after its dedup keys and event were written, and the batch runs again op by op.
    hand_over(*f.hooks, delivery("new-" + n, "a" + n, at));
    auto bad = delivery("ep1", "b" + n, at + 1);
    bad.job_id = "job-a" + n;
    hand_over(*f.hooks, bad);
    hand_over(*f.hooks, delivery("ep1", "c" + n, at + 2));
    // The claim joins the batch the applies wait in (the writer gathers work nobody waits for) and claims
    // what they inserted before it.
    auto claimed = f.hooks->claim_due_jobs(at + 50, 100, true);
    REQUIRE(claimed);
    std::set<std::string> ids;
    for (const auto& j : *claimed) ids.insert(j.id);
    CHECK(ids.count("job-a" + n) == 1);
    CHECK(ids.count("job-c" + n) == 1);
    check_counts(f);
    // The failed delivery is not stored, whole (its event went with its job).
    auto lost = f.hooks->find_event("ev-b" + n, false);
    REQUIRE(lost);
    CHECK_FALSE(lost->has_value());
    // Outcomes, and a replay of the first delivery (insert_job, a new queued job of its event).
    for (auto j : *claimed) {
      j.state = j.id == "job-a" + n ? JobState::succeeded : JobState::failed;
      j.attempts = 1;
      j.updated_at = at + 60;
      j.next_attempt_at = at + 1000;
      REQUIRE(f.hooks->finish_job(j));
    }
    WebhookJob replay;
    replay.id = "job-r" + n;
    replay.event_id = "ev-a" + n;
    replay.endpoint_id = "new-" + n;
    replay.user_id = "u1";
    replay.state = JobState::queued;
    replay.next_attempt_at = replay.created_at = replay.updated_at = at + 70;
    REQUIRE(f.hooks->insert_job(replay));
    // A job id that exists: refused, and not counted.
    CHECK_FALSE(f.hooks->insert_job(replay));
    const auto got = check_counts(f);
    CHECK(got.at("new-" + n).at(JobState::succeeded) == 1);
    CHECK(got.at("new-" + n).at(JobState::queued) == 1);
    CHECK(got.at("new-" + n).count(JobState::running) == 0);
  }
  const auto got = check_counts(f);
  CHECK(got.at("ep1").at(JobState::failed) == 5);
  CHECK(got.at("ep1").size() == 1);
}

// The writer runs at nice 19 while it keeps up and hands its connection to a thread at the daemon's priority
// while a backlog builds (group_writer.cpp). Another connection holds the database's write lock while 100
// deliveries are acknowledged (the intake log needs no lock), so the writer, with batches of 2, finds a backlog
// once the lock goes: it passes the connection over and back, every delivery is stored once, the counts exact.
TEST_CASE("the writer's catch-up thread takes a backlog over and gives it back, losing nothing", "[webhooks][store]") {
  const auto handovers = [] {
    const std::string text = metrics::process_registry().text();
    const std::string name = "\nalumia_store_writer_handovers_total ";
    const auto at = text.find(name);
    return at == std::string::npos ? 0 : std::stoll(text.substr(at + name.size()));
  };
  WebhookStoreOptions o;
  o.max_batch = 2;
  test::WebhookStoreFixture f({"ep1"}, o);
  const auto before = handovers();
  {
    SQLite::Database blocker(f.options.path.string(), SQLite::OPEN_READWRITE);
    blocker.exec("BEGIN IMMEDIATE");  // the writer's next BEGIN waits (its busy timeout is 5 s)
    for (int n = 0; n < 100; ++n) hand_over(*f.hooks, delivery("ep1", "k" + std::to_string(n), 20'000 + n));
    blocker.exec("ROLLBACK");
  }
  EventFilter all;
  all.user_id = "u1";
  Page page;
  page.limit = 50;
  const auto stored = f.hooks->list_events(all, page);
  REQUIRE(stored);  // a read waits for the writer to apply what the intake log holds
  CHECK(stored->items.size() == 50);
  for (int n = 0; n < 100; ++n) {
    auto e = f.hooks->find_event("ev-k" + std::to_string(n), false);
    REQUIRE(e);
    CHECK(e->has_value());
  }
  CHECK(check_counts(f).at("ep1").at(JobState::queued) == 100);
  // Over to the catch-up thread, and back once it is through (after its last batch, so polled).
  CHECK(test::eventually([&] { return handovers() - before >= 2; }, std::chrono::seconds(10),
                         std::chrono::milliseconds(2)));
}

TEST_CASE("admin: migration 9 keeps the counts of a store made before it", "[webhooks][store][admin]") {
  test::WebhookStoreFixture f({"ep1", "ep2"});
  for (int n = 1; n <= 4; ++n) REQUIRE(f.hooks->ingest(test::ingest_request("github:k" + std::to_string(n), n)));
  auto other = test::ingest_request("github:other", 5);
  other.endpoint_id = "ep2";
  REQUIRE(f.hooks->ingest(other));
  auto claimed = f.hooks->claim_due_jobs(2000, 2, true);
  REQUIRE(claimed);
  REQUIRE(claimed->size() == 2);
  auto done = (*claimed)[0];
  done.state = JobState::succeeded;
  done.finished_at = done.updated_at = 2001;
  REQUIRE(f.hooks->finish_job(done));
  const auto before = check_counts(f);
  f.hooks.reset();
  {
    // The store as migration 8 left it: migration 6's three triggers (and the indexes 10 and 11 dropped, and
    // the dedup table 12 changed).
    SQLite::Database d(f.options.path.string(), SQLite::OPEN_READWRITE);
    d.exec(test::k_undo_migration_12);
    d.exec(R"sql(
CREATE INDEX webhook_jobs_due ON webhook_jobs(state, next_attempt_at);
CREATE INDEX webhook_jobs_user ON webhook_jobs(user_id, created_at, id);
DROP TRIGGER webhook_jobs_count_update;
DROP TRIGGER webhook_jobs_count_delete;
CREATE TRIGGER webhook_jobs_count_insert AFTER INSERT ON webhook_jobs BEGIN
  INSERT INTO webhook_job_counts(endpoint_id, state, n) VALUES (NEW.endpoint_id, NEW.state, 1)
    ON CONFLICT (endpoint_id, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER webhook_jobs_count_update AFTER UPDATE OF state ON webhook_jobs
  WHEN OLD.state IS NOT NEW.state BEGIN
  UPDATE webhook_job_counts SET n = n - 1 WHERE endpoint_id = OLD.endpoint_id AND state = OLD.state;
  INSERT INTO webhook_job_counts(endpoint_id, state, n) VALUES (NEW.endpoint_id, NEW.state, 1)
    ON CONFLICT (endpoint_id, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER webhook_jobs_count_delete AFTER DELETE ON webhook_jobs BEGIN
  UPDATE webhook_job_counts SET n = n - 1 WHERE endpoint_id = OLD.endpoint_id AND state = OLD.state;
END;
PRAGMA user_version=8;
)sql");
  }
  f.store.reset();
  auto s = open_sqlite_store({f.options.path, true});
  REQUIRE(s);
  f.store = std::move(*s);
  {
    SQLite::Database d(f.options.path.string(), SQLite::OPEN_READONLY);
    CHECK(d.execAndGet("PRAGMA user_version").getInt() >= 9);
    CHECK(d.execAndGet("SELECT COUNT(*) FROM sqlite_master WHERE name='webhook_jobs_count_insert'").getInt() == 0);
  }
  f.reopen();
  CHECK(check_counts(f) == before);
  CHECK(before.at("ep1").at(JobState::queued) == 2);
  CHECK(before.at("ep1").at(JobState::running) == 1);
  CHECK(before.at("ep1").at(JobState::succeeded) == 1);
  // New jobs, a claim and an outcome after the migration are counted as before it.
  REQUIRE(f.hooks->ingest(test::ingest_request("github:k6", 6)));
  REQUIRE(f.hooks->claim_due_jobs(3000, 10, true));
  const auto after = check_counts(f);
  CHECK(after.at("ep1").at(JobState::running) == 4);
  CHECK(after.at("ep2").at(JobState::running) == 1);
}

TEST_CASE("admin: the oldest queued job is the one queued first, not a failed or running one",
          "[webhooks][store][admin]") {
  test::WebhookStoreFixture f;
  auto none = f.hooks->oldest_queued_job("ep1");
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
  for (int n = 1; n <= 3; ++n) REQUIRE(f.hooks->ingest(test::ingest_request("github:k" + std::to_string(n), n)));
  // job-1 (queued at 1001) is claimed and fails: job-2 (1002) is now the oldest queued.
  auto claimed = f.hooks->claim_due_jobs(1001, 1, true);
  REQUIRE(claimed);
  REQUIRE(claimed->size() == 1);
  CHECK((*claimed)[0].id == "job-1");
  auto j = (*claimed)[0];
  j.state = JobState::failed;
  j.next_attempt_at = 9000;
  REQUIRE(f.hooks->finish_job(j));
  auto oldest = f.hooks->oldest_queued_job("ep1");
  REQUIRE(oldest);
  REQUIRE(oldest->has_value());
  CHECK((*oldest)->id == "job-2");
  CHECK((*oldest)->next_attempt_at == 1002);
}

TEST_CASE("admin: the summary's queries read indexes, never the jobs table", "[webhooks][store][admin]") {
  test::WebhookStoreFixture f;
  SQLite::Database d(f.options.path.string(), SQLite::OPEN_READONLY);
  const auto counts = plan(d, sqlite::k_job_counts_sql);
  INFO(counts);
  CHECK(counts.find("webhook_jobs ") == std::string::npos);  // webhook_job_counts only
  CHECK(counts.find("SEARCH c USING PRIMARY KEY") != std::string::npos);
  const auto oldest = plan(d, sqlite::k_oldest_queued_sql);
  INFO(oldest);
  CHECK(oldest.find("SEARCH webhook_jobs USING INDEX webhook_jobs_endpoint_due (endpoint_id=? AND state=?)") !=
        std::string::npos);
  CHECK(oldest.find("TEMP B-TREE") == std::string::npos);  // no sort: the index is in that order
  CHECK(oldest.find("SCAN") == std::string::npos);
}

// Migration 10 dropped webhook_jobs_due (state, next_attempt_at): the relay's statements that used it read
// one endpoint's range of webhook_jobs_endpoint_due each; none may fall back to a pass over the jobs.
TEST_CASE("admin: the relay's claims read each endpoint's range, never the jobs table", "[webhooks][store][admin]") {
  test::WebhookStoreFixture f;
  SQLite::Database d(f.options.path.string(), SQLite::OPEN_READONLY);
  CHECK(d.execAndGet("SELECT COUNT(*) FROM sqlite_master WHERE name='webhook_jobs_due'").getInt() == 0);
  for (const char* sql : {sqlite::k_claim_sql, sqlite::k_next_due_sql, sqlite::k_requeue_running_sql}) {
    const auto p = plan(d, sql);
    INFO(sql << "\n" << p);
    CHECK(p.find("SEARCH webhook_jobs USING ") != std::string::npos);
    CHECK(p.find("INDEX webhook_jobs_endpoint_due (endpoint_id=? AND state=?") != std::string::npos);
    CHECK(p.find("SCAN") == std::string::npos);
    CHECK(p.find("TEMP B-TREE") == std::string::npos);  // the claim's order is the index's
  }
}

// Migration 11 dropped webhook_jobs_user (user_id, created_at, id): a user's jobs of every state are the
// merge of the five state ranges. Pages of it, through ties of created_at, are the table's order exactly.
TEST_CASE("admin: the jobs list without a state merges the states' ranges, page by page", "[webhooks][store][admin]") {
  test::WebhookStoreFixture f({"ep1"});
  for (int n = 1; n <= 12; ++n) REQUIRE(f.hooks->ingest(test::ingest_request("github:k" + std::to_string(n), n)));
  auto claimed = f.hooks->claim_due_jobs(1008, 100, true);  // job-1 .. job-8
  REQUIRE(claimed);
  REQUIRE(claimed->size() == 8);
  const JobState outcomes[] = {JobState::succeeded, JobState::failed, JobState::dead};
  for (std::size_t i = 0; i < 6; ++i) {
    auto j = (*claimed)[i];
    j.state = outcomes[i % 3];
    j.next_attempt_at = 9000;
    REQUIRE(f.hooks->finish_job(j));
  }
  for (int n = 1; n <= 4; ++n) {  // replays created at the same time as job-5: ties ordered by id
    WebhookJob r;
    r.id = "job-5-r" + std::to_string(n);
    r.event_id = "ev-" + std::to_string(n);
    r.endpoint_id = "ep1";
    r.user_id = "u1";
    r.state = n % 2 ? JobState::queued : JobState::dead;
    r.created_at = r.updated_at = r.next_attempt_at = 1005;
    REQUIRE(f.hooks->insert_job(r));
  }
  std::vector<std::string> expected;
  {
    SQLite::Database d(f.options.path.string(), SQLite::OPEN_READONLY);
    SQLite::Statement q(d, "SELECT id FROM webhook_jobs ORDER BY created_at DESC, id DESC");
    while (q.executeStep()) expected.push_back(q.getColumn(0).getString());
  }
  REQUIRE(expected.size() == 16);
  JobFilter all;
  all.user_id = "u1";
  for (const std::size_t limit : {1u, 3u, 5u, 16u, 50u}) {
    const auto got = page_through([&](const Page& page) { return f.hooks->list_jobs(all, page); }, limit,
                                  [](const WebhookJob& j) { return j.id; });
    INFO("limit " << limit);
    CHECK(got == expected);
  }
  Page ten;
  ten.limit = 10;
  JobFilter recent = all;
  recent.since = 1010;
  auto since = f.hooks->list_jobs(recent, ten);
  REQUIRE(since);
  REQUIRE(since->items.size() == 3);
  CHECK(since->items[0].id == "job-12");
  CHECK(since->items[2].id == "job-10");
  JobFilter event = all;
  event.event_id = "ev-2";
  auto of_event = f.hooks->list_jobs(event, ten);
  REQUIRE(of_event);
  REQUIRE(of_event->items.size() == 2);
  CHECK(of_event->items[0].id == "job-5-r2");
  CHECK(of_event->items[1].id == "job-2");
}

TEST_CASE("admin: GET /api/v1/admin/connector-events shows endpoints, jobs and events", "[webhooks][admin]") {
  test::DaemonUnderTest d;
  d.clock.set_ms(1'800'000'000'000);
  auto created = d.send("POST", "/api/v1/webhook-endpoints", R"({"provider":"github","label":"repo hooks"})");
  REQUIRE(created.status == 201);
  const std::string ep = json::parse(created.body)["data"]["endpoint"]["id"];
  const auto record = d.hooks->find_endpoint(ep);
  REQUIRE(record);
  REQUIRE(record->has_value());
  for (int n = 0; n < 3; ++n) {
    IngestRequest r;
    r.endpoint_id = ep;
    r.user_id = (*record)->user_id;
    r.provider = Provider::github;
    r.event_key = "github:d" + std::to_string(n);
    r.event_type = "push";
    r.headers = "[]";
    r.body = "{}";
    r.received_at = d.clock.now_ms() - 60'000 + n;  // a minute ago
    r.event_id = d.random.uuid_v7(r.received_at);
    r.job_id = d.random.uuid_v7(r.received_at);
    REQUIRE(d.hooks->ingest(r));
  }
  auto dup = d.hooks->ingest([&] {
    IngestRequest r;
    r.endpoint_id = ep;
    r.user_id = (*record)->user_id;
    r.event_key = "github:d0";
    r.event_id = d.random.uuid_v7(d.clock.now_ms());
    r.job_id = d.random.uuid_v7(d.clock.now_ms());
    r.received_at = d.clock.now_ms();
    return r;
  }());
  REQUIRE(dup);
  CHECK(dup->duplicate);

  auto r = d.send("GET", "/api/v1/admin/connector-events?limit=2");
  INFO(r.body);
  REQUIRE(r.status == 200);
  const auto data = json::parse(r.body)["data"];
  REQUIRE(data["endpoints"].size() == 1);
  const auto& e = data["endpoints"][0];
  CHECK(e["id"] == ep);
  CHECK(e["label"] == "repo hooks");
  CHECK(e["provider"] == "github");
  CHECK(e["status"] == "active");
  CHECK(e["counts"]["received"] == 3);
  CHECK(e["counts"]["duplicates"] == 1);
  CHECK(e["jobs"]["queued"] == 3);
  CHECK(e["jobs"]["dead"] == 0);
  CHECK(data["jobs"] == json{{"queued", 3}, {"running", 0}, {"succeeded", 0}, {"failed", 0}, {"dead", 0}});
  CHECK(data["oldestQueuedJob"]["ageSeconds"] == 60);
  CHECK(data["oldestQueuedJob"]["endpointId"] == ep);
  const auto& events = data["events"];
  CHECK(events["items"].size() == 2);
  CHECK(events["hasMore"] == true);
  CHECK(events["items"][0]["eventKey"] == "github:d2");  // newest first
  CHECK(events["items"][0]["jobState"] == "queued");

  // The next page, through the opaque cursor.
  auto next = d.send("GET", "/api/v1/admin/connector-events?limit=2&cursor=" + events["nextCursor"].get<std::string>());
  REQUIRE(next.status == 200);
  const auto page2 = json::parse(next.body)["data"]["events"];
  REQUIRE(page2["items"].size() == 1);
  CHECK(page2["items"][0]["eventKey"] == "github:d0");
  CHECK(page2["hasMore"] == false);

  // Filters select the events; the summary stays whole.
  auto none = d.send("GET", "/api/v1/admin/connector-events?provider=stripe&state=dead&since=1m");
  REQUIRE(none.status == 200);
  const auto filtered = json::parse(none.body)["data"];
  CHECK(filtered["events"]["items"].empty());
  CHECK(filtered["endpoints"].size() == 1);
  auto by_endpoint = d.send("GET", "/api/v1/admin/connector-events?endpoint=" + ep + "&state=queued&provider=github");
  REQUIRE(by_endpoint.status == 200);
  CHECK(json::parse(by_endpoint.body)["data"]["events"]["items"].size() == 3);
}

TEST_CASE("admin: bad filters are refused with a clear error", "[webhooks][admin]") {
  test::DaemonUnderTest d;
  struct Case {
    const char* query;
    int status;
    const char* code;
    const char* says;
  };
  const Case cases[] = {
      {"state=stuck", 400, "BAD_REQUEST", "state must be one of"},
      {"since=yesterday", 400, "BAD_REQUEST", "since must be"},
      {"limit=0", 400, "BAD_REQUEST", "limit must be"},
      {"limit=201", 400, "BAD_REQUEST", "limit must be"},
      {"limit=ten", 400, "BAD_REQUEST", "limit must be"},
      {"provider=myspace", 400, "BAD_REQUEST", "provider must be one of"},
      {"endpoint=ep1", 400, "BAD_REQUEST", "endpoint must be"},
      {"endpoint=00000000-0000-4000-8000-00000000abcd", 404, "NOT_FOUND", "no webhook endpoint"},
      {"cursor=%21%21", 400, "BAD_REQUEST", "cursor is not valid"},
  };
  for (const auto& c : cases) {
    INFO(c.query);
    auto r = d.send("GET", std::string("/api/v1/admin/connector-events?") + c.query);
    INFO(r.body);
    CHECK(r.status == c.status);
    CHECK(test::error_code_of(r) == c.code);
    CHECK(r.body.find(c.says) != std::string::npos);
  }
}

TEST_CASE("admin: events by job state are those whose newest job is in it; by provider, merged across endpoints",
          "[webhooks][store][admin]") {
  test::WebhookStoreFixture f({"ep1", "ep2"});
  {
    WebhookEndpointRecord slack;
    slack.id = "ep3";
    slack.user_id = "u1";
    slack.provider = Provider::slack;
    slack.created_at = slack.updated_at = 1;
    REQUIRE(f.hooks->insert_endpoint(slack));
  }
  // Event n goes to eps[n % 3]: ep1 and ep2 (github) get 1, 3, 4, 6, 7, 9; ep3 (slack) 2, 5, 8.
  const std::string eps[] = {"ep1", "ep2", "ep3"};
  for (int n = 1; n <= 9; ++n) {
    auto r = test::ingest_request("k" + std::to_string(n), n);
    r.endpoint_id = eps[n % 3];
    r.provider = r.endpoint_id == "ep3" ? Provider::slack : Provider::github;
    REQUIRE(f.hooks->ingest(r));
  }
  const auto keys = [&](EventFilter filter, std::size_t limit) {
    filter.user_id = "u1";
    return page_through([&](const Page& page) { return f.hooks->list_events(filter, page); }, limit,
                        [](const WebhookEvent& e) { return e.event_key; });
  };
  EventFilter github;
  github.provider = Provider::github;
  using V = std::vector<std::string>;
  CHECK(keys(github, 2) == V{"k9", "k7", "k6", "k4", "k3", "k1"});  // newest first, paged by 2 over two endpoints
  CHECK(keys(github, 50) == V{"k9", "k7", "k6", "k4", "k3", "k1"});
  EventFilter slack;
  slack.provider = Provider::slack;
  CHECK(keys(slack, 1) == V{"k8", "k5", "k2"});

  // ev-4's job dies, then a replay queues a new one: it is no longer a dead event.
  auto claimed = f.hooks->claim_due_jobs(1004, 4, true);
  REQUIRE(claimed);
  for (auto j : *claimed) {
    j.state = j.id == "job-4" ? JobState::dead : JobState::succeeded;
    REQUIRE(f.hooks->finish_job(j));
  }
  EventFilter dead;
  dead.job_state = JobState::dead;
  CHECK(keys(dead, 50) == V{"k4"});
  WebhookJob replay;
  replay.id = "job-4-replay";
  replay.event_id = "ev-4";
  replay.endpoint_id = "ep2";
  replay.user_id = "u1";
  replay.next_attempt_at = replay.created_at = replay.updated_at = 5000;
  REQUIRE(f.hooks->insert_job(replay));
  CHECK(keys(dead, 50).empty());
  EventFilter queued;
  queued.job_state = JobState::queued;
  // Listed by their newest job's creation: the replay (5000) first, then the deliveries still queued.
  CHECK(keys(queued, 2) == V{"k4", "k9", "k8", "k7", "k6", "k5"});
  queued.provider = Provider::slack;
  CHECK(keys(queued, 50) == V{"k8", "k5"});
  queued.provider.reset();
  queued.endpoint_id = "ep2";
  CHECK(keys(queued, 50) == V{"k4", "k7"});
  queued.endpoint_id.reset();
  queued.since = 1007;
  CHECK(keys(queued, 50) == V{"k9", "k8", "k7"});  // received since: the replayed k4 was received at 1004
  EventFilter succeeded;
  succeeded.job_state = JobState::succeeded;
  CHECK(keys(succeeded, 50) == V{"k3", "k2", "k1"});
}

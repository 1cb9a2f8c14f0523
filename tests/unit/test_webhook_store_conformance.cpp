// WebhookStore conformance: the same cases against both backends, SQLite (embedded) and PostgreSQL 15
// (tests/support/postgres.hpp), each case in a section named after the backend, so that a behaviour the
// interface documents cannot differ between them silently. Then what only a shared database has: two
// stores on one PostgreSQL database ("two daemons") ingesting the same deliveries, claiming the same
// jobs, a claimer whose lease runs out, endpoint changes announced with NOTIFY, a lost server.
#include "../../common/store/pg_conn.hpp"
#include "postgres.hpp"
#include "process.hpp"
#include "webhook_store_fixture.hpp"

#include <alumia/store/endpoint_watch.hpp>
#include <alumia/store/webhook_store.hpp>
#include <alumia/webhooks/retention.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace alumia;
using test::counts;
using test::event;
using test::finish;

namespace {

// One backend's webhook store on fresh data, with endpoints of user u1 (github).
struct Backend {
  std::string name;
  std::unique_ptr<test::WebhookStoreFixture> sqlite;  // SQLite: the store in a temp dir
  std::string conninfo;                               // PostgreSQL: a fresh database
  std::unique_ptr<WebhookStore> pg;

  WebhookStore& hooks() { return sqlite ? *sqlite->hooks : *pg; }
  WebhookStore* operator->() { return &hooks(); }
  // Closes the store and opens it again on the same data (a daemon's restart).
  void reopen() {
    if (sqlite) return sqlite->reopen();
    pg.reset();
    pg = open_pg(conninfo);
  }
  static std::unique_ptr<WebhookStore> open_pg(const std::string& conninfo, PgWebhookStoreOptions o = {}) {
    o.conninfo = conninfo;
    auto h = open_postgres_webhook_store(o);
    REQUIRE(h);
    return std::move(*h);
  }
};

WebhookEndpointRecord endpoint(const std::string& id, int64_t created_at = 1) {
  WebhookEndpointRecord e;
  e.id = id;
  e.user_id = "u1";
  e.provider = Provider::github;
  e.created_at = e.updated_at = created_at;
  return e;
}

// Runs `body` once per backend, in a section named after it. PostgreSQL is skipped where it is not
// installed (and fails under `make test`, which requires it).
void on_each_backend(const std::vector<std::string>& endpoints, const std::function<void(Backend&)>& body) {
  for (const std::string name : {"sqlite", "postgres"}) {
    DYNAMIC_SECTION(name) {
      Backend b;
      b.name = name;
      if (name == "sqlite") {
        b.sqlite = std::make_unique<test::WebhookStoreFixture>(endpoints);
      } else {
        ALUMIA_SKIP_WITHOUT_POSTGRES();
        auto& server = test::shared_postgres();
        b.conninfo = server.conninfo(server.fresh_database());
        b.pg = Backend::open_pg(b.conninfo);
        for (const auto& id : endpoints) REQUIRE(b->insert_endpoint(endpoint(id)));
      }
      body(b);
    }
  }
}

IngestRequest request(const std::string& key, int n) { return test::ingest_request(key, n); }

Page page_of(std::size_t limit, std::optional<std::string> cursor = std::nullopt) {
  Page p;
  p.limit = limit;
  p.cursor = std::move(cursor);
  return p;
}

EventFilter events_of(std::optional<JobState> state = std::nullopt) {
  EventFilter f;
  f.user_id = "u1";
  f.job_state = state;
  return f;
}

JobFilter jobs_of(std::optional<JobState> state = std::nullopt, std::optional<std::string> event_id = std::nullopt,
                  std::optional<int64_t> since = std::nullopt) {
  JobFilter f;
  f.user_id = "u1";
  f.state = state;
  f.event_id = std::move(event_id);
  f.since = since;
  return f;
}

PgWebhookStoreOptions lease_of(int64_t lease_ms, std::string holder = "") {
  PgWebhookStoreOptions o;
  o.lease_ms = lease_ms;
  o.holder = std::move(holder);
  return o;
}

template <class T>
std::vector<std::string> ids(const std::vector<T>& items) {
  std::vector<std::string> out;
  for (const auto& i : items) out.push_back(i.id);
  return out;
}

}  // namespace

TEST_CASE("webhook store conformance: endpoints are inserted, found, updated, listed and paged",
          "[webhooks][store][pg]") {
  on_each_backend({}, [](Backend& b) {
    for (int i = 1; i <= 5; ++i) REQUIRE(b->insert_endpoint(endpoint("ep" + std::to_string(i), 10 + i)));
    CHECK_FALSE(b->insert_endpoint(endpoint("ep1")));  // the id is taken

    WebhookEndpointRecord e = endpoint("ep9", 100);
    e.provider = Provider::stripe;
    e.connection_id = "c1";
    e.label = "payments";
    e.relay_to = "http://127.0.0.1:9/hook";
    e.config = R"({"audience":"x"})";
    e.max_body_bytes = 1234;
    e.rate_limit = RateLimit{5, 10};
    e.retention_days = 3;
    REQUIRE(b->insert_endpoint(e));
    auto got = b->find_endpoint("ep9");
    REQUIRE(got);
    REQUIRE(*got);
    CHECK((*got)->provider == Provider::stripe);
    CHECK((*got)->connection_id == std::optional<std::string>("c1"));
    CHECK((*got)->label == "payments");
    CHECK((*got)->relay_to == e.relay_to);
    CHECK((*got)->config == e.config);
    CHECK((*got)->max_body_bytes == 1234);
    CHECK((*got)->rate_limit == std::optional<RateLimit>(RateLimit{5, 10}));
    CHECK((*got)->retention_days == std::optional<int64_t>(3));
    CHECK((*got)->status == EndpointStatus::active);
    CHECK((*got)->created_at == 100);
    CHECK_FALSE((*got)->deleted_at);
    CHECK_FALSE((*got)->last_delivery_at);
    CHECK_FALSE(*b->find_endpoint("nope"));

    // Descriptive columns change; the counters are not update_endpoint's.
    REQUIRE(b->ingest([] {
      auto r = request("github:a", 1);
      r.endpoint_id = "ep9";
      return r;
    }()));
    WebhookEndpointRecord changed = **got;
    changed.status = EndpointStatus::disabled;
    changed.relay_to.reset();
    changed.rate_limit.reset();
    changed.retention_days.reset();
    changed.previous_secret_expires_at = 5000;
    changed.received = 99;  // ignored
    changed.updated_at = 200;
    REQUIRE(b->update_endpoint(changed));
    got = b->find_endpoint("ep9");
    REQUIRE(*got);
    CHECK((*got)->status == EndpointStatus::disabled);
    CHECK_FALSE((*got)->relay_to);
    CHECK_FALSE((*got)->rate_limit);
    CHECK_FALSE((*got)->retention_days);
    CHECK((*got)->previous_secret_expires_at == std::optional<int64_t>(5000));
    CHECK((*got)->updated_at == 200);
    CHECK((*got)->received == 1);
    CHECK((*got)->last_delivery_at == std::optional<int64_t>(1001));
    CHECK_FALSE(b->update_endpoint(endpoint("nope")));

    // Listing: the user's live endpoints, newest first, in pages; deleted ones are found, not listed.
    WebhookEndpointRecord gone = *b->find_endpoint("ep3").value();
    gone.deleted_at = 300;
    REQUIRE(b->update_endpoint(gone));
    std::vector<std::string> listed;
    Page page = page_of(2);
    for (int pages = 0; pages < 10; ++pages) {
      auto p = b->list_endpoints("u1", page);
      REQUIRE(p);
      CHECK(p->items.size() <= 2);
      for (const auto& x : p->items) listed.push_back(x.id);
      if (!p->next_cursor) break;
      page.cursor = p->next_cursor;
    }
    CHECK(listed == std::vector<std::string>{"ep9", "ep5", "ep4", "ep2", "ep1"});
    CHECK(b->find_endpoint("ep3")->value().deleted_at == std::optional<int64_t>(300));
    CHECK(b->list_endpoints("u2", Page{})->items.empty());
    auto bad = b->list_endpoints("u1", page_of(2, "not a cursor"));
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == ErrorCode::bad_request);
    auto all = b->endpoint_ids();
    REQUIRE(all);
    REQUIRE(*all);
    CHECK(std::set<std::string>((*all)->begin(), (*all)->end()) ==
          std::set<std::string>{"ep1", "ep2", "ep3", "ep4", "ep5", "ep9"});
  });
}

TEST_CASE("webhook store conformance: dedup on the event key, aliases and batched item keys", "[webhooks][store][pg]") {
  on_each_backend({"ep1", "ep2"}, [](Backend& b) {
    auto first = b->ingest(request("github:a", 1));
    REQUIRE(first);
    CHECK_FALSE(first->duplicate);
    CHECK(first->event_id == "ev-1");
    auto again = b->ingest(request("github:a", 2));
    REQUIRE(again);
    CHECK(again->duplicate);
    CHECK(again->event_id == "ev-1");
    // Dedup is per endpoint.
    auto other = request("github:a", 30);
    other.endpoint_id = "ep2";
    CHECK_FALSE(b->ingest(other)->duplicate);

    auto aliased = request("linear:d1", 3);
    aliased.alias_keys = {"linear:content"};
    REQUIRE_FALSE(b->ingest(aliased)->duplicate);
    auto by_alias = b->ingest(request("linear:content", 4));
    CHECK(by_alias->duplicate);  // a hit on an alias
    CHECK(by_alias->event_id == "ev-3");
    auto alias_hit = request("linear:new", 40);
    alias_hit.alias_keys = {"linear:d1"};  // an alias that is a stored event key
    CHECK(b->ingest(alias_hit)->duplicate);
    CHECK_FALSE(b->ingest(request("linear:new", 41))->duplicate);  // a repeat's own keys are not kept

    auto batch = request("whatsapp:msg:1", 5);
    batch.item_keys = {"whatsapp:msg:1", "whatsapp:msg:2"};
    REQUIRE_FALSE(b->ingest(batch)->duplicate);
    auto partial = request("whatsapp:msg:2", 6);
    partial.item_keys = {"whatsapp:msg:2", "whatsapp:msg:3"};
    CHECK_FALSE(b->ingest(partial)->duplicate);  // one new item: not a repeat
    auto all_known = request("whatsapp:msg:1", 7);
    all_known.item_keys = {"whatsapp:msg:1", "whatsapp:msg:3"};
    auto repeat = b->ingest(all_known);
    CHECK(repeat->duplicate);
    CHECK(repeat->event_id == "ev-5");

    auto ep = b->find_endpoint("ep1");
    REQUIRE(*ep);
    CHECK((*ep)->received == 5);
    CHECK((*ep)->duplicates == 4);
    CHECK((*ep)->last_delivery_at == std::optional<int64_t>(1041));

    EventFilter filter;
    filter.user_id = "u1";
    auto events = b->list_events(filter, Page{});
    REQUIRE(events);
    CHECK(events->items.size() == 6);
    CHECK(events->items.front().job_state == JobState::queued);

    // The TTL pruning forgets keys, after which the same key is new again; keys received after the
    // cutoff still answer as repeats.
    auto pruned = b->prune_dedup(1002);
    REQUIRE(pruned);
    CHECK(*pruned == 1);  // github:a of ep1
    CHECK_FALSE(b->ingest(request("github:a", 8))->duplicate);
    auto kept = b->ingest(request("linear:content", 9));
    REQUIRE(kept);
    CHECK(kept->duplicate);
    CHECK(kept->event_id == "ev-3");
    CHECK(b->ingest(request("github:a", 10))->duplicate);  // stored after the prune
    // And after a restart, from the stored keys alone.
    b.reopen();
    auto after = b->ingest(request("whatsapp:msg:3", 11));
    REQUIRE(after);
    CHECK(after->duplicate);
    CHECK(after->event_id == "ev-6");
  });
}

TEST_CASE("webhook store conformance: refusals add up, the newest reason wins, kept across a reopen",
          "[webhooks][store][pg]") {
  on_each_backend({"ep1"}, [](Backend& b) {
    CHECK_FALSE(b->find_endpoint("ep1")->value().last_error);
    const auto transactions = b->write_transactions();
    b->add_refusals("ep1", {.rejected = 2,
                            .verification_failures = 1,
                            .rate_limited = 3,
                            .last_error = EndpointError{"UNAUTHORIZED", "signature does not match", 2000}});
    b->add_refusals("ep1", {.last_error = EndpointError{"BAD_REQUEST", "an older refusal, recorded late", 1500}});
    b->add_refusals("ep1", {});  // nothing to add: no write
    Result<std::optional<WebhookEndpointRecord>> e;
    REQUIRE(test::eventually(
        [&] {
          e = b->find_endpoint("ep1");
          return e && *e && (*e)->verification_failures == 1 && (*e)->last_error;
        },
        std::chrono::seconds(5)));
    CHECK((*e)->rejected == 2);
    CHECK((*e)->rate_limited == 3);
    CHECK((*e)->last_error->code == "UNAUTHORIZED");
    CHECK((*e)->last_error->at == 2000);
    CHECK(b->write_transactions() > transactions);
    WebhookEndpointRecord changed = **e;
    changed.label = "renamed";
    changed.last_error.reset();
    REQUIRE(b->update_endpoint(changed));
    b.reopen();
    auto again = b->find_endpoint("ep1");
    REQUIRE(*again);
    CHECK((*again)->label == "renamed");
    REQUIRE((*again)->last_error);
    CHECK((*again)->last_error->message == "signature does not match");
    CHECK((*again)->rejected == 2);
  });
}

TEST_CASE("webhook store conformance: events keep any body bytes and list by filter, newest first, in pages",
          "[webhooks][store][pg]") {
  on_each_backend({"ep1", "ep2"}, [](Backend& b) {
    WebhookEndpointRecord stripe = endpoint("ep3");
    stripe.provider = Provider::stripe;
    REQUIRE(b->insert_endpoint(stripe));
    const std::string raw("\x00\x01\xff{\"a\":\"\\u0000\"}\r\n", 17);
    for (int n = 1; n <= 6; ++n) {
      auto r = request("k" + std::to_string(n), n);
      r.endpoint_id = n <= 3 ? "ep1" : n <= 5 ? "ep2" : "ep3";
      if (n == 6) r.provider = Provider::stripe;
      r.headers = R"([["x-github-event","push"]])";
      r.body = n == 1 ? raw : "{}";
      REQUIRE(b->ingest(r));
    }
    auto other_user = request("k7", 7);
    other_user.user_id = "u2";
    REQUIRE(b->ingest(other_user));

    const auto e1 = event(b.hooks(), "ev-1");
    CHECK(e1.body == raw);
    CHECK(e1.headers == R"([["x-github-event","push"]])");
    CHECK(e1.endpoint_id == "ep1");
    CHECK(e1.provider == Provider::github);
    CHECK(e1.event_key == "k1");
    CHECK(e1.event_type == "push");
    CHECK(e1.received_at == 1001);
    CHECK(e1.job_state == JobState::queued);
    CHECK_FALSE(e1.body_removed_at);
    CHECK(event(b.hooks(), "ev-1", false).body.empty());
    CHECK_FALSE(*b->find_event("ev-404", true));

    const auto list = [&](EventFilter f, std::size_t limit) {
      std::vector<std::string> out;
      Page page = page_of(limit);
      for (int pages = 0; pages < 20; ++pages) {
        auto p = b->list_events(f, page);
        REQUIRE(p);
        for (const auto& x : p->items) out.push_back(x.id);
        if (!p->next_cursor) break;
        page.cursor = p->next_cursor;
      }
      return out;
    };
    EventFilter f = events_of();
    CHECK(list(f, 4) == std::vector<std::string>{"ev-6", "ev-5", "ev-4", "ev-3", "ev-2", "ev-1"});
    CHECK(list(f, 1).size() == 6);
    f.endpoint_id = "ep2";
    CHECK(list(f, 1) == std::vector<std::string>{"ev-5", "ev-4"});
    f.endpoint_id.reset();
    f.provider = Provider::stripe;
    CHECK(list(f, 10) == std::vector<std::string>{"ev-6"});
    f.provider = Provider::github;
    f.since = 1003;
    CHECK(list(f, 2) == std::vector<std::string>{"ev-5", "ev-4", "ev-3"});

    // By job state: the events whose newest job is in it. ev-2 delivered, ev-3 dead then replayed.
    finish(b.hooks(), {{"job-2", JobState::succeeded}, {"job-3", JobState::dead}}, 2000);
    WebhookJob replay;
    replay.id = "job-3b";
    replay.event_id = "ev-3";
    replay.endpoint_id = "ep1";
    replay.user_id = "u1";
    replay.next_attempt_at = replay.created_at = replay.updated_at = 2500;
    REQUIRE(b->insert_job(replay));
    EventFilter by_state = events_of(JobState::running);
    CHECK(list(by_state, 2) == std::vector<std::string>{"ev-6", "ev-5", "ev-4", "ev-1"});
    by_state.job_state = JobState::succeeded;
    CHECK(list(by_state, 2) == std::vector<std::string>{"ev-2"});
    by_state.job_state = JobState::dead;
    CHECK(list(by_state, 2).empty());  // ev-3's newest job is the replay
    by_state.job_state = JobState::queued;
    CHECK(list(by_state, 2) == std::vector<std::string>{"ev-3"});
    by_state.job_state = JobState::running;
    by_state.endpoint_id = "ep2";
    CHECK(list(by_state, 1) == std::vector<std::string>{"ev-5", "ev-4"});
    CHECK(event(b.hooks(), "ev-3").job_state == JobState::queued);
    auto bad = b->list_events(f, page_of(2, "garbage"));
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == ErrorCode::bad_request);
  });
}

TEST_CASE("webhook store conformance: jobs list, retry, count per state and cancel", "[webhooks][store][pg]") {
  on_each_backend({"ep1", "ep2"}, [](Backend& b) {
    for (int n = 1; n <= 5; ++n) {
      auto r = request("k" + std::to_string(n), n);
      if (n == 5) r.endpoint_id = "ep2";
      REQUIRE(b->ingest(r));
    }
    auto oldest = b->oldest_queued_job("ep1");
    REQUIRE(oldest);
    REQUIRE(*oldest);
    CHECK((*oldest)->id == "job-1");
    finish(b.hooks(), {{"job-1", JobState::succeeded}, {"job-2", JobState::failed}, {"job-3", JobState::dead}}, 2000);
    // job-4 and job-5 stay running.
    const auto j2 = b->find_job("job-2");
    REQUIRE(*j2);
    CHECK((*j2)->state == JobState::failed);
    CHECK((*j2)->attempts == 1);
    CHECK((*j2)->next_attempt_at == 3000);
    CHECK((*j2)->event_id == "ev-2");
    CHECK_FALSE(*b->find_job("job-404"));
    CHECK_FALSE(*b->oldest_queued_job("ep1"));

    auto c = b->job_counts("u1");
    REQUIRE(c);
    CHECK(c->at("ep1").at(JobState::succeeded) == 1);
    CHECK(c->at("ep1").at(JobState::failed) == 1);
    CHECK(c->at("ep1").at(JobState::dead) == 1);
    CHECK(c->at("ep1").at(JobState::running) == 1);
    CHECK(c->at("ep2").at(JobState::running) == 1);
    CHECK(counts(b.hooks()) ==
          std::map<JobState, int64_t>{
              {JobState::succeeded, 1}, {JobState::failed, 1}, {JobState::dead, 1}, {JobState::running, 2}});
    CHECK(b->job_counts("u2")->empty());

    const auto list = [&](JobFilter f) {
      std::vector<std::string> out;
      Page page = page_of(2);
      for (int pages = 0; pages < 20; ++pages) {
        auto p = b->list_jobs(f, page);
        REQUIRE(p);
        for (const auto& x : p->items) out.push_back(x.id);
        if (!p->next_cursor) break;
        page.cursor = p->next_cursor;
      }
      return out;
    };
    CHECK(list(jobs_of()) == std::vector<std::string>{"job-5", "job-4", "job-3", "job-2", "job-1"});
    CHECK(list(jobs_of(JobState::running)) == std::vector<std::string>{"job-5", "job-4"});
    CHECK(list(jobs_of(std::nullopt, "ev-2")) == std::vector<std::string>{"job-2"});
    CHECK(list(jobs_of(std::nullopt, std::nullopt, 1004)) == std::vector<std::string>{"job-5", "job-4"});

    // Retry: queued, failed or dead jobs become due now; not a running or succeeded one.
    CHECK(*b->retry_job("job-3", 5000));
    CHECK_FALSE(*b->retry_job("job-1", 5000));
    CHECK_FALSE(*b->retry_job("job-4", 5000));
    CHECK_FALSE(*b->retry_job("job-404", 5000));
    const auto j3 = b->find_job("job-3").value();
    CHECK(j3->state == JobState::queued);
    CHECK(j3->attempts == 0);
    CHECK(j3->next_attempt_at == 5000);
    CHECK_FALSE(j3->finished_at);
    CHECK(*b->retry_jobs("u1", JobState::failed, std::nullopt, 6000) == 1);
    CHECK(*b->retry_jobs("u1", JobState::failed, std::nullopt, 6000) == 0);
    CHECK(b->find_job("job-2").value()->next_attempt_at == 6000);
    CHECK(counts(b.hooks()).at(JobState::queued) == 2);

    // An endpoint's pending jobs die with it; running and finished ones are left.
    REQUIRE(b->cancel_endpoint_jobs("ep1", 7000));
    const auto dead = b->find_job("job-2").value();
    CHECK(dead->state == JobState::dead);
    CHECK(dead->last_error == std::optional<std::string>("endpoint deleted"));
    CHECK(dead->finished_at == std::optional<int64_t>(7000));
    CHECK(b->find_job("job-4").value()->state == JobState::running);
    CHECK(b->find_job("job-1").value()->state == JobState::succeeded);
  });
}

namespace {

// ep2 relays to a target of its own; ep1 has none. Jobs 1..6 alternate between them.
void add_targeted_endpoint_and_jobs(Backend& b) {
  auto ep2 = b->find_endpoint("ep2").value().value();
  ep2.relay_to = "http://127.0.0.1:9/hook";
  REQUIRE(b->update_endpoint(ep2));
  for (int n = 1; n <= 6; ++n) {
    IngestRequest r = request("github:" + std::to_string(n), n);
    r.endpoint_id = n % 2 == 0 ? "ep1" : "ep2";
    REQUIRE(b->ingest(r));
  }
}

}  // namespace

TEST_CASE("webhook store conformance: claims take only jobs that have somewhere to go, due first",
          "[webhooks][store][pg]") {
  on_each_backend({"ep1", "ep2"}, [](Backend& b) {
    add_targeted_endpoint_and_jobs(b);
    // Without a default target only ep2's jobs (1, 3, 5) are claimable, oldest due first.
    auto next = b->next_due_at(false);
    REQUIRE(next);
    CHECK(*next == std::optional<int64_t>(1001));
    auto claimed = b->claim_due_jobs(5000, 2, false);
    REQUIRE(claimed);
    REQUIRE(claimed->size() == 2);
    CHECK((*claimed)[0].id == "job-1");
    CHECK((*claimed)[1].id == "job-3");
    CHECK((*claimed)[0].state == JobState::running);
    CHECK((*claimed)[0].updated_at == 5000);
    CHECK(b->claim_due_jobs(1004, 10, false)->empty());  // not yet due
    auto rest = b->claim_due_jobs(5000, 10, false);
    REQUIRE(rest);
    REQUIRE(rest->size() == 1);
    CHECK((*rest)[0].id == "job-5");
    // With a default target every endpoint's jobs go: ep1's three remain.
    CHECK(b->claim_due_jobs(5000, 10, true)->size() == 3);
    CHECK(b->claim_due_jobs(5000, 0, true)->empty());
    // A failed job comes back when its next attempt is due.
    WebhookJob j = (*claimed)[0];
    j.state = JobState::failed;
    j.attempts = 1;
    j.next_attempt_at = 9000;
    j.last_status = 502;
    j.last_error = "bad gateway";
    REQUIRE(b->finish_job(j));
    CHECK(b->find_job("job-1").value()->last_status == std::optional<int64_t>(502));
    CHECK(b->claim_due_jobs(8999, 10, false)->empty());
    auto again = b->claim_due_jobs(9000, 10, false);
    REQUIRE(again->size() == 1);
    CHECK((*again)[0].id == "job-1");
    CHECK((*again)[0].attempts == 1);
    // finish_job_later is committed without waiting, and seen by the reads after it.
    WebhookJob later = (*again)[0];
    later.state = JobState::succeeded;
    later.finished_at = 9100;
    b->finish_job_later(later);
    REQUIRE(test::eventually([&] { return b->find_job("job-1").value()->state == JobState::succeeded; },
                             std::chrono::seconds(5)));
    // What this store left running (a crash) is queued again at its next start.
    CHECK(*b->requeue_running(10000) == 5);
    CHECK(b->find_job("job-3").value()->state == JobState::queued);
    CHECK(b->find_job("job-3").value()->next_attempt_at == 10000);
  });
}

TEST_CASE("webhook store conformance: a claim gives an endpoint no more than its limit, none at 0",
          "[webhooks][store][pg]") {
  on_each_backend({"ep1", "ep2"}, [](Backend& b) {
    add_targeted_endpoint_and_jobs(b);
    const std::map<std::string, std::size_t> none{{"ep2", 0}};
    CHECK(b->claim_due_jobs(5000, 10, false, none)->empty());
    CHECK_FALSE(*b->next_due_at(false, none));
    auto others = b->claim_due_jobs(5000, 10, true, none);
    REQUIRE(others);
    REQUIRE(others->size() == 3);
    for (const auto& j : *others) CHECK(j.endpoint_id == "ep1");
    auto one = b->claim_due_jobs(5000, 10, false, {{"ep2", 1}});
    REQUIRE(one);
    REQUIRE(one->size() == 1);
    CHECK((*one)[0].id == "job-1");
  });
}

TEST_CASE("webhook store conformance: concurrent ingest stores each key once and answers every waiter",
          "[webhooks][store][pg]") {
  on_each_backend({"ep1"}, [](Backend& b) {
    constexpr int k_threads = 16;
    constexpr int k_per_thread = 100;
    std::mutex m;
    std::map<std::string, int> new_per_key;
    std::atomic<int> failures{0};
    const auto transactions = b->write_transactions();
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < k_per_thread; ++i) {
          const int key = (t / 2) * k_per_thread + i;  // every key is sent by two threads
          auto r = b->ingest(request("github:" + std::to_string(key), t * k_per_thread + i));
          std::lock_guard lock(m);
          if (!r) ++failures;
          else new_per_key["github:" + std::to_string(key)] += r->duplicate ? 0 : 1;
        }
      });
    for (auto& th : threads) th.join();
    CHECK(failures == 0);
    CHECK(new_per_key.size() == static_cast<std::size_t>(k_threads / 2 * k_per_thread));
    int wrong = 0;
    for (const auto& [key, n] : new_per_key) wrong += n == 1 ? 0 : 1;
    CHECK(wrong == 0);
    auto ep = b->find_endpoint("ep1");
    CHECK((*ep)->received == k_threads / 2 * k_per_thread);
    CHECK((*ep)->duplicates == k_threads / 2 * k_per_thread);
    // Deliveries share commits: fewer transactions than deliveries.
    CHECK(b->write_transactions() - transactions < static_cast<uint64_t>(k_threads * k_per_thread));
  });
}

TEST_CASE("webhook store conformance: retention empties bodies of finished events, then deletes their rows",
          "[webhooks][store][pg][retention]") {
  on_each_backend({"ep1", "ep2"}, [](Backend& b) {
    for (int n = 1; n <= 5; ++n) {
      auto r = request("github:k" + std::to_string(n), n);
      r.headers = R"([["x-github-event","push"]])";
      r.body = std::string(100, 'a' + static_cast<char>(n));
      REQUIRE(b->ingest(r));
    }
    auto theirs = request("github:other", 7);
    theirs.endpoint_id = "ep2";
    REQUIRE(b->ingest(theirs));
    // job-1 delivered, job-2 dead, job-3 failed, job-4 and job-7 running, job-5 queued.
    test::settle_first_four(b.hooks());
    auto eps = b->retention_endpoints();
    REQUIRE(eps);
    CHECK(eps->size() == 2);

    auto dropped = b->drop_event_bodies("ep1", 10'000, 100, 20'000);
    REQUIRE(dropped);
    CHECK(dropped->events == 2);
    CHECK(dropped->bytes == 2 * (100 + static_cast<int64_t>(std::string(R"([["x-github-event","push"]])").size())));
    CHECK_FALSE(dropped->more);
    for (const char* id : {"ev-1", "ev-2"}) {
      const auto e = event(b.hooks(), id);
      CHECK(e.body.empty());
      CHECK(e.headers == "[]");
      CHECK(e.body_removed_at == std::optional<int64_t>(20'000));
    }
    for (const char* id : {"ev-3", "ev-4", "ev-5"}) CHECK(event(b.hooks(), id).body.size() == 100);
    CHECK(b->drop_event_bodies("ep1", 1001, 100, 20'000)->events == 0);    // received at or after the cutoff
    CHECK(b->drop_event_bodies("ep1", 10'000, 100, 20'000)->events == 0);  // the mark moved on
    // A removed body is never relayed again.
    CHECK(*b->retry_job("job-2", 30'000) == false);
    CHECK(*b->retry_jobs("u1", JobState::dead, std::nullopt, 30'000) == 0);

    // Rows: a dry run counts and changes nothing; then ev-1 and ev-2 go with their jobs.
    const auto before = counts(b.hooks());
    RetentionCursor dry;
    RetentionBatch counted;
    for (bool more = true; more;) {
      auto batch = b->delete_events("ep1", 10'000, 1, true, dry);
      REQUIRE(batch);
      counted.events += batch->events;
      counted.jobs += batch->jobs;
      more = batch->more;
    }
    CHECK(counted.events == 2);
    CHECK(counted.jobs == 2);
    CHECK(event(b.hooks(), "ev-1").id == "ev-1");
    auto gone = retire_events(b.hooks(), {"ep1"}, 10'000, false, 1);
    REQUIRE(gone);
    CHECK(gone->events == 2);
    CHECK(gone->jobs == 2);
    CHECK(gone->bytes == 2 * 2);  // "" and "[]" after the drop
    for (const char* id : {"ev-1", "ev-2"}) CHECK_FALSE(*b->find_event(id, false));
    CHECK_FALSE(*b->find_job("job-1"));
    for (const char* id : {"ev-3", "ev-4", "ev-5", "ev-7"}) CHECK(event(b.hooks(), id, false).id == id);
    // Not a state change: the counts still count the jobs that went.
    CHECK(counts(b.hooks()) == before);
    // Dedup keeps its own 8 days.
    auto repeat = b->ingest(request("github:k2", 20));
    REQUIRE(repeat);
    CHECK(repeat->duplicate);
    CHECK(repeat->event_id == "ev-2");

    auto size = b->store_size();
    REQUIRE(size);
    CHECK(size->file_bytes > 0);
    CHECK(size->free_bytes >= 0);
    auto vacuumed = b->incremental_vacuum(1000);
    REQUIRE(vacuumed);
    CHECK(*vacuumed >= 0);
  });
}

// ---- what only a shared database has: several daemons on one PostgreSQL ----

namespace {

// A fresh database with endpoint ep1 (relaying), and `n` stores on it: n daemons.
struct Cluster {
  std::string conninfo;
  std::vector<std::unique_ptr<WebhookStore>> daemons;
  explicit Cluster(std::size_t n, PgWebhookStoreOptions o = {}) {
    auto& server = test::shared_postgres();
    conninfo = server.conninfo(server.fresh_database());
    for (std::size_t i = 0; i < n; ++i) daemons.push_back(Backend::open_pg(conninfo, o));
    auto ep = endpoint("ep1");
    ep.relay_to = "http://127.0.0.1:9/hook";
    REQUIRE(daemons[0]->insert_endpoint(ep));
  }
  WebhookStore& operator[](std::size_t i) { return *daemons[i]; }
};

}  // namespace

TEST_CASE("pg webhook store: daemons migrate one schema together and ingest the same deliveries once",
          "[webhooks][store][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  auto& server = test::shared_postgres();
  const std::string conninfo = server.conninfo(server.fresh_database());
  // Three daemons start at once on an empty database: the migration runs once, all three open.
  std::vector<std::unique_ptr<WebhookStore>> daemons(3);
  {
    std::vector<std::thread> starting;
    for (auto& d : daemons)
      starting.emplace_back([&d, &conninfo] {
        auto h = open_postgres_webhook_store([&] {
          PgWebhookStoreOptions o;
          o.conninfo = conninfo;
          return o;
        }());
        if (h) d = std::move(*h);
      });
    for (auto& t : starting) t.join();
  }
  for (const auto& d : daemons) REQUIRE(d);
  REQUIRE(daemons[0]->insert_endpoint(endpoint("ep1")));

  // Every delivery is sent to all three daemons at once (a provider retrying through a balancer).
  constexpr int k_keys = 300;
  std::mutex m;
  std::map<std::string, int> new_per_key;
  std::map<std::string, std::set<std::string>> events_per_key;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (std::size_t d = 0; d < daemons.size(); ++d)
    for (int part = 0; part < 4; ++part)
      threads.emplace_back([&, d, part] {
        for (int k = part; k < k_keys; k += 4) {
          auto r = request("github:" + std::to_string(k), static_cast<int>(d) * 10'000 + k);
          if (k % 3 == 0) r.alias_keys = {"alias:" + std::to_string(k)};
          auto got = daemons[d]->ingest(r);
          std::lock_guard lock(m);
          if (!got) {
            ++failures;
            continue;
          }
          new_per_key[r.event_key] += got->duplicate ? 0 : 1;
          events_per_key[r.event_key].insert(got->event_id);
        }
      });
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  int wrong = 0;
  for (const auto& [key, n] : new_per_key) wrong += n == 1 && events_per_key[key].size() == 1 ? 0 : 1;
  CHECK(new_per_key.size() == static_cast<std::size_t>(k_keys));
  CHECK(wrong == 0);  // each stored once, and every answer names the one stored event
  auto ep = daemons[1]->find_endpoint("ep1");
  REQUIRE(*ep);
  CHECK((*ep)->received == k_keys);
  CHECK((*ep)->duplicates == 2 * k_keys);
  CHECK(daemons[2]->job_counts("u1")->at("ep1").at(JobState::queued) == k_keys);
  // An alias known through another daemon is a repeat too.
  auto by_alias = daemons[2]->ingest(request("alias:0", 99'999));
  REQUIRE(by_alias);
  CHECK(by_alias->duplicate);
}

TEST_CASE("pg webhook store: two claimers take each job once; a holder's lease ends and its job is taken over",
          "[webhooks][store][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  Cluster c(2, lease_of(1000));
  constexpr int k_jobs = 200;
  for (int n = 0; n < k_jobs; ++n) REQUIRE(c[0].ingest(request("github:" + std::to_string(n), n)));

  // Both daemons claim concurrently in small batches until nothing is left: each job exactly once.
  std::mutex m;
  std::map<std::string, int> claims;
  std::map<std::size_t, int> per_daemon;
  std::atomic<int> failures{0};  // checked on this thread: Catch2's assertions are not thread-safe
  std::vector<std::thread> threads;
  for (std::size_t d = 0; d < 2; ++d)
    for (int t = 0; t < 3; ++t)
      threads.emplace_back([&, d] {
        for (;;) {
          auto got = c[d].claim_due_jobs(100'000, 7, false);
          if (!got) {
            ++failures;
            return;
          }
          if (got->empty()) return;
          std::lock_guard lock(m);
          for (const auto& j : *got) claims[j.id] += 1;
          per_daemon[d] += static_cast<int>(got->size());
        }
      });
  for (auto& t : threads) t.join();
  REQUIRE(failures == 0);
  CHECK(claims.size() == static_cast<std::size_t>(k_jobs));
  int twice = 0;
  for (const auto& [id, n] : claims) twice += n == 1 ? 0 : 1;
  CHECK(twice == 0);

  // Within its lease a job is held: nobody else claims it, and the other daemon's start requeues only
  // its own (it restarted), never those daemon 0 holds.
  CHECK(c[1].claim_due_jobs(100'500, 10, false)->empty());
  CHECK(c[0].claim_due_jobs(100'500, 10, false)->empty());
  CHECK(*c[1].requeue_running(100'500) == per_daemon[1]);
  CHECK(c[0].job_counts("u1")->at("ep1").at(JobState::running) == per_daemon[0]);

  // Daemon 0 "dies" holding job-0: once its lease ends, daemon 1 takes it over, and daemon 0's late
  // outcome no longer counts.
  auto fresh = Cluster(2, lease_of(1000));
  REQUIRE(fresh[0].ingest(request("github:x", 1)));
  auto mine = fresh[0].claim_due_jobs(5000, 10, false);
  REQUIRE(mine->size() == 1);
  CHECK(fresh[1].claim_due_jobs(5999, 10, false)->empty());  // lease until 6000
  CHECK(*fresh[1].requeue_running(5999) == 0);
  auto next = fresh[1].next_due_at(false);
  REQUIRE(next);
  CHECK(*next == std::optional<int64_t>(6000));
  auto taken = fresh[1].claim_due_jobs(6000, 10, false);
  REQUIRE(taken->size() == 1);
  CHECK((*taken)[0].id == "job-1");
  WebhookJob late = (*mine)[0];
  late.state = JobState::dead;
  late.finished_at = 6500;
  REQUIRE(fresh[0].finish_job(late));  // not the holder any more: nothing changes
  CHECK(fresh[1].find_job("job-1").value()->state == JobState::running);
  WebhookJob done = (*taken)[0];
  done.state = JobState::succeeded;
  done.finished_at = 6600;
  REQUIRE(fresh[1].finish_job(done));
  CHECK(fresh[0].find_job("job-1").value()->state == JobState::succeeded);
  CHECK(fresh[0].job_counts("u1")->at("ep1").at(JobState::succeeded) == 1);
  CHECK(fresh[0].job_counts("u1")->at("ep1").at(JobState::running) == 0);
}

TEST_CASE("pg webhook store: a daemon that names itself requeues its own jobs at its next start",
          "[webhooks][store][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  Cluster c(1, lease_of(60'000, "host-a"));
  auto other = Backend::open_pg(c.conninfo, lease_of(60'000, "host-b"));
  for (int n = 1; n <= 2; ++n) REQUIRE(c[0].ingest(request("github:" + std::to_string(n), n)));
  REQUIRE(c[0].claim_due_jobs(5000, 1, false)->size() == 1);
  REQUIRE(other->claim_due_jobs(5000, 1, false)->size() == 1);
  // host-a restarts: its job is queued again at once, host-b's (alive, within its lease) is not.
  c.daemons[0].reset();
  auto restarted = Backend::open_pg(c.conninfo, lease_of(60'000, "host-a"));
  CHECK(*restarted->requeue_running(6000) == 1);
  CHECK(restarted->find_job("job-1").value()->state == JobState::queued);
  CHECK(restarted->find_job("job-2").value()->state == JobState::running);
}

TEST_CASE("pg webhook store: endpoint changes are announced to every daemon with NOTIFY", "[webhooks][store][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  Cluster c(1);
  auto listener = pg::Connection::open(c.conninfo);
  REQUIRE(listener);
  REQUIRE((*listener)->listen(k_pg_endpoint_channel));
  const auto received = [&](std::size_t want) {
    std::vector<std::string> out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
      auto got = (*listener)->wait_notifications(std::chrono::milliseconds(200));
      REQUIRE(got);
      for (const auto& n : *got) out.push_back(n.payload);
    }
    return out;
  };
  REQUIRE(c[0].insert_endpoint(endpoint("ep2")));
  auto ep2 = c[0].find_endpoint("ep2").value().value();
  ep2.status = EndpointStatus::disabled;
  REQUIRE(c[0].update_endpoint(ep2));
  CHECK(received(2) == std::vector<std::string>{"ep2", "ep2"});
  // Counters are not endpoint changes: deliveries and refusals announce nothing.
  REQUIRE(c[0].ingest(request("github:1", 1)));
  c[0].add_refusals("ep1", {.rejected = 1, .last_error = std::nullopt});
  REQUIRE(test::eventually([&] { return c[0].find_endpoint("ep1").value()->rejected == 1; }));
  CHECK((*listener)->wait_notifications(std::chrono::milliseconds(300))->empty());
}

TEST_CASE("pg webhook store: a lost server is SERVICE_UNAVAILABLE, and the store recovers without a reopen",
          "[webhooks][store][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  test::PostgresServer server;
  const std::string conninfo = server.conninfo(server.fresh_database());
  auto hooks = Backend::open_pg(conninfo);
  REQUIRE(hooks->insert_endpoint(endpoint("ep1")));
  REQUIRE(hooks->ingest(request("github:1", 1)));
  server.stop();
  auto lost = hooks->ingest(request("github:2", 2));
  REQUIRE_FALSE(lost);
  CHECK(lost.error().code == ErrorCode::service_unavailable);
  auto read = hooks->find_endpoint("ep1");
  REQUIRE_FALSE(read);
  CHECK(read.error().code == ErrorCode::service_unavailable);
  server.start();
  // The first use of each connection after the restart may still find it dead; then it reconnects.
  REQUIRE(test::eventually([&] { return hooks->ingest(request("github:2", 2)).has_value(); }, std::chrono::seconds(10),
                           std::chrono::milliseconds(100)));
  REQUIRE(test::eventually([&] { return hooks->find_endpoint("ep1").has_value(); }, std::chrono::seconds(10),
                           std::chrono::milliseconds(100)));
  auto again = hooks->ingest(request("github:1", 3));
  REQUIRE(again);
  CHECK(again->duplicate);
  CHECK(hooks->find_endpoint("ep1").value()->received == 2);
}

TEST_CASE(
    "pg webhook store: an endpoint watch hears every daemon's endpoint changes, and says when it may have "
    "missed some",
    "[webhooks][store][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  test::PostgresServer server;
  const std::string conninfo = server.conninfo(server.fresh_database());
  auto a = Backend::open_pg(conninfo);
  auto b = Backend::open_pg(conninfo);  // another daemon
  std::mutex m;
  std::vector<std::string> heard;
  const auto count = [&](const std::string& id) {
    std::lock_guard lock(m);
    return std::count(heard.begin(), heard.end(), id);
  };
  EndpointWatch::Options o;
  o.conninfo = conninfo;
  o.recheck = std::chrono::hours(1);  // only the reconnect's recheck in this test
  auto watch = EndpointWatch::start(o, [&](const std::string& id) {
    std::lock_guard lock(m);
    heard.push_back(id);
  });
  REQUIRE(watch);
  REQUIRE(b->insert_endpoint(endpoint("ep1")));
  auto ep1 = b->find_endpoint("ep1").value().value();
  ep1.status = EndpointStatus::disabled;
  REQUIRE(b->update_endpoint(ep1));
  REQUIRE(a->insert_endpoint(endpoint("ep2")));
  REQUIRE(test::eventually([&] { return count("ep1") == 2 && count("ep2") == 1; }, std::chrono::seconds(5)));
  CHECK(count("") == 0);

  // The server goes away and comes back: the watch reconnects and says everything may be stale.
  server.stop();
  server.start();
  REQUIRE(test::eventually([&] { return count("") >= 1; }, std::chrono::seconds(15)));
  REQUIRE(test::eventually([&] { return a->insert_endpoint(endpoint("ep3")).has_value(); }, std::chrono::seconds(10),
                           std::chrono::milliseconds(100)));
  REQUIRE(test::eventually([&] { return count("ep3") == 1; }, std::chrono::seconds(5)));
  watch->reset();
}

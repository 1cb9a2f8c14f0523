#pragma once
// The real SQLite store and webhook store in a temp dir, with endpoints of user u1 (github), and a
// delivery builder: shared by the webhook store, dedup and rate-limit tests.
#include "process.hpp"

#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace alumia::test {

struct WebhookStoreFixture {
  TempDir dir;
  std::unique_ptr<Store> store;
  std::unique_ptr<WebhookStore> hooks;
  WebhookStoreOptions options;

  // `options.path` is filled in (the temp dir's store.db).
  explicit WebhookStoreFixture(std::vector<std::string> endpoint_ids = {"ep1"}, WebhookStoreOptions o = {})
      : options(std::move(o)) {
    options.path = dir.path() / "store.db";
    auto s = open_sqlite_store({options.path, true});
    REQUIRE(s);
    store = std::move(*s);
    reopen();
    for (const auto& id : endpoint_ids) {
      WebhookEndpointRecord e;
      e.id = id;
      e.user_id = "u1";
      e.provider = Provider::github;
      e.created_at = e.updated_at = 1;
      REQUIRE(hooks->insert_endpoint(e));
    }
  }
  // Closes the webhook store and opens it again on the same file.
  void reopen() {
    hooks.reset();
    auto h = open_sqlite_webhook_store(options);
    REQUIRE(h);
    hooks = std::move(*h);
  }
};

// SQL that puts back the dedup table migration 11 left (migration 12 made it runs of blocks), empty: SQL cannot
// read the blocks. For tests that take a store back to an older version.
inline constexpr const char* k_undo_migration_12 = R"sql(
DROP TABLE webhook_dedup;
DROP TABLE webhook_dedup_runs;
CREATE TABLE webhook_dedup (
  endpoint_id TEXT NOT NULL, event_key TEXT NOT NULL, event_id TEXT NOT NULL, received_at INTEGER NOT NULL,
  PRIMARY KEY (endpoint_id, event_key)) WITHOUT ROWID;
CREATE INDEX webhook_dedup_received ON webhook_dedup(received_at);
)sql";

// Delivery number `n` to ep1 with dedup key `key`: event ev-n, job job-n, received at 1000 + n.
inline IngestRequest ingest_request(const std::string& key, int n) {
  IngestRequest r;
  r.endpoint_id = "ep1";
  r.user_id = "u1";
  r.provider = Provider::github;
  r.event_key = key;
  r.event_type = "push";
  r.headers = "[]";
  r.body = "{}";
  r.received_at = 1000 + n;
  r.event_id = "ev-" + std::to_string(n);
  r.job_id = "job-" + std::to_string(n);
  return r;
}

// An event that must exist (with its body unless told otherwise).
inline WebhookEvent event(WebhookStore& hooks, const std::string& id, bool with_body = true) {
  auto got = hooks.find_event(id, with_body);
  REQUIRE(got);
  REQUIRE(got->has_value());
  return **got;
}

// u1's jobs per state, summed over its endpoints (states at 0 left out).
inline std::map<JobState, int64_t> counts(WebhookStore& hooks) {
  auto got = hooks.job_counts("u1");
  REQUIRE(got);
  std::map<JobState, int64_t> out;
  for (const auto& [ep, states] : *got)
    for (const auto& [s, n] : states)
      if (n != 0) out[s] += n;
  return out;
}

// Claims every due job (each is `running` then) and ends those named in `outcomes`.
inline void finish(WebhookStore& hooks, const std::map<std::string, JobState>& outcomes, int64_t now) {
  auto claimed = hooks.claim_due_jobs(now, 100, true);
  REQUIRE(claimed);
  for (auto j : *claimed) {
    auto it = outcomes.find(j.id);
    if (it == outcomes.end()) continue;
    j.state = it->second;
    j.attempts = 1;
    j.updated_at = now;
    if (j.state == JobState::failed) j.next_attempt_at = now + 1000;
    else j.finished_at = now;
    REQUIRE(hooks.finish_job(j));
  }
}

// The retention tests' mix: four due jobs claimed at 1004 (each `running`), then job-1 delivered,
// job-2 dead, job-3 failed (retried at 9000); the fourth stays running (ended at 5000 when ended).
inline void settle_first_four(WebhookStore& hooks) {
  auto first = hooks.claim_due_jobs(1004, 4, true);
  REQUIRE(first);
  REQUIRE(first->size() == 4);
  const std::map<std::string, JobState> outcomes{
      {"job-1", JobState::succeeded}, {"job-2", JobState::dead}, {"job-3", JobState::failed}};
  for (auto j : *first) {
    auto it = outcomes.find(j.id);
    if (it == outcomes.end()) continue;
    j.state = it->second;
    j.attempts = 1;
    if (j.state == JobState::failed) j.next_attempt_at = 9000;
    else j.finished_at = 5000;
    REQUIRE(hooks.finish_job(j));
  }
}

}  // namespace alumia::test

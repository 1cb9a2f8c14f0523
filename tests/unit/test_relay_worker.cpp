// The relay worker's schedule (SPEC §7) on a fake clock: a target that keeps failing is tried again
// after 5s, 30s, 2m, 10m, 30m, 1h, 3h and 6h, each delay grown by up to 20% of jitter, and the job is
// dead after the ninth attempt. The delay and the dead state are decided inside RelayWorker::deliver
// (no function of their own), so the test drives the worker itself over a real webhook store, a
// scripted target and seeded randomness; the clock moves only when the test moves it.
#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>
#include <alumia/webhooks/relay_worker.hpp>

#include "fakes.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <set>
#include <string>
#include <vector>

using namespace alumia;

namespace {

struct Fixture {
  test::TempDir dir;
  test::FakeClock clock;
  test::SeededRandom random{7};
  test::ScriptedHttp target;
  std::unique_ptr<Store> store;
  std::unique_ptr<WebhookStore> hooks;
  Fixture() {
    auto s = open_sqlite_store({dir.path() / "store.db", true});
    REQUIRE(s);
    store = std::move(*s);
    auto h = open_sqlite_webhook_store({.path = dir.path() / "store.db"});
    REQUIRE(h);
    hooks = std::move(*h);
    WebhookEndpointRecord e;
    e.id = "ep1";
    e.user_id = "u1";
    e.provider = Provider::github;
    e.relay_to = "http://127.0.0.1:9/in";  // the claimer asks only endpoints with a target
    e.created_at = e.updated_at = clock.now_ms();
    REQUIRE(hooks->insert_endpoint(e));
    IngestRequest r;
    r.endpoint_id = "ep1";
    r.user_id = "u1";
    r.provider = Provider::github;
    r.event_key = "github:delivery-1";
    r.event_type = "push";
    r.headers = "[]";
    r.body = R"({"zen":"Keep it logically awesome."})";
    r.received_at = clock.now_ms();
    r.event_id = "ev-1";
    r.job_id = "job-1";
    auto ingested = hooks->ingest(r);
    REQUIRE(ingested);
    REQUIRE_FALSE(ingested->duplicate);
  }
  WebhookJob job() {
    auto j = hooks->find_job("job-1");
    REQUIRE(j);
    REQUIRE(j->has_value());
    return **j;
  }
};

// Every endpoint's jobs go to one (unreachable) URL, signed with one key.
class OneTarget final : public EndpointTargets {
 public:
  Result<std::optional<RelayTarget>> relay_target(const std::string&) override {
    return std::optional<RelayTarget>(RelayTarget{"http://127.0.0.1:9/in", SecretBytes(std::string("relay-key"))});
  }
};

}  // namespace

TEST_CASE("relay worker: backoff with jitter on the fake clock, then dead", "[relay]") {
  Fixture f;
  const auto schedule = default_relay_backoff();
  for (std::size_t i = 0; i <= schedule.size(); ++i) f.target.reply(test::http_reply(500, "try later"));
  RelayWorkerOptions options;
  options.concurrency = 1;
  options.idle_poll = std::chrono::milliseconds(20);
  OneTarget targets;
  RelayWorker worker(*f.hooks, targets, f.target, f.clock, f.random, options);
  worker.start();

  std::set<int64_t> jitters;
  for (std::size_t attempt = 1; attempt <= schedule.size() + 1; ++attempt) {
    INFO("attempt " << attempt);
    WebhookJob j;
    REQUIRE(test::eventually(
        [&] {
          j = f.job();
          return j.attempts == static_cast<int64_t>(attempt) && j.state != JobState::running;
        },
        std::chrono::seconds(10), std::chrono::milliseconds(5)));
    CHECK(f.target.sent_count() == attempt);
    CHECK(j.last_status == 500);
    if (attempt <= schedule.size()) {
      CHECK(j.state == JobState::failed);
      const int64_t base = schedule[attempt - 1].count();
      const int64_t delay = j.next_attempt_at - f.clock.now_ms();
      CHECK(delay >= base);
      CHECK(delay <= base + base / 5);
      jitters.insert(delay - base);
      // Not due a millisecond early: nothing is sent.
      f.clock.set_ms(j.next_attempt_at - 1);
      worker.notify();
      CHECK_FALSE(test::eventually([&] { return f.target.sent_count() > attempt; }, std::chrono::milliseconds(50),
                                   std::chrono::milliseconds(5)));
      f.clock.set_ms(j.next_attempt_at);
      worker.notify();
    } else {
      CHECK(j.state == JobState::dead);
      CHECK(j.finished_at == f.clock.now_ms());
    }
  }
  CHECK(jitters.size() > 1);  // the delays are spread, not one fixed offset
  worker.stop();
  CHECK(f.target.sent_count() == schedule.size() + 1);

  // What was sent: the signed event, to the endpoint's target.
  const auto sent = f.target.sent();
  REQUIRE_FALSE(sent.empty());
  CHECK(sent[0].method == "POST");
  CHECK(sent[0].url == "http://127.0.0.1:9/in");
  const auto signature = http::header_value(sent[0].headers, "Alumia-Signature");
  REQUIRE(signature);
  const std::string t = signature->substr(2, signature->find(',') - 2);
  CHECK(*signature == relay_signature("relay-key", std::stoll(t), sent[0].body));
  CHECK(http::header_value(sent[0].headers, "Alumia-Event-Id") == std::optional<std::string>("ev-1"));
}

namespace {

// Two targets: endpoint "slow" posts to one origin, "fast" to another.
class TwoTargets final : public EndpointTargets {
 public:
  Result<std::optional<RelayTarget>> relay_target(const std::string& endpoint_id) override {
    const std::string url = endpoint_id == "slow" ? "http://127.0.0.1:1/slow" : "http://127.0.0.1:2/fast";
    return std::optional<RelayTarget>(RelayTarget{url, SecretBytes(std::string("relay-key"))});
  }
};

// Answers 200 at once for the fast origin; holds requests to the slow origin until released, and
// records how many were in flight to each at most.
class HeldTarget final : public http::Client {
 public:
  Result<http::OutboundResponse> send(const http::OutboundRequest& r) override {
    const bool slow = r.url.find("/slow") != std::string::npos;
    std::unique_lock lock(m_mutex);
    auto& now = slow ? m_slow_now : m_fast_now;
    auto& max = slow ? m_slow_max : m_fast_max;
    max = std::max(max, ++now);
    ++(slow ? m_slow_sent : m_fast_sent);
    if (slow) m_cv.wait(lock, [&] { return m_released; });
    --now;
    return test::http_reply(200, "");
  }
  void release() {
    {
      std::lock_guard lock(m_mutex);
      m_released = true;
    }
    m_cv.notify_all();
  }
  std::size_t slow_max() {
    std::lock_guard lock(m_mutex);
    return m_slow_max;
  }
  std::size_t slow_now() {
    std::lock_guard lock(m_mutex);
    return m_slow_now;
  }
  std::size_t slow_sent() {
    std::lock_guard lock(m_mutex);
    return m_slow_sent;
  }
  std::size_t fast_sent() {
    std::lock_guard lock(m_mutex);
    return m_fast_sent;
  }

 private:
  std::mutex m_mutex;
  std::condition_variable m_cv;
  bool m_released = false;
  std::size_t m_slow_now = 0, m_slow_max = 0, m_fast_now = 0, m_fast_max = 0, m_slow_sent = 0, m_fast_sent = 0;
};

// Jobs job-<endpoint>-0 .. job-<endpoint>-(n-1) in `state`.
std::size_t count_state(WebhookStore& hooks, const std::string& endpoint, int n, JobState state) {
  std::size_t count = 0;
  for (int i = 0; i < n; ++i) {
    auto j = hooks.find_job("job-" + endpoint + "-" + std::to_string(i));
    if (j && j->has_value() && (*j)->state == state) ++count;
  }
  return count;
}

}  // namespace

TEST_CASE("relay worker: a held target takes at most its per-target slots; another target's jobs go past it",
          "[relay]") {
  Fixture f;  // its job-1 (endpoint ep1) is delivered to the fast origin too
  for (const char* id : {"slow", "fast"}) {
    WebhookEndpointRecord e;
    e.id = id;
    e.user_id = "u1";
    e.provider = Provider::github;
    e.relay_to = std::string("http://127.0.0.1/") + id;
    e.created_at = e.updated_at = f.clock.now_ms();
    REQUIRE(f.hooks->insert_endpoint(e));
  }
  // The slow target's 30 jobs are older than the fast one's 10, so they are due first.
  auto ingest = [&](const std::string& endpoint, int i) {
    IngestRequest r;
    r.endpoint_id = endpoint;
    r.user_id = "u1";
    r.provider = Provider::github;
    r.event_key = "github:" + endpoint + "-" + std::to_string(i);
    r.event_type = "push";
    r.headers = "[]";
    r.body = "{}";
    r.received_at = f.clock.now_ms();
    r.event_id = "ev-" + endpoint + "-" + std::to_string(i);
    r.job_id = "job-" + endpoint + "-" + std::to_string(i);
    REQUIRE(f.hooks->ingest(r));
  };
  for (int i = 0; i < 30; ++i) ingest("slow", i);
  f.clock.advance(std::chrono::milliseconds(1));
  for (int i = 0; i < 10; ++i) ingest("fast", i);
  f.clock.advance(std::chrono::milliseconds(1));

  HeldTarget http;
  TwoTargets targets;
  RelayWorkerOptions options;
  options.concurrency = 4;
  options.per_target = 2;
  options.idle_poll = std::chrono::milliseconds(20);
  RelayWorker worker(*f.hooks, targets, http, f.clock, f.random, options);
  worker.start();

  // Every fast job is delivered while the slow target holds its two slots.
  REQUIRE(test::eventually([&] { return count_state(*f.hooks, "fast", 10, JobState::succeeded) == 10; },
                           std::chrono::seconds(20), std::chrono::milliseconds(5)));
  CHECK(http.slow_now() == 2);
  CHECK(http.slow_max() == 2);
  CHECK(http.slow_sent() == 2);
  CHECK(count_state(*f.hooks, "slow", 30, JobState::succeeded) == 0);
  // It holds at most four rounds claimed (8); the rest wait in the store, queued, no attempt spent.
  CHECK(count_state(*f.hooks, "slow", 30, JobState::running) <= 8);
  CHECK(count_state(*f.hooks, "slow", 30, JobState::queued) >= 22);

  http.release();
  REQUIRE(test::eventually([&] { return count_state(*f.hooks, "slow", 30, JobState::succeeded) == 30; },
                           std::chrono::seconds(20), std::chrono::milliseconds(5)));
  worker.stop();
  CHECK(http.slow_max() == 2);
  CHECK(http.slow_sent() == 30);  // each job delivered once
  CHECK(http.fast_sent() == 11);  // the fast endpoint's 10 and the fixture's job-1
  for (int i = 0; i < 30; ++i) {
    auto j = f.hooks->find_job("job-slow-" + std::to_string(i));
    REQUIRE(j);
    REQUIRE(j->has_value());
    CHECK((*j)->attempts == 1);
  }
}

TEST_CASE("relay worker: a backlog to one target keeps only that target's delivery threads", "[relay]") {
  Fixture f;  // its job-1 (endpoint ep1) goes to the fast origin
  WebhookEndpointRecord e;
  e.id = "slow";
  e.user_id = "u1";
  e.provider = Provider::github;
  e.relay_to = "http://127.0.0.1/slow";
  e.created_at = e.updated_at = f.clock.now_ms();
  REQUIRE(f.hooks->insert_endpoint(e));
  for (int i = 0; i < 30; ++i) {
    IngestRequest r;
    r.endpoint_id = "slow";
    r.user_id = "u1";
    r.provider = Provider::github;
    r.event_key = "github:slow-" + std::to_string(i);
    r.event_type = "push";
    r.headers = "[]";
    r.body = "{}";
    r.received_at = f.clock.now_ms();
    r.event_id = "ev-slow-" + std::to_string(i);
    r.job_id = "job-slow-" + std::to_string(i);
    REQUIRE(f.hooks->ingest(r));
  }
  f.clock.advance(std::chrono::milliseconds(1));

  HeldTarget http;
  TwoTargets targets;
  RelayWorkerOptions options;
  options.concurrency = 8;
  options.per_target = 2;
  options.idle_poll = std::chrono::milliseconds(20);
  RelayWorker worker(*f.hooks, targets, http, f.clock, f.random, options);
  worker.start();
  REQUIRE(test::eventually([&] { return http.slow_now() == 2 && http.fast_sent() == 1; }, std::chrono::seconds(20),
                           std::chrono::milliseconds(5)));
  // Two for the slow target, at most one for the fast one's single job: not one per claimed job (9).
  CHECK(worker.delivery_threads() <= 3);
  CHECK(http.slow_max() == 2);

  http.release();
  REQUIRE(test::eventually([&] { return count_state(*f.hooks, "slow", 30, JobState::succeeded) == 30; },
                           std::chrono::seconds(20), std::chrono::milliseconds(5)));
  worker.stop();
  CHECK(http.slow_sent() == 30);  // each job delivered once
  CHECK(worker.delivery_threads() <= 3);
}

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

// The relay worker and durability against the real daemon: a local sink that fails, retries with
// a short (test-only) backoff schedule, dead jobs and bulk retry, replay, and a SIGKILL mid-load.
#include "http_sink.hpp"
#include "process.hpp"
#include "webhook_helpers.hpp"

#include <httplib.h>
#include <signal.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;

namespace {

// A relay target on 127.0.0.1:0 that answers `fail_status` for the first `failures` requests.
class Sink {
 public:
  std::string url() const { return m_http.url("/hook"); }
  void fail_next(int n) {
    std::lock_guard lock(m_mutex);
    m_failures = n;
  }
  struct Received {
    std::string event_id, event_key, signature, body;
    std::size_t signature_count = 0;
  };
  std::vector<Received> received() {
    std::lock_guard lock(m_mutex);
    return m_received;
  }
  int attempts() {
    std::lock_guard lock(m_mutex);
    return m_attempts;
  }

 private:
  void serve(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(m_mutex);
    ++m_attempts;
    if (m_failures > 0) {
      --m_failures;
      res.status = 500;
      res.set_content("try later", "text/plain");
      return;
    }
    m_received.push_back(Received{req.get_header_value("Alumia-Event-Id"), req.get_header_value("Alumia-Event-Key"),
                                  req.get_header_value("Alumia-Signature"), req.body,
                                  req.get_header_value_count("Alumia-Signature")});
    res.status = 200;
    res.set_content("ok", "text/plain");
  }

  std::mutex m_mutex;
  int m_failures = 0;
  int m_attempts = 0;
  std::vector<Received> m_received;
  // Last: stopped before what its handler writes to is gone.
  HttpSink m_http{{{"/hook", [this](const httplib::Request& req, httplib::Response& res) { serve(req, res); }}}};
};

// A relay target that holds every request until release() (a slow target without a fixed sleep; a
// request is held 30 s at most so that a failing test cannot hang), counting those in flight.
class HeldSink {
 public:
  HeldSink() {
    m_server.new_task_queue = [] { return new httplib::ThreadPool(16); };
    m_server.Post("/held", [this](const httplib::Request& req, httplib::Response& res) {
      std::unique_lock lock(m_mutex);
      m_max = std::max(m_max, ++m_now);
      m_cv.wait_for(lock, std::chrono::seconds(30), [&] { return m_released; });
      --m_now;
      m_ids.insert(req.get_header_value("Alumia-Event-Id"));
      ++m_answered;
      res.status = 200;
    });
    m_port = m_server.bind_to_any_port("127.0.0.1");
    REQUIRE(m_port > 0);
    m_thread = std::thread([this] { m_server.listen_after_bind(); });
    REQUIRE(eventually([&] { return m_server.is_running(); }, std::chrono::seconds(5)));
  }
  ~HeldSink() {
    release();
    m_server.stop();
    if (m_thread.joinable()) m_thread.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port) + "/held"; }
  void release() {
    {
      std::lock_guard lock(m_mutex);
      m_released = true;
    }
    m_cv.notify_all();
  }
  int in_flight() {
    std::lock_guard lock(m_mutex);
    return m_now;
  }
  int max_in_flight() {
    std::lock_guard lock(m_mutex);
    return m_max;
  }
  int answered() {
    std::lock_guard lock(m_mutex);
    return m_answered;
  }
  std::size_t distinct_events() {
    std::lock_guard lock(m_mutex);
    return m_ids.size();
  }

 private:
  httplib::Server m_server;
  std::thread m_thread;
  int m_port = 0;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  bool m_released = false;
  int m_now = 0, m_max = 0, m_answered = 0;
  std::set<std::string> m_ids;
};

// Alumia-Signature: t=<unix>,v1=<hex HMAC-SHA256("t.body")>.
bool signature_verifies(const std::string& header, const std::string& secret, const std::string& body) {
  const auto comma = header.find(",v1=");
  if (header.rfind("t=", 0) != 0 || comma == std::string::npos) return false;
  const std::string t = header.substr(2, comma - 2);
  const std::string v1 = header.substr(comma + 4);
  const std::string expected = alumia::encoding::hex_encode(alumia::crypto::hmac_sha256(secret, t + "." + body));
  const int64_t age = now_unix() - std::stoll(t);
  return alumia::crypto::equal_ct(expected, v1) && age >= -5 && age < 60;
}

Signer github_signer(const json& created) {
  Signer s;
  s.provider = "github";
  s.secret = created["secret"].get<std::string>();
  s.endpoint_id = created["endpoint"]["id"].get<std::string>();
  return s;
}

json jobs_in(const Daemon& d, const std::string& state) {
  auto r = d.api("GET", "/api/v1/jobs?limit=200&state=" + state);
  REQUIRE(r.status == 200);
  return r.json()["data"]["items"];
}

}  // namespace

TEST_CASE("relay: a failing target is retried on the schedule until it succeeds; the signature verifies",
          "[webhooks]") {
  Sink sink;
  TempDir dir;
  Daemon::Options opts;
  opts.env["ALUMIA_RELAY_BACKOFF_MS"] = "50,50,50,50,50";
  Daemon d(dir.path(), opts);

  sink.fail_next(3);
  json c = create_endpoint(d, {{"provider", "github"}, {"relayTo", sink.url()}});
  CHECK(c["endpoint"]["relayTo"] == sink.url());
  Signer s;
  s.provider = "github";
  s.secret = c["secret"];
  s.endpoint_id = c["endpoint"]["id"];
  const std::string relay_secret = c["relaySecret"];

  auto r = send(d, s, make_delivery(s, 1));
  REQUIRE(r.status == 200);
  const std::string event_id = r.json()["data"]["eventId"];

  REQUIRE(eventually([&] { return jobs_in(d, "succeeded").size() == 1; }, std::chrono::seconds(15)));
  json job = jobs_in(d, "succeeded")[0];
  CHECK(job["eventId"] == event_id);
  CHECK(job["attempts"] == 4);
  CHECK(job["lastStatus"] == 200);
  CHECK(sink.attempts() == 4);

  auto got = sink.received();
  REQUIRE(got.size() == 1);
  CHECK(got[0].event_id == event_id);
  CHECK(got[0].event_key == "github:delivery-1");
  CHECK(got[0].signature_count == 1);
  CHECK(signature_verifies(got[0].signature, relay_secret, got[0].body));
  CHECK_FALSE(signature_verifies(got[0].signature, "another-secret", got[0].body));
  json relayed = json::parse(got[0].body);
  CHECK(relayed["id"] == event_id);
  CHECK(relayed["eventKey"] == "github:delivery-1");
  CHECK(relayed["payload"] == json::parse(make_delivery(s, 1).body));

  auto ev = d.api("GET", "/api/v1/connector-events/" + event_id).json()["data"];
  CHECK(ev["jobState"] == "succeeded");
  CHECK(d.api("GET", "/api/v1/connector-events?status=succeeded").json()["data"]["items"].size() == 1);

  SECTION("replay makes a new job that is delivered again") {
    auto rp = d.api("POST", "/api/v1/connector-events/" + event_id + "/replay");
    REQUIRE(rp.status == 201);
    CHECK(eventually([&] { return sink.received().size() == 2; }, std::chrono::seconds(10)));
    CHECK(eventually([&] { return jobs_in(d, "succeeded").size() == 2; }, std::chrono::seconds(10)));
    // Retrying a succeeded job is a conflict: replay is the way to deliver again.
    CHECK(d.api("POST", "/api/v1/jobs/" + job["id"].get<std::string>() + "/retry").status == 409);
  }
  SECTION("a job dies after the last attempt; bulk retry revives it") {
    sink.fail_next(1000);
    auto r2 = send(d, s, make_delivery(s, 2));
    REQUIRE(r2.status == 200);
    REQUIRE(eventually([&] { return jobs_in(d, "dead").size() == 1; }, std::chrono::seconds(15)));
    json dead = jobs_in(d, "dead")[0];
    CHECK(dead["attempts"] == 6);  // the first try + one per backoff step
    CHECK(dead["lastStatus"] == 500);
    sink.fail_next(0);
    auto bulk = d.api("POST", "/api/v1/jobs/retry?state=dead&since=1h");
    REQUIRE(bulk.status == 200);
    CHECK(bulk.json()["data"]["retried"] == 1);
    CHECK(eventually([&] { return jobs_in(d, "succeeded").size() == 2; }, std::chrono::seconds(10)));
    CHECK(jobs_in(d, "dead").empty());
  }
  CHECK(d.stop() == 0);
}

TEST_CASE("relay: a slow target holds only its own slots; another target's deliveries go past it", "[webhooks]") {
  HeldSink held;
  Sink fast;
  TempDir dir;
  Daemon::Options opts;
  opts.env["ALUMIA_RELAY_TARGET_CONCURRENCY"] = "2";
  Daemon d(dir.path(), opts);

  // The held target's 20 jobs come first (due first; more than the 8 threads the relay once had).
  json slow_ep = create_endpoint(d, {{"provider", "github"}, {"relayTo", held.url()}});
  Signer slow = github_signer(slow_ep);
  for (int i = 1; i <= 20; ++i) REQUIRE(send(d, slow, make_delivery(slow, i)).status == 200);
  REQUIRE(eventually([&] { return held.in_flight() == 2; }, std::chrono::seconds(10)));

  json fast_ep = create_endpoint(d, {{"provider", "github"}, {"relayTo", fast.url()}});
  Signer quick = github_signer(fast_ep);
  for (int i = 1; i <= 5; ++i) REQUIRE(send(d, quick, make_delivery(quick, 100 + i)).status == 200);
  // All five reach the fast target while the slow one still holds its two (and only two).
  REQUIRE(eventually([&] { return fast.received().size() == 5; }, std::chrono::seconds(10)));
  CHECK(held.in_flight() == 2);
  CHECK(held.max_in_flight() == 2);
  CHECK(held.answered() == 0);

  held.release();
  REQUIRE(eventually([&] { return jobs_in(d, "succeeded").size() == 25; }, std::chrono::seconds(20)));
  CHECK(held.answered() == 20);  // each job delivered once
  CHECK(held.distinct_events() == 20);
  CHECK(held.max_in_flight() == 2);
  CHECK(fast.attempts() == 5);
  CHECK(d.stop() == 0);
}

TEST_CASE("relay: without a target jobs wait queued, and drain once a default target is configured", "[webhooks]") {
  Sink sink;
  TempDir dir;
  std::string endpoint_id, event_id;
  {
    Daemon d(dir.path());
    json c = create_endpoint(d, {{"provider", "github"}});
    Signer s = github_signer(c);
    endpoint_id = s.endpoint_id;
    auto r = send(d, s, make_delivery(s, 1));
    REQUIRE(r.status == 200);
    event_id = r.json()["data"]["eventId"];
    CHECK(jobs_in(d, "queued").size() == 1);
    CHECK(d.stop() == 0);
  }
  Daemon::Options opts;
  opts.extra_args = {"--relay-to", sink.url()};
  Daemon d(dir.path(), opts);
  CHECK(eventually([&] { return sink.received().size() == 1; }, std::chrono::seconds(10)));
  CHECK(sink.received()[0].event_id == event_id);
  CHECK(eventually([&] { return jobs_in(d, "succeeded").size() == 1; }, std::chrono::seconds(5)));
  CHECK(d.stop() == 0);
}

TEST_CASE("durability: SIGKILL under concurrent load loses no acknowledged delivery and stores none twice",
          "[webhooks]") {
  Sink sink;
  TempDir dir;
  Daemon::Options opts;
  opts.extra_args = {"--relay-to", sink.url()};
  auto d = std::make_unique<Daemon>(dir.path(), opts);
  json c = create_endpoint(*d, {{"provider", "github"}});
  Signer s = github_signer(c);
  const std::string url = d->url();

  std::mutex mutex;
  std::map<std::string, std::string> acked;  // event key → event id
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  // Joined on every way out: a REQUIRE that fails while they run would otherwise end the process
  // (std::terminate from a joinable thread's destructor) instead of failing the test.
  struct JoinAll {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~JoinAll() {
      stop = true;
      for (auto& th : threads)
        if (th.joinable()) th.join();
    }
  } join_all{stop, threads};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3000 && !stop; ++i) {
        const int n = t * 100000 + i;
        Delivery dl = make_delivery(s, n);
        auto r = http_request("POST", url + receive_path("github", s.endpoint_id), dl.headers, dl.body);
        if (r.status == 200) {
          std::lock_guard lock(mutex);
          acked["github:delivery-" + std::to_string(n)] = r.json()["data"]["eventId"];
        } else {
          ++errors;
          if (r.status == -1) return;  // the daemon is gone
        }
      }
    });
  }
  REQUIRE(eventually(
      [&] {
        std::lock_guard lock(mutex);
        return acked.size() >= 150;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(2)));
  d->expect_exit(128 + SIGKILL);
  d->process().signal(SIGKILL);
  d->process().wait(std::chrono::seconds(5));
  stop = true;
  for (auto& th : threads) th.join();
  threads.clear();
  d.reset();
  INFO("acknowledged before the kill: " << acked.size());

  Daemon d2(dir.path(), opts);
  // Every acknowledged delivery is stored exactly once, with the id it was acknowledged with.
  std::map<std::string, std::vector<std::string>> stored;  // key → event ids
  std::optional<std::string> cursor;
  for (;;) {
    auto r = d2.api("GET", "/api/v1/connector-events?limit=200&endpoint=" + s.endpoint_id +
                               (cursor ? "&cursor=" + *cursor : std::string()));
    REQUIRE(r.status == 200);
    const json page = r.json()["data"];  // a named copy: the range below must not dangle
    for (const auto& e : page["items"]) stored[e["eventKey"].get<std::string>()].push_back(e["id"].get<std::string>());
    if (page["nextCursor"].is_null()) break;
    cursor = page["nextCursor"].get<std::string>();
  }
  INFO("stored after the restart: " << stored.size());
  for (const auto& [key, ids] : stored) {
    INFO(key);
    CHECK(ids.size() == 1);
  }
  for (const auto& [key, id] : acked) {
    INFO(key);
    REQUIRE(stored.count(key) == 1);
    CHECK(stored[key].front() == id);
  }
  // And every one of them reaches the relay target (at least once: a kill between the POST and
  // its bookkeeping may deliver one twice, which Alumia-Event-Id lets consumers drop).
  CHECK(eventually(
      [&] {
        std::set<std::string> relayed;
        for (const auto& r : sink.received()) relayed.insert(r.event_id);
        for (const auto& [key, ids] : stored)
          if (!relayed.count(ids.front())) return false;
        return true;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(50)));
  CHECK(eventually([&] { return jobs_in(d2, "queued").empty() && jobs_in(d2, "running").empty(); },
                   std::chrono::seconds(10)));
  CHECK(d2.stop() == 0);
}

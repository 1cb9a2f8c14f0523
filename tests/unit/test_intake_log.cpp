// The intake log (the durable front of webhook ingest) and the store's recovery from it: what a
// restart finds after a crash, torn records, the ring wrapping and filling up, and a process that
// dies between acknowledging deliveries and applying them.
#include "process.hpp"

#include <alumia/store/intake_log.hpp>
#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <thread>

using namespace alumia;

namespace {

std::unique_ptr<IntakeLog> open_log(const std::filesystem::path& path, std::vector<IntakeLog::Record>& left,
                                    std::size_t bytes = 1u << 20) {
  auto log = IntakeLog::open({.path = path, .bytes = bytes}, left);
  REQUIRE(log);
  return std::move(*log);
}

std::vector<std::string> payloads(const std::vector<IntakeLog::Record>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r.payload);
  return out;
}

}  // namespace

TEST_CASE("crc32c matches the RFC 3720 check values", "[intake]") {
  const std::string zeros(32, '\0');
  CHECK(crc32c(zeros.data(), zeros.size()) == 0x8a9136aau);
  const std::string ones(32, '\xff');
  CHECK(crc32c(ones.data(), ones.size()) == 0x62a8ab43u);
  CHECK(crc32c("123456789", 9) == 0xe3069283u);
  // Incremental use gives the same value as one call.
  CHECK(crc32c("56789", 5, crc32c("1234", 4)) == 0xe3069283u);
}

TEST_CASE("intake log: a restart finds the last run's records, then starts a new epoch", "[intake]") {
  test::TempDir dir;
  const auto path = dir.path() / "intake";
  std::vector<IntakeLog::Record> left;
  {
    auto log = open_log(path, left);
    CHECK(left.empty());
    REQUIRE(log->start());
    std::vector<uint64_t> durable;
    for (int i = 0; i < 5; ++i) {
      auto seq = log->append("record-" + std::to_string(i) + std::string(static_cast<std::size_t>(i) * 700, 'x'),
                             [&](uint64_t s) { durable.push_back(s); });
      REQUIRE(seq);
      CHECK(durable.back() == *seq);  // on_durable ran before append returned
    }
    CHECK(log->unreleased() == 5);
    log->release(durable[0]);
    CHECK(log->unreleased() == 4);
  }  // like a crash: nothing is flushed or marked on the way out
  {
    auto log = open_log(path, left);
    REQUIRE(left.size() == 5);  // released or not: the store skips what it already holds
    for (std::size_t i = 0; i < left.size(); ++i) {
      CHECK(left[i].payload.rfind("record-" + std::to_string(i), 0) == 0);
      CHECK(left[i].payload.size() == 8 + i * 700);
      if (i > 0) CHECK(left[i].seq > left[i - 1].seq);
    }
    REQUIRE(log->start());  // everything applied: a new epoch
    REQUIRE(log->append("after", [](uint64_t) {}));
  }
  auto log = open_log(path, left);
  CHECK(payloads(left) == std::vector<std::string>{"after"});
}

TEST_CASE("intake log: a torn record is skipped, the ones around it survive", "[intake]") {
  test::TempDir dir;
  const auto path = dir.path() / "intake";
  std::vector<IntakeLog::Record> left;
  {
    auto log = open_log(path, left);
    REQUIRE(log->start());
    for (const char* p : {"first", "second", "third"})
      REQUIRE(log->append(std::string(p) + std::string(600, '.'), [](uint64_t) {}));
  }
  {
    // The second record starts one 1024-byte slot after the first (512-byte head block before
    // them); flip a payload byte of it, as a write cut short by a power loss would leave it.
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(512 + 1024 + 40);
    f.put('#');
  }
  auto log = open_log(path, left);
  REQUIRE(left.size() == 2);
  CHECK(left[0].payload.rfind("first", 0) == 0);
  CHECK(left[1].payload.rfind("third", 0) == 0);
}

TEST_CASE("intake log: the ring wraps around released records and waits while it is full", "[intake]") {
  test::TempDir dir;
  const auto path = dir.path() / "intake";
  std::vector<IntakeLog::Record> left;
  auto log = open_log(path, left, 1u << 20);  // 1 MiB ring: 100 KiB records fit 10 at a time
  REQUIRE(log->start());
  const std::string big(100 * 1024, 'r');
  // 40 records through a ring of 10: each is released right after it is durable.
  for (int i = 0; i < 40; ++i) {
    auto seq = log->append(big, [](uint64_t) {});
    REQUIRE(seq);
    log->release(*seq);
  }
  CHECK(log->unreleased() == 0);

  // Fill it without releasing; the next append waits until a release makes room.
  std::vector<uint64_t> held;
  for (int i = 0; i < 10; ++i) {
    auto seq = log->append(big, [](uint64_t) {});
    REQUIRE(seq);
    held.push_back(*seq);
  }
  std::atomic<bool> done{false};
  auto waiting = std::async(std::launch::async, [&] {
    auto seq = log->append(big, [](uint64_t) {});
    done = true;
    return seq.has_value();
  });
  CHECK(waiting.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);
  CHECK_FALSE(done);
  log->release(held[1]);  // not the oldest: no room yet
  CHECK(waiting.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout);
  log->release(held[0]);  // the two oldest are free now
  CHECK(waiting.get());
}

TEST_CASE("webhook store: deliveries acknowledged before a crash are stored at the next start",
          "[webhooks][store][intake]") {
  test::TempDir dir;
  const auto db = dir.path() / "store.db";
  {
    auto s = open_sqlite_store({db, true});
    REQUIRE(s);
  }
  const int k_events = 200;
  // The child acknowledges deliveries and dies at once: no destructor, no drain of the writer.
  // The writer gathers applies for up to 20 ms, so most of them are still only in the log. It dies by
  // SIGKILL, as in a crash: _exit() runs ThreadSanitizer's exit checks, to which the store's finished
  // threads, never joined since the store is never closed, are a thread leak.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto h = open_sqlite_webhook_store({.path = db});
    if (!h) ::_exit(3);
    WebhookEndpointRecord e;
    e.id = "ep1";
    e.user_id = "u1";
    e.provider = Provider::github;
    e.created_at = e.updated_at = 1;
    if (!(*h)->insert_endpoint(e)) ::_exit(4);
    for (int n = 0; n < k_events; ++n) {
      IngestRequest r;
      r.endpoint_id = "ep1";
      r.user_id = "u1";
      r.provider = Provider::github;
      r.event_key = "github:" + std::to_string(n);
      r.alias_keys = {"alias:" + std::to_string(n)};
      r.event_type = "push";
      r.headers = "[]";
      r.body = std::string(1024, 'b');
      r.received_at = 1000 + n;
      r.event_id = "ev-" + std::to_string(n);
      r.job_id = "job-" + std::to_string(n);
      auto got = (*h)->ingest(r);
      if (!got || got->duplicate) ::_exit(5);
    }
    ::kill(::getpid(), SIGKILL);
    ::_exit(6);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  INFO("the child's status: " << status);  // an exit status is one of its failures above
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);

  auto h = open_sqlite_webhook_store({.path = db});
  REQUIRE(h);
  for (int n = 0; n < k_events; ++n) {
    INFO(n);
    auto ev = (*h)->find_event("ev-" + std::to_string(n), true);
    REQUIRE(ev);
    REQUIRE(*ev);
    CHECK((*ev)->body.size() == 1024);
    auto job = (*h)->find_job("job-" + std::to_string(n));
    REQUIRE(job);
    CHECK(*job);
  }
  auto ep = (*h)->find_endpoint("ep1");
  REQUIRE(ep);
  CHECK((*ep)->received == k_events);
  // Dedup survived the crash: the event key and the alias both answer with the stored event.
  IngestRequest again;
  again.endpoint_id = "ep1";
  again.user_id = "u1";
  again.provider = Provider::github;
  again.event_key = "other";
  again.alias_keys = {"alias:7"};
  again.event_id = "ev-x";
  again.job_id = "job-x";
  auto dup = (*h)->ingest(again);
  REQUIRE(dup);
  CHECK(dup->duplicate);
  CHECK(dup->event_id == "ev-7");
  h->reset();
  // A second restart applies nothing twice.
  auto h2 = open_sqlite_webhook_store({.path = db});
  REQUIRE(h2);
  auto ep2 = (*h2)->find_endpoint("ep1");
  REQUIRE(ep2);
  CHECK((*ep2)->received == k_events);
}

// http::PooledClient (connection_pool.hpp) over scripted connections and a fake clock: connections are
// reused per origin, bounded, closed when idle too long; one that failed is dropped and the next
// attempt gets a fresh one; a quick failure on a reused connection is sent once more on a fresh one,
// a timeout is not.
#include <alumia/net/connection_pool.hpp>

#include "fakes.hpp"

#include <catch2/catch.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace alumia;

namespace {

struct Script;

// One scripted connection: each exchange takes the next outcome of the shared script and records
// which connection served it. The clock moves by the outcome's duration (a slow answer, a timeout).
struct Step {
  int status = 200;  // 0: a transport failure
  bool keep = true;  // the connection stays open after the answer
  std::chrono::milliseconds takes{1};
  std::function<void()> during;  // runs inside the exchange: another request while this one is in flight
};

Step answer(int status = 200, bool keep = true) { return Step{status, keep, std::chrono::milliseconds(1), {}}; }
Step broken(std::chrono::milliseconds takes) { return Step{0, false, takes, {}}; }
Step nested(std::function<void()> during) { return Step{200, true, std::chrono::milliseconds(1), std::move(during)}; }

struct Script {
  test::FakeClock& clock;
  std::deque<Step> steps;
  std::vector<int> served_by;  // connection number per exchange
  int opened = 0;
  int closed = 0;
};

class ScriptedConnection final : public http::Connection {
 public:
  ScriptedConnection(Script& s, int number) : m_s(s), m_number(number) {}
  ~ScriptedConnection() override { ++m_s.closed; }
  Outcome exchange(const http::OutboundRequest&, const url::Url&) override {
    REQUIRE_FALSE(m_s.steps.empty());
    const Step step = m_s.steps.front();
    m_s.steps.pop_front();
    m_s.served_by.push_back(m_number);
    m_s.clock.advance(step.takes);
    if (step.during) step.during();
    if (step.status == 0) return {fail(ErrorCode::service_unavailable, "request to 127.0.0.1 failed: Read"), false};
    http::OutboundResponse r;
    r.status = step.status;
    return {std::move(r), step.keep};
  }

 private:
  Script& m_s;
  int m_number;
};

class ScriptedFactory final : public http::ConnectionFactory {
 public:
  explicit ScriptedFactory(Script& s) : m_s(s) {}
  std::unique_ptr<http::Connection> open(const url::Url&, const std::string&) override {
    return std::make_unique<ScriptedConnection>(m_s, ++m_s.opened);
  }

 private:
  Script& m_s;
};

http::OutboundRequest post(std::string url) {
  http::OutboundRequest r;
  r.method = "POST";
  r.url = std::move(url);
  r.timeout = std::chrono::milliseconds(1000);
  return r;
}

struct Fixture {
  test::FakeClock clock;
  Script script{clock, {}, {}, 0, 0};
  ScriptedFactory factory{script};
  http::PooledClient client{
      factory, clock, {.max_idle_per_origin = 2, .max_idle_total = 3, .idle_timeout = std::chrono::milliseconds(2000)}};
};

}  // namespace

TEST_CASE("connection pool: one connection serves a target's requests one after another", "[relay][pool]") {
  Fixture f;
  for (int i = 0; i < 5; ++i) f.script.steps.push_back(answer());
  for (int i = 0; i < 5; ++i) REQUIRE(f.client.send(post("http://127.0.0.1:8080/in"))->status == 200);
  CHECK(f.script.opened == 1);
  CHECK(f.script.served_by == std::vector<int>{1, 1, 1, 1, 1});
  CHECK(f.client.idle_count("http://127.0.0.1:8080") == 1);
  // Another path on the same origin shares the pool; another port is another origin.
  f.script.steps.push_back(answer());
  f.script.steps.push_back(answer());
  REQUIRE(f.client.send(post("http://127.0.0.1:8080/other"))->status == 200);
  REQUIRE(f.client.send(post("http://127.0.0.1:8081/in"))->status == 200);
  CHECK(f.script.served_by == std::vector<int>{1, 1, 1, 1, 1, 1, 2});
  CHECK(f.client.idle_total() == 2);
}

TEST_CASE("connection pool: an error status keeps the connection, a failed one is never reused", "[relay][pool]") {
  Fixture f;
  f.script.steps = {answer(500), answer(), broken(std::chrono::milliseconds(1000)), answer()};
  CHECK(f.client.send(post("http://127.0.0.1:8080/in"))->status == 500);
  CHECK(f.client.send(post("http://127.0.0.1:8080/in"))->status == 200);
  // A timeout (the whole request timeout) on the reused connection: an error, not resent.
  auto timed_out = f.client.send(post("http://127.0.0.1:8080/in"));
  REQUIRE_FALSE(timed_out);
  CHECK(timed_out.error().code == ErrorCode::service_unavailable);
  CHECK(f.script.closed == 1);  // the failed connection is closed at once
  CHECK(f.client.idle_count("http://127.0.0.1:8080") == 0);
  // The retry of the job starts on a fresh connection.
  CHECK(f.client.send(post("http://127.0.0.1:8080/in"))->status == 200);
  CHECK(f.script.served_by == std::vector<int>{1, 1, 1, 2});
  CHECK(f.script.steps.empty());
}

TEST_CASE("connection pool: a quick failure on a reused connection is sent once more on a fresh one", "[relay][pool]") {
  Fixture f;
  // The server closed the idle connection: the write fails at once; the request goes out again.
  f.script.steps = {answer(), broken(std::chrono::milliseconds(1)), answer(202)};
  CHECK(f.client.send(post("http://127.0.0.1:8080/in"))->status == 200);
  CHECK(f.client.send(post("http://127.0.0.1:8080/in"))->status == 202);
  CHECK(f.script.served_by == std::vector<int>{1, 1, 2});
  CHECK(f.script.closed == 1);
  // On a fresh connection a failure is final: no second try.
  Fixture g;
  g.script.steps = {broken(std::chrono::milliseconds(1))};
  CHECK_FALSE(g.client.send(post("http://127.0.0.1:8080/in")));
  CHECK(g.script.served_by == std::vector<int>{1});
  CHECK(g.client.idle_total() == 0);
}

TEST_CASE("connection pool: idle connections close after the timeout and the pool is bounded", "[relay][pool]") {
  Fixture f;
  f.script.steps.push_back(answer());
  REQUIRE(f.client.send(post("http://127.0.0.1:8080/in")));
  f.clock.advance(std::chrono::milliseconds(1999));
  f.client.sweep();
  CHECK(f.client.idle_count("http://127.0.0.1:8080") == 1);
  f.clock.advance(std::chrono::milliseconds(1));
  f.client.sweep();
  CHECK(f.client.idle_count("http://127.0.0.1:8080") == 0);
  CHECK(f.script.closed == 1);
  // The next request opens a new one.
  f.script.steps.push_back(answer());
  REQUIRE(f.client.send(post("http://127.0.0.1:8080/in")));
  CHECK(f.script.opened == 2);

  // "Connection: close" from the server: not kept.
  f.script.steps.push_back(answer(200, false));
  REQUIRE(f.client.send(post("http://127.0.0.1:8080/in")));
  CHECK(f.client.idle_count("http://127.0.0.1:8080") == 0);
}

TEST_CASE("connection pool: at most max_idle_per_origin and max_idle_total idle, the oldest closed first",
          "[relay][pool]") {
  Fixture f;
  // Three requests to one origin in flight at once (nested: each starts the next while it is in
  // flight) need three connections; two stay idle afterwards (max_idle_per_origin), one is closed.
  const auto url = "http://127.0.0.1:8080/in";
  f.script.steps = {nested([&] { REQUIRE(f.client.send(post(url))); }),
                    nested([&] { REQUIRE(f.client.send(post(url))); }), answer()};
  REQUIRE(f.client.send(post(url)));
  CHECK(f.script.opened == 3);
  CHECK(f.client.idle_count("http://127.0.0.1:8080") == 2);
  CHECK(f.script.closed == 1);

  // Over all origins at most max_idle_total (3): a fourth idle connection closes the one idle longest.
  f.clock.advance(std::chrono::milliseconds(10));
  f.script.steps = {answer(), answer()};
  REQUIRE(f.client.send(post("http://127.0.0.1:1/a")));
  CHECK(f.client.idle_total() == 3);
  f.clock.advance(std::chrono::milliseconds(10));
  REQUIRE(f.client.send(post("http://127.0.0.1:2/a")));
  CHECK(f.client.idle_total() == 3);
  CHECK(f.client.idle_count("http://127.0.0.1:8080") == 1);
  CHECK(f.client.idle_count("http://127.0.0.1:1") == 1);
  CHECK(f.client.idle_count("http://127.0.0.1:2") == 1);
  CHECK(f.script.closed == 2);
}

TEST_CASE("connection pool: the outbound URL policy still applies", "[relay][pool]") {
  Fixture f;
  auto refused = f.client.send(post("http://example.com/in"));  // plain http only to loopback literals
  REQUIRE_FALSE(refused);
  CHECK(f.script.opened == 0);
}

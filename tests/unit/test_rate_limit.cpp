// Floods (issue 13 item 3): the token bucket behind each endpoint's rate limit, and the tally that
// sums the receiver's refusals in memory and hands them to the store at most once an interval per
// endpoint, so that refused requests cost no disk write each. Time is a FakeClock.
#include "fakes.hpp"
#include "process.hpp"
#include "webhook_store_fixture.hpp"

#include <alumia/base/token_bucket.hpp>
#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>
#include <alumia/webhooks/refusal_tally.hpp>

#include <catch2/catch.hpp>

#include <chrono>

using namespace alumia;
using namespace std::chrono_literals;

TEST_CASE("token bucket: a full burst, then one token per 1/rate, never more than the burst", "[webhooks][rate]") {
  test::FakeClock clock;
  TokenBucket bucket(10, 3);  // 10 a second: a token every 100 ms
  for (int i = 0; i < 3; ++i) CHECK(bucket.take(clock.now_ms()) == 0);
  CHECK(bucket.take(clock.now_ms()) == 100);  // empty: the next token in 100 ms, nothing taken
  clock.advance(40ms);
  CHECK(bucket.take(clock.now_ms()) == 60);
  clock.advance(60ms);
  CHECK(bucket.take(clock.now_ms()) == 0);
  CHECK(bucket.take(clock.now_ms()) == 100);
  // A long idle time refills up to the burst, not beyond.
  clock.advance(std::chrono::hours(24 * 365));
  for (int i = 0; i < 3; ++i) CHECK(bucket.take(clock.now_ms()) == 0);
  CHECK(bucket.take(clock.now_ms()) > 0);
}

TEST_CASE("token bucket: rates that do not divide a second, slow rates, huge rates", "[webhooks][rate]") {
  test::FakeClock clock;
  SECTION("3 a second: the wait rounds up to whole milliseconds") {
    TokenBucket bucket(3, 1);
    CHECK(bucket.take(clock.now_ms()) == 0);
    CHECK(bucket.take(clock.now_ms()) == 334);
    clock.advance(333ms);
    CHECK(bucket.take(clock.now_ms()) == 1);
    clock.advance(1ms);
    CHECK(bucket.take(clock.now_ms()) == 0);
  }
  SECTION("1 a second: a second to wait") {
    TokenBucket bucket(1, 1);
    CHECK(bucket.take(clock.now_ms()) == 0);
    CHECK(bucket.take(clock.now_ms()) == 1000);
  }
  SECTION("the largest rate and burst: exact, no overflow after a long idle time") {
    TokenBucket bucket(1'000'000, 1'000'000);
    int taken = 0;
    while (bucket.take(clock.now_ms()) == 0) ++taken;
    CHECK(taken == 1'000'000);
    clock.advance(1ms);  // 1,000 tokens a millisecond
    taken = 0;
    while (bucket.take(clock.now_ms()) == 0) ++taken;
    CHECK(taken == 1'000);
    clock.advance(std::chrono::hours(24 * 365 * 100));
    taken = 0;
    while (bucket.take(clock.now_ms()) == 0) ++taken;
    CHECK(taken == 1'000'000);
  }
  SECTION("values below 1 count as 1") {
    TokenBucket bucket(0, 0);
    CHECK(bucket.per_second() == 1);
    CHECK(bucket.burst() == 1);
    CHECK(bucket.take(clock.now_ms()) == 0);
    CHECK(bucket.take(clock.now_ms()) == 1000);
  }
}

TEST_CASE("token bucket: a clock that steps back refills nothing, and is followed from there", "[webhooks][rate]") {
  test::FakeClock clock;
  TokenBucket bucket(10, 1);
  CHECK(bucket.take(clock.now_ms()) == 0);
  clock.advance(-10s);
  CHECK(bucket.take(clock.now_ms()) == 100);  // no refill for the step back
  clock.advance(100ms);                       // measured from the new time, not the old one
  CHECK(bucket.take(clock.now_ms()) == 0);
}

namespace {

// The real SQLite webhook store with two endpoints, so the tally's hand-overs are real writer operations
// and the store's write_transactions() counts what they cost.
struct Store2 : test::WebhookStoreFixture {
  Store2() : WebhookStoreFixture({"ep1", "ep2"}) {}
  // The endpoint as a read sees it (a read waits for refusals handed over before it).
  WebhookEndpointRecord read(const std::string& id) {
    auto e = hooks->find_endpoint(id);
    REQUIRE(e);
    REQUIRE(*e);
    return **e;
  }
};

EndpointError error_at(int64_t at, std::string message = "X-Hub-Signature-256 does not match") {
  return EndpointError{"UNAUTHORIZED", std::move(message), at};
}

}  // namespace

TEST_CASE("refusal tally: a flood within one interval is one hand-over, and the counts are exact after flush",
          "[webhooks][rate]") {
  Store2 s;
  test::FakeClock clock;
  RefusalTally tally(*s.hooks, clock, 1s);
  // The first refusal of an endpoint goes over at once (its owner sees the problem start).
  tally.add("ep1", EndpointCounter::verification_failure, error_at(clock.now_ms()));
  CHECK(s.read("ep1").verification_failures == 1);
  const uint64_t before = s.hooks->write_transactions();
  // 5,000 more within the second: summed in memory, nothing reaches the store.
  for (int i = 0; i < 5000; ++i)
    tally.add("ep1", EndpointCounter::verification_failure, error_at(clock.now_ms() + i % 7, "n" + std::to_string(i)));
  clock.advance(999ms);
  tally.add("ep1", EndpointCounter::rate_limited, std::nullopt);
  CHECK(s.read("ep1").verification_failures == 1);
  CHECK(s.hooks->write_transactions() == before);
  // A second after the last hand-over, the next refusal takes everything over in one operation.
  clock.advance(1ms);
  tally.add("ep1", EndpointCounter::rejected, std::nullopt);
  auto e = s.read("ep1");
  CHECK(e.verification_failures == 5001);
  CHECK(e.rate_limited == 1);
  CHECK(e.rejected == 1);
  REQUIRE(e.last_error);
  CHECK(e.last_error->at == clock.now_ms() - 1000 + 6);  // the newest `at` of the flood
  CHECK(s.hooks->write_transactions() - before <= 2);    // the hand-over (and the read's barrier)
  // flush() hands over what is pending without waiting for the interval.
  tally.add("ep1", EndpointCounter::rejected, std::nullopt);
  CHECK(s.read("ep1").rejected == 1);
  tally.flush("ep1");
  CHECK(s.read("ep1").rejected == 2);
}

TEST_CASE("refusal tally: the interval is per endpoint, and the destructor hands over the rest", "[webhooks][rate]") {
  Store2 s;
  test::FakeClock clock;
  {
    RefusalTally tally(*s.hooks, clock, 1s);
    tally.add("ep1", EndpointCounter::verification_failure, error_at(clock.now_ms()));
    tally.add("ep1", EndpointCounter::verification_failure, error_at(clock.now_ms()));
    // ep2's first refusal is not held back by ep1's recent hand-over.
    tally.add("ep2", EndpointCounter::rate_limited, std::nullopt);
    CHECK(s.read("ep1").verification_failures == 1);
    CHECK(s.read("ep2").rate_limited == 1);
    tally.add("ep2", EndpointCounter::rate_limited, std::nullopt);
    CHECK(s.read("ep2").rate_limited == 1);
    tally.flush();
    CHECK(s.read("ep1").verification_failures == 2);
    CHECK(s.read("ep2").rate_limited == 2);
    tally.add("ep2", EndpointCounter::rejected, std::nullopt);
  }
  CHECK(s.read("ep2").rejected == 1);
  CHECK_FALSE(s.read("ep2").last_error);  // no error was given for ep2
}

TEST_CASE("refusal tally: a clock that steps back hands over at once", "[webhooks][rate]") {
  Store2 s;
  test::FakeClock clock;
  RefusalTally tally(*s.hooks, clock, 1s);
  tally.add("ep1", EndpointCounter::rejected, std::nullopt);
  tally.add("ep1", EndpointCounter::rejected, std::nullopt);
  CHECK(s.read("ep1").rejected == 1);
  clock.advance(-5s);
  tally.add("ep1", EndpointCounter::rejected, std::nullopt);
  CHECK(s.read("ep1").rejected == 3);
}

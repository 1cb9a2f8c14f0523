// Failed authentication per client (issue 16 item 4, common/auth/auth_failures.hpp): the allowance,
// its refill, loopback addresses as one client, the bounded table. Time is the caller's.
#include <alumia/auth/auth_failures.hpp>

#include <catch2/catch.hpp>

using alumia::AuthFailureLimiter;
using alumia::AuthFailurePolicy;

TEST_CASE("auth failures: a burst of refusals, then blocked until one refills", "[auth-failures]") {
  AuthFailureLimiter limiter(AuthFailurePolicy{.burst = 3, .per_minute = 60, .delay_ms = 0});
  const int64_t t0 = 1'000'000;
  CHECK(limiter.blocked_for("203.0.113.7", t0) == 0);  // a stranger is never blocked
  for (int i = 0; i < 3; ++i) {
    CHECK(limiter.blocked_for("203.0.113.7", t0) == 0);
    limiter.record_failure("203.0.113.7", t0);
  }
  CHECK(limiter.blocked_for("203.0.113.7", t0) == 1000);  // one a second
  CHECK(limiter.blocked_for("203.0.113.7", t0 + 400) == 600);
  CHECK(limiter.blocked_for("198.51.100.1", t0) == 0);  // another client is not
  // Asked every millisecond, the allowance still refills (the time not yet worth a token is kept).
  for (int64_t t = t0 + 401; t < t0 + 1000; ++t) CHECK(limiter.blocked_for("203.0.113.7", t) > 0);
  CHECK(limiter.blocked_for("203.0.113.7", t0 + 1000) == 0);
  limiter.record_failure("203.0.113.7", t0 + 1000);
  CHECK(limiter.blocked_for("203.0.113.7", t0 + 1000) == 1000);
  // Never more than the burst, however long it waits.
  const int64_t later = t0 + 3'600'000;
  for (int i = 0; i < 3; ++i) limiter.record_failure("203.0.113.7", later);
  CHECK(limiter.blocked_for("203.0.113.7", later) > 0);
}

TEST_CASE("auth failures: a clock that steps back refills nothing", "[auth-failures]") {
  AuthFailureLimiter limiter(AuthFailurePolicy{.burst = 1, .per_minute = 60, .delay_ms = 0});
  limiter.record_failure("203.0.113.7", 10'000);
  CHECK(limiter.blocked_for("203.0.113.7", 5'000) == 1000);
  CHECK(limiter.blocked_for("203.0.113.7", 5'999) == 1);
  CHECK(limiter.blocked_for("203.0.113.7", 6'000) == 0);
}

TEST_CASE("auth failures: every loopback address is one client", "[auth-failures]") {
  CHECK(AuthFailureLimiter::client_key("127.0.0.1") == "loopback");
  CHECK(AuthFailureLimiter::client_key("127.9.8.7") == "loopback");
  CHECK(AuthFailureLimiter::client_key("::1") == "loopback");
  CHECK(AuthFailureLimiter::client_key("::ffff:127.0.0.2") == "loopback");
  CHECK(AuthFailureLimiter::client_key("128.0.0.1") == "128.0.0.1");
  AuthFailureLimiter limiter(AuthFailurePolicy{.burst = 2, .per_minute = 1, .delay_ms = 0});
  limiter.record_failure("127.0.0.1", 0);
  limiter.record_failure("127.0.0.2", 0);
  CHECK(limiter.blocked_for("127.0.0.3", 0) > 0);
  CHECK(limiter.blocked_for("::1", 0) > 0);
}

TEST_CASE("auth failures: the table of clients is bounded", "[auth-failures]") {
  AuthFailureLimiter limiter(AuthFailurePolicy{.burst = 2, .per_minute = 60, .delay_ms = 0, .max_clients = 8});
  for (int i = 0; i < 100; ++i) limiter.record_failure("198.51.100." + std::to_string(i), i);
  CHECK(limiter.clients() <= 8);
  // The newest are kept (the oldest go first): the last client's failure still counts.
  limiter.record_failure("198.51.100.99", 100);
  CHECK(limiter.blocked_for("198.51.100.99", 100) > 0);
  // Clients whose allowance refilled are dropped before anyone who is still limited.
  AuthFailureLimiter refill(AuthFailurePolicy{.burst = 1, .per_minute = 60, .delay_ms = 0, .max_clients = 2});
  refill.record_failure("203.0.113.1", 0);      // refills at 1000
  refill.record_failure("203.0.113.2", 1'500);  // limited until 2500
  refill.record_failure("203.0.113.3", 2'000);  // the table is full: .1 (refilled) goes, not .2
  CHECK(refill.clients() == 2);
  CHECK(refill.blocked_for("203.0.113.2", 2'000) > 0);
  CHECK(refill.blocked_for("203.0.113.3", 2'000) > 0);
}

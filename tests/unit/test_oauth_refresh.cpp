// When a token is refreshed: the worker's margin (OAUTH.md §3.4) and a caller's (also SPEC §6).
#include <alumia/oauth.hpp>

#include <catch2/catch.hpp>

#include <cstdint>

namespace {

using alumia::Connection;
using alumia::oauth::refresh_before_use;
using alumia::oauth::refresh_due;

constexpr int64_t k_s = 1000;
constexpr int64_t k_min = 60 * k_s;
constexpr int64_t k_t0 = 1'800'000'000'000;  // when the token was issued (ms)

Connection issued(int64_t lifetime_ms) {
  Connection c;
  c.updated_at = k_t0;
  c.expires_at = k_t0 + lifetime_ms;
  return c;
}

}  // namespace

TEST_CASE("refresh margin: 10 minutes before expiry for long-lived tokens", "[oauth]") {
  const auto c = issued(60 * k_min);
  CHECK_FALSE(refresh_due(c, k_t0));
  CHECK_FALSE(refresh_due(c, k_t0 + 50 * k_min - k_s));
  CHECK(refresh_due(c, k_t0 + 50 * k_min + k_s));
  CHECK(refresh_due(c, k_t0 + 61 * k_min));  // already expired
  // A caller refreshes from the same point, not only in the last minute.
  CHECK_FALSE(refresh_before_use(c, k_t0 + 49 * k_min));
  CHECK(refresh_before_use(c, k_t0 + 51 * k_min));
}

TEST_CASE("refresh margin: half the lifetime under 20 minutes, counted from the last refresh", "[oauth]") {
  auto c = issued(4 * k_min);
  CHECK_FALSE(refresh_due(c, k_t0 + 2 * k_min - k_s));
  CHECK(refresh_due(c, k_t0 + 2 * k_min));
  c.last_refreshed_at = k_t0 + 2 * k_min;  // refreshed: a new 4-minute token
  c.expires_at = k_t0 + 6 * k_min;
  c.updated_at = k_t0 + 2 * k_min;
  CHECK_FALSE(refresh_due(c, k_t0 + 3 * k_min));
  CHECK(refresh_due(c, k_t0 + 4 * k_min));
  // 19 minutes is still "short"; 20 minutes uses the 10-minute margin (the same point).
  CHECK_FALSE(refresh_due(issued(19 * k_min), k_t0 + 9 * k_min));
  CHECK(refresh_due(issued(19 * k_min), k_t0 + 9 * k_min + 30 * k_s));
  CHECK(refresh_due(issued(20 * k_min), k_t0 + 10 * k_min + k_s));
}

TEST_CASE("a caller refreshes a token that expires within a minute, even before half its life", "[oauth]") {
  const auto c = issued(60 * k_s);  // a 60-s token: half-life at 30 s, but SPEC §6's minute covers it all
  CHECK_FALSE(refresh_due(c, k_t0 + 10 * k_s));
  CHECK(refresh_before_use(c, k_t0 + 10 * k_s));
  const auto d = issued(3 * k_min);
  CHECK_FALSE(refresh_before_use(d, k_t0 + 60 * k_s));  // 2 minutes left, before half its life
  CHECK(refresh_before_use(d, k_t0 + 90 * k_s));        // half its life
}

TEST_CASE("no expiry: never refreshed by the clock", "[oauth]") {
  Connection c;
  c.updated_at = k_t0;
  CHECK_FALSE(refresh_due(c, k_t0 + 365LL * 24 * 60 * k_min));
  CHECK_FALSE(refresh_before_use(c, k_t0 + 365LL * 24 * 60 * k_min));
}

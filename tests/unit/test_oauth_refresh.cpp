// When a token is refreshed: one margin (OAUTH.md §3.4, SPEC §6) for the worker and for token reads.
#include <alumia/oauth/oauth.hpp>

#include <catch2/catch.hpp>

#include <cstdint>

namespace {

using alumia::Connection;
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

TEST_CASE("a token just refreshed is not due again, however short its life", "[oauth]") {
  // A 60-s token (the default of many test servers): due at half its life, not on every read.
  auto c = issued(60 * k_s);
  CHECK_FALSE(refresh_due(c, k_t0 + 10 * k_s));
  CHECK_FALSE(refresh_due(c, k_t0 + 29 * k_s));
  CHECK(refresh_due(c, k_t0 + 30 * k_s));
  c.last_refreshed_at = k_t0 + 31 * k_s;  // refreshed: a new 60-s token
  c.expires_at = k_t0 + 91 * k_s;
  CHECK_FALSE(refresh_due(c, k_t0 + 31 * k_s));
  CHECK_FALSE(refresh_due(c, k_t0 + 60 * k_s));
  CHECK(refresh_due(c, k_t0 + 61 * k_s));
}

TEST_CASE("no expiry: never refreshed by the clock", "[oauth]") {
  Connection c;
  c.updated_at = k_t0;
  CHECK_FALSE(refresh_due(c, k_t0 + 365LL * 24 * 60 * k_min));
}

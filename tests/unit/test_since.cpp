// `--since` / `?since=` (WebhookService::parse_since): unix milliseconds, a relative age
// (<n>s|m|h|d before now) or an RFC 3339 UTC time; anything else is refused (nullopt).
#include <alumia/webhooks/webhook_service.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>

namespace {
constexpr int64_t k_now = 1'800'000'000'000;  // 2027-01-15T08:00:00Z
std::optional<int64_t> since(const char* text) { return alumia::WebhookService::parse_since(text, k_now); }
}  // namespace

TEST_CASE("since: unix milliseconds", "[since]") {
  CHECK(since("0") == 0);
  CHECK(since("1700000000000") == 1'700'000'000'000);
  CHECK_FALSE(since("99999999999999999999"));  // overflows int64
}

TEST_CASE("since: a relative age before now", "[since]") {
  CHECK(since("30s") == k_now - 30'000);
  CHECK(since("15m") == k_now - 15 * 60'000);
  CHECK(since("2h") == k_now - 2 * 3'600'000);
  CHECK(since("7d") == k_now - 7 * 86'400'000LL);
  CHECK(since("0s") == k_now);
  CHECK(since("99999d") == k_now - 99999 * 86'400'000LL);
  CHECK_FALSE(since("100000d"));  // over the bound
  for (const char* bad : {"5w", "5y", "s", "-5m", "5 m", "5M", "1.5h", "h5"}) {
    INFO(bad);
    CHECK_FALSE(since(bad));
  }
}

TEST_CASE("since: RFC 3339 in UTC", "[since]") {
  CHECK(since("2027-01-15T08:00:00Z") == k_now);
  CHECK(since("2027-01-15T08:00:00z") == k_now);
  CHECK(since("2027-01-15T08:00:00.5Z") == k_now + 500);
  CHECK(since("2027-01-15T08:00:00.123Z") == k_now + 123);
  CHECK(since("2027-01-15T08:00:00.123456Z") == k_now + 123);  // beyond milliseconds: cut
  CHECK(since("1970-01-01T00:00:00Z") == 0);
  for (const char* bad : {"2027-01-15T08:00:00", "2027-01-15T08:00:00+01:00", "2027-01-15 08:00:00Z", "2027-01-15",
                          "2027-01-15T08:00:00.Z", "2027-01-15T08:00Z", "yesterday", ""}) {
    INFO(bad);
    CHECK_FALSE(since(bad));
  }
}

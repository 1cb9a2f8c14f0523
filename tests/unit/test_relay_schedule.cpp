// The relay's fixed parts (SPEC §7): the Alumia-Signature value, pinned against HMAC-SHA256 values
// computed independently (`printf %s "$t.$body" | openssl dgst -sha256 -hmac "$secret"`), and the
// backoff schedule. The jitter and the dead state are decided inside RelayWorker::deliver (no function
// of their own yet); test_relay_worker.cpp drives them through the worker.
#include <alumia/webhooks/relay_worker.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using std::chrono::milliseconds;

TEST_CASE("relay signature: t=<unix>,v1=<hex HMAC-SHA256 of \"t.body\">, pinned", "[relay]") {
  CHECK(alumia::relay_signature("whsec_relay_test_secret", 1767225600, R"({"id":"evt_1","provider":"github"})") ==
        "t=1767225600,v1=67f22c499b2797810791034638e1d4d1acad86f8709a339cc8a1847f17aeccc4");
  // The empty body still signs "t." (the separator is part of the signed text).
  CHECK(alumia::relay_signature("k", 0, "") ==
        "t=0,v1=6b4a4b8b3c40f1e8f53a3d36682e5f99f7ad2ac1df1c93dfe336f329167641e7");
  // Any change of secret, time or body changes v1.
  const std::string base = alumia::relay_signature("s", 100, "b");
  CHECK(alumia::relay_signature("t", 100, "b") != base);
  CHECK(alumia::relay_signature("s", 101, "b").substr(10) != base.substr(8));
  CHECK(alumia::relay_signature("s", 100, "c") != base);
}

TEST_CASE("relay backoff: 5s, 30s, 2m, 10m, 30m, 1h, 3h, 6h, then dead", "[relay]") {
  const std::vector<milliseconds> expected{5s, 30s, 2min, 10min, 30min, 1h, 3h, 6h};
  CHECK(alumia::default_relay_backoff() == expected);
}

TEST_CASE("relay backoff: the test knob's list of milliseconds", "[relay]") {
  CHECK(alumia::parse_backoff("50,100,200") == std::optional(std::vector<milliseconds>{50ms, 100ms, 200ms}));
  CHECK(alumia::parse_backoff("0") == std::optional(std::vector<milliseconds>{0ms}));
  // Today: a trailing comma is ignored (the loop ends when the text does).
  CHECK(alumia::parse_backoff("50,") == std::optional(std::vector<milliseconds>{50ms}));
  for (const char* bad : {"", ",", ",50", "50,,100", "-1", "5s", "1.5", " 50", "50 ", "x"}) {
    INFO(bad);
    CHECK_FALSE(alumia::parse_backoff(bad).has_value());
  }
}

#pragma once
// The seams of common/ (base/clock.hpp, net/http.hpp) filled for tests: a clock that moves only when
// told, randomness that repeats from a seed, and an outbound HTTP client that answers from a script
// and records what was sent. Unit tests use these instead of one-off fakes.
#include <alumia/base/clock.hpp>
#include <alumia/net/http.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace alumia::test {

// Unix time in milliseconds, moved by the test only. Safe to read from other threads.
class FakeClock final : public Clock {
 public:
  static constexpr int64_t k_default_start_ms = 1'800'000'000'000;  // 2027-01-15T08:00:00Z
  explicit FakeClock(int64_t start_ms = k_default_start_ms) : m_ms(start_ms) {}
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(m_ms.load()));
  }
  void advance(std::chrono::milliseconds by) { m_ms += by.count(); }
  void set_ms(int64_t unix_ms) { m_ms = unix_ms; }

 private:
  std::atomic<int64_t> m_ms;
};

// splitmix64 from a seed: the same seed gives the same bytes; tests never touch RAND_bytes.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(uint64_t seed = 1) : m_state(seed) {}
  void fill(unsigned char* out, std::size_t n) override;

 private:
  std::mutex m_mutex;
  uint64_t m_state;
  uint64_t m_word = 0;
  int m_left = 0;
};

// An outbound http::Client that answers from a script. Each expectation names the method and URL it
// wants (in order) and the reply to give; a request that does not match the next expectation, or comes
// when the script is used up, fails as the network would (SERVICE_UNAVAILABLE) and is recorded as
// unexpected. Every request is kept in sent(). With no script at all it is "no network".
class ScriptedHttp final : public http::Client {
 public:
  struct Expectation {
    std::string method;  // empty: any
    std::string url;     // exact URL; empty: any
    Result<http::OutboundResponse> reply;
  };

  // Queues a reply for the next request with this method and URL.
  ScriptedHttp& expect(std::string method, std::string url, Result<http::OutboundResponse> reply);
  ScriptedHttp& expect(std::string method, std::string url, int status, std::string body, http::Headers headers = {});
  // Queues a reply for the next request, whatever it is.
  ScriptedHttp& reply(Result<http::OutboundResponse> reply);

  Result<http::OutboundResponse> send(const http::OutboundRequest& request) override;

  std::vector<http::OutboundRequest> sent() const;
  std::size_t sent_count() const;
  std::vector<std::string> sent_urls() const;
  // Requests that matched no expectation (each got SERVICE_UNAVAILABLE).
  std::size_t unexpected() const;
  // Expectations not used yet.
  std::size_t pending() const;

 private:
  mutable std::mutex m_mutex;
  std::deque<Expectation> m_script;
  std::vector<http::OutboundRequest> m_sent;
  std::size_t m_unexpected = 0;
};

http::OutboundResponse http_reply(int status, std::string body, http::Headers headers = {});

}  // namespace alumia::test

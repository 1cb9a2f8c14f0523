#pragma once
// A token bucket: `burst` tokens at most, refilled at `per_second`; each request takes one. The
// receiver keeps one per webhook endpoint (SPEC §7: over the limit, 429 with Retry-After). Time is
// the caller's (Clock::now_ms), so tests drive it with a fake clock; a clock that steps back refills
// nothing and is followed from there. Thread-safe: one small lock per bucket, held for a few
// arithmetic operations, so that buckets of different endpoints never wait for each other.
#include <cstdint>
#include <mutex>
#include <optional>

namespace alumia {

class TokenBucket {
 public:
  // Starts full (values below 1 count as 1).
  TokenBucket(int64_t per_second, int64_t burst);
  TokenBucket(const TokenBucket&) = delete;
  TokenBucket& operator=(const TokenBucket&) = delete;

  // Takes one token at `now_ms`: 0 when it was there, else the milliseconds until one will be
  // (at least 1); nothing is taken then.
  int64_t take(int64_t now_ms);

  int64_t per_second() const { return m_per_second; }
  int64_t burst() const { return m_burst; }

 private:
  const int64_t m_per_second;
  const int64_t m_burst;
  std::mutex m_mutex;
  // In thousandths of a token: a refill of per_second per 1000 ms is then exact in integers.
  int64_t m_milli_tokens;
  std::optional<int64_t> m_last_ms;  // the last take(); none yet: full
};

}  // namespace alumia

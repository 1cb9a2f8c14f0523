// The token bucket (alumia/base/token_bucket.hpp).
#include <alumia/base/token_bucket.hpp>

#include <algorithm>

namespace alumia {
namespace {
constexpr int64_t k_milli = 1000;
}

TokenBucket::TokenBucket(int64_t per_second, int64_t burst)
    : m_per_second(std::max<int64_t>(per_second, 1)),
      m_burst(std::max<int64_t>(burst, 1)),
      m_milli_tokens(m_burst * k_milli) {}

int64_t TokenBucket::take(int64_t now_ms) {
  std::lock_guard lock(m_mutex);
  const int64_t full = m_burst * k_milli;
  if (m_last_ms && now_ms > *m_last_ms) {
    // per_second tokens a second is per_second thousandths of a token a millisecond. Capped before
    // multiplying so that a long idle gap cannot overflow.
    const int64_t elapsed = std::min(now_ms - *m_last_ms, full / m_per_second + 1);
    m_milli_tokens = std::min(full, m_milli_tokens + elapsed * m_per_second);
  }
  m_last_ms = now_ms;  // also when the clock stepped back: refill from here on
  if (m_milli_tokens >= k_milli) {
    m_milli_tokens -= k_milli;
    return 0;
  }
  const int64_t missing = k_milli - m_milli_tokens;
  return std::max<int64_t>(1, (missing + m_per_second - 1) / m_per_second);
}

}  // namespace alumia

// Failed authentication per client: auth_failures.hpp.
#include <alumia/auth/auth_failures.hpp>

#include <algorithm>
#include <iterator>

namespace alumia {

std::string AuthFailureLimiter::client_key(std::string_view address) {
  std::string_view a = address;
  if (a.starts_with("::ffff:")) a.remove_prefix(7);
  if (a.starts_with("127.") || a == "::1" || a == "[::1]" || a == "localhost") return "loopback";
  return std::string(address);
}

void AuthFailureLimiter::refill(Entry& e, int64_t now_ms) const {
  const int64_t full = std::max<int64_t>(m_policy.burst, 1) * 1000;
  if (now_ms < e.last_ms) {  // a clock that steps back refills nothing and is followed from there
    e.last_ms = now_ms;
    return;
  }
  if (m_policy.per_minute <= 0) return;
  // per_minute tokens per 60,000 ms = per_minute milli-tokens per 60 ms; the time not yet worth a
  // milli-token stays counted (last_ms advances only by what was added).
  const int64_t added = (now_ms - e.last_ms) * m_policy.per_minute / 60;
  if (added == 0) return;
  e.milli_tokens += added;
  if (e.milli_tokens >= full) {
    e.milli_tokens = full;
    e.last_ms = now_ms;
  } else {
    e.last_ms += added * 60 / m_policy.per_minute;
  }
}

int64_t AuthFailureLimiter::blocked_for(std::string_view client, int64_t now_ms) {
  const std::lock_guard lock(m_mutex);
  const auto it = m_clients.find(client_key(client));
  if (it == m_clients.end()) return 0;
  refill(it->second, now_ms);
  if (it->second.milli_tokens >= 1000) return 0;
  if (m_policy.per_minute <= 0) return 60'000;
  const int64_t missing = 1000 - it->second.milli_tokens;
  return std::max<int64_t>(1, (missing * 60 + m_policy.per_minute - 1) / m_policy.per_minute);
}

void AuthFailureLimiter::record_failure(std::string_view client, int64_t now_ms) {
  const std::lock_guard lock(m_mutex);
  const std::string key = client_key(client);
  auto it = m_clients.find(key);
  if (it == m_clients.end()) {
    make_room(now_ms);
    it = m_clients.emplace(key, Entry{std::max<int64_t>(m_policy.burst, 1) * 1000, now_ms}).first;
  }
  refill(it->second, now_ms);
  it->second.milli_tokens = std::max<int64_t>(0, it->second.milli_tokens - 1000);
}

void AuthFailureLimiter::make_room(int64_t now_ms) {
  if (m_clients.size() < std::max<std::size_t>(m_policy.max_clients, 1)) return;
  const int64_t full = std::max<int64_t>(m_policy.burst, 1) * 1000;
  for (auto it = m_clients.begin(); it != m_clients.end();) {
    refill(it->second, now_ms);
    it = it->second.milli_tokens >= full ? m_clients.erase(it) : std::next(it);
  }
  while (m_clients.size() >= std::max<std::size_t>(m_policy.max_clients, 1)) {
    const auto oldest = std::min_element(m_clients.begin(), m_clients.end(), [](const auto& a, const auto& b) {
      return a.second.last_ms < b.second.last_ms;
    });
    m_clients.erase(oldest);
  }
}

std::size_t AuthFailureLimiter::clients() const {
  const std::lock_guard lock(m_mutex);
  return m_clients.size();
}

}  // namespace alumia

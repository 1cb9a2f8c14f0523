#include <alumia/auth/admin_sessions.hpp>
#include <alumia/crypto/crypto.hpp>

#include <algorithm>

namespace alumia {

AdminSessions::AdminSessions(const Clock& clock, Random& random, Options options)
    : m_clock(clock), m_random(random), m_options(options) {}

// Drops the expired entries, then, while the book is full, the one that expires first.
template <class Map>
void AdminSessions::make_room(Map& book, std::size_t cap, int64_t now) {
  std::erase_if(book, [&](const auto& kv) { return kv.second.expires_at_ms <= now; });
  while (!book.empty() && book.size() >= cap) {
    auto first = std::min_element(book.begin(), book.end(), [](const auto& a, const auto& b) {
      return a.second.expires_at_ms < b.second.expires_at_ms;
    });
    book.erase(first);
  }
}

std::string AdminSessions::issue_link(std::string_view user_id, unsigned scopes) {
  std::string token = m_random.base64url(32);
  const int64_t now = m_clock.now_ms();
  std::lock_guard lock(m_mutex);
  make_room(m_links, m_options.max_links, now);
  m_links[crypto::sha256(token)] = Link{std::string(user_id), scopes, now + m_options.link_ttl_ms};
  return token;
}

std::optional<AdminLogin> AdminSessions::redeem_link(std::string_view token) {
  const int64_t now = m_clock.now_ms();
  std::lock_guard lock(m_mutex);
  auto it = m_links.find(crypto::sha256(token));
  if (it == m_links.end()) return std::nullopt;
  const Link link = it->second;
  m_links.erase(it);  // single use, even when late
  if (link.expires_at_ms <= now) return std::nullopt;
  make_room(m_sessions, m_options.max_sessions, now);
  AdminLogin login{m_random.base64url(32),
                   AdminSession{link.user_id, link.scopes, m_random.base64url(32), now + m_options.session_ttl_ms}};
  m_sessions[crypto::sha256(login.session_id)] = login.session;
  return login;
}

std::optional<AdminSession> AdminSessions::find(std::string_view session_id) {
  if (session_id.empty()) return std::nullopt;
  const int64_t now = m_clock.now_ms();
  std::lock_guard lock(m_mutex);
  auto it = m_sessions.find(crypto::sha256(session_id));
  if (it == m_sessions.end()) return std::nullopt;
  if (it->second.expires_at_ms <= now) {
    m_sessions.erase(it);
    return std::nullopt;
  }
  return it->second;
}

void AdminSessions::end(std::string_view session_id) {
  std::lock_guard lock(m_mutex);
  m_sessions.erase(crypto::sha256(session_id));
}

}  // namespace alumia

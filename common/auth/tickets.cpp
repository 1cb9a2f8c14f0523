#include <alumia/auth/tickets.hpp>
#include <alumia/crypto/crypto.hpp>

namespace alumia {
namespace {

constexpr int64_t k_ticket_ttl_ms = 10 * 60 * 1000;

}  // namespace

std::string TicketBook::issue(std::string_view connection_id, std::string_view user_id, unsigned scopes) {
  std::string ticket = m_random.base64url(32);
  const int64_t now = m_clock.now_ms();
  std::lock_guard lock(m_mutex);
  std::erase_if(m_tickets, [&](const auto& kv) {
    return kv.second.connection_id == connection_id || kv.second.expires_at_ms <= now;  // a new ticket voids the old
  });
  m_tickets[crypto::sha256(ticket)] =
      Ticket{std::string(connection_id), std::string(user_id), scopes, now + k_ticket_ttl_ms};
  return ticket;
}

std::optional<TicketGrant> TicketBook::redeem(std::string_view ticket, std::string_view connection_id) {
  const int64_t now = m_clock.now_ms();
  std::lock_guard lock(m_mutex);
  auto it = m_tickets.find(crypto::sha256(ticket));
  if (it == m_tickets.end()) return std::nullopt;
  const Ticket t = it->second;
  if (t.connection_id != connection_id) return std::nullopt;  // bound to its connection; not consumed by a wrong use
  m_tickets.erase(it);
  if (t.expires_at_ms <= now) return std::nullopt;
  return TicketGrant{t.user_id, t.scopes};
}

}  // namespace alumia

#include <alumia/auth/tickets.hpp>
#include <alumia/base/strings.hpp>
#include <alumia/base/try.hpp>
#include <alumia/crypto/crypto.hpp>
#include <alumia/store/store.hpp>

namespace alumia {
namespace {

constexpr int64_t k_ticket_ttl_ms = 10 * 60 * 1000;

}  // namespace

Result<std::string> TicketBook::issue(std::string_view connection_id, std::string_view user_id, unsigned scopes) {
  std::string ticket = m_random.base64url(32);
  const int64_t now = m_clock.now_ms();
  // A new ticket replaces the connection's earlier one (the store's upsert).
  auto put = m_store.put_oauth_ticket(OAuthTicketRecord{crypto::sha256(ticket), std::string(connection_id),
                                                        std::string(user_id), scopes, now + k_ticket_ttl_ms},
                                      now);
  if (!put) {
    wipe_string(ticket);
    return std::unexpected(put.error());
  }
  return ticket;
}

Result<std::optional<TicketGrant>> TicketBook::redeem(std::string_view ticket, std::string_view connection_id) {
  const int64_t now = m_clock.now_ms();
  // Bound to its connection: one presented for another connection is not consumed.
  auto t = TRY(m_store.take_oauth_ticket(crypto::sha256(ticket), connection_id));
  if (!t || t->expires_at <= now) return std::optional<TicketGrant>();
  return std::optional<TicketGrant>(TicketGrant{t->user_id, t->scopes});
}

}  // namespace alumia

#pragma once
// One-time browser tickets for the oauthUrl (SPEC §6): >=128 bits, single use, 10 minutes, bound to
// the connection, its owner and the scopes of the key that minted it. A new ticket for a connection
// voids its earlier ones. Only their hashes are kept, in memory; a restart voids them.
#include <alumia/base/clock.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace alumia {

struct TicketGrant {
  std::string user_id;
  unsigned scopes = 0;  // of the key that minted the ticket: the redeemer acts with these
};

class TicketBook {
 public:
  TicketBook(const Clock& clock, Random& random) : m_clock(clock), m_random(random) {}

  // A fresh ticket for the connection `connection_id` of `user_id`, acting with `scopes`.
  std::string issue(std::string_view connection_id, std::string_view user_id, unsigned scopes);
  // The grant of a live ticket for this connection, consumed; nullopt for an unknown, used or expired
  // ticket (a ticket presented for another connection is not consumed).
  std::optional<TicketGrant> redeem(std::string_view ticket, std::string_view connection_id);

 private:
  struct Ticket {
    std::string connection_id;
    std::string user_id;
    unsigned scopes = 0;
    int64_t expires_at_ms = 0;
  };
  const Clock& m_clock;
  Random& m_random;
  std::mutex m_mutex;
  std::map<std::string, Ticket> m_tickets;  // sha256(ticket) → binding
};

}  // namespace alumia

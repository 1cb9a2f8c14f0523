#pragma once
// One-time browser tickets for the oauthUrl (SPEC §6): >=128 bits, single use, 10 minutes, bound to
// the connection, its owner and the scopes of the key that minted it. A new ticket for a connection
// voids its earlier ones. Only their hashes are kept, in the store (Store::put_oauth_ticket), so that a
// ticket minted on one daemon is redeemed on any daemon of a shared store, and once: redeeming is one
// DELETE … RETURNING.
#include <alumia/base/clock.hpp>
#include <alumia/base/error.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace alumia {

class Store;

struct TicketGrant {
  std::string user_id;
  unsigned scopes = 0;  // of the key that minted the ticket: the redeemer acts with these
};

class TicketBook {
 public:
  TicketBook(Store& store, const Clock& clock, Random& random) : m_store(store), m_clock(clock), m_random(random) {}

  // A fresh ticket for the connection `connection_id` of `user_id`, acting with `scopes`.
  Result<std::string> issue(std::string_view connection_id, std::string_view user_id, unsigned scopes);
  // The grant of a live ticket for this connection, consumed; nullopt for an unknown, used or expired
  // ticket (a ticket presented for another connection is not consumed). An error only when the store fails.
  Result<std::optional<TicketGrant>> redeem(std::string_view ticket, std::string_view connection_id);

 private:
  Store& m_store;
  const Clock& m_clock;
  Random& m_random;
};

}  // namespace alumia

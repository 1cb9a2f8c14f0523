#pragma once
// Failed authentication, slowed and rate limited per client (issue 16 item 4). A wrong API key costs
// the client `delay_ms` (the daemon holds the answer that long) and one token of its allowance:
// `burst` failures, refilled at `per_minute`. A client with no token left is answered
// TOO_MANY_REQUESTS with Retry-After for every request that presents a key, without the key being
// looked up, so a guess can be neither confirmed nor refuted until the allowance refills. A missing
// Authorization header is no guess and costs nothing.
//
// The client is its address; every loopback address (127.0.0.0/8, ::1, ::ffff:127.x) is one client,
// since all of 127/8 reaches the control listener. The table is bounded (`max_clients`): entries whose
// allowance has refilled are dropped first, then, if it is still full, the oldest.
// Thread-safe (one mutex, held for a map lookup and a few integer operations).
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace alumia {

struct AuthFailurePolicy {
  int64_t burst = 10;       // failures a client may make before it is refused
  int64_t per_minute = 30;  // the allowance's refill
  int64_t delay_ms = 250;   // how long each failure's answer is held
  std::size_t max_clients = 4096;
};

class AuthFailureLimiter {
 public:
  explicit AuthFailureLimiter(AuthFailurePolicy policy) : m_policy(policy) {}

  // 0: the client may present a key; else the milliseconds until it may (at least 1).
  int64_t blocked_for(std::string_view client, int64_t now_ms);
  // A presented key was refused: takes one token of the client's allowance.
  void record_failure(std::string_view client, int64_t now_ms);

  const AuthFailurePolicy& policy() const { return m_policy; }
  std::size_t clients() const;  // for tests

  // The limiter's name for an address: "loopback" for every loopback address, else the address.
  static std::string client_key(std::string_view address);

 private:
  struct Entry {
    int64_t milli_tokens;  // thousandths of a failure
    int64_t last_ms;
  };
  void refill(Entry& e, int64_t now_ms) const;
  void make_room(int64_t now_ms);

  const AuthFailurePolicy m_policy;
  mutable std::mutex m_mutex;
  std::map<std::string, Entry, std::less<>> m_clients;
};

}  // namespace alumia

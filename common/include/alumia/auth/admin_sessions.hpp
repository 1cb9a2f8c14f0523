#pragma once
// The browser's way into the admin pages (SPEC §9): a browser cannot send the API key, so a key with
// `admin` mints a short-lived, single-use login link (`alumia-connect admin open`), and the daemon
// exchanges it for a session whose id travels in an HttpOnly, SameSite=Strict cookie of the control
// listener. Each session has its own CSRF token, which every state-changing form carries.
//
// Contract: links and session ids are 256-bit random values; only their SHA-256 is kept, in memory
// (a restart ends every session). A link is consumed by its first use, even a late one. A session
// lives a fixed time from its login (no sliding renewal) and ends at logout. The books are bounded:
// beyond their caps the entry closest to its expiry gives way, so a caller who mints links in a loop
// costs memory that does not grow.
#include <alumia/base/clock.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace alumia {

struct AdminSession {
  std::string user_id;
  unsigned scopes = 0;  // of the key that minted the login link: the session acts with these
  std::string csrf;     // the token its forms carry
  int64_t expires_at_ms = 0;
};

struct AdminLogin {
  std::string session_id;  // the cookie's value (never stored)
  AdminSession session;
};

class AdminSessions {
 public:
  struct Options {
    int64_t link_ttl_ms = 2 * 60 * 1000;
    int64_t session_ttl_ms = 60 * 60 * 1000;
    std::size_t max_links = 32;
    std::size_t max_sessions = 64;
  };
  AdminSessions(const Clock& clock, Random& random, Options options);

  // A fresh login link token for `user_id`, acting with `scopes`.
  std::string issue_link(std::string_view user_id, unsigned scopes);
  int64_t link_ttl_ms() const { return m_options.link_ttl_ms; }
  int64_t session_ttl_ms() const { return m_options.session_ttl_ms; }
  // The link consumed and a new session; nullopt for an unknown, used or expired link.
  std::optional<AdminLogin> redeem_link(std::string_view token);
  // The live session of a cookie value; nullopt when unknown or expired (an expired one is dropped).
  std::optional<AdminSession> find(std::string_view session_id);
  // Logout: the session is gone (nothing when it was not there).
  void end(std::string_view session_id);

 private:
  struct Link {
    std::string user_id;
    unsigned scopes = 0;
    int64_t expires_at_ms = 0;
  };
  template <class Map>
  static void make_room(Map& book, std::size_t cap, int64_t now);

  const Clock& m_clock;
  Random& m_random;
  Options m_options;
  std::mutex m_mutex;
  std::map<std::string, Link> m_links;             // sha256(token) → grant
  std::map<std::string, AdminSession> m_sessions;  // sha256(session id) → session
};

}  // namespace alumia

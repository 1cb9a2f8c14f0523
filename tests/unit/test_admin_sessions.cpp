// AdminSessions (common/auth/admin_sessions.hpp): login links are single use and expire; sessions
// expire a fixed time after login and end at logout; both books stay bounded.
#include "fakes.hpp"

#include <alumia/auth/admin_sessions.hpp>

#include <catch2/catch.hpp>

#include <set>

using namespace alumia;
using alumia::test::FakeClock;
using alumia::test::SeededRandom;
using namespace std::chrono_literals;

TEST_CASE("admin sessions: a login link works once, within its life", "[admin][sessions]") {
  FakeClock clock;
  SeededRandom random;
  AdminSessions book(clock, random, {.link_ttl_ms = 60'000, .session_ttl_ms = 3'600'000});

  const std::string link = book.issue_link("user-1", 7);
  CHECK(link.size() >= 43);  // 256 bits, base64url
  auto login = book.redeem_link(link);
  REQUIRE(login);
  CHECK(login->session.user_id == "user-1");
  CHECK(login->session.scopes == 7);
  CHECK(login->session.expires_at_ms == clock.now_ms() + 3'600'000);
  CHECK(login->session_id != login->session.csrf);
  CHECK_FALSE(book.redeem_link(link));  // spent
  CHECK_FALSE(book.redeem_link("made-up"));
  CHECK_FALSE(book.redeem_link(""));

  const std::string late = book.issue_link("user-1", 7);
  clock.advance(60'000ms);
  CHECK_FALSE(book.redeem_link(late));  // expired at its ttl
  const std::string in_time = book.issue_link("user-1", 7);
  clock.advance(59'999ms);
  CHECK(book.redeem_link(in_time));
}

TEST_CASE("admin sessions: a session expires a fixed time after login, and logout ends it", "[admin][sessions]") {
  FakeClock clock;
  SeededRandom random;
  AdminSessions book(clock, random, {.link_ttl_ms = 60'000, .session_ttl_ms = 10'000});
  const auto login = book.redeem_link(book.issue_link("u", 1));
  REQUIRE(login);
  REQUIRE(book.find(login->session_id));
  CHECK(book.find(login->session_id)->csrf == login->session.csrf);
  CHECK_FALSE(book.find(login->session.csrf));  // the CSRF token is not a session id
  CHECK_FALSE(book.find(""));
  clock.advance(9'999ms);
  CHECK(book.find(login->session_id));  // use does not extend it
  clock.advance(1ms);
  CHECK_FALSE(book.find(login->session_id));

  const auto other = book.redeem_link(book.issue_link("u", 1));
  REQUIRE(other);
  book.end(other->session_id);
  CHECK_FALSE(book.find(other->session_id));
  book.end("never-there");  // nothing happens
}

TEST_CASE("admin sessions: the books are bounded; the entry closest to expiry gives way", "[admin][sessions]") {
  FakeClock clock;
  SeededRandom random;
  AdminSessions book(clock, random,
                     {.link_ttl_ms = 60'000, .session_ttl_ms = 60'000, .max_links = 4, .max_sessions = 3});
  const std::string oldest = book.issue_link("u", 1);
  clock.advance(1ms);
  std::vector<std::string> links;
  for (int i = 0; i < 4; ++i) links.push_back(book.issue_link("u", 1));
  CHECK_FALSE(book.redeem_link(oldest));  // pushed out by the fifth
  std::vector<std::string> sessions;
  for (const auto& l : links) {
    clock.advance(1ms);
    auto login = book.redeem_link(l);
    REQUIRE(login);
    sessions.push_back(login->session_id);
  }
  CHECK_FALSE(book.find(sessions[0]));  // the fourth session pushed out the first
  for (std::size_t i = 1; i < sessions.size(); ++i) CHECK(book.find(sessions[i]));
  std::set<std::string> distinct(sessions.begin(), sessions.end());
  CHECK(distinct.size() == sessions.size());
}

// OAuth state shared through the store (issue 17 item 2, SPEC §6 and §12): two daemons (two FlowServices
// and TicketBooks, each on its own store handle over one database) serve one flow. On PostgreSQL they are
// two daemons of a cluster; on SQLite (two handles on one file) the second stands for the same daemon
// after a restart, which now keeps tickets, flows and results until they expire. A ticket
// minted on A is redeemed on B, once; a flow begun on A completes on B (its sealed PKCE verifier opened
// there), once; its outcome is recalled on either. With the state in daemon memory, as before, B knew
// neither the ticket nor the flow.
#include <alumia/auth/tickets.hpp>
#include <alumia/base/clock.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/connections/oauth_clients.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/net/http.hpp>
#include <alumia/oauth/oauth.hpp>
#include <alumia/store/store.hpp>

#include "shared_store_daemons.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <latch>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace alumia;
using test::Cluster;

std::string form_value(std::string_view form, const std::string& key) {
  for (const auto& [k, v] : http::form_decode(form))
    if (k == key) return v;
  return "";
}

std::string query_value(const std::string& url, const std::string& key) {
  return form_value(std::string_view(url).substr(url.find('?') + 1), key);
}

}  // namespace

TEST_CASE("shared store: a ticket minted on one daemon is redeemed on another, once", "[oauth][pg][store]") {
  const std::string kind = GENERATE(as<std::string>{}, "sqlite", "postgres");
  if (kind == "postgres") ALUMIA_SKIP_WITHOUT_POSTGRES();
  INFO("on " << kind);
  Cluster k(kind);
  auto& a = k.daemons[0];
  auto& b = k.daemons[1];
  const unsigned scopes = static_cast<unsigned>(Scope::connections);
  auto ticket = a.tickets->issue(k.connection.id, "u1", scopes);
  REQUIRE(ticket);
  // For another connection it is refused and stays.
  auto wrong = b.tickets->redeem(*ticket, "33333333-3333-4333-8333-333333333333");
  REQUIRE(wrong);
  CHECK_FALSE(wrong->has_value());
  auto grant = b.tickets->redeem(*ticket, k.connection.id);
  REQUIRE(grant);
  REQUIRE(grant->has_value());
  CHECK((*grant)->user_id == "u1");
  CHECK((*grant)->scopes == scopes);
  for (auto& d : k.daemons) {  // spent on both
    auto again = d.tickets->redeem(*ticket, k.connection.id);
    REQUIRE(again);
    CHECK_FALSE(again->has_value());
  }
  // A newer ticket minted on B voids A's earlier one; an expired one is refused.
  auto first = a.tickets->issue(k.connection.id, "u1", scopes);
  auto second = b.tickets->issue(k.connection.id, "u1", scopes);
  REQUIRE(first);
  REQUIRE(second);
  CHECK_FALSE(b.tickets->redeem(*first, k.connection.id).value());
  k.clock.advance(std::chrono::minutes(10));
  CHECK_FALSE(a.tickets->redeem(*second, k.connection.id).value());

  // Many redeemers on both daemons at once: exactly one gets it.
  auto contested = a.tickets->issue(k.connection.id, "u1", scopes);
  REQUIRE(contested);
  constexpr int k_racers = 8;
  std::latch start(k_racers);  // every racer starts at once
  std::atomic<int> granted{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> racers;
  for (int i = 0; i < k_racers; ++i)
    racers.emplace_back([&, i] {
      start.arrive_and_wait();
      auto g = k.daemons[i % 2].tickets->redeem(*contested, k.connection.id);
      if (!g) ++errors;
      else if (g->has_value()) ++granted;
    });
  for (auto& t : racers) t.join();
  CHECK(errors == 0);
  CHECK(granted == 1);
}

TEST_CASE("shared store: a flow begun on one daemon completes on another; consumed, it is refused on both",
          "[oauth][pg][store]") {
  const std::string kind = GENERATE(as<std::string>{}, "sqlite", "postgres");
  if (kind == "postgres") ALUMIA_SKIP_WITHOUT_POSTGRES();
  INFO("on " << kind);
  Cluster k(kind);
  auto& a = k.daemons[0];
  auto& b = k.daemons[1];
  auto started = a.flows->begin(k.connection, false);
  REQUIRE(started);
  const std::string state = query_value(started->authorize_url, "state");
  const std::string challenge = query_value(started->authorize_url, "code_challenge");
  REQUIRE_FALSE(state.empty());
  REQUIRE_FALSE(challenge.empty());
  const std::string cookie = started->set_cookie.substr(0, started->set_cookie.find(';'));
  const std::multimap<std::string, std::string> callback{{"code", "the-code"}, {"state", state}};

  // The binding cookie is checked on B too: without it, refused, and the flow stays.
  auto refused = b.flows->complete(callback, {});
  CHECK(refused.refusal == oauth::CallbackRefusal::other_browser);
  CHECK(k.provider.sent_count() == 0);

  k.provider.expect("POST", "https://github.com/login/oauth/access_token", 200,
                    R"({"access_token":"at-1","token_type":"bearer","scope":"repo"})",
                    {{"Content-Type", "application/json"}});
  k.provider.expect("GET", "https://api.github.com/user", 200, R"({"login":"octo"})",
                    {{"Content-Type", "application/json"}});
  auto done = b.flows->complete(callback, {{"cookie", cookie}});
  INFO(done.message);
  CHECK(done.ok);
  CHECK(done.connection_id == k.connection.id);
  CHECK(k.status() == "active");
  // The verifier A made (sealed in the store) reached the provider from B, and matches A's challenge.
  const auto sent = k.provider.sent();
  REQUIRE(!sent.empty());
  const std::string verifier = form_value(sent.front().body, "code_verifier");
  REQUIRE_FALSE(verifier.empty());
  CHECK(oauth::pkce_challenge_s256(verifier) == challenge);

  // Consumed: the same callback on either daemon is an unknown state, and nothing is sent.
  for (auto& d : k.daemons)
    CHECK(d.flows->complete(callback, {{"cookie", cookie}}).refusal == oauth::CallbackRefusal::unknown_state);
  CHECK(k.provider.sent_count() == 2);

  // The outcome remembered on B is shown on A (and again: a reload), not after 10 minutes.
  auto id = b.flows->remember(done);
  REQUIRE(id);
  for (auto& d : k.daemons) {
    auto shown = d.flows->recall(*id);
    REQUIRE(shown);
    REQUIRE(shown->has_value());
    CHECK((*shown)->ok);
    CHECK((*shown)->message == done.message);
    CHECK((*shown)->connection_id == k.connection.id);
    CHECK(d.flows->results_held() == 1);
  }
  CHECK_FALSE(a.flows->recall("not-an-id").value());
  k.clock.advance(std::chrono::minutes(10));
  CHECK_FALSE(a.flows->recall(*id).value());
  CHECK(a.flows->results_held() == 0);
}

TEST_CASE(
    "shared store: a flow restarted on another daemon voids the first; two daemons given one callback exchange once",
    "[oauth][pg][store]") {
  const std::string kind = GENERATE(as<std::string>{}, "sqlite", "postgres");
  if (kind == "postgres") ALUMIA_SKIP_WITHOUT_POSTGRES();
  INFO("on " << kind);
  Cluster k(kind);
  auto& a = k.daemons[0];
  auto& b = k.daemons[1];
  auto first = a.flows->begin(k.connection, false);
  auto second = b.flows->begin(k.connection, false);
  REQUIRE(first);
  REQUIRE(second);
  const auto cookie_of = [](const oauth::FlowStart& s) { return s.set_cookie.substr(0, s.set_cookie.find(';')); };
  const std::multimap<std::string, std::string> old_callback{{"code", "c"},
                                                             {"state", query_value(first->authorize_url, "state")}};
  CHECK(b.flows->complete(old_callback, {{"cookie", cookie_of(*first)}}).refusal ==
        oauth::CallbackRefusal::unknown_state);

  // The live flow's callback arrives at both daemons at once (a retried request behind a balancer): one
  // consumes it and exchanges the code, the other finds it gone.
  k.provider.expect("POST", "https://github.com/login/oauth/access_token", 200,
                    R"({"access_token":"at-1","token_type":"bearer"})", {{"Content-Type", "application/json"}});
  k.provider.expect("GET", "https://api.github.com/user", 200, R"({"login":"octo"})",
                    {{"Content-Type", "application/json"}});
  const std::multimap<std::string, std::string> callback{{"code", "c"},
                                                         {"state", query_value(second->authorize_url, "state")}};
  const http::Headers headers{{"cookie", cookie_of(*second)}};
  std::vector<oauth::CallbackOutcome> outcomes(2);
  std::latch start(2);  // every racer starts at once
  std::vector<std::thread> racers;
  for (int i = 0; i < 2; ++i)
    racers.emplace_back([&, i] {
      start.arrive_and_wait();
      outcomes[i] = k.daemons[i].flows->complete(callback, headers);
    });
  for (auto& t : racers) t.join();
  int ok = 0;
  int unknown = 0;
  for (const auto& o : outcomes) {
    ok += o.ok ? 1 : 0;
    unknown += o.refusal == oauth::CallbackRefusal::unknown_state ? 1 : 0;
  }
  CHECK(ok == 1);
  CHECK(unknown == 1);
  CHECK(k.provider.unexpected() == 0);
  CHECK(k.provider.sent_count() == 2);  // one exchange, one account label
}

TEST_CASE("postgres: a callback while the database is lost says to try again, and the flow completes after",
          "[oauth][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  Cluster k("postgres", true);
  auto& a = k.daemons[0];
  auto& b = k.daemons[1];
  auto started = a.flows->begin(k.connection, false);
  REQUIRE(started);
  const std::string cookie = started->set_cookie.substr(0, started->set_cookie.find(';'));
  const std::multimap<std::string, std::string> callback{{"code", "c"},
                                                         {"state", query_value(started->authorize_url, "state")}};

  k.own_server->stop();
  auto lost = b.flows->complete(callback, {{"cookie", cookie}});
  CHECK_FALSE(lost.ok);
  CHECK(lost.refusal == oauth::CallbackRefusal::none);
  CHECK(lost.connection_id.empty());  // no flow was taken
  CHECK(lost.message.find("store is unavailable") != std::string::npos);
  CHECK(lost.message.find("again") != std::string::npos);
  CHECK(k.provider.sent_count() == 0);
  auto ticket = a.tickets->issue(k.connection.id, "u1", static_cast<unsigned>(Scope::connections));
  REQUIRE_FALSE(ticket);
  CHECK(ticket.error().code == ErrorCode::service_unavailable);
  auto id = b.flows->remember(lost);
  REQUIRE_FALSE(id);
  CHECK(id.error().code == ErrorCode::service_unavailable);

  k.own_server->start();  // the stores reconnect on their next call; the flow waited
  k.provider.expect("POST", "https://github.com/login/oauth/access_token", 200,
                    R"({"access_token":"at-1","token_type":"bearer"})", {{"Content-Type", "application/json"}});
  k.provider.expect("GET", "https://api.github.com/user", 200, R"({"login":"octo"})",
                    {{"Content-Type", "application/json"}});
  auto done = b.flows->complete(callback, {{"cookie", cookie}});
  INFO(done.message);
  CHECK(done.ok);
  CHECK(k.status() == "active");
}

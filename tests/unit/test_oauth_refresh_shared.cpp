// One token refresh per connection across daemons (issue 17 item 2, SPEC §6 single flight): two
// FlowServices, each on its own PostgreSQL store handle (two daemons) over one database, read the same
// connection's token at once while it is due; the provider sees one refresh, and every read gets the
// new token. Without the store's lock (Store::lock_connection) each daemon refreshes once: the second
// refresh finds no scripted answer and that read fails.
#include <alumia/connections/sealed_values.hpp>

#include "shared_store_daemons.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <latch>
#include <string>
#include <thread>
#include <vector>

using namespace alumia;

TEST_CASE("postgres: concurrent token reads on two daemons share one refresh", "[oauth][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  test::Cluster k("postgres", false, 4);
  auto& daemons = k.daemons;
  auto& provider = k.provider;
  const Sealer& sealer = k.sealer;
  Store& shared = *daemons[0].store;
  // The cluster's connection, made active with a token that expires in a minute (inside the 10-minute margin).
  const int64_t now = k.clock.now_ms();
  Connection& c = k.connection;
  c.status = ConnectionStatus::active;
  c.created_at = c.updated_at = now - 3'600'000;
  c.last_refreshed_at = now - 3'600'000;
  c.expires_at = now + 60'000;
  auto sealed = seal_values(
      sealer, "connections", c.id,
      {{"oauth.access_token", "at-old"}, {"oauth.refresh_token", "rt-old"}, {"oauth.token_type", "bearer"}});
  REQUIRE(sealed);
  REQUIRE(shared.update_connection(c, &*sealed));

  // The provider answers one refresh; a second would find nothing scripted (SERVICE_UNAVAILABLE).
  provider.expect("POST", "https://github.com/login/oauth/access_token", 200,
                  R"({"access_token":"at-new","token_type":"bearer","expires_in":28800,"refresh_token":"rt-new"})",
                  {{"Content-Type", "application/json"}});

  constexpr int k_reads_per_daemon = 6;
  std::vector<std::string> tokens(2 * k_reads_per_daemon);
  std::latch start(2 * k_reads_per_daemon);  // every racer starts at once
  std::vector<std::thread> readers;
  for (int i = 0; i < 2 * k_reads_per_daemon; ++i)
    readers.emplace_back([&, i] {
      start.arrive_and_wait();
      auto token = daemons[i % 2].flows->access_token(c);
      tokens[i] = token ? std::string(token->access_token.view()) : "error: " + token.error().message;
    });
  for (auto& t : readers) t.join();

  INFO("requests: " << provider.sent_count() << ", unscripted: " << provider.unexpected());
  for (const auto& t : tokens) CHECK(t == "at-new");
  CHECK(provider.sent_count() == 1);
  CHECK(provider.unexpected() == 0);
  // Both daemons now read the rotated refresh token from the store.
  for (auto& d : daemons) {
    auto opened = open_values(sealer, *d.store, "connections", c.id);
    REQUIRE(opened);
    CHECK((*opened)["oauth.refresh_token"] == "rt-new");
  }
}

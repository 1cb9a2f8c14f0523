// One token refresh per connection across daemons (issue 17 item 2, SPEC §6 single flight): two
// FlowServices, each on its own PostgreSQL store handle (two daemons) over one database, read the same
// connection's token at once while it is due; the provider sees one refresh, and every read gets the
// new token. Without the store's lock (Store::lock_connection) each daemon refreshes once: the second
// refresh finds no scripted answer and that read fails.
#include <alumia/auth/tickets.hpp>
#include <alumia/base/clock.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/connections/oauth_clients.hpp>
#include <alumia/connections/sealed_values.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/oauth/oauth.hpp>
#include <alumia/store/store.hpp>

#include "fakes.hpp"
#include "postgres.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace alumia;

// One daemon's services over its own store handle; the sealer (the shared data key), the clock and the
// provider are the cluster's.
struct DaemonServices {
  std::unique_ptr<Store> store;
  std::unique_ptr<TicketBook> tickets;
  std::unique_ptr<OAuthClients> clients;
  std::unique_ptr<ConnectionService> connections;
  std::unique_ptr<oauth::FlowService> flows;
};

}  // namespace

TEST_CASE("postgres: concurrent token reads on two daemons share one refresh", "[oauth][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  auto& server = test::shared_postgres();
  const std::string info = server.conninfo(server.fresh_database());
  test::TempDir dir;
  auto catalog = load_catalog(dir.path() / "connectors.d");
  REQUIRE(catalog);
  SystemRandom random;
  test::FakeClock clock;
  test::ScriptedHttp provider;
  const Sealer sealer(generate_key(random), random);
  const EnvLookup env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "ALUMIA_GITHUB_CLIENT_ID") return "Iv1.unit";
    if (name == "ALUMIA_GITHUB_CLIENT_SECRET") return "unit-secret";
    return std::nullopt;
  };

  std::vector<DaemonServices> daemons(2);
  for (auto& d : daemons) {
    auto s = open_postgres_store({info, 4});
    REQUIRE(s);
    d.store = std::move(*s);
    d.tickets = std::make_unique<TicketBook>(*d.store, clock, random);
    d.clients = std::make_unique<OAuthClients>(*d.store, sealer, env);
    d.connections = std::make_unique<ConnectionService>(ConnectionServiceDeps{
        *d.store, *catalog, sealer, clock, random, provider, env, *d.clients, *d.tickets, "http://127.0.0.1:7465"});
    d.flows = std::make_unique<oauth::FlowService>(oauth::FlowServiceDeps{
        *d.store, *catalog, sealer, clock, random, provider, *d.clients, *d.connections, "http://127.0.0.1:7465"});
  }

  // An active GitHub connection whose token expires in a minute (inside the 10-minute margin).
  Store& shared = *daemons[0].store;
  REQUIRE(shared.insert_user({"u1", "owner", 1}));
  const int64_t now = clock.now_ms();
  Connection c;
  c.id = "11111111-1111-4111-8111-111111111111";
  c.user_id = "u1";
  c.connector_slug = "github";
  c.label = "work";
  c.auth_type = AuthType::oauth;
  c.status = ConnectionStatus::active;
  c.created_at = c.updated_at = now - 3'600'000;
  c.last_refreshed_at = now - 3'600'000;
  c.expires_at = now + 60'000;
  REQUIRE(shared.insert_connection(c));
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
  std::atomic<int> ready{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 2 * k_reads_per_daemon; ++i)
    readers.emplace_back([&, i] {
      ++ready;
      while (ready.load() < 2 * k_reads_per_daemon) std::this_thread::yield();
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

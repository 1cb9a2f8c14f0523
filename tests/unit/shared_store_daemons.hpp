#pragma once
// Two daemons' OAuth services over one store (issue 17 item 2): each a FlowService, TicketBook and
// ConnectionService on its own store handle, over one fresh PostgreSQL database ("postgres") or one
// store file ("sqlite": the second handle stands for the same daemon after a restart). The sealer (the
// shared data key), the clock and the provider are the cluster's. `connection` is a pending GitHub
// connection of the owner u1, stored through the first handle.
#include <alumia/auth/tickets.hpp>
#include <alumia/base/clock.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/connections/oauth_clients.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/oauth/oauth.hpp>
#include <alumia/store/store.hpp>

#include "fakes.hpp"
#include "postgres.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

namespace alumia::test {

struct DaemonServices {
  std::unique_ptr<Store> store;
  std::unique_ptr<TicketBook> tickets;
  std::unique_ptr<OAuthClients> clients;
  std::unique_ptr<ConnectionService> connections;
  std::unique_ptr<oauth::FlowService> flows;
};

// Two daemons over one fresh database ("postgres") or store file ("sqlite"); the sealer (the shared data
// key), clock and provider are the cluster's.
struct Cluster {
  test::TempDir dir;
  std::unique_ptr<test::PostgresServer> own_server;  // a test that stops the server has its own
  Catalog catalog;
  SystemRandom random;
  test::FakeClock clock;
  test::ScriptedHttp provider;
  Sealer sealer{generate_key(random), random};
  EnvLookup env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "ALUMIA_GITHUB_CLIENT_ID") return "Iv1.unit";
    if (name == "ALUMIA_GITHUB_CLIENT_SECRET") return "unit-secret";
    return std::nullopt;
  };
  std::vector<DaemonServices> daemons;
  Connection connection;

  explicit Cluster(const std::string& kind, bool own = false, std::size_t pool = 3) : daemons(2) {
    std::string info;
    if (kind == "postgres") {
      if (own) own_server = std::make_unique<test::PostgresServer>();
      auto& server = own ? *own_server : test::shared_postgres();
      info = server.conninfo(server.fresh_database());
    }
    auto c = load_catalog(dir.path() / "connectors.d");
    REQUIRE(c);
    catalog = std::move(*c);
    for (auto& d : daemons) {
      auto s =
          kind == "postgres" ? open_postgres_store({info, pool}) : open_sqlite_store({dir.path() / "store.db", true});
      REQUIRE(s);
      d.store = std::move(*s);
      d.tickets = std::make_unique<TicketBook>(*d.store, clock, random);
      d.clients = std::make_unique<OAuthClients>(*d.store, sealer, env);
      d.connections = std::make_unique<ConnectionService>(ConnectionServiceDeps{
          *d.store, catalog, sealer, clock, random, provider, env, *d.clients, *d.tickets, "http://127.0.0.1:7465"});
      d.flows = std::make_unique<oauth::FlowService>(oauth::FlowServiceDeps{
          *d.store, catalog, sealer, clock, random, provider, *d.clients, *d.connections, "http://127.0.0.1:7465"});
    }
    REQUIRE(daemons[0].store->insert_user({"u1", "owner", 1}));
    connection.id = "22222222-2222-4222-8222-222222222222";
    connection.user_id = "u1";
    connection.connector_slug = "github";
    connection.label = "work";
    connection.auth_type = AuthType::oauth;
    connection.status = ConnectionStatus::pending;
    connection.created_at = connection.updated_at = clock.now_ms();
    REQUIRE(daemons[0].store->insert_connection(connection));
  }

  std::string status() {
    auto c = daemons[0].store->find_connection(connection.id);
    REQUIRE(c);
    REQUIRE(c->has_value());
    return std::string(to_string((*c)->status));
  }
};

}  // namespace alumia::test

#pragma once
// The daemon's context as main.cpp wires it, over a store in a temp dir, without listeners, on the
// shared fakes (fake clock, seeded randomness, no network): for tests that call dispatch() with a
// request and read the envelope. (test_route_scopes.cpp and test_oauth_binding.cpp build their own.)
#include "routes.hpp"

#include <alumia/auth/api_keys.hpp>
#include <alumia/auth/tickets.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/config/config.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/connections/oauth_clients.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/oauth/oauth.hpp>
#include <alumia/setup/setup_service.hpp>
#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include "fakes.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

namespace alumia::test {

template <class T>
T must(Result<T> r) {
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r);
  return std::move(*r);
}

struct DaemonUnderTest {
  TempDir dir;
  EnvLookup env = [](std::string_view) { return std::optional<std::string>(); };
  FakeClock clock;
  SeededRandom random{42};
  ScriptedHttp net;  // no script: no network
  std::unique_ptr<Store> store = must(open_sqlite_store({dir.path() / "store.db", true}));
  Catalog catalog = must(load_catalog(dir.path() / "connectors.d"));
  Settings settings = must(Settings::resolve({}, env, dir.path() / "config.json"));
  Sealer sealer{generate_key(random), random};
  KeyService keys{KeyServiceDeps{*store, clock, random, "live"}};
  TicketBook tickets{*store, clock, random};
  OAuthClients oauth_clients{*store, sealer, env};
  ConnectionService connections{ConnectionServiceDeps{*store, catalog, sealer, clock, random, net, env, oauth_clients,
                                                      tickets, "http://127.0.0.1:1"}};
  oauth::FlowService flows{oauth::FlowServiceDeps{*store, catalog, sealer, clock, random, net, oauth_clients,
                                                  connections, "http://127.0.0.1:1"}};
  std::unique_ptr<WebhookStore> hooks =
      must(open_sqlite_webhook_store({.path = dir.path() / "store.db", .intake_log_bytes = 0}));
  EndpointCache endpoints{*hooks, *store, sealer, ""};
  struct NoRelay final : JobWaker {
    void jobs_due() override {}  // the relay worker is not running here: a due job waits
  } relay;
  WebhookService webhooks{WebhookServiceDeps{.connections = connections,
                                             .store = *store,
                                             .sealer = sealer,
                                             .hooks = *hooks,
                                             .endpoints = endpoints,
                                             .relay = relay,
                                             .clock = clock,
                                             .random = random,
                                             .http = net,
                                             .webhook_base_url = "",
                                             .control_url = "http://127.0.0.1:1"}};
  setup::SetupService setup{setup::SetupServiceDeps{.connections = connections,
                                                    .oauth = flows,
                                                    .webhooks = webhooks,
                                                    .catalog = catalog,
                                                    .env = env,
                                                    .http = net,
                                                    .random = random,
                                                    .webhook_base_url = "",
                                                    .base_url_origin = "webhook-base-url (default)"}};
  AdminSessions admin_sessions{clock, random, {}};
  daemon::DaemonContext ctx{.keys = keys,
                            .tickets = tickets,
                            .oauth_clients = oauth_clients,
                            .connections = connections,
                            .store = *store,
                            .catalog = catalog,
                            .settings = settings,
                            .clock = clock,
                            .random = random,
                            .info = {},
                            .oauth = flows,
                            .control_hosts = {},
                            .public_hosts = {},
                            .webhooks = webhooks,
                            .setup = setup,
                            .admin_sessions = admin_sessions};
  std::string owner_key = *must(keys.bootstrap_owner());

  // One request through dispatch() on the control listener with the owner key.
  http::Response send(std::string method, std::string target, std::string body = {}) {
    http::Request req;
    req.method = std::move(method);
    req.target = target;
    const auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos)
      for (auto& [k, v] : http::form_decode(target.substr(q + 1))) req.query.emplace(k, v);
    req.body = std::move(body);
    req.headers.emplace_back("Authorization", "Bearer " + owner_key);
    return daemon::dispatch(ctx, req);
  }
};

inline std::string error_code_of(const http::Response& r) {
  const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("error")) return {};
  return j["error"].value("code", "");
}

}  // namespace alumia::test

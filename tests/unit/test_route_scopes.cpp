// Every route of the table, called through the real dispatch() with a real DaemonContext over a temp
// store (no sockets), with a key of each scope (SPEC §2): FORBIDDEN exactly where the key lacks the
// route's scope, never where it holds it. The walk iterates route_table() itself, so a route added
// later is covered, and it must be given its SPEC scope below or this test fails.
#include "routes.hpp"

#include <alumia/base/clock.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/config/config.hpp>
#include <alumia/connections/core.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/oauth/oauth.hpp>
#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include "process.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

using alumia::ErrorCode;
using alumia::Scope;
using alumia::daemon::Auth;
using alumia::daemon::Route;
using nlohmann::json;

class NoNetwork final : public alumia::http::Client {
 public:
  alumia::Result<alumia::http::OutboundResponse> send(const alumia::http::OutboundRequest&) override {
    return alumia::fail(ErrorCode::service_unavailable, "no network in unit tests");
  }
};

template <class T>
T must(alumia::Result<T> r) {
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r);
  return std::move(*r);
}

// The daemon's context as the Daemon (daemon/daemon.cpp) wires it, over a store in a temp dir, without listeners.
struct DaemonUnderTest {
  alumia::test::TempDir dir;
  alumia::EnvLookup env = [](std::string_view) { return std::optional<std::string>(); };
  alumia::SystemClock clock;
  alumia::SystemRandom random;
  NoNetwork net;
  std::unique_ptr<alumia::Store> store = must(alumia::open_sqlite_store({dir.path() / "store.db", true}));
  alumia::Catalog catalog = must(alumia::load_catalog(dir.path() / "connectors.d"));
  alumia::Settings settings = must(alumia::Settings::resolve({}, env, dir.path() / "config.json"));
  alumia::Sealer sealer{alumia::generate_key(random), random};
  alumia::Core core{alumia::CoreDeps{*store, catalog, sealer, clock, random, net, env, "live", "http://127.0.0.1:1"}};
  alumia::oauth::FlowService flows{core, "http://127.0.0.1:1"};
  std::unique_ptr<alumia::WebhookStore> hooks =
      must(alumia::open_sqlite_webhook_store({.path = dir.path() / "store.db", .intake_log_bytes = 0}));
  alumia::WebhookService webhooks{alumia::WebhookServiceDeps{.core = core,
                                                             .store = *store,
                                                             .hooks = *hooks,
                                                             .clock = clock,
                                                             .random = random,
                                                             .http = net,
                                                             .webhook_base_url = "",
                                                             .control_url = "http://127.0.0.1:1",
                                                             .default_relay_to = ""}};
  alumia::daemon::DaemonContext ctx{.core = core,
                                    .store = *store,
                                    .catalog = catalog,
                                    .settings = settings,
                                    .clock = clock,
                                    .random = random,
                                    .info = {},
                                    .oauth = flows,
                                    .control_hosts = {},
                                    .public_hosts = {},
                                    .webhooks = webhooks};
  std::string owner_key = *must(core.bootstrap_owner());

  // `key`'s call of `route`, every ":param" a placeholder that names nothing (an id that is a UUID).
  alumia::http::Response call(const Route& route, const std::optional<std::string>& key) {
    alumia::http::Request req;
    req.method = std::string(route.method);
    for (std::size_t i = 0; i < route.pattern.size();) {
      const auto end = std::min(route.pattern.find('/', i), route.pattern.size());
      const std::string_view seg = route.pattern.substr(i, end - i);
      if (!seg.empty() && seg.front() == ':')
        req.path += seg.ends_with("id") || seg.ends_with("Id") ? "00000000-0000-4000-8000-00000000abcd" : "none";
      else req.path += seg;
      if (end < route.pattern.size()) req.path += '/';
      i = end + 1;
    }
    req.target = req.path;
    // Not a JSON object: a body-reading handler refuses it before it changes anything.
    if (req.method != "GET") req.body = "[]";
    if (key) req.headers.emplace_back("Authorization", "Bearer " + *key);
    req.listener = (route.listeners & alumia::daemon::k_on_control) != 0 ? alumia::http::Listener::control
                                                                         : alumia::http::Listener::public_;
    return alumia::daemon::dispatch(ctx, req);
  }
};

std::string error_code(const alumia::http::Response& r) {
  const json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("error")) return {};
  return j["error"].value("code", "");
}

constexpr unsigned bit(Scope s) { return static_cast<unsigned>(s); }

// SPEC §2, written out independently of the table: the scopes of which a key must hold at least one.
// A route with no rule here fails the test until its scope is decided.
std::optional<unsigned> spec_scopes(std::string_view method, std::string_view pattern) {
  const auto starts = [&](std::string_view p) { return pattern.starts_with(p); };
  if (starts("/api/v1/api-keys") || starts("/api/v1/oauth-clients/") || pattern == "/metrics") return bit(Scope::admin);
  // Webhook endpoints, setup commands (/connections/:id/commands/...) and admin views.
  if (starts("/api/v1/webhook-endpoints") || starts("/api/v1/connector-events") || starts("/api/v1/jobs") ||
      starts("/api/v1/admin/") || starts("/admin/") || pattern.find("/commands/") != std::string_view::npos)
    return bit(Scope::webhooks) | bit(Scope::admin);
  if (pattern == "/api/v1/connections/:id/token") return bit(Scope::tokens);
  if (starts("/api/v1/connections")) return bit(Scope::connections);
  // Any valid key: daemon status and the connector catalog hold no user data and no secret.
  if (method == "GET" && (pattern == "/api/v1/status" || starts("/api/v1/connectors"))) return alumia::k_all_scopes;
  return std::nullopt;
}

}  // namespace

TEST_CASE("every route: FORBIDDEN exactly where the key lacks the route's scope", "[routes][scopes]") {
  DaemonUnderTest d;
  struct TestKey {
    Scope scope;
    std::string key;
  };
  std::vector<TestKey> keys;
  for (Scope s : {Scope::connections, Scope::tokens, Scope::webhooks, Scope::admin})
    keys.push_back({s, must(d.core.issue_key(must(d.store->first_user())->id, "one scope", bit(s)))});

  std::size_t walked = 0;
  for (const Route& route : alumia::daemon::route_table()) {
    CAPTURE(route.method, route.pattern);
    if (route.auth == Auth::public_) {  // no key is read; the handler checks its caller
      CHECK(route.scope.is_no_key());
      continue;
    }
    CHECK_FALSE(route.scope.is_no_key());
    ++walked;
    const auto needed = spec_scopes(route.method, route.pattern);
    INFO("add this route's SPEC §2 scope to spec_scopes() in this test");
    REQUIRE(needed);
    // Without a key: UNAUTHORIZED, never the handler.
    CHECK(error_code(d.call(route, std::nullopt)) == "UNAUTHORIZED");
    for (const auto& k : keys) {
      CAPTURE(alumia::to_string(k.scope));
      CHECK(route.scope.allows(bit(k.scope)) == ((*needed & bit(k.scope)) != 0));  // the table says so too
      const auto reply = d.call(route, k.key);
      INFO(reply.status << " " << reply.body);
      if ((*needed & bit(k.scope)) != 0) {
        CHECK(reply.status != 403);
        CHECK(error_code(reply) != "UNAUTHORIZED");
      } else {
        CHECK(reply.status == 403);
        CHECK(error_code(reply) == "FORBIDDEN");
        CHECK(reply.body.find("lacks the") != std::string::npos);
      }
    }
    // The owner key holds every scope.
    CHECK(d.call(route, d.owner_key).status != 403);
  }
  CHECK(walked >= 25);
  // Nothing was changed by any of these calls: the keys are all still there and unrevoked.
  const auto all = must(d.store->list_api_keys(must(d.store->first_user())->id));
  CHECK(all.size() == 5);
  for (const auto& k : all) CHECK_FALSE(k.revoked_at);
}

TEST_CASE("a route's required scope reads as a rule", "[routes][scopes]") {
  using alumia::daemon::RequiredScope;
  const RequiredScope tokens = Scope::tokens;
  CHECK(tokens.describe() == "'tokens'");
  CHECK(tokens.allows(bit(Scope::tokens) | bit(Scope::admin)));
  CHECK_FALSE(tokens.allows(bit(Scope::admin)));
  const auto hooks = RequiredScope::either(Scope::webhooks, Scope::admin);
  CHECK(hooks.describe() == "'webhooks' or 'admin'");
  CHECK(hooks.allows(bit(Scope::admin)));
  CHECK(hooks.allows(bit(Scope::webhooks)));
  CHECK_FALSE(hooks.allows(bit(Scope::connections) | bit(Scope::tokens)));
  CHECK(RequiredScope::any_key().allows(bit(Scope::connections)));
  CHECK_FALSE(RequiredScope::any_key().is_no_key());
  CHECK(RequiredScope::no_key().is_no_key());
}

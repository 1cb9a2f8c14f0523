// Every route of the table, called through the real dispatch() with a real DaemonContext over a temp
// store (no sockets), with a key of each scope (SPEC §2): FORBIDDEN exactly where the key lacks the
// route's scope, never where it holds it. The walk iterates route_table() itself, so a route added
// later is covered, and it must be given its SPEC scope below or this test fails.
#include "routes.hpp"

#include "daemon_under_test.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

using alumia::ErrorCode;
using alumia::Scope;
using alumia::daemon::Auth;
using alumia::daemon::Route;
using nlohmann::json;

using alumia::test::must;

// The daemon's context over a temp store (daemon_under_test.hpp), and a call of any route of the table.
struct DaemonUnderTest : alumia::test::DaemonUnderTest {
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
    req.listener = (route.listeners & alumia::daemon::k_on_control) != 0 ? alumia::http::ListenerKind::control
                                                                         : alumia::http::ListenerKind::public_;
    return alumia::daemon::dispatch(ctx, req);
  }
};

std::string error_code(const alumia::http::Response& r) { return alumia::test::error_code_of(r); }

constexpr unsigned bit(Scope s) { return static_cast<unsigned>(s); }

// SPEC §2, written out independently of the table: the scopes of which a key must hold at least one.
// A route with no rule here fails the test until its scope is decided.
std::optional<unsigned> spec_scopes(std::string_view method, std::string_view pattern) {
  const auto starts = [&](std::string_view p) { return pattern.starts_with(p); };
  // API keys, OAuth clients and the admin views (SPEC §9).
  if (starts("/api/v1/api-keys") || starts("/api/v1/oauth-clients/") || pattern == "/metrics" ||
      starts("/api/v1/admin/") || starts("/admin/"))
    return bit(Scope::admin);
  // Webhook endpoints and setup commands (/connections/:id/commands/...).
  if (starts("/api/v1/webhook-endpoints") || starts("/api/v1/connector-events") || starts("/api/v1/jobs") ||
      pattern.find("/commands/") != std::string_view::npos)
    return bit(Scope::webhooks) | bit(Scope::admin);
  if (pattern == "/api/v1/connections/:id/token") return bit(Scope::tokens);
  if (starts("/api/v1/connections")) return bit(Scope::connections);
  // Any valid key: daemon status, its diagnostics (the caller's own key, the store's files, the base URL)
  // and the connector catalog hold no user data and no secret.
  if (method == "GET" &&
      (pattern == "/api/v1/status" || pattern == "/api/v1/diagnostics" || starts("/api/v1/connectors")))
    return alumia::k_all_scopes;
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
    keys.push_back({s, must(d.keys.issue_key(must(d.store->first_user())->id, "one scope", bit(s)))});

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

TEST_CASE("dispatch: 404 and 405 in the envelope, HEAD through GET, the body cap before the key", "[routes]") {
  DaemonUnderTest d;
  auto send = [&](std::string method, std::string path, std::optional<std::string> key, std::string body = {}) {
    alumia::http::Request req;
    req.method = std::move(method);
    req.path = path;
    req.target = path;
    req.body = std::move(body);
    if (key) req.headers.emplace_back("Authorization", "Bearer " + *key);
    return alumia::daemon::dispatch(d.ctx, req);
  };
  auto none = send("GET", "/api/v1/nothing", d.owner_key);
  CHECK(none.status == 404);
  CHECK(error_code(none) == "NOT_FOUND");
  CHECK(json::parse(none.body)["success"] == false);
  auto wrong_method = send("PUT", "/api/v1/status", d.owner_key);
  CHECK(wrong_method.status == 405);
  CHECK(error_code(wrong_method) == "BAD_REQUEST");  // the error table: HTTP 405, wire code BAD_REQUEST
  // Neither needs a key: nothing is looked up for a route that does not exist.
  CHECK(send("GET", "/api/v1/nothing", std::nullopt).status == 404);
  CHECK(send("PUT", "/api/v1/status", std::nullopt).status == 405);

  auto status = send("GET", "/api/v1/status", d.owner_key);
  CHECK(status.status == 200);
  CHECK(json::parse(status.body)["success"] == true);
  CHECK(send("HEAD", "/api/v1/status", d.owner_key).status == 200);
  CHECK(error_code(send("HEAD", "/api/v1/status", std::nullopt)) == "UNAUTHORIZED");

  // Path parameters reach the handler: an unknown id is the handler's NOT_FOUND, naming it.
  auto missing = send("GET", "/api/v1/connections/00000000-0000-4000-8000-00000000abcd", d.owner_key);
  CHECK(missing.status == 404);
  CHECK(missing.body.find("00000000-0000-4000-8000-00000000abcd") != std::string::npos);

  // A JSON route's body cap (128 KiB) is applied before the key is read.
  const std::string big(alumia::daemon::k_json_body_cap + 1, 'x');
  auto too_big = send("POST", "/api/v1/connections", std::nullopt, big);
  CHECK(too_big.status == 413);
  CHECK(error_code(too_big) == "PAYLOAD_TOO_LARGE");
}

TEST_CASE("admit_body: the one body-size rule, on a length before the body is read", "[routes]") {
  using alumia::daemon::admit_body;
  using alumia::daemon::match_route;
  using alumia::http::ListenerKind;
  DaemonUnderTest d;
  auto refused = [&](std::string_view method, std::string_view path, std::size_t length) -> std::optional<ErrorCode> {
    auto m = match_route(method, path, ListenerKind::control);
    auto st = admit_body(d.ctx, m, length);
    if (st) return std::nullopt;
    return st.error().code;
  };
  // A JSON route: its 128 KiB cap, to the byte; no route at all: the same cap (404 comes after).
  const std::size_t json_cap = alumia::daemon::k_json_body_cap;
  CHECK_FALSE(refused("POST", "/api/v1/connections", json_cap));
  CHECK(refused("POST", "/api/v1/connections", json_cap + 1) == ErrorCode::payload_too_large);
  CHECK_FALSE(refused("GET", "/api/v1/nothing", json_cap));
  CHECK(refused("GET", "/api/v1/nothing", json_cap + 1) == ErrorCode::payload_too_large);

  // The receiver: an unknown endpoint gets the 256 KiB default; what it admits carries the lookup (none
  // here) for the handler, which does not look again.
  const std::string unknown = "/api/v1/connectors/webhooks/github/2b1c8f0e-9f1a-4c1e-8d5a-3f1e2d3c4b5a";
  auto m = match_route("POST", unknown, ListenerKind::control);
  REQUIRE(m.route != nullptr);
  REQUIRE(admit_body(d.ctx, m, 256 * 1024));
  REQUIRE(m.admitted.has_value());
  REQUIRE(m.admitted->endpoint.has_value());
  CHECK(*m.admitted->endpoint == nullptr);
  CHECK(refused("POST", unknown, 256 * 1024 + 1) == ErrorCode::payload_too_large);
  // Over the route's own cap (25 MiB), refused before any endpoint is looked up.
  CHECK(refused("POST", unknown, alumia::daemon::k_webhook_body_cap + 1) == ErrorCode::payload_too_large);
  // The handshake route (GET) is admitted the same way.
  auto get = match_route("GET", unknown, ListenerKind::control);
  REQUIRE(admit_body(d.ctx, get, 0));
  CHECK(get.admitted.has_value());
}

TEST_CASE("admit_body_now: the listener's poll thread admits without the store, or leaves it to a worker", "[routes]") {
  using alumia::daemon::admit_body_now;
  using alumia::daemon::match_route;
  using alumia::http::ListenerKind;
  DaemonUnderTest d;
  // A route without admission, and a cap refusal, are answered at once.
  auto json_route = match_route("POST", "/api/v1/connections", ListenerKind::control);
  REQUIRE(admit_body_now(d.ctx, json_route, 10).has_value());
  CHECK(admit_body_now(d.ctx, json_route, 10)->has_value());
  CHECK(admit_body_now(d.ctx, json_route, alumia::daemon::k_json_body_cap + 1)->error().code ==
        ErrorCode::payload_too_large);
  // The receiver: an endpoint id not in the cache would be read from the store: nullopt (a worker admits).
  auto created = d.send("POST", "/api/v1/webhook-endpoints", R"({"provider":"github"})");
  REQUIRE(created.status == 201);
  const std::string id = nlohmann::json::parse(created.body)["data"]["endpoint"]["id"];
  const std::string path = "/api/v1/connectors/webhooks/github/" + id;
  auto m = match_route("POST", path, ListenerKind::public_);
  CHECK_FALSE(admit_body_now(d.ctx, m, 100).has_value());
  // Once admit_body has looked it up (the cache holds it), the poll thread admits it, with the lookup.
  REQUIRE(alumia::daemon::admit_body(d.ctx, m, 100));
  auto again = match_route("POST", path, ListenerKind::public_);
  const auto now = admit_body_now(d.ctx, again, 100);
  REQUIRE(now.has_value());
  CHECK(now->has_value());
  REQUIRE(again.admitted.has_value());
  REQUIRE(again.admitted->endpoint.has_value());
  CHECK((*again.admitted->endpoint)->record.id == id);
  // A path segment that is no endpoint id needs no lookup at all.
  auto stranger = match_route("POST", "/api/v1/connectors/webhooks/github/not-an-id", ListenerKind::public_);
  CHECK(admit_body_now(d.ctx, stranger, 100).has_value());
}

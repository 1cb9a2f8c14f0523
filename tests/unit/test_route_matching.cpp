// daemon::match_route over the one route table, without sockets or a context: path parameters, HEAD
// served by GET, 405 versus 404, and the listener a route is served on. (Dispatch through the table,
// with keys and scopes, is in test_route_scopes.cpp.)
#include "routes.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <string>

using alumia::daemon::match_route;
using alumia::http::ListenerKind;

namespace {

std::string pattern_of(const alumia::daemon::RouteMatch& m) { return m.route ? std::string(m.route->pattern) : ""; }

// The route's own pattern with each ":name" replaced by "v-name".
std::string example_path(std::string_view pattern) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size();) {
    if (pattern[i] == ':') {
      const auto end = std::min(pattern.find('/', i), pattern.size());
      out += "v-" + std::string(pattern.substr(i + 1, end - i - 1));
      i = end;
    } else {
      out += pattern[i++];
    }
  }
  return out;
}

}  // namespace

TEST_CASE("routes: path parameters are captured by name", "[routes]") {
  auto m = match_route("GET", "/api/v1/connections/abc-123", ListenerKind::control);
  CHECK(pattern_of(m) == "/api/v1/connections/:id");
  CHECK(m.params == std::map<std::string, std::string>{{"id", "abc-123"}});
  CHECK_FALSE(m.other_method);

  auto hook = match_route("POST", "/api/v1/connectors/webhooks/github/ep-1", ListenerKind::public_);
  CHECK(pattern_of(hook) == "/api/v1/connectors/webhooks/:provider/:endpointId");
  CHECK(hook.params == std::map<std::string, std::string>{{"provider", "github"}, {"endpointId", "ep-1"}});

  // A fixed segment wins where the table lists it: "oauth" is not taken for a connection id.
  CHECK(pattern_of(match_route("GET", "/api/v1/connections/oauth/start", ListenerKind::control)) ==
        "/api/v1/connections/oauth/start");
  CHECK(pattern_of(match_route("POST", "/api/v1/jobs/retry", ListenerKind::control)) == "/api/v1/jobs/retry");
  CHECK(pattern_of(match_route("POST", "/api/v1/jobs/j-1/retry", ListenerKind::control)) == "/api/v1/jobs/:id/retry");
}

TEST_CASE("routes: HEAD is served by the GET route", "[routes]") {
  auto head = match_route("HEAD", "/api/v1/status", ListenerKind::control);
  REQUIRE(head.route != nullptr);
  CHECK(head.route->method == "GET");
  CHECK(match_route("HEAD", "/api/v1/connections/x", ListenerKind::control).route->method == "GET");
  // Only GET lends itself to HEAD: a POST-only path answers 405.
  auto post_only = match_route("HEAD", "/api/v1/jobs/retry", ListenerKind::control);
  CHECK(post_only.route == nullptr);
  CHECK(post_only.other_method);
}

TEST_CASE("routes: a known path with another method is 405, an unknown path 404", "[routes]") {
  for (const char* method : {"PUT", "POST", "DELETE", "PATCH", "OPTIONS", "get"}) {
    INFO(method);
    auto m = match_route(method, "/api/v1/status", ListenerKind::control);
    CHECK(m.route == nullptr);
    CHECK(m.other_method);  // → METHOD_NOT_ALLOWED
  }
  for (const char* path : {"/", "/api", "/api/v1", "/api/v1/nothing", "/api/v1/connections/a/b/c", "/API/V1/STATUS",
                           "/api/v2/status", "/api/v1/statuses"}) {
    INFO(path);
    auto m = match_route("GET", path, ListenerKind::control);
    CHECK(m.route == nullptr);
    CHECK_FALSE(m.other_method);  // → NOT_FOUND
  }
}

TEST_CASE("routes: each route is found on its listeners only", "[routes]") {
  std::size_t control = 0;
  for (const auto& route : alumia::daemon::route_table()) {
    const std::string path = example_path(route.pattern);
    CAPTURE(route.method, route.pattern, path);
    for (const ListenerKind l : {ListenerKind::control, ListenerKind::public_}) {
      const bool served = (route.listeners & (l == ListenerKind::control ? alumia::daemon::k_on_control
                                                                         : alumia::daemon::k_on_public)) != 0;
      auto m = match_route(route.method, path, l);
      if (served) {
        CHECK(m.route == &route);
        for (const auto& [name, value] : m.params) CHECK(value == "v-" + name);
      } else {
        // Not this route. (Another route may share the path on this listener; none does today.)
        CHECK(m.route == nullptr);
      }
    }
    control += (route.listeners & alumia::daemon::k_on_control) != 0;
  }
  CHECK(control >= 30);
  // Every control route is refused on the public listener unless it is flagged for it.
  auto status_on_public = match_route("GET", "/api/v1/status", ListenerKind::public_);
  CHECK(status_on_public.route == nullptr);
  CHECK_FALSE(status_on_public.other_method);
}

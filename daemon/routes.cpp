#include "routes.hpp"

#include <alumia/base/metrics.hpp>
#include <alumia/crypto/crypto.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>

namespace alumia::daemon {
namespace {

using nlohmann::json;

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
  }
  return out;
}

// Matches already split segments; fills params only on a match.
bool match_segments(const std::vector<std::string_view>& ps, const std::vector<std::string_view>& xs,
                    std::map<std::string, std::string>& params) {
  if (ps.size() != xs.size()) return false;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    const bool param = !ps[i].empty() && ps[i].front() == ':';
    if (param ? xs[i].empty() : ps[i] != xs[i]) return false;
  }
  params.clear();
  for (std::size_t i = 0; i < ps.size(); ++i)
    if (!ps[i].empty() && ps[i].front() == ':') params.emplace(std::string(ps[i].substr(1)), std::string(xs[i]));
  return true;
}

std::vector<Route> build_table() {
  std::vector<Route> routes;
  add_meta_routes(routes);
  add_key_routes(routes);
  add_connector_routes(routes);
  add_oauth_routes(routes);  // static /connections/oauth/* paths before /connections/:id
  add_connection_routes(routes);
  add_webhook_routes(routes);
  add_setup_routes(routes);
  add_metrics_routes(routes);
  add_page_routes(routes);
  // A route that reads a key states what the key must hold; a public one reads none.
  for (const Route& r : routes) {
    if (std::holds_alternative<AdmittedHandler>(r.handler) != static_cast<bool>(r.admit_body))
      throw std::logic_error("route " + std::string(r.method) + " " + std::string(r.pattern) +
                             " must have admit_body exactly when its handler takes the admission");
    if (r.handle_now && (r.auth != Auth::public_ || !std::holds_alternative<AdmittedHandler>(r.handler)))
      throw std::logic_error("route " + std::string(r.method) + " " + std::string(r.pattern) +
                             " has handle_now but is not a public route with an admitted handler");
    if (r.admit_now && !r.admit_body)
      throw std::logic_error("route " + std::string(r.method) + " " + std::string(r.pattern) +
                             " has admit_now without admit_body");
    if ((r.auth == Auth::public_) != r.scope.is_no_key())
      throw std::logic_error("route " + std::string(r.method) + " " + std::string(r.pattern) +
                             (r.auth == Auth::public_ ? " is public but names a scope"
                                                      : " reads a key but names no scope (use RequiredScope)"));
  }
  return routes;
}

// GET /metrics: requests and their latency per route, labelled by the route's pattern and method
// (never the raw path: the series are bounded by the table) and the status class. A route's series
// are registered on its first request, so a scrape lists the routes in use; the pointers are kept
// here, so that recording is the atomic adds alone.
struct RouteSeries {
  std::atomic<metrics::Histogram*> latency{nullptr};
  std::array<std::atomic<metrics::Counter*>, 5> by_class{};  // 1xx … 5xx
};

void record_request(const Route* route, int status, std::chrono::steady_clock::duration took) {
  static std::vector<RouteSeries> per_route(route_table().size() + 1);  // the last: no route matched
  const std::size_t i = route ? static_cast<std::size_t>(route - route_table().data()) : route_table().size();
  const int cls = std::clamp(status / 100, 1, 5);
  // The labels are built only to register a series (its first request), never on the recording path.
  const auto route_labels = [&] {
    return std::pair{route ? std::string(route->pattern) : "(unmatched)", route ? std::string(route->method) : "(any)"};
  };
  RouteSeries& s = per_route[i];
  auto* counter = s.by_class[static_cast<std::size_t>(cls - 1)].load(std::memory_order_acquire);
  if (!counter) {
    auto [pattern, method] = route_labels();
    counter = &metrics::process_registry().counter(
        "alumia_http_requests_total", "requests answered by the router, per route and status class",
        {{"route", pattern}, {"method", method}, {"status", std::to_string(cls) + "xx"}});
    s.by_class[static_cast<std::size_t>(cls - 1)].store(counter, std::memory_order_release);
  }
  auto* latency = s.latency.load(std::memory_order_acquire);
  if (!latency) {
    auto [pattern, method] = route_labels();
    latency =
        &metrics::process_registry().histogram("alumia_http_request_duration_seconds",
                                               "time from routing to the response (auth, handler, envelope), per route",
                                               metrics::latency_buckets(), {{"route", pattern}, {"method", method}});
    s.latency.store(latency, std::memory_order_release);
  }
  counter->inc();
  latency->observe(std::chrono::duration<double>(took).count());
}

}  // namespace

std::string RequiredScope::describe() const {
  switch (m_kind) {
    case Kind::no_key:
      return "no key";
    case Kind::any_key:
      return "any valid key";
    case Kind::scopes:
      break;
  }
  std::string out;
  for (const auto& name : scope_names(m_any_of)) out += (out.empty() ? "'" : "' or '") + name;
  return out + "'";
}

const std::vector<Route>& route_table() {
  static const std::vector<Route> k_routes = build_table();
  return k_routes;
}

RouteMatch match_route(std::string_view method, std::string_view path, http::ListenerKind listener) {
  RouteMatch m;
  const unsigned bit = listener == http::ListenerKind::control ? k_on_control : k_on_public;
  // The patterns split once (route_table() never changes); the path once per call.
  static const std::vector<std::vector<std::string_view>> patterns = [] {
    std::vector<std::vector<std::string_view>> out;
    for (const auto& r : route_table()) out.push_back(split_path(r.pattern));
    return out;
  }();
  const auto xs = split_path(path);
  const auto& routes = route_table();
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const Route& r = routes[i];
    if ((r.listeners & bit) == 0) continue;
    std::map<std::string, std::string> params;
    if (!match_segments(patterns[i], xs, params)) continue;
    if (r.method == method || (method == "HEAD" && r.method == "GET")) {
      m.route = &r;
      m.params = std::move(params);
      return m;
    }
    m.other_method = true;
  }
  return m;
}

Status admit_body(DaemonContext& ctx, RouteMatch& m, std::size_t length) {
  const std::size_t cap = m.route ? m.route->body_cap : k_json_body_cap;
  if (length > cap)
    return fail(ErrorCode::payload_too_large, "body of " + std::to_string(length) + " bytes exceeds the limit of " +
                                                  std::to_string(cap) + " bytes for this route");
  if (m.route && m.route->admit_body) {
    auto admitted = m.route->admit_body(ctx, m.params, length);
    if (!admitted) return std::unexpected(admitted.error());
    m.admitted = std::move(*admitted);
  }
  return {};
}

std::optional<Status> admit_body_now(DaemonContext& ctx, RouteMatch& m, std::size_t length) {
  const std::size_t cap = m.route ? m.route->body_cap : k_json_body_cap;
  if (length > cap || !m.route || !m.route->admit_body) return admit_body(ctx, m, length);
  if (!m.route->admit_now) return std::nullopt;
  auto admitted = m.route->admit_now(ctx, m.params, length);
  if (!admitted) return std::nullopt;
  if (!*admitted) return std::unexpected(admitted->error());
  m.admitted = std::move(**admitted);
  return Status{};
}

http::Response dispatch(DaemonContext& ctx, http::Request& req) {
  RouteMatch m = match_route(req.method, req.path, req.listener);
  if (m.route)
    if (auto st = admit_body(ctx, m, req.body.size()); !st) return error_response(st.error());
  return dispatch(ctx, req, std::move(m));
}

namespace {
http::Response dispatch_matched(DaemonContext& ctx, http::Request& req, RouteMatch m);
http::Response render(DaemonContext& ctx, const http::Request& req, Result<http::Response> result);
}  // namespace

bool dispatch_now(DaemonContext& ctx, http::Request& req, RouteMatch& m, std::function<void(http::Response)> done) {
  if (!m.route || !m.route->handle_now || !m.admitted) return false;
  const Route* route = m.route;
  const auto start = std::chrono::steady_clock::now();
  req.params = std::move(m.params);
  // Once: an exception after the handler handed the request on must not answer it twice.
  auto answered = std::make_shared<std::atomic<bool>>(false);
  auto finish = [&ctx, &req, route, start, answered, done = std::move(done)](Result<http::Response> result) {
    if (answered->exchange(true)) return;
    http::Response res = render(ctx, req, std::move(result));  // `req` lives until its answer is sent
    record_request(route, res.status, std::chrono::steady_clock::now() - start);
    done(std::move(res));
  };
  try {
    if (route->handle_now(ctx, req, *m.admitted, finish)) return true;
  } catch (const std::exception& e) {
    finish(fail(ErrorCode::internal, e.what()));
    return true;
  }
  m.params = std::move(req.params);
  return false;
}

http::Response dispatch(DaemonContext& ctx, http::Request& req, RouteMatch m) {
  const auto start = std::chrono::steady_clock::now();
  const Route* route = m.route;
  http::Response res = dispatch_matched(ctx, req, std::move(m));
  record_request(route, res.status, std::chrono::steady_clock::now() - start);
  return res;
}

namespace {
http::Response dispatch_matched(DaemonContext& ctx, http::Request& req, RouteMatch m) {
  if (!m.route) {
    if (m.other_method)
      return error_response(
          Error{ErrorCode::method_not_allowed, "method " + req.method + " is not allowed on " + req.path, 0});
    return error_response(Error{ErrorCode::not_found, "no route " + req.method + " " + req.path, 0});
  }
  const Route& route = *m.route;
  req.params = std::move(m.params);

  std::optional<Caller> caller;
  // A ticket_or_key route reads a key on the control listener only: on the public listener it takes the
  // ticket alone, and a key there is never looked up (the handler refuses it).
  const bool key_presented = req.header("authorization").has_value();
  if (route.auth == Auth::key ||
      (route.auth == Auth::ticket_or_key && key_presented && req.listener == http::ListenerKind::control)) {
    // Failed authentication per client (auth_failures.hpp): a client out of allowance is refused
    // before its key is looked up; each refused key is held a moment and costs allowance.
    auto& failures = ctx.keys.auth_failures();
    if (key_presented)
      if (const int64_t wait_ms = failures.blocked_for(req.remote_addr, ctx.clock.now_ms()); wait_ms > 0)
        return error_response(Error{ErrorCode::too_many_requests,
                                    "too many failed authentications from this client; retry in " +
                                        std::to_string((wait_ms + 999) / 1000) +
                                        " s with a valid key (the CLI reads the key file; ALUMIA_API_KEY overrides it)",
                                    static_cast<int>((wait_ms + 999) / 1000)});
    auto who = ctx.keys.authenticate(req.header("authorization"));
    if (!who) {
      auto refused = error_response(who.error());
      if (key_presented) {
        failures.record_failure(req.remote_addr, ctx.clock.now_ms());
        refused.hold = std::chrono::milliseconds(failures.policy().delay_ms);  // by the listener, no worker held
      }
      return refused;
    }
    caller = std::move(*who);
    if (!route.scope.allows(caller->key.scopes))
      return error_response(Error{ErrorCode::forbidden,
                                  "this key lacks the " + route.scope.describe() + " scope that " + req.method + " " +
                                      std::string(route.pattern) +
                                      " needs; use a key that holds it (the owner key in the key file holds every "
                                      "scope), or have one made with `alumia-connect keys create --scope SCOPE`",
                                  0});
  }
  return render(ctx, req, [&]() -> Result<http::Response> {
    try {
      if (const auto* handler = std::get_if<Handler>(&route.handler))
        return (*handler)(ctx, req, caller ? &*caller : nullptr);
      if (!m.admitted) return fail(ErrorCode::internal, "route " + std::string(route.pattern) + " was not admitted");
      return std::get<AdmittedHandler>(route.handler)(ctx, req, *m.admitted);
    } catch (const std::exception& e) {
      return fail(ErrorCode::internal, e.what());
    }
  }());
}

// A handler's result as the answer: an internal error's detail goes to the log under an id, never to
// the client.
http::Response render(DaemonContext& ctx, const http::Request& req, Result<http::Response> result) {
  if (result) return std::move(*result);
  Error e = result.error();
  if (e.code == ErrorCode::internal) {
    const std::string id = ctx.random.hex(6);
    spdlog::error("internal error {} on {} {}: {}", id, req.method, req.path, e.message);
    e.message = "internal error " + id + " (see the daemon log)";
  }
  return error_response(e);
}

}  // namespace

}  // namespace alumia::daemon

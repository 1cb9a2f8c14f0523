#pragma once
// The one route table: method, path pattern, handler, auth, required scope, body cap, listeners, summary.
// It is iterated once to serve both listeners; unknown routes and methods answer in the envelope.
#include "context.hpp"
#include "wire.hpp"

#include <alumia/net/http.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace alumia::daemon {

enum class Auth {
  key,            // Authorization: Bearer alm_…
  ticket_or_key,  // the browser-opened oauthUrl: a one-time ticket, or the key
  public_,        // providers and browsers: checked by the handler itself (signature, state)
};

inline constexpr unsigned k_on_control = 1;
inline constexpr unsigned k_on_public = 2;
inline constexpr std::size_t k_json_body_cap = 128 * 1024;
inline constexpr std::size_t k_webhook_body_cap = 25 * 1024 * 1024;  // per endpoint: Route::admit_body

// What a caller's key must hold to call a route (SPEC §2). Every row of the table states it, so the
// table alone tells each route's requirement, and dispatch() applies it with no special case.
class RequiredScope {
 public:
  // The key holds `s`. Implicit, so that a row reads `Scope::tokens`.
  constexpr RequiredScope(Scope s) noexcept : m_kind(Kind::scopes), m_any_of(static_cast<unsigned>(s)) {}
  // The key holds `a` or `b` (or both).
  static constexpr RequiredScope either(Scope a, Scope b) noexcept {
    return {Kind::scopes, static_cast<unsigned>(a) | static_cast<unsigned>(b)};
  }
  // Any valid key, whatever its scopes: a deliberate choice, for reads with no user data or secret.
  static constexpr RequiredScope any_key() noexcept { return {Kind::any_key, 0}; }
  // No key at all: the public routes (Auth::public_), whose handlers check their caller themselves.
  static constexpr RequiredScope no_key() noexcept { return {Kind::no_key, 0}; }

  bool is_no_key() const noexcept { return m_kind == Kind::no_key; }
  bool allows(unsigned key_scopes) const noexcept { return m_kind != Kind::scopes || (key_scopes & m_any_of) != 0; }
  // "'tokens'", "'webhooks' or 'admin'", "any valid key", "no key": for messages and docs.
  std::string describe() const;

 private:
  enum class Kind { no_key, any_key, scopes };
  constexpr RequiredScope(Kind kind, unsigned any_of) noexcept : m_kind(kind), m_any_of(any_of) {}
  Kind m_kind;
  unsigned m_any_of;  // Kind::scopes: the key holds at least one of these
};

// Handlers may take from the request (the receiver moves its body into the store).
using Handler = std::function<Result<http::Response>(DaemonContext&, http::Request&, const Caller*)>;
// The receiver's handler: a public route with admit_body, given what admit_body learned before the
// body was read (the endpoint, looked up once per delivery).
using AdmittedHandler = std::function<Result<http::Response>(DaemonContext&, http::Request&, const AdmittedDelivery&)>;

struct Route {
  std::string_view method;
  std::string_view pattern;  // segments; ":name" captures one segment
  std::variant<Handler, AdmittedHandler> handler;
  Auth auth = Auth::key;
  RequiredScope scope;  // no default: every row names it; no_key exactly when auth is public_ (checked)
  std::size_t body_cap = k_json_body_cap;
  unsigned listeners = k_on_control;
  std::string_view summary;
  // Where the cap depends on the target (the receiver: the endpoint's maxBodyBytes), the check of
  // Content-Length before the body is read; body_cap stays the hard limit of the route. Exactly the
  // routes with an AdmittedHandler have one (checked), and its answer reaches that handler.
  std::function<Result<AdmittedDelivery>(DaemonContext&, const std::map<std::string, std::string>& params,
                                         std::size_t content_length)>
      admit_body = nullptr;
  // admit_body's answer when it can give it without blocking (reading the store), else nullopt: the
  // listener calls this on its poll thread and, on nullopt, admit_body on a worker. Unset: always nullopt.
  std::function<std::optional<Result<AdmittedDelivery>>(
      DaemonContext&, const std::map<std::string, std::string>& params, std::size_t content_length)>
      admit_now = nullptr;
  // The handler's answer without blocking, where it can give one (the receiver: a delivery that
  // WebhookService::receive_now takes): false, having taken nothing from the request, when it
  // cannot, and the listener runs the handler on a worker; true, and `done` gets the answer exactly
  // once, on this thread or later on another (the intake log's flusher). Only on public routes with
  // an AdmittedHandler (checked). Unset: always false.
  std::function<bool(DaemonContext&, http::Request&, const AdmittedDelivery&,
                     std::function<void(Result<http::Response>)> done)>
      handle_now = nullptr;
};

const std::vector<Route>& route_table();

struct RouteMatch {
  const Route* route = nullptr;
  std::map<std::string, std::string> params;
  bool other_method = false;                 // the path exists with another method → 405
  std::optional<AdmittedDelivery> admitted;  // what route->admit_body answered (admit_body() below)
};
RouteMatch match_route(std::string_view method, std::string_view path, http::ListenerKind listener);

// The body-size rule, its one owner: a body of `length` bytes against the matched route's body_cap
// (128 KiB when nothing matched), then the route's admit_body, whose answer it keeps in `m`. The
// server applies it to Content-Length before the body is read (chunked bodies are refused, so the body
// is never longer); PAYLOAD_TOO_LARGE when over.
Status admit_body(DaemonContext& ctx, RouteMatch& m, std::size_t length);
// The same rule where it can be applied without blocking (the route's admit_now, or no admit_body at
// all); nullopt when only admit_body() can answer: the listener's poll thread calls this one.
std::optional<Status> admit_body_now(DaemonContext& ctx, RouteMatch& m, std::size_t length);

// The whole pipeline after transport checks: match → auth → scope → handler → envelope (wire.hpp).
// This form matches the route and admits the body itself (admit_body on its size).
http::Response dispatch(DaemonContext& ctx, http::Request& req);
// The server's form: `m` was matched and admitted (admit_body) before the body was read.
http::Response dispatch(DaemonContext& ctx, http::Request& req, RouteMatch m);
// dispatch() through the route's handle_now, on the listener's poll thread: false (nothing taken
// from `req` or `m`) when the route has none or it declined; then dispatch() on a worker. True:
// `done` gets the rendered answer exactly once (on this thread or another), while `req` lives.
bool dispatch_now(DaemonContext& ctx, http::Request& req, RouteMatch& m, std::function<void(http::Response)> done);

// Handler groups, one file each; each appends its routes.
void add_meta_routes(std::vector<Route>& routes);
void add_key_routes(std::vector<Route>& routes);
void add_connector_routes(std::vector<Route>& routes);
void add_connection_routes(std::vector<Route>& routes);
void add_oauth_routes(std::vector<Route>& routes);
void add_webhook_routes(std::vector<Route>& routes);
void add_setup_routes(std::vector<Route>& routes);
void add_metrics_routes(std::vector<Route>& routes);
void add_page_routes(std::vector<Route>& routes);  // the admin pages (handlers/pages*.cpp, SPEC §9)
void add_connector_page_routes(std::vector<Route>& routes);

// The admin view's event filters (?endpoint=&provider=&state=&since=), for the JSON route and the page.
Result<AdminEventsQuery> admin_events_query(DaemonContext& ctx, const http::Request& req);

}  // namespace alumia::daemon

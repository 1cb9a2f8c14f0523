// OAuth routes (SPEC §6): the ticketed start, start-by-connector, the callback and its result
// page, reconnect URLs, and OAuth client configuration.
#include <alumia/base/try.hpp>
#include "pages/oauth_result.hpp"
#include "routes.hpp"

#include <alumia/oauth/oauth.hpp>

#include <spdlog/spdlog.h>

namespace alumia::daemon {
namespace {

using nlohmann::json;

http::Response redirect(int status, const std::string& location) {
  http::Response r;
  r.status = status;
  r.content_type.clear();
  r.headers.emplace_back("Location", location);
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  return r;
}

bool select_account(const http::Request& req) {
  auto v = req.query_param("selectAccount");
  return v && (*v == "1" || *v == "true");
}

// The 302 to the provider carries the cookie that binds the flow to this browser (or to the script
// that started it with its key and follows the redirects itself with a cookie jar).
Result<http::Response> begin_for(DaemonContext& ctx, const Connection& c, bool select) {
  if (c.auth_type != AuthType::oauth)
    return fail(ErrorCode::bad_request, "connector " + c.connector_slug + " does not use OAuth");
  auto started = TRY(ctx.oauth.begin(c, select));
  http::Response r = redirect(302, started.authorize_url);
  r.headers.emplace_back("Set-Cookie", std::move(started.set_cookie));
  return r;
}

// GET|POST /api/v1/connections/:id/oauth — the URL a browser opens: a one-time ticket or the key. On
// the public listener (where an oauthUrl points when the redirect base is there), the ticket only.
Result<http::Response> start_by_id(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  const std::string& id = req.params.at("id");
  if (!is_uuid(id)) return fail(ErrorCode::bad_request, "'" + id + "' is not a connection id (a UUID)");
  if (req.listener == http::ListenerKind::public_ && req.header("authorization"))
    return fail(ErrorCode::unauthorized,
                "the public listener takes no API key: open the oauthUrl (one-time ticket) there, or use the key "
                "on the control listener");
  if (caller) {
    auto c = TRY(ctx.connections.get(*caller, id));
    return begin_for(ctx, c, select_account(req));
  }
  const auto ticket = req.query_param("ticket");
  const auto grant = ticket ? TRY(ctx.tickets.redeem(*ticket, id)) : std::nullopt;
  if (!grant)
    return fail(ErrorCode::unauthorized,
                "this link needs a valid one-time ticket (they are single use, last 10 minutes, and a newer link "
                "for the connection voids them); start again with `alumia-connect connect`");
  // The ticket acts with the scopes of the key that minted it (SPEC §2).
  if (!has_scope(grant->scopes, Scope::connections))
    return fail(ErrorCode::forbidden,
                "this link was made with a key that lacks the 'connections' scope; make a new one with a key that "
                "has it (`alumia-connect connect --reconnect " +
                    id + "`)");
  auto user = ctx.store.find_user(grant->user_id);
  if (!user || !*user) return fail(ErrorCode::unauthorized, "the ticket's user no longer exists");
  Caller owner{**user, {}};
  owner.key.user_id = owner.user.id;
  owner.key.scopes = grant->scopes;
  auto c = TRY(ctx.connections.get(owner, id));
  return begin_for(ctx, c, select_account(req));
}

// GET /api/v1/connections/oauth/start?connector=SLUG[&label=][&selectAccount=1]
Result<http::Response> start_by_connector(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  StartConnection request{req.query_param("connector").value_or(""), req.query_param("label").value_or("")};
  if (request.connector_slug.empty()) return fail(ErrorCode::bad_request, "missing query parameter 'connector'");
  auto r = TRY(ctx.connections.start(*caller, request));
  return begin_for(ctx, r.connection, select_account(req));
}

void page_headers(http::Response& r) {
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
  r.headers.emplace_back("X-Frame-Options", "DENY");
}

// GET /api/v1/connections/oauth/callback — public; state- and cookie-checked. 303s to a clean result
// URL: a remembered outcome for a consumed flow, a fixed page for a refusal (nothing kept in memory).
Result<http::Response> callback(DaemonContext& ctx, const http::Request& req, const Caller*) {
  const auto outcome = ctx.oauth.complete(req.query, req.headers);
  // Relative to the callback's own URL, so that a redirect base with a path prefix behind a proxy
  // (https://example.com/alumia) keeps its prefix: …/oauth/callback → …/oauth/result.
  constexpr std::string_view k_result = "result";
  http::Response r;
  if (outcome.refusal != oauth::CallbackRefusal::none) {
    r = redirect(303, std::string(k_result) + "?refused=" + std::string(oauth::refusal_name(outcome.refusal)));
  } else {
    r = redirect(303, std::string(k_result) + "?id=" + TRY(ctx.oauth.remember(outcome)));
    if (!outcome.connection_id.empty())  // the flow is spent (none was taken when the store failed)
      r.headers.emplace_back("Set-Cookie", ctx.oauth.clear_cookie(outcome.connection_id));
  }
  page_headers(r);
  return r;
}

Result<http::Response> result_page(DaemonContext& ctx, const http::Request& req, const Caller*) {
  std::optional<oauth::CallbackOutcome> outcome;
  if (auto refused = oauth::parse_refusal(req.query_param("refused").value_or("")))
    outcome = oauth::refusal_outcome(*refused);
  else outcome = TRY(ctx.oauth.recall(req.query_param("id").value_or("")));
  oauth::CallbackOutcome shown = outcome.value_or(
      oauth::CallbackOutcome{false, "error", "", "There is no sign-in result here (it expired or the link is wrong)."});
  const int status = !outcome                                                 ? 404
                     : shown.ok                                               ? 200
                     : shown.refusal == oauth::CallbackRefusal::other_browser ? 403
                                                                              : 400;
  return pages::oauth_result_page(shown, status);  // announces the outcome to the page that started the flow
}

// POST /api/v1/connections/:id/oauth-url — a fresh ticketed URL, e.g. for `connect --reconnect ID`.
Result<http::Response> oauth_url(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  auto c = TRY(ctx.connections.get(*caller, req.params.at("id")));
  if (c.auth_type != AuthType::oauth)
    return fail(ErrorCode::bad_request, "connector " + c.connector_slug + " does not use OAuth");
  std::string url = TRY(ctx.connections.oauth_url(*caller, c));
  if (select_account(req)) url += "&selectAccount=1";
  return ok(oauth_url_json(c, url));
}

Result<http::Response> set_client(DaemonContext& ctx, const http::Request& req, const Caller*) {
  const Connector* c = ctx.catalog.find(req.params.at("slug"));
  if (!c) return fail(ErrorCode::not_found, "no connector '" + req.params.at("slug") + "'");
  auto body = TRY(parse_json_body(req));
  auto request = TRY(parse_set_oauth_client(body));
  TRY(ctx.oauth_clients.set(*c, request));
  spdlog::info("OAuth client for {} set", c->slug);
  return ok(connector_json(*c, ctx.oauth_clients.configured(*c)));
}

Result<http::Response> unset_client(DaemonContext& ctx, const http::Request& req, const Caller*) {
  const Connector* c = ctx.catalog.find(req.params.at("slug"));
  if (!c) return fail(ErrorCode::not_found, "no connector '" + req.params.at("slug") + "'");
  TRY(ctx.oauth_clients.unset(*c));
  return ok(connector_json(*c, ctx.oauth_clients.configured(*c)));
}

}  // namespace

void add_oauth_routes(std::vector<Route>& routes) {
  routes.push_back({"GET", "/api/v1/connections/oauth/start", start_by_connector, Auth::key, Scope::connections,
                    k_json_body_cap, k_on_control, "create a connection and redirect to the provider"});
  routes.push_back({"GET", "/api/v1/connections/oauth/callback", callback, Auth::public_, RequiredScope::no_key(),
                    k_json_body_cap, k_on_control | k_on_public, "the OAuth redirect URI (state-checked)"});
  routes.push_back({"GET", "/api/v1/connections/oauth/result", result_page, Auth::public_, RequiredScope::no_key(),
                    k_json_body_cap, k_on_control | k_on_public, "the page that states an OAuth result"});
  routes.push_back({"GET", "/api/v1/connections/:id/oauth", start_by_id, Auth::ticket_or_key, Scope::connections,
                    k_json_body_cap, k_on_control | k_on_public, "start the OAuth handshake (one-time ticket or key)"});
  routes.push_back({"POST", "/api/v1/connections/:id/oauth", start_by_id, Auth::ticket_or_key, Scope::connections,
                    k_json_body_cap, k_on_control | k_on_public, "start the OAuth handshake (one-time ticket or key)"});
  routes.push_back({"POST", "/api/v1/connections/:id/oauth-url", oauth_url, Auth::key, Scope::connections,
                    k_json_body_cap, k_on_control, "a fresh ticketed oauthUrl (reconnect)"});
  routes.push_back({"POST", "/api/v1/oauth-clients/:slug", set_client, Auth::key, Scope::admin, k_json_body_cap,
                    k_on_control, "set a connector's OAuth client id and secret (stored encrypted)"});
  routes.push_back({"DELETE", "/api/v1/oauth-clients/:slug", unset_client, Auth::key, Scope::admin, k_json_body_cap,
                    k_on_control, "remove a connector's stored OAuth client"});
}

}  // namespace alumia::daemon

// Connections (SPEC §5) and reading their credentials (SPEC §6 "Using a connection").
#include "routes.hpp"

#include <alumia/oauth/oauth.hpp>

#include <spdlog/spdlog.h>

namespace alumia::daemon {
namespace {

using nlohmann::json;

Result<http::Response> list_connections(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  auto page = page_from_query(req);
  if (!page) return std::unexpected(page.error());
  ConnectionFilter f;
  if (auto c = req.query_param("connector"); c && !c->empty()) f.connector = *c;
  if (auto s = req.query_param("status"); s && !s->empty()) {
    f.status = parse_connection_status(*s);
    if (!f.status)
      return fail(ErrorCode::bad_request, "status must be one of pending, active, error, expired, revoked");
  }
  auto res = ctx.core.list_connections(*caller, f, *page);
  if (!res) return std::unexpected(res.error());
  json items = json::array();
  for (const auto& c : res->items) items.push_back(ctx.core.connection_json(c));
  return ok(list_json(items, page->limit, res->next_cursor));
}

json start_json(DaemonContext& ctx, const StartResult& r) {
  return json{{"connection", ctx.core.connection_json(r.connection)},
              {"oauthUrl", r.oauth_url ? json(*r.oauth_url) : json(nullptr)},
              {"credentialSubmitUrl", r.credential_submit_url ? json(*r.credential_submit_url) : json(nullptr)}};
}

Result<http::Response> start_connection(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  auto body = parse_json_body(req);
  if (!body) return std::unexpected(body.error());
  auto r = ctx.core.start_connection(*caller, *body);
  if (!r) return std::unexpected(r.error());
  return ok(start_json(ctx, *r), r->created ? 201 : 200);
}

Result<http::Response> get_connection(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  auto c = ctx.core.get_connection(*caller, req.params.at("id"));
  if (!c) return std::unexpected(c.error());
  return ok(ctx.core.connection_json(*c));
}

Result<http::Response> delete_connection(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  auto r = ctx.oauth.disconnect(*caller, req.params.at("id"));
  if (!r) return std::unexpected(r.error());
  return ok(json{{"deleted", true},
                 {"providerRevocation", {{"attempted", r->attempted}, {"ok", r->ok}, {"detail", r->detail}}}});
}

Result<http::Response> submit_credentials(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  auto body = parse_json_body(req);
  if (!body) return std::unexpected(body.error());
  auto c = ctx.core.submit_credentials(*caller, req.params.at("id"), *body);
  if (!c) return std::unexpected(c.error());
  return ok(json{{"connection", ctx.core.connection_json(*c)}});
}

Result<http::Response> read_token(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  auto c = ctx.core.get_connection(*caller, req.params.at("id"));
  if (!c) return std::unexpected(c.error());
  if (c->status != ConnectionStatus::active)
    return fail(ErrorCode::conflict,
                "connection " + c->id + " is " + std::string(to_string(c->status)) +
                    (c->status == ConnectionStatus::expired ? "; run `alumia-connect connect --reconnect " + c->id + "`"
                                                            : std::string()));
  if (c->auth_type == "oauth") {
    auto t = ctx.oauth.access_token(*c);
    if (!t) return std::unexpected(t.error());
    spdlog::info("access token of connection {} ({}) read by key {}", c->id, c->connector_slug, caller->key.prefix);
    return ok(json{{"accessToken", std::string(t->access_token.view())},
                   {"tokenType", t->token_type},
                   {"expiresAt", t->expires_at ? json(format_time_ms(*t->expires_at)) : json(nullptr)},
                   {"scopes", t->scopes},
                   {"connectionId", c->id}});
  }
  if (c->auth_type != "api_key")
    return fail(ErrorCode::conflict, "connection " + c->id + " holds no readable credential");
  auto values = ctx.core.credential_values(*c);
  if (!values) return std::unexpected(values.error());
  spdlog::info("credential of connection {} ({}) read by key {}", c->id, c->connector_slug, caller->key.prefix);
  json v = json::object();
  for (auto& [k, val] : *values) {
    v[k] = val;
    wipe_string(val);
  }
  return ok(json{{"values", v}, {"connectionId", c->id}});
}

}  // namespace

void add_connection_routes(std::vector<Route>& routes) {
  routes.push_back({"GET", "/api/v1/connections", list_connections, Auth::key, Scope::connections, k_json_body_cap,
                    k_on_control, "the caller's connections, newest first"});
  routes.push_back({"POST", "/api/v1/connections", start_connection, Auth::key, Scope::connections, k_json_body_cap,
                    k_on_control, "start (or reuse) a connection"});
  routes.push_back({"GET", "/api/v1/connections/:id", get_connection, Auth::key, Scope::connections, k_json_body_cap,
                    k_on_control, "one connection"});
  routes.push_back({"DELETE", "/api/v1/connections/:id", delete_connection, Auth::key, Scope::connections,
                    k_json_body_cap, k_on_control, "revoke a connection and destroy its secrets"});
  routes.push_back({"POST", "/api/v1/connections/:id/credentials", submit_credentials, Auth::key, Scope::connections,
                    k_json_body_cap, k_on_control, "submit API-key credentials"});
  routes.push_back({"POST", "/api/v1/connections/:id/token", read_token, Auth::key, Scope::tokens, k_json_body_cap,
                    k_on_control, "read a fresh credential for the user's own programs"});
}

}  // namespace alumia::daemon

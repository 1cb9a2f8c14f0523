// Connections (SPEC §5) and reading their credentials (SPEC §6 "Using a connection").
#include <alumia/base/try.hpp>
#include "routes.hpp"

#include <alumia/oauth/oauth.hpp>

#include <spdlog/spdlog.h>

namespace alumia::daemon {
namespace {

using nlohmann::json;

Result<http::Response> list_connections(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  auto page = TRY(page_from_query(req));
  ConnectionFilter f;
  if (auto c = req.query_param("connector"); c && !c->empty()) f.connector = *c;
  if (auto s = req.query_param("status"); s && !s->empty()) {
    f.status = parse_connection_status(*s);
    if (!f.status)
      return fail(ErrorCode::bad_request, "status must be one of pending, active, error, expired, revoked");
  }
  auto res = TRY(ctx.connections.list(*caller, f, page));
  json items = json::array();
  for (const auto& c : res.items) items.push_back(connection_json(c));
  return ok(list_json(items, page.limit, res.next_cursor));
}

Result<http::Response> start_connection(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  auto body = TRY(parse_json_body(req));
  auto request = TRY(parse_start_connection(body));
  auto r = TRY(ctx.connections.start(*caller, request));
  return ok(start_json(r), r.created ? 201 : 200);
}

Result<http::Response> get_connection(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  auto c = TRY(ctx.connections.get(*caller, req.params.at("id")));
  return ok(connection_json(c));
}

Result<http::Response> delete_connection(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  auto r = TRY(ctx.oauth.disconnect(*caller, req.params.at("id")));
  return ok(disconnected_json(r));
}

Result<http::Response> submit_credentials(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  auto body = TRY(parse_json_body(req));
  auto request = TRY(parse_submit_credentials(body));
  auto c = ctx.connections.submit_credentials(*caller, req.params.at("id"), request);
  for (auto& [k, v] : request.values) wipe_string(v);
  if (!c) return std::unexpected(c.error());
  return ok(submitted_json(*c));
}

Result<http::Response> read_token(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  auto c = TRY(ctx.connections.get(*caller, req.params.at("id")));
  if (c.status != ConnectionStatus::active) {
    // The error names the next step (SPEC §10): a new sign-in, the credentials, or a new connection.
    std::string next = "run `alumia-connect connect --reconnect " + c.id + "`";
    if (c.status == ConnectionStatus::revoked)
      next = "connect the account again with `alumia-connect connect " + c.connector_slug + "`";
    else if (c.auth_type == AuthType::api_key && c.status == ConnectionStatus::pending)
      next = "submit its credentials with `alumia-connect credentials " + c.id + "`";
    return fail(ErrorCode::conflict, "connection " + c.id + " is " + std::string(to_string(c.status)) + "; " + next);
  }
  if (c.auth_type == AuthType::oauth) {
    auto t = TRY(ctx.oauth.access_token(c));
    spdlog::info("access token of connection {} ({}) read by key {}", c.id, c.connector_slug, caller->key.prefix);
    return ok(access_token_json(t, c.id));
  }
  if (c.auth_type != AuthType::api_key)
    return fail(ErrorCode::conflict, "connection " + c.id + " holds no readable credential");
  auto values = TRY(ctx.connections.credential_values(c));
  spdlog::info("credential of connection {} ({}) read by key {}", c.id, c.connector_slug, caller->key.prefix);
  http::Response reply = ok(credential_values_json(values, c.id));
  for (auto& [k, val] : values) wipe_string(val);
  return reply;
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

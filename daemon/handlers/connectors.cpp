// The connector catalog (SPEC §4).
#include "routes.hpp"

namespace alumia::daemon {
namespace {

using nlohmann::json;

Result<http::Response> list_connectors(DaemonContext& ctx, const http::Request&, const Caller*) {
  json items = json::array();
  for (const auto& c : ctx.catalog.all()) items.push_back(connector_json(c, ctx.oauth_clients.configured(c)));
  return ok(list_json(items, items.size(), std::nullopt));
}

Result<http::Response> get_connector(DaemonContext& ctx, const http::Request& req, const Caller*) {
  const auto& slug = req.params.at("slug");
  const Connector* c = ctx.catalog.find(slug);
  if (!c) return fail(ErrorCode::not_found, "no connector '" + slug + "'; see `alumia-connect connectors list`");
  return ok(connector_json(*c, ctx.oauth_clients.configured(*c)));
}

}  // namespace

void add_connector_routes(std::vector<Route>& routes) {
  routes.push_back({"GET", "/api/v1/connectors", list_connectors, Auth::key, RequiredScope::any_key(), k_json_body_cap,
                    k_on_control, "the connector catalog"});
  routes.push_back({"GET", "/api/v1/connectors/:slug", get_connector, Auth::key, RequiredScope::any_key(),
                    k_json_body_cap, k_on_control, "one connector"});
}

}  // namespace alumia::daemon

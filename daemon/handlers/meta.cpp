// Daemon status and health.
#include "routes.hpp"

namespace alumia::daemon {
namespace {

Result<http::Response> get_status(DaemonContext& ctx, const http::Request&, const Caller*) {
  return ok(status_json(ctx.info, ctx.store.backend_name(), ctx.settings.get("env"),
                        ctx.webhooks.store_write_transactions()));
}

Result<http::Response> get_health(DaemonContext&, const http::Request&, const Caller*) { return ok(health_json()); }

}  // namespace

void add_meta_routes(std::vector<Route>& routes) {
  routes.push_back({"GET", "/api/v1/status", get_status, Auth::key, RequiredScope::any_key(), k_json_body_cap,
                    k_on_control, "daemon version, listeners, keyring backend and store"});
  routes.push_back({"GET", "/healthz", get_health, Auth::public_, RequiredScope::no_key(), k_json_body_cap,
                    k_on_control | k_on_public, "liveness probe (no data)"});
}

}  // namespace alumia::daemon

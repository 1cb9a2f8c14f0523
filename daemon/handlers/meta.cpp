// Daemon status and health.
#include "routes.hpp"

namespace alumia::daemon {
namespace {

using nlohmann::json;

Result<http::Response> get_status(DaemonContext& ctx, const http::Request&, const Caller*) {
  const auto& i = ctx.info;
  json keyring{{"backend", i.keyring_backend}, {"location", i.keyring_location}};
  keyring["warning"] = i.keyring_warning.empty() ? json(nullptr) : json(i.keyring_warning);
  return ok(json{{"version", i.version},
                 {"pid", i.pid},
                 {"url", i.control_url},
                 {"publicUrl", i.public_url.empty() ? json(nullptr) : json(i.public_url)},
                 {"keyring", keyring},
                 {"store", {{"backend", ctx.store.backend_name()}, {"path", i.store_path}}},
                 {"startedAt", format_time_ms(i.started_at_ms)},
                 {"env", ctx.settings.get("env")}});
}

Result<http::Response> get_health(DaemonContext&, const http::Request&, const Caller*) {
  return ok(json{{"ok", true}});
}

}  // namespace

void add_meta_routes(std::vector<Route>& routes) {
  routes.push_back({"GET", "/api/v1/status", get_status, Auth::key, RequiredScope::any_key(), k_json_body_cap,
                    k_on_control, "daemon version, listeners, keyring backend and store"});
  routes.push_back({"GET", "/healthz", get_health, Auth::public_, RequiredScope::no_key(), k_json_body_cap,
                    k_on_control | k_on_public, "liveness probe (no data)"});
}

}  // namespace alumia::daemon

// API keys (SPEC §2) and the master key's rotation (SPEC §11).
#include <alumia/base/try.hpp>
#include "routes.hpp"

namespace alumia::daemon {
namespace {

using nlohmann::json;

Result<http::Response> list_keys(DaemonContext& ctx, const http::Request&, const Caller* caller) {
  auto keys = TRY(ctx.keys.list_api_keys(*caller));
  json items = json::array();
  for (const auto& k : keys) items.push_back(api_key_json(k));
  return ok(list_json(items, items.size(), std::nullopt));
}

Result<http::Response> create_key(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  auto body = TRY(parse_json_body(req));
  auto request = TRY(parse_create_api_key(body));
  auto created = TRY(ctx.keys.create_api_key(*caller, request));
  return ok(api_key_created_json(created.first, created.second), 201);
}

Result<http::Response> revoke_key(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  TRY(ctx.keys.revoke_api_key(*caller, req.params.at("id")));
  return ok(deleted_json());
}

// The master key is found as at start: at its place (the data directory, or the master-key-file /
// master-key-name settings), through the daemon's --keyring.
Result<http::Response> rotate_master(DaemonContext& ctx, const http::Request& req, const Caller*) {
  auto body = TRY(parse_json_body(req));
  const auto request = TRY(parse_rotate_master(body));
  const RotateMasterDeps deps{.store = ctx.store,
                              .random = ctx.random,
                              .place = {.data_dir = ctx.info.data_dir,
                                        .key_file = ctx.settings.get("master-key-file"),
                                        .name = ctx.settings.get("master-key-name")},
                              .mode = parse_keyring_mode(ctx.settings.get("keyring")).value_or(KeyringMode::auto_)};
  auto result = TRY(rotate_master_key(deps, request));
  return ok(rotate_master_json(result), 200, result.warnings);
}

}  // namespace

void add_key_routes(std::vector<Route>& routes) {
  routes.push_back({"GET", "/api/v1/api-keys", list_keys, Auth::key, Scope::admin, k_json_body_cap, k_on_control,
                    "list the caller's API keys (never their values)"});
  routes.push_back({"POST", "/api/v1/api-keys", create_key, Auth::key, Scope::admin, k_json_body_cap, k_on_control,
                    "create an API key; its value is shown once"});
  routes.push_back({"DELETE", "/api/v1/api-keys/:id", revoke_key, Auth::key, Scope::admin, k_json_body_cap,
                    k_on_control, "revoke an API key"});
  routes.push_back({"POST", "/api/v1/admin/master-key/rotate", rotate_master, Auth::key, Scope::admin, k_json_body_cap,
                    k_on_control,
                    "rotate the master key (or move it between the Secret Service and the key file): the data key "
                    "re-wrapped in one transaction once every sealed value opens; `dryRun` only checks"});
}

}  // namespace alumia::daemon

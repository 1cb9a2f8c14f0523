// Daemon status and health; the diagnostics `doctor` reads and the effective settings `config show`
// prints.
#include "routes.hpp"

#include <alumia/base/try.hpp>
#include <alumia/net/url.hpp>

#include <sys/stat.h>

namespace alumia::daemon {
namespace {

Result<http::Response> get_status(DaemonContext& ctx, const http::Request&, const Caller*) {
  return ok(status_json(ctx.info, ctx.store.backend_name(), ctx.settings.get("env"),
                        ctx.webhooks.store_write_transactions()));
}

Result<http::Response> get_health(DaemonContext&, const http::Request&, const Caller*) { return ok(health_json()); }

// Readiness, for a balancer's health check (deploy/haproxy.cfg): the daemon answers and its store does
// (one read; a PostgreSQL store that cannot be reached answers 503 SERVICE_UNAVAILABLE).
Result<http::Response> get_ready(DaemonContext& ctx, const http::Request&, const Caller*) {
  TRY(ctx.store.get_meta("owner.user_id"));
  auto body = health_json();
  body["store"] = "up";
  return ok(body);
}

StoreFile store_file(std::string path) {
  StoreFile f{.path = std::move(path)};
  struct stat st {};
  if (::stat(f.path.c_str(), &st) == 0) {
    f.present = true;
    f.bytes = static_cast<uint64_t>(st.st_size);
    f.private_mode = (st.st_mode & 077) == 0;
  }
  return f;
}

// Any valid key: what it shows is the daemon's own state (as the status does) and the caller's own key.
Result<http::Response> get_diagnostics(DaemonContext& ctx, const http::Request&, const Caller* caller) {
  Diagnostics d;
  d.caller = caller;
  d.store_backend = std::string(ctx.store.backend_name());
  d.store = store_file(ctx.info.store_path);
  d.wal = store_file(ctx.info.store_path + "-wal");
  d.intake_log = store_file(ctx.info.store_path + "-intake");
  if (auto read = ctx.store.first_user(); !read) d.store_read_error = read.error().message;
  d.webhook_base_origin = ctx.settings.origin("webhook-base-url");
  if (const auto& text = ctx.settings.get("webhook-base-url"); !text.empty()) {
    // The start judged it already (an unsafe one stops it unless allowed): judged again for the verdict.
    auto judged = url::judge_base_url(text, true);
    d.webhook_base = judged ? judged->url : text;
    d.webhook_base_broken_rule = judged ? judged->broken_rule : judged.error().message;
  }
  return ok(diagnostics_json(ctx.info, d));
}

Result<http::Response> get_config(DaemonContext& ctx, const http::Request&, const Caller*) {
  return ok(config_json(ctx.settings));
}

}  // namespace

void add_meta_routes(std::vector<Route>& routes) {
  routes.push_back({"GET", "/api/v1/status", get_status, Auth::key, RequiredScope::any_key(), k_json_body_cap,
                    k_on_control, "daemon version, listeners, keyring backend and store"});
  routes.push_back({"GET", "/healthz", get_health, Auth::public_, RequiredScope::no_key(), k_json_body_cap,
                    k_on_control | k_on_public, "liveness probe (no data)"});
  routes.push_back({"GET", "/readyz", get_ready, Auth::public_, RequiredScope::no_key(), k_json_body_cap,
                    k_on_control | k_on_public,
                    "readiness probe for a balancer: 200 when the daemon and its store answer, else 503 (no data)"});
  routes.push_back({"GET", "/api/v1/diagnostics", get_diagnostics, Auth::key, RequiredScope::any_key(), k_json_body_cap,
                    k_on_control,
                    "what `doctor` checks: the caller's key and scopes, the store's files, the webhook base URL"});
  routes.push_back({"GET", "/api/v1/admin/config", get_config, Auth::key, Scope::admin, k_json_body_cap, k_on_control,
                    "the daemon's effective settings and where each came from (secrets as \"(set)\")"});
}

}  // namespace alumia::daemon

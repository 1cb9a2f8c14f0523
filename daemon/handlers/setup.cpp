// Setup commands (SPEC §8): the body is parsed into setup::SetupOptions (wire.cpp), the work is
// setup::SetupService's, and the reply is shaped in wire.cpp.
#include "routes.hpp"
#include "wire.hpp"

#include <alumia/base/try.hpp>
#include <alumia/setup/setup_service.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <spdlog/spdlog.h>

namespace alumia::daemon {
namespace {

Result<http::Response> setup_webhook(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  auto body = TRY(parse_json_body(req));
  auto options = TRY(parse_setup_options(body));
  auto result = TRY(ctx.setup.run(*caller, req.params.at("id"), options));
  // E.g. a base URL let through by --allow-insecure-base-url: logged, and in the envelope's `warnings`
  // (SPEC §3), which the CLI prints on stderr.
  for (const auto& w : result.warnings) spdlog::warn("setup-webhook {}: {}", result.connection_id, w);
  return ok(
      setup_result_json(result, ctx.webhooks.receive_url(result.endpoint), ctx.webhooks.rate_limit(result.endpoint)),
      200, result.warnings);
}

}  // namespace

void add_setup_routes(std::vector<Route>& routes) {
  constexpr auto W = RequiredScope::either(Scope::webhooks, Scope::admin);  // SPEC §2, as the endpoints
  routes.push_back({"POST", "/api/v1/connections/:id/commands/setup-webhook", setup_webhook, Auth::key, W,
                    k_json_body_cap, k_on_control,
                    "register the connection's webhook endpoint with its provider (setup-webhook)"});
}

}  // namespace alumia::daemon

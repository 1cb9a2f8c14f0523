// Webhook endpoints, the receiver, events and jobs (SPEC §7). The logic lives in WebhookService.
#include "routes.hpp"

#include <alumia/webhooks/webhook_service.hpp>

#include <algorithm>

namespace alumia::daemon {
namespace {

using nlohmann::json;

Result<http::Response> list_endpoints(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto page = page_from_query(req);
  if (!page) return std::unexpected(page.error());
  auto res = svc.list_endpoints(*caller, *page);
  if (!res) return std::unexpected(res.error());
  json items = json::array();
  for (const auto& e : res->items) items.push_back(svc.endpoint_json(e));
  return ok(list_json(items, page->limit, res->next_cursor));
}

Result<http::Response> create_endpoint(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto body = parse_json_body(req);
  if (!body) return std::unexpected(body.error());
  auto r = svc.create_endpoint(*caller, *body);
  if (!r) return std::unexpected(r.error());
  return ok(*r, 201);
}

Result<http::Response> get_endpoint(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto e = svc.get_endpoint(*caller, req.params.at("id"));
  if (!e) return std::unexpected(e.error());
  return ok(svc.endpoint_json(*e));
}

Result<http::Response> update_endpoint(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto body = parse_json_body(req);
  if (!body) return std::unexpected(body.error());
  auto e = svc.update_endpoint(*caller, req.params.at("id"), *body);
  if (!e) return std::unexpected(e.error());
  return ok(svc.endpoint_json(*e));
}

Result<http::Response> delete_endpoint(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  if (auto st = svc.delete_endpoint(*caller, req.params.at("id")); !st) return std::unexpected(st.error());
  return ok(json{{"deleted", true}});
}

Result<http::Response> rotate_secret(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto body = parse_json_body(req);
  if (!body) return std::unexpected(body.error());
  auto r = svc.rotate_secret(*caller, req.params.at("id"), *body);
  if (!r) return std::unexpected(r.error());
  return ok(*r);
}

Result<http::Response> receive(DaemonContext& ctx, const http::Request& req, const Caller*) {
  WebhookService& svc = ctx.webhooks;
  return svc.receive(req);
}

Result<std::optional<int64_t>> since_param(DaemonContext& ctx, const http::Request& req) {
  auto s = req.query_param("since");
  if (!s || s->empty()) return std::optional<int64_t>();
  auto v = WebhookService::parse_since(*s, ctx.clock.now_ms());
  if (!v)
    return fail(
        ErrorCode::bad_request,
        "since must be an RFC 3339 UTC time (2026-11-29T03:25:19Z), unix milliseconds, or an age like 15m, 2h, 7d");
  return v;
}

Result<http::Response> list_events(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto page = page_from_query(req);
  if (!page) return std::unexpected(page.error());
  EventFilter f;
  if (auto e = req.query_param("endpoint"); e && !e->empty()) {
    if (!is_uuid(*e)) return fail(ErrorCode::bad_request, "endpoint must be an endpoint id (a UUID)");
    f.endpoint_id = *e;
  }
  if (auto s = req.query_param("status"); s && !s->empty()) {
    static constexpr std::string_view k_states[] = {"queued", "running", "succeeded", "failed", "dead"};
    if (std::find(std::begin(k_states), std::end(k_states), *s) == std::end(k_states))
      return fail(ErrorCode::bad_request, "status must be one of queued, running, succeeded, failed, dead");
    f.job_state = *s;
  }
  auto since = since_param(ctx, req);
  if (!since) return std::unexpected(since.error());
  f.since = *since;
  auto res = svc.list_events(*caller, f, *page);
  if (!res) return std::unexpected(res.error());
  json items = json::array();
  for (const auto& e : res->items) items.push_back(WebhookService::event_json(e, false));
  return ok(list_json(items, page->limit, res->next_cursor));
}

Result<http::Response> get_event(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto e = svc.get_event(*caller, req.params.at("id"));
  if (!e) return std::unexpected(e.error());
  return ok(WebhookService::event_json(*e, true));
}

Result<http::Response> replay_event(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto j = svc.replay_event(*caller, req.params.at("id"));
  if (!j) return std::unexpected(j.error());
  return ok(json{{"job", WebhookService::job_json(*j)}}, 201);
}

Result<http::Response> list_jobs(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto page = page_from_query(req);
  if (!page) return std::unexpected(page.error());
  JobFilter f;
  if (auto s = req.query_param("state"); s && !s->empty()) {
    static constexpr std::string_view k_states[] = {"queued", "running", "succeeded", "failed", "dead"};
    if (std::find(std::begin(k_states), std::end(k_states), *s) == std::end(k_states))
      return fail(ErrorCode::bad_request, "state must be one of queued, running, succeeded, failed, dead");
    f.state = *s;
  }
  if (auto e = req.query_param("event"); e && !e->empty()) f.event_id = *e;
  auto since = since_param(ctx, req);
  if (!since) return std::unexpected(since.error());
  f.since = *since;
  auto res = svc.list_jobs(*caller, f, *page);
  if (!res) return std::unexpected(res.error());
  json items = json::array();
  for (const auto& j : res->items) items.push_back(WebhookService::job_json(j));
  return ok(list_json(items, page->limit, res->next_cursor));
}

Result<http::Response> retry_job(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto j = svc.retry_job(*caller, req.params.at("id"));
  if (!j) return std::unexpected(j.error());
  return ok(json{{"job", WebhookService::job_json(*j)}});
}

Result<http::Response> retry_jobs(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  const std::string state = req.query_param("state").value_or("dead");
  auto since = since_param(ctx, req);
  if (!since) return std::unexpected(since.error());
  auto n = svc.retry_jobs(*caller, state, *since);
  if (!n) return std::unexpected(n.error());
  return ok(json{{"retried", *n}});
}

// Before the body is read: the endpoint's own maxBodyBytes (SPEC §7: the body cap comes first).
Status admit_receiver_body(DaemonContext& ctx, const std::map<std::string, std::string>& params, std::size_t length) {
  const auto provider = params.find("provider");
  const auto id = params.find("endpointId");
  if (provider == params.end() || id == params.end()) return {};
  return ctx.webhooks.admit_body(provider->second, id->second, length);
}

}  // namespace

void add_webhook_routes(std::vector<Route>& routes) {
  constexpr auto W = RequiredScope::either(Scope::webhooks, Scope::admin);  // SPEC §2
  routes.push_back({"GET", "/api/v1/webhook-endpoints", list_endpoints, Auth::key, W, k_json_body_cap, k_on_control,
                    "list webhook endpoints"});
  routes.push_back({"POST", "/api/v1/webhook-endpoints", create_endpoint, Auth::key, W, k_json_body_cap, k_on_control,
                    "create a webhook endpoint"});
  routes.push_back({"GET", "/api/v1/webhook-endpoints/:id", get_endpoint, Auth::key, W, k_json_body_cap, k_on_control,
                    "show a webhook endpoint"});
  routes.push_back({"PATCH", "/api/v1/webhook-endpoints/:id", update_endpoint, Auth::key, W, k_json_body_cap,
                    k_on_control, "change an endpoint: status (active|disabled), label, relayTo, maxBodyBytes"});
  routes.push_back({"DELETE", "/api/v1/webhook-endpoints/:id", delete_endpoint, Auth::key, W, k_json_body_cap,
                    k_on_control, "delete a webhook endpoint"});
  routes.push_back({"POST", "/api/v1/webhook-endpoints/:id/rotate-secret", rotate_secret, Auth::key, W, k_json_body_cap,
                    k_on_control, "rotate an endpoint's secret (the old one verifies during a grace period)"});
  routes.push_back({"POST", "/api/v1/connectors/webhooks/:provider/:endpointId", receive, Auth::public_,
                    RequiredScope::no_key(), k_webhook_body_cap, k_on_control | k_on_public,
                    "webhook receiver (provider-signed)", admit_receiver_body});
  routes.push_back({"GET", "/api/v1/connectors/webhooks/:provider/:endpointId", receive, Auth::public_,
                    RequiredScope::no_key(), k_webhook_body_cap, k_on_control | k_on_public,
                    "webhook receiver: Meta subscription handshake"});
  routes.push_back({"GET", "/api/v1/connector-events", list_events, Auth::key, W, k_json_body_cap, k_on_control,
                    "list received events"});
  routes.push_back({"GET", "/api/v1/connector-events/:id", get_event, Auth::key, W, k_json_body_cap, k_on_control,
                    "show an event with headers and body"});
  routes.push_back({"POST", "/api/v1/connector-events/:id/replay", replay_event, Auth::key, W, k_json_body_cap,
                    k_on_control, "relay an event again (a new job)"});
  routes.push_back({"GET", "/api/v1/jobs", list_jobs, Auth::key, W, k_json_body_cap, k_on_control, "list relay jobs"});
  // Before /jobs/:id/retry would not matter (different segment counts), but keep bulk first for reading.
  routes.push_back({"POST", "/api/v1/jobs/retry", retry_jobs, Auth::key, W, k_json_body_cap, k_on_control,
                    "retry every dead (or failed) job, optionally since a time"});
  routes.push_back(
      {"POST", "/api/v1/jobs/:id/retry", retry_job, Auth::key, W, k_json_body_cap, k_on_control, "retry one job now"});
}

}  // namespace alumia::daemon

// Webhook endpoints, the receiver, events and jobs (SPEC §7): requests are parsed here into typed
// structs, the logic lives in WebhookService, and the responses are shaped in wire.cpp.
#include "routes.hpp"
#include "wire.hpp"

#include <alumia/base/secret.hpp>
#include <alumia/base/try.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <algorithm>

namespace alumia::daemon {
namespace {

using nlohmann::json;

// ---- requests: bodies and queries into typed structs (SPEC §3: a wrong type or an unknown field is
// BAD_REQUEST; a well-typed value out of range is VALIDATION_ERROR, decided by the service) ----

// A string member: absent or null is nullopt; another type is BAD_REQUEST.
Result<std::optional<std::string>> string_member(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return fail(ErrorCode::bad_request, std::string(key) + " must be a string");
  return std::optional<std::string>(it->get<std::string>());
}

// A secret member, taken out of the body: the body's copy is wiped.
Result<SecretBytes> secret_member(json& body, const char* key) {
  auto value = TRY(string_member(body, key));
  if (!value) return SecretBytes();
  SecretBytes secret(*value);
  wipe_string(*value);
  wipe_string(body[key].get_ref<std::string&>());
  return secret;
}

Result<std::optional<int64_t>> integer_member(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer()) return fail(ErrorCode::bad_request, std::string(key) + " must be an integer");
  return std::optional<int64_t>(it->get<int64_t>());
}

// rateLimit: {perSecond, burst?}, integers; anything else in it is BAD_REQUEST (the ranges are the service's).
Result<RateLimitRequest> rate_limit_member(const json& value) {
  const auto malformed = [] {
    return fail(ErrorCode::bad_request,
                "rateLimit must be an object {\"perSecond\": N, \"burst\": M} (burst optional), or null for the "
                "daemon's default");
  };
  if (!value.is_object()) return malformed();
  RateLimitRequest r;
  bool per_second = false;
  for (const auto& [key, v] : value.items()) {
    if (!v.is_number_integer()) return malformed();
    if (key == "perSecond") {
      r.per_second = v.get<int64_t>();
      per_second = true;
    } else if (key == "burst") {
      r.burst = v.get<int64_t>();
    } else {
      return malformed();
    }
  }
  if (!per_second) return malformed();
  return r;
}

// Unknown fields are ignored here, as they always were.
Result<CreateEndpointRequest> create_endpoint_request(json& body) {
  if (!body.is_object()) return fail(ErrorCode::bad_request, "body must be a JSON object");
  CreateEndpointRequest r;
  for (auto [key, field] : {std::pair{"provider", &r.provider},
                            {"connectionId", &r.connection_id},
                            {"label", &r.label},
                            {"relayTo", &r.relay_to},
                            {"audience", &r.audience},
                            {"jwksUrl", &r.jwks_url},
                            {"serviceAccountEmail", &r.service_account_email},
                            {"botId", &r.bot_id}}) {
    auto value = TRY(string_member(body, key));
    *field = std::move(value);
  }
  auto secret = TRY(secret_member(body, "secret"));
  r.secret = std::move(secret);
  auto verify_token = TRY(secret_member(body, "verifyToken"));
  r.verify_token = std::move(verify_token);
  auto max_body = TRY(integer_member(body, "maxBodyBytes"));
  r.max_body_bytes = max_body;
  if (auto it = body.find("rateLimit"); it != body.end() && !it->is_null()) r.rate_limit = TRY(rate_limit_member(*it));
  auto retention = TRY(integer_member(body, "retentionDays"));
  r.retention_days = retention;
  return r;
}

Result<UpdateEndpointRequest> update_endpoint_request(const json& body) {
  const auto malformed = [](std::string message) { return fail(ErrorCode::bad_request, std::move(message)); };
  if (!body.is_object())
    return malformed(
        "body must be a JSON object with any of status, label, relayTo, maxBodyBytes, rateLimit, retentionDays");
  UpdateEndpointRequest r;
  for (const auto& [key, value] : body.items()) {
    if (key == "status") {
      if (!value.is_string()) return malformed("status must be a string: \"active\" or \"disabled\"");
      r.status = value.get<std::string>();
    } else if (key == "label") {
      if (!value.is_string()) return malformed("label must be a string");
      r.label = value.get<std::string>();
    } else if (key == "relayTo") {
      if (value.is_null()) r.relay_to.emplace(std::nullopt);
      else if (value.is_string()) r.relay_to.emplace(value.get<std::string>());
      else return malformed("relayTo must be a URL string, or null for the daemon's default target");
    } else if (key == "maxBodyBytes") {
      if (!value.is_number_integer()) return malformed("maxBodyBytes must be an integer");
      r.max_body_bytes = value.get<int64_t>();
    } else if (key == "rateLimit") {
      if (value.is_null()) r.rate_limit.emplace(std::nullopt);
      else r.rate_limit.emplace(TRY(rate_limit_member(value)));
    } else if (key == "retentionDays") {
      if (value.is_null()) r.retention_days.emplace(std::nullopt);
      else if (value.is_number_integer()) r.retention_days.emplace(value.get<int64_t>());
      else return malformed("retentionDays must be an integer (days), or null for the daemon's default");
    } else {
      return malformed("unknown field '" + key +
                       "'; an endpoint update accepts status, label, relayTo, maxBodyBytes, rateLimit and "
                       "retentionDays");
    }
  }
  return r;
}

Result<RotateSecretRequest> rotate_secret_request(json& body) {
  if (!body.is_object()) return fail(ErrorCode::bad_request, "body must be a JSON object");
  RotateSecretRequest r;
  auto secret = TRY(secret_member(body, "secret"));
  r.secret = std::move(secret);
  if (auto it = body.find("graceSeconds"); it != body.end() && !it->is_null()) {
    // The range is the service's; a wrong type reads the same, as it always did.
    if (!it->is_number_integer())
      return fail(ErrorCode::validation_error, "graceSeconds must be an integer from 0 to 604800 (7 days)");
    r.grace_seconds = it->get<int64_t>();
  }
  return r;
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

// A job state named in a query (`param`).
Result<std::optional<JobState>> job_state_param(const http::Request& req, const char* param) {
  auto s = req.query_param(param);
  if (!s || s->empty()) return std::optional<JobState>();
  const auto state = parse_job_state(*s);
  if (!state) return fail(ErrorCode::bad_request, std::string(param) + " must be one of " + job_state_list());
  return state;
}

// GET /connector-events?endpoint=&status=&since=
Result<EventFilter> event_filter(DaemonContext& ctx, const http::Request& req) {
  EventFilter f;
  if (auto e = req.query_param("endpoint"); e && !e->empty()) {
    if (!is_uuid(*e)) return fail(ErrorCode::bad_request, "endpoint must be an endpoint id (a UUID)");
    f.endpoint_id = *e;
  }
  auto state = TRY(job_state_param(req, "status"));
  f.job_state = state;
  auto since = TRY(since_param(ctx, req));
  f.since = since;
  return f;
}

}  // namespace

// GET /admin/connector-events?endpoint=&provider=&state=&since= (the events' filters; SPEC §9); the
// JSON view and the HTML page (pages.cpp) read them alike.
Result<AdminEventsQuery> admin_events_query(DaemonContext& ctx, const http::Request& req) {
  AdminEventsQuery q;
  if (auto e = req.query_param("endpoint"); e && !e->empty()) {
    if (!is_uuid(*e)) return fail(ErrorCode::bad_request, "endpoint must be an endpoint id (a UUID)");
    q.endpoint_id = *e;
  }
  if (auto p = req.query_param("provider"); p && !p->empty()) {
    q.provider = parse_provider(*p);
    if (!q.provider) return fail(ErrorCode::bad_request, "provider must be one of " + webhooks::provider_list());
  }
  auto state = TRY(job_state_param(req, "state"));
  q.job_state = state;
  auto since = TRY(since_param(ctx, req));
  q.since = since;
  return q;
}

namespace {

// GET /jobs?state=&event=&since=
Result<JobFilter> job_filter(DaemonContext& ctx, const http::Request& req) {
  JobFilter f;
  auto state = TRY(job_state_param(req, "state"));
  f.state = state;
  if (auto e = req.query_param("event"); e && !e->empty()) f.event_id = *e;
  auto since = TRY(since_param(ctx, req));
  f.since = since;
  return f;
}

// The envelope's warnings of a reply that carries receiveUrls: the base URL's, when it broke SPEC §8.
std::vector<std::string> receive_url_warnings(const WebhookService& svc) {
  if (svc.base_url_warning().empty()) return {};
  return {svc.base_url_warning()};
}

// ---- handlers ----

Result<http::Response> list_endpoints(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto page = TRY(page_from_query(req));
  auto res = TRY(svc.list_endpoints(*caller, page));
  json items = json::array();
  for (const auto& e : res.items) items.push_back(endpoint_json(e, svc.receive_url(e), svc.rate_limit(e)));
  return ok(list_json(items, page.limit, res.next_cursor), 200,
            res.items.empty() ? std::vector<std::string>() : receive_url_warnings(svc));
}

Result<http::Response> create_endpoint(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto body = TRY(parse_json_body(req));
  auto request = TRY(create_endpoint_request(body));
  auto created = TRY(svc.create_endpoint(*caller, std::move(request)));
  return ok(created_endpoint_json(created, svc.receive_url(created.endpoint), svc.rate_limit(created.endpoint)), 201,
            receive_url_warnings(svc));
}

Result<http::Response> get_endpoint(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto e = TRY(svc.get_endpoint(*caller, req.params.at("id")));
  return ok(endpoint_json(e, svc.receive_url(e), svc.rate_limit(e)), 200, receive_url_warnings(svc));
}

Result<http::Response> update_endpoint(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto body = TRY(parse_json_body(req));
  auto request = TRY(update_endpoint_request(body));
  auto e = TRY(svc.update_endpoint(*caller, req.params.at("id"), request));
  return ok(endpoint_json(e, svc.receive_url(e), svc.rate_limit(e)), 200, receive_url_warnings(svc));
}

Result<http::Response> delete_endpoint(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  TRY(svc.delete_endpoint(*caller, req.params.at("id")));
  return ok(json{{"deleted", true}});
}

Result<http::Response> rotate_secret(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto body = TRY(parse_json_body(req));
  auto request = TRY(rotate_secret_request(body));
  auto rotated = TRY(svc.rotate_secret(*caller, req.params.at("id"), std::move(request)));
  return ok(rotated_secret_json(rotated, svc.receive_url(rotated.endpoint), svc.rate_limit(rotated.endpoint)), 200,
            receive_url_warnings(svc));
}

// The body moves on into the store; the endpoint is the one admit_receiver_body looked up.
Result<http::Response> receipt_response(Result<Receipt> receipt) {
  if (!receipt) return std::unexpected(receipt.error());
  if (receipt->exact_reply) return std::move(*receipt->exact_reply);
  return receipt_ok(*receipt);
}

Result<http::Response> receive(DaemonContext& ctx, http::Request& req, const AdmittedDelivery& admitted) {
  return receipt_response(ctx.webhooks.receive(req, admitted));
}

// The same on the listener's poll thread, when the service can take the delivery without blocking: the
// answer once its record is durable (WebhookService::receive_now).
bool receive_now(DaemonContext& ctx, http::Request& req, const AdmittedDelivery& admitted,
                 std::function<void(Result<http::Response>)> done) {
  return ctx.webhooks.receive_now(
      req, admitted, [done = std::move(done)](Result<Receipt> receipt) { done(receipt_response(std::move(receipt))); });
}

Result<http::Response> list_events(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto page = TRY(page_from_query(req));
  auto filter = TRY(event_filter(ctx, req));
  auto res = TRY(svc.list_events(*caller, std::move(filter), page));
  json items = json::array();
  for (const auto& e : res.items) items.push_back(event_json(e, false));
  return ok(list_json(items, page.limit, res.next_cursor));
}

Result<http::Response> get_event(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto e = TRY(svc.get_event(*caller, req.params.at("id")));
  return ok(event_json(e, true));
}

// The body-less POSTs take nothing but an empty body or {} (the bad-input matrix found them taking
// anything): what they act on is in the path and the query.
Status no_body(const http::Request& req, std::string_view takes) {
  if (req.body.empty()) return {};
  const json j = json::parse(req.body, nullptr, false);
  if (j.is_object() && j.empty()) return {};
  return fail(ErrorCode::bad_request,
              req.method + " " + req.path + " takes no body (send none, or {}): " + std::string(takes));
}

Result<http::Response> replay_event(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  TRY(no_body(req, "the event is the one in the path"));
  WebhookService& svc = ctx.webhooks;
  auto j = svc.replay_event(*caller, req.params.at("id"));
  if (!j) return std::unexpected(j.error());
  return ok(json{{"job", job_json(*j)}}, 201);
}

Result<http::Response> list_jobs(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto page = TRY(page_from_query(req));
  auto filter = TRY(job_filter(ctx, req));
  auto res = TRY(svc.list_jobs(*caller, std::move(filter), page));
  json items = json::array();
  for (const auto& j : res.items) items.push_back(job_json(j));
  return ok(list_json(items, page.limit, res.next_cursor));
}

Result<http::Response> retry_job(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  TRY(no_body(req, "the job is the one in the path"));
  WebhookService& svc = ctx.webhooks;
  auto j = TRY(svc.retry_job(*caller, req.params.at("id")));
  return ok(json{{"job", job_json(j)}});
}

Result<http::Response> retry_jobs(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  TRY(no_body(req, "the jobs are chosen with the query parameters ?state= and ?since="));
  WebhookService& svc = ctx.webhooks;
  const auto since = TRY(since_param(ctx, req));
  // The service refuses the states a bulk retry cannot take with the same words.
  const auto state = parse_job_state(req.query_param("state").value_or("dead"));
  if (!state) return fail(ErrorCode::bad_request, "state must be dead or failed for a bulk retry");
  return ok(json{{"retried", TRY(svc.retry_jobs(*caller, *state, since))}});
}

// {olderThan, dryRun?}: the caller's delivered and dead events received before then go (SPEC §9).
Result<http::Response> prune_events(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  const auto malformed = [] {
    return fail(ErrorCode::bad_request,
                "body must be a JSON object {\"olderThan\": \"30d\", \"dryRun\": false}: olderThan an age (30d, "
                "12h, 15m, 0s) or a time, dryRun true or false");
  };
  auto body = TRY(parse_json_body(req));
  if (!body.is_object()) return malformed();
  std::string older_than;
  bool dry_run = false;
  for (const auto& [key, value] : body.items()) {
    if (key == "olderThan" && value.is_string()) older_than = value.get<std::string>();
    else if (key == "dryRun" && value.is_boolean()) dry_run = value.get<bool>();
    else return malformed();
  }
  if (older_than.empty()) return malformed();
  return ok(prune_json(TRY(ctx.webhooks.prune_events(*caller, older_than, dry_run))));
}

Result<http::Response> admin_events(DaemonContext& ctx, const http::Request& req, const Caller* caller) {
  WebhookService& svc = ctx.webhooks;
  auto page = TRY(page_from_query(req));
  auto query = TRY(admin_events_query(ctx, req));
  auto summary = TRY(svc.admin_summary(*caller, query, page));
  return ok(admin_summary_json(summary, page.limit));
}

// Before the body is read: the endpoint, looked up once, and its own maxBodyBytes (SPEC §7: the body cap
// comes first).
Result<AdmittedDelivery> admit_receiver_body(DaemonContext& ctx, const std::map<std::string, std::string>& params,
                                             std::size_t length) {
  const auto provider = params.find("provider");
  const auto id = params.find("endpointId");
  if (provider == params.end() || id == params.end()) return AdmittedDelivery{};
  return ctx.webhooks.admit_body(provider->second, id->second, length);
}

// The same, when the endpoint is in the cache (the listener's poll thread); nullopt when it is not.
std::optional<Result<AdmittedDelivery>> admit_receiver_now(DaemonContext& ctx,
                                                           const std::map<std::string, std::string>& params,
                                                           std::size_t length) {
  const auto provider = params.find("provider");
  const auto id = params.find("endpointId");
  if (provider == params.end() || id == params.end()) return AdmittedDelivery{};
  return ctx.webhooks.admit_body_cached(provider->second, id->second, length);
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
  routes.push_back(
      {"PATCH", "/api/v1/webhook-endpoints/:id", update_endpoint, Auth::key, W, k_json_body_cap, k_on_control,
       "change an endpoint: status (active|disabled), label, relayTo, maxBodyBytes, rateLimit, retentionDays"});
  routes.push_back({"DELETE", "/api/v1/webhook-endpoints/:id", delete_endpoint, Auth::key, W, k_json_body_cap,
                    k_on_control, "delete a webhook endpoint"});
  routes.push_back({"POST", "/api/v1/webhook-endpoints/:id/rotate-secret", rotate_secret, Auth::key, W, k_json_body_cap,
                    k_on_control, "rotate an endpoint's secret (the old one verifies during a grace period)"});
  routes.push_back({"POST", "/api/v1/connectors/webhooks/:provider/:endpointId", receive, Auth::public_,
                    RequiredScope::no_key(), k_webhook_body_cap, k_on_control | k_on_public,
                    "webhook receiver (provider-signed)", admit_receiver_body, admit_receiver_now, receive_now});
  routes.push_back({"GET", "/api/v1/connectors/webhooks/:provider/:endpointId", receive, Auth::public_,
                    RequiredScope::no_key(), k_webhook_body_cap, k_on_control | k_on_public,
                    "webhook receiver: Meta subscription handshake", admit_receiver_body, admit_receiver_now,
                    receive_now});
  routes.push_back({"GET", "/api/v1/connector-events", list_events, Auth::key, W, k_json_body_cap, k_on_control,
                    "list received events"});
  routes.push_back({"GET", "/api/v1/connector-events/:id", get_event, Auth::key, W, k_json_body_cap, k_on_control,
                    "show an event with headers and body"});
  routes.push_back({"POST", "/api/v1/connector-events/prune", prune_events, Auth::key, W, k_json_body_cap, k_on_control,
                    "remove delivered and dead events older than a time, or count them ({olderThan, dryRun})"});
  routes.push_back({"POST", "/api/v1/connector-events/:id/replay", replay_event, Auth::key, W, k_json_body_cap,
                    k_on_control, "relay an event again (a new job)"});
  routes.push_back({"GET", "/api/v1/jobs", list_jobs, Auth::key, W, k_json_body_cap, k_on_control, "list relay jobs"});
  // Before /jobs/:id/retry would not matter (different segment counts), but keep bulk first for reading.
  routes.push_back({"POST", "/api/v1/jobs/retry", retry_jobs, Auth::key, W, k_json_body_cap, k_on_control,
                    "retry every dead (or failed) job, optionally since a time"});
  routes.push_back({"GET", "/api/v1/admin/connector-events", admin_events, Auth::key, Scope::admin, k_json_body_cap,
                    k_on_control,
                    "admin summary (SPEC §9): endpoints with counters, jobs per state, the oldest queued job, and "
                    "recent events (?endpoint=&provider=&state=&since=, paged)"});
  routes.push_back(
      {"POST", "/api/v1/jobs/:id/retry", retry_job, Auth::key, W, k_json_body_cap, k_on_control, "retry one job now"});
}

}  // namespace alumia::daemon

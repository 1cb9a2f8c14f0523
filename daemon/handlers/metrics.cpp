// GET /metrics (SPEC §9): the process registry (requests and latency per route, ingest batch sizes,
// relay attempts, token refreshes) and, read at the scrape, the admin view's counters — deliveries per
// provider, jobs per state, the oldest queued job's age — in Prometheus text format 0.0.4.
//
// Who may scrape: a key with `admin`, or the bearer token of the setting metrics-token, so that a
// Prometheus server scrapes without holding an API key. The route is public in the table (a bearer
// token is not an API key) and this handler checks both itself; the token is compared in constant
// time and never logged. The figures are the local owner's (the first user), whoever scrapes.
#include "routes.hpp"

#include <alumia/base/metrics.hpp>
#include <alumia/base/strings.hpp>
#include <alumia/base/try.hpp>
#include <alumia/crypto/crypto.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <algorithm>
#include <map>

namespace alumia::daemon {
namespace {

// The metrics-token bearer, when the setting is set and the request presents exactly it.
bool presents_metrics_token(const DaemonContext& ctx, const http::Request& req) {
  const std::string& token = ctx.settings.get("metrics-token");
  const auto auth = req.header("authorization");
  if (token.empty() || !auth || auth->size() < 7 || !iequals(std::string_view(*auth).substr(0, 7), "bearer "))
    return false;
  std::string_view v = *auth;
  v.remove_prefix(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  return crypto::token_equal_ct(v, token);
}

// Who may scrape (a key with `admin`, or the metrics-token bearer); the figures are the owner's either way.
Result<Caller> metrics_caller(DaemonContext& ctx, const http::Request& req) {
  if (!presents_metrics_token(ctx, req)) {
    auto who = TRY(ctx.keys.authenticate(req.header("authorization")));
    if (!RequiredScope(Scope::admin).allows(who.key.scopes))
      return fail(ErrorCode::forbidden,
                  "this key lacks the 'admin' scope that GET /metrics needs; use a key that holds it, or set "
                  "metrics-token (ALUMIA_METRICS_TOKEN) and scrape with 'Authorization: Bearer <that token>'");
  }
  auto owner = TRY(ctx.store.first_user());
  if (!owner) return fail(ErrorCode::internal, "the store has no owner user");
  return Caller{*owner, {}};
}

void write_store_figures(metrics::TextWriter& w, const AdminSummary& s) {
  struct Counts {
    int64_t received = 0, duplicates = 0, rejected = 0, verification_failures = 0, rate_limited = 0;
  };
  std::map<std::string, Counts> by_provider;  // endpoints deleted since are not listed (SPEC §9)
  for (const auto& e : s.endpoints) {
    Counts& c = by_provider[std::string(to_string(e.endpoint.provider))];
    c.received += e.endpoint.received;
    c.duplicates += e.endpoint.duplicates;
    c.rejected += e.endpoint.rejected;
    c.verification_failures += e.endpoint.verification_failures;
    c.rate_limited += e.endpoint.rate_limited;
  }
  const auto family = [&](const char* name, const char* help, int64_t Counts::*field) {
    w.family(name, help, "counter");
    for (const auto& [provider, c] : by_provider)
      w.sample(name, {{"provider", provider}}, static_cast<uint64_t>(std::max<int64_t>(0, c.*field)));
  };
  family("alumia_webhook_received_total", "deliveries stored, per provider (the endpoints' received counters)",
         &Counts::received);
  family("alumia_webhook_duplicates_total", "deliveries answered as duplicates, per provider", &Counts::duplicates);
  family("alumia_webhook_rejected_total", "deliveries refused (any reason), per provider", &Counts::rejected);
  family("alumia_webhook_verification_failures_total", "deliveries whose signature did not verify, per provider",
         &Counts::verification_failures);
  family("alumia_webhook_rate_limited_total", "deliveries answered 429 by an endpoint's rate limit, per provider",
         &Counts::rate_limited);

  w.family("alumia_webhook_jobs", "relay jobs per state (maintained counts)", "gauge");
  for (const auto& [state, n] : s.jobs)
    w.sample("alumia_webhook_jobs", {{"state", std::string(to_string(state))}}, static_cast<uint64_t>(n));
  w.family("alumia_webhook_oldest_queued_job_age_seconds", "how long the queued job that waited longest has waited",
           "gauge");
  const double age =
      s.oldest_queued ? static_cast<double>(std::max<int64_t>(0, s.now - s.oldest_queued->next_attempt_at)) / 1000 : 0;
  w.sample("alumia_webhook_oldest_queued_job_age_seconds", {}, age);
}

Result<http::Response> get_metrics(DaemonContext& ctx, const http::Request& req, const Caller*) {
  const Caller caller = TRY(metrics_caller(ctx, req));
  metrics::TextWriter w;
  metrics::process_registry().write(w);
  const auto summary = TRY(ctx.webhooks.admin_summary(caller, AdminEventsQuery{}, Page{.limit = 1, .cursor = {}}));
  write_store_figures(w, summary);
  http::Response res;
  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  res.body = w.take();
  return res;
}

}  // namespace

void add_metrics_routes(std::vector<Route>& routes) {
  routes.push_back({"GET", "/metrics", get_metrics, Auth::public_, RequiredScope::no_key(), k_json_body_cap,
                    k_on_control,
                    "Prometheus text format 0.0.4 (SPEC §9): requests and latency per route, ingest batches, relay "
                    "attempts, token refreshes, deliveries per provider, jobs per state; a key with 'admin', or "
                    "'Authorization: Bearer' the metrics-token setting"});
}

}  // namespace alumia::daemon

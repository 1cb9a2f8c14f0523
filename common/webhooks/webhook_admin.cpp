// The admin summary of the caller's webhooks (SPEC §9, GET /api/v1/admin/connector-events): the
// endpoints with their counters, jobs per state, the queued job that has waited longest, and a page of
// recent events. Nothing here walks events or jobs: the endpoint counters are columns kept as
// deliveries arrive (refusals summed by the RefusalTally, flushed first as every owner read does), the
// job counts are the rows migration 6's triggers keep, and the oldest queued job is one index probe
// per endpoint. So the view costs the same on an empty store as on one with millions of events.
// And retention by hand (prune_events, retention.hpp).
#include <alumia/base/try.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <array>

namespace alumia {
namespace {

constexpr std::array k_job_states{JobState::queued, JobState::running, JobState::succeeded, JobState::failed,
                                  JobState::dead};

constexpr std::size_t k_prune_batch = 500;      // jobs a batch examines: one writer operation each
constexpr int64_t k_prune_vacuum_pages = 2048;  // pages given back per step (8 MiB)

std::map<JobState, int64_t> zero_counts() {
  std::map<JobState, int64_t> out;
  for (const JobState s : k_job_states) out[s] = 0;
  return out;
}

}  // namespace

Result<AdminSummary> WebhookService::admin_summary(const Caller& caller, const AdminEventsQuery& query,
                                                   const Page& page) {
  if (query.endpoint_id) TRY(owned_endpoint(caller, *query.endpoint_id));  // a UUID, and the caller's
  m_tally.flush();  // the counters are exact when the owner reads them

  AdminSummary out;
  out.now = m_d.clock.now_ms();
  out.jobs = zero_counts();
  const auto counts = TRY(m_d.hooks.job_counts(caller.user.id));
  for (const auto& [endpoint_id, states] : counts)
    for (const auto& [state, n] : states) out.jobs[state] += n;

  Page endpoints_page{.limit = 200, .cursor = std::nullopt};
  do {
    auto got = TRY(m_d.hooks.list_endpoints(caller.user.id, endpoints_page));
    for (auto& e : got.items) {
      EndpointSummary s;
      s.jobs = zero_counts();
      if (auto it = counts.find(e.id); it != counts.end())
        for (const auto& [state, n] : it->second) s.jobs[state] += n;
      if (s.jobs[JobState::queued] > 0) s.oldest_queued = TRY(m_d.hooks.oldest_queued_job(e.id));
      if (s.oldest_queued &&
          (!out.oldest_queued || s.oldest_queued->next_attempt_at < out.oldest_queued->next_attempt_at))
        out.oldest_queued = s.oldest_queued;
      s.endpoint = std::move(e);
      out.endpoints.push_back(std::move(s));
    }
    endpoints_page.cursor = got.next_cursor;
  } while (endpoints_page.cursor);

  EventFilter filter;
  filter.user_id = caller.user.id;
  filter.endpoint_id = query.endpoint_id;
  filter.provider = query.provider;
  filter.job_state = query.job_state;
  filter.since = query.since;
  out.events = TRY(m_d.hooks.list_events(filter, page));
  out.retention_days = m_d.retention_days;
  out.store = TRY(m_d.hooks.store_size());
  return out;
}

Result<PruneResult> WebhookService::prune_events(const Caller& caller, std::string_view older_than, bool dry_run) {
  const int64_t now = m_d.clock.now_ms();
  const auto before = parse_since(older_than, now);
  if (!before)
    return fail(ErrorCode::bad_request,
                "olderThan must be an age like 30d, 12h, 15m or 0s, or a time (RFC 3339 or unix "
                "milliseconds); got '" +
                    std::string(older_than) + "'");
  std::vector<std::string> ids;
  for (auto& e : TRY(m_d.hooks.retention_endpoints()))
    if (e.user_id == caller.user.id) ids.push_back(std::move(e.id));
  PruneResult out;
  out.before = *before;
  out.dry_run = dry_run;
  out.removed = TRY(retire_events(m_d.hooks, ids, *before, dry_run, k_prune_batch));
  if (!dry_run && out.removed.events > 0) out.vacuumed = TRY(give_back_space(m_d.hooks, k_prune_vacuum_pages));
  return out;
}

}  // namespace alumia

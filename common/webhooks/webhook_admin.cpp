// The admin summary of the caller's webhooks (SPEC §9, GET /api/v1/admin/connector-events): the
// endpoints with their counters, jobs per state, the queued job that has waited longest, and a page of
// recent events. Nothing here walks events or jobs: the endpoint counters are columns kept as
// deliveries arrive (refusals summed by the RefusalTally, flushed first as every owner read does), the
// job counts are the rows migration 6's triggers keep, and the oldest queued job is one index probe
// per endpoint. So the view costs the same on an empty store as on one with millions of events.
#include <alumia/base/try.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <array>

namespace alumia {
namespace {

constexpr std::array k_job_states{JobState::queued, JobState::running, JobState::succeeded, JobState::failed,
                                  JobState::dead};

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
  return out;
}

}  // namespace alumia

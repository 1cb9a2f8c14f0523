// Events and jobs of the caller (SPEC §7): list, show and replay events; list and retry jobs. Each
// new or retried job wakes the relay worker.
#include <alumia/base/try.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>

namespace alumia {

Result<WebhookEvent> WebhookService::owned_event(const Caller& caller, const std::string& id) {
  if (!is_uuid(id)) return fail(ErrorCode::bad_request, "'" + id + "' is not an event id (a UUID)");
  auto found = TRY(m_d.hooks.find_event(id, true));
  if (!found || found->user_id != caller.user.id) return fail(ErrorCode::not_found, "no event " + id);
  return *found;
}

Result<PageResult<WebhookEvent>> WebhookService::list_events(const Caller& caller, EventFilter filter,
                                                             const Page& page) {
  filter.user_id = caller.user.id;
  return m_d.hooks.list_events(filter, page);
}

Result<WebhookEvent> WebhookService::get_event(const Caller& caller, const std::string& id) {
  return owned_event(caller, id);
}

Result<WebhookJob> WebhookService::replay_event(const Caller& caller, const std::string& id) {
  auto ev = TRY(owned_event(caller, id));
  if (ev.body_removed_at)
    return fail(ErrorCode::conflict, "event " + id +
                                         " cannot be replayed: retention removed its body and headers "
                                         "(events-retention-days, or the endpoint's retentionDays)");
  auto ep = TRY(m_d.hooks.find_endpoint(ev.endpoint_id));
  if (!ep || ep->deleted_at)
    return fail(ErrorCode::conflict, "the endpoint of event " + id + " was deleted; its events cannot be relayed");
  const int64_t now = m_d.clock.now_ms();
  WebhookJob j;
  j.id = m_d.random.uuid_v7(now);
  j.event_id = ev.id;
  j.endpoint_id = ev.endpoint_id;
  j.user_id = ev.user_id;
  j.state = JobState::queued;
  j.next_attempt_at = now;
  j.created_at = now;
  j.updated_at = now;
  TRY(m_d.hooks.insert_job(j));
  m_d.relay.jobs_due();
  return j;
}

Result<PageResult<WebhookJob>> WebhookService::list_jobs(const Caller& caller, JobFilter filter, const Page& page) {
  filter.user_id = caller.user.id;
  return m_d.hooks.list_jobs(filter, page);
}

Result<WebhookJob> WebhookService::retry_job(const Caller& caller, const std::string& id) {
  if (!is_uuid(id)) return fail(ErrorCode::bad_request, "'" + id + "' is not a job id (a UUID)");
  auto found = TRY(m_d.hooks.find_job(id));
  if (!found || found->user_id != caller.user.id) return fail(ErrorCode::not_found, "no job " + id);
  auto changed = TRY(m_d.hooks.retry_job(id, m_d.clock.now_ms()));
  if (!changed && found->state != JobState::succeeded && found->state != JobState::running)
    return fail(ErrorCode::conflict, "job " + id + " cannot be retried: retention removed the body of its event " +
                                         found->event_id + " (events-retention-days)");
  if (!changed)
    return fail(ErrorCode::conflict,
                "job " + id + " is " + std::string(to_string(found->state)) +
                    "; only queued, failed or dead jobs can be retried (replay the event to deliver it again)");
  m_d.relay.jobs_due();
  auto after = TRY(m_d.hooks.find_job(id));
  if (!after) return fail(ErrorCode::not_found, "no job " + id);
  return *after;
}

Result<int64_t> WebhookService::retry_jobs(const Caller& caller, JobState state, std::optional<int64_t> since) {
  if (state != JobState::dead && state != JobState::failed)
    return fail(ErrorCode::bad_request, "state must be dead or failed for a bulk retry");
  auto n = m_d.hooks.retry_jobs(caller.user.id, state, since, m_d.clock.now_ms());
  if (n && *n > 0) m_d.relay.jobs_due();
  return n;
}

std::optional<int64_t> WebhookService::parse_since(std::string_view text, int64_t now_ms) {
  if (text.empty()) return std::nullopt;
  const bool digits = std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || p != text.data() + text.size()) return std::nullopt;
    return v;
  }
  // Relative age: <n>s|m|h|d.
  const char unit = text.back();
  const std::string_view num = text.substr(0, text.size() - 1);
  if (!num.empty() && std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int64_t n = 0;
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
    if (ec == std::errc{} && p == num.data() + num.size() && n < 100000) {
      const int64_t mult = unit == 's'   ? 1000
                           : unit == 'm' ? 60000
                           : unit == 'h' ? 3600000
                           : unit == 'd' ? 86400000
                                         : 0;
      if (mult) return now_ms - n * mult;
    }
  }
  // RFC 3339 in UTC: YYYY-MM-DDTHH:MM:SS[.fff]Z
  std::tm tm{};
  int ms = 0;
  const std::string s(text);
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec, &consumed) != 6)
    return std::nullopt;
  std::string_view rest = text.substr(static_cast<std::size_t>(consumed));
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    int digits_seen = 0;
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
      if (digits_seen < 3) ms = ms * 10 + (rest.front() - '0');
      ++digits_seen;
      rest.remove_prefix(1);
    }
    for (int i = digits_seen; i < 3; ++i) ms *= 10;
    if (digits_seen == 0) return std::nullopt;
  }
  if (rest != "Z" && rest != "z") return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const time_t t = timegm(&tm);
  return static_cast<int64_t>(t) * 1000 + ms;
}

}  // namespace alumia

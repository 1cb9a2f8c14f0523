// Refusals summed in memory and handed to the store at a bounded rate (refusal_tally.hpp).
#include <alumia/webhooks/refusal_tally.hpp>

#include <utility>
#include <vector>

namespace alumia {

RefusalTally::RefusalTally(WebhookStore& hooks, const Clock& clock, std::chrono::milliseconds interval)
    : m_hooks(hooks), m_clock(clock), m_interval_ms(interval.count()) {}

RefusalTally::~RefusalTally() { flush(); }

void RefusalTally::add(const std::string& endpoint_id, std::optional<EndpointCounter> counter,
                       std::optional<EndpointError> error) {
  const int64_t now = m_clock.now_ms();
  EndpointRefusals due;
  {
    std::lock_guard lock(m_mutex);
    Entry& e = m_entries[endpoint_id];
    if (counter == EndpointCounter::rejected) ++e.pending.rejected;
    else if (counter == EndpointCounter::verification_failure) ++e.pending.verification_failures;
    else if (counter == EndpointCounter::rate_limited) ++e.pending.rate_limited;
    if (error && (!e.pending.last_error || e.pending.last_error->at <= error->at))
      e.pending.last_error = std::move(error);
    // A clock that stepped back hands over at once, and the next interval starts from there.
    if (now - e.handed_at < m_interval_ms && now >= e.handed_at) return;
    e.handed_at = now;
    due = std::exchange(e.pending, EndpointRefusals{});
  }
  m_hooks.add_refusals(endpoint_id, std::move(due));
}

void RefusalTally::flush() {
  std::vector<std::pair<std::string, EndpointRefusals>> due;
  {
    std::lock_guard lock(m_mutex);
    for (auto& [id, e] : m_entries)
      if (!e.pending.empty()) due.emplace_back(id, std::exchange(e.pending, EndpointRefusals{}));
  }
  for (auto& [id, r] : due) m_hooks.add_refusals(id, std::move(r));
}

void RefusalTally::flush(const std::string& endpoint_id) {
  EndpointRefusals due;
  {
    std::lock_guard lock(m_mutex);
    auto it = m_entries.find(endpoint_id);
    if (it == m_entries.end() || it->second.pending.empty()) return;
    due = std::exchange(it->second.pending, EndpointRefusals{});
  }
  m_hooks.add_refusals(endpoint_id, std::move(due));
}

}  // namespace alumia

#pragma once
// The receiver's refusals of known endpoints, summed in memory and handed to the store at a bounded
// rate. Anyone can make the receiver refuse (a bad signature, a flood over the rate limit), so what
// a refusal costs must not grow with the number of them: no disk write per request, no queue that
// grows per request. Each refusal adds to its endpoint's sums here (a counter and the newest
// lastError); the sums go to WebhookStore::add_refusals() when that endpoint's last hand-over is at
// least `interval` old, so at most once an interval per endpoint whatever the flood's rate, and on
// flush() (before the owner reads an endpoint, so its counts are exact, and at shutdown). Memory is
// one entry per endpoint that was refused: callers add only for endpoints that exist.
#include <alumia/base/clock.hpp>
#include <alumia/store/webhook_store.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace alumia {

class RefusalTally {
 public:
  RefusalTally(WebhookStore& hooks, const Clock& clock, std::chrono::milliseconds interval = std::chrono::seconds(1));
  ~RefusalTally();  // flush()
  RefusalTally(const RefusalTally&) = delete;
  RefusalTally& operator=(const RefusalTally&) = delete;

  // One refusal of `endpoint_id`: `counter` (if any) goes up by one and `error` replaces the kept
  // one when it is newer. Hands the sums over when they are due.
  void add(const std::string& endpoint_id, std::optional<EndpointCounter> counter, std::optional<EndpointError> error);
  // Hands over what is pending: for every endpoint, or for one.
  void flush();
  void flush(const std::string& endpoint_id);

 private:
  struct Entry {
    EndpointRefusals pending;
    int64_t handed_at = 0;  // unix ms of the last hand-over (0: never)
  };

  WebhookStore& m_hooks;
  const Clock& m_clock;
  const int64_t m_interval_ms;
  std::mutex m_mutex;
  std::map<std::string, Entry> m_entries;
};

}  // namespace alumia

// CachingJwks: JWKS documents over the outbound client, cached per URL (PROVIDERS §6 step 3).
#include <alumia/base/try.hpp>
#include <alumia/webhooks/webhooks.hpp>

#include <algorithm>

namespace alumia::webhooks {

namespace {

constexpr int64_t k_max_ttl = 24 * 3600;
constexpr int64_t k_max_failure_hold = 10;

// max-age from Cache-Control; no-store / no-cache mean "do not reuse" (0).
std::optional<int64_t> max_age(const std::optional<std::string>& cache_control) {
  if (!cache_control) return std::nullopt;
  const std::string value = http::to_lower(*cache_control);
  if (value.find("no-store") != std::string::npos || value.find("no-cache") != std::string::npos) return 0;
  const auto pos = value.find("max-age=");
  if (pos == std::string::npos) return std::nullopt;
  int64_t seconds = 0;
  bool any = false;
  for (std::size_t i = pos + 8; i < value.size() && value[i] >= '0' && value[i] <= '9'; ++i) {
    any = true;
    seconds = std::min<int64_t>(seconds * 10 + (value[i] - '0'), k_max_ttl);
  }
  if (!any) return std::nullopt;
  return seconds;
}

}  // namespace

CachingJwks::CachingJwks(http::Client& client, const Clock& clock, std::chrono::seconds default_ttl,
                         std::chrono::seconds min_refresh)
    : m_client(client),
      m_clock(clock),
      m_default_ttl(default_ttl),
      m_min_refresh(std::max<int64_t>(min_refresh.count(), 0)),
      m_failure_hold(std::min(m_min_refresh, k_max_failure_hold)) {}

Result<CachingJwks::Entry> CachingJwks::fetch(const std::string& jwks_url, int64_t now) {
  http::OutboundRequest request;
  request.url = jwks_url;
  request.headers.emplace_back("accept", "application/json");
  request.max_response_bytes = 256 * 1024;
  auto response = TRY(m_client.send(request));
  if (response.status != 200)
    return fail(ErrorCode::service_unavailable,
                "JWKS " + jwks_url + " answered HTTP " + std::to_string(response.status));
  auto doc = nlohmann::json::parse(response.body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array())
    return fail(ErrorCode::service_unavailable, "JWKS " + jwks_url + " is not a JSON key set");
  // At least min_refresh even for no-cache, so a busy receiver cannot hammer the key server.
  const int64_t ttl = std::max<int64_t>(
      max_age(response.header("cache-control")).value_or(std::min<int64_t>(m_default_ttl.count(), k_max_ttl)),
      m_min_refresh);
  return Entry{std::move(doc), now, now + ttl};
}

Result<nlohmann::json> CachingJwks::keys(const std::string& jwks_url, bool force_refresh) {
  std::unique_lock lock(m_mutex);
  Slot& slot = m_cache[jwks_url];  // std::map: the reference survives other insertions
  for (;;) {
    const int64_t now = m_clock.now_unix();
    if (slot.entry) {
      const bool fresh = now < slot.entry->expires_at;
      const bool refresh_allowed = now - slot.entry->fetched_at >= m_min_refresh;
      if ((fresh && !force_refresh) || (force_refresh && !refresh_allowed)) return slot.entry->doc;
    }
    // Keys rotate slowly: while a fetch is failing (or running), a stale copy beats failing.
    if (slot.failed_at && now - *slot.failed_at < m_failure_hold) {
      if (slot.entry) return slot.entry->doc;
      return std::unexpected(slot.failure);
    }
    if (!slot.fetching) break;
    if (slot.entry) return slot.entry->doc;
    m_fetched.wait(lock, [&] { return !slot.fetching; });  // the first fetch of this URL: share it
  }
  slot.fetching = true;
  const int64_t now = m_clock.now_unix();
  lock.unlock();
  auto entry = fetch(jwks_url, now);
  lock.lock();
  slot.fetching = false;
  m_fetched.notify_all();
  if (!entry) {
    slot.failed_at = now;
    slot.failure = entry.error();
    if (slot.entry) return slot.entry->doc;
    return std::unexpected(entry.error());
  }
  slot.failed_at.reset();
  slot.entry = std::move(*entry);
  return slot.entry->doc;
}

}  // namespace alumia::webhooks

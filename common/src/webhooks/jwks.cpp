// CachingJwks: JWKS documents over the outbound client, cached per URL (PROVIDERS §6 step 3).
#include <alumia/webhooks.hpp>

#include <algorithm>

namespace alumia::webhooks {

namespace {

constexpr int64_t k_min_refresh_interval = 60;
constexpr int64_t k_max_ttl = 24 * 3600;

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

CachingJwks::CachingJwks(http::Client& client, const Clock& clock, std::chrono::seconds default_ttl)
    : m_client(client), m_clock(clock), m_default_ttl(default_ttl) {}

Result<CachingJwks::Entry> CachingJwks::fetch(const std::string& jwks_url, int64_t now) {
  http::OutboundRequest request;
  request.url = jwks_url;
  request.headers.emplace_back("accept", "application/json");
  request.max_response_bytes = 256 * 1024;
  auto response = m_client.send(request);
  if (!response) return std::unexpected(response.error());
  if (response->status != 200)
    return fail(ErrorCode::service_unavailable,
                "JWKS " + jwks_url + " answered HTTP " + std::to_string(response->status));
  auto doc = nlohmann::json::parse(response->body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array())
    return fail(ErrorCode::service_unavailable, "JWKS " + jwks_url + " is not a JSON key set");
  // At least a minute even for no-cache, so a busy receiver cannot hammer the key server.
  const int64_t ttl = std::max<int64_t>(
      max_age(response->header("cache-control")).value_or(std::min<int64_t>(m_default_ttl.count(), k_max_ttl)),
      k_min_refresh_interval);
  return Entry{std::move(doc), now, now + ttl};
}

Result<nlohmann::json> CachingJwks::keys(const std::string& jwks_url, bool force_refresh) {
  const int64_t now = m_clock.now_unix();
  std::lock_guard lock(m_mutex);
  auto it = m_cache.find(jwks_url);
  if (it != m_cache.end()) {
    const bool fresh = now < it->second.expires_at;
    const bool refresh_allowed = now - it->second.fetched_at >= k_min_refresh_interval;
    if ((fresh && !force_refresh) || (force_refresh && !refresh_allowed)) return it->second.doc;
  }
  auto entry = fetch(jwks_url, now);
  if (!entry) {
    // Keys rotate slowly: a stale copy beats failing every push during a short outage.
    if (it != m_cache.end()) return it->second.doc;
    return std::unexpected(entry.error());
  }
  auto& slot = m_cache[jwks_url];
  slot = std::move(*entry);
  return slot.doc;
}

}  // namespace alumia::webhooks

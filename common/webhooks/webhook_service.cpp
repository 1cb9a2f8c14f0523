// The webhook service's shared parts: the base of receive URLs and sealing endpoint secrets. The
// seams live beside it: webhook_endpoints.cpp, webhook_receiver.cpp, webhook_events.cpp, and the
// cache of opened endpoints in endpoint_cache.cpp.
#include <alumia/base/try.hpp>
#include <alumia/webhooks/webhook_service.hpp>

namespace alumia {

WebhookService::WebhookService(WebhookServiceDeps deps)
    : m_d(std::move(deps)),
      m_jwks(m_d.http, m_d.clock, std::chrono::hours(1), m_d.jwks_min_refresh),
      m_tally(m_d.hooks, m_d.clock) {}

// The daemon judged the base URL at start (an unsafe one does not start, unless development mode
// said so): there is no fallback here.
std::string WebhookService::receive_base() const {
  std::string base = m_d.webhook_base_url.empty() ? m_d.control_url : m_d.webhook_base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

std::string WebhookService::receive_url(const WebhookEndpointRecord& e) const {
  return receive_base() + "/api/v1/connectors/webhooks/" + std::string(to_string(e.provider)) + "/" + e.id;
}

Status WebhookService::seal_and_store(const std::string& id, const std::map<std::string, std::string>& values) {
  const std::string_view table = k_webhook_endpoints_table;
  std::vector<SealedValue> sealed;
  for (const auto& [field, value] : values) {
    auto blob = TRY(m_d.sealer.seal(value, table, id, field));
    sealed.push_back({field, std::move(blob)});
  }
  return m_d.store.put_secrets(table, id, sealed);
}

}  // namespace alumia

// The webhook service's shared parts: the base of receive URLs and sealing endpoint secrets. The
// seams live beside it: webhook_endpoints.cpp, webhook_receiver.cpp, webhook_events.cpp, and the
// cache of opened endpoints in endpoint_cache.cpp.
#include <alumia/base/try.hpp>
#include <alumia/net/url.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <spdlog/spdlog.h>

namespace alumia {

WebhookService::WebhookService(WebhookServiceDeps deps)
    : m_d(std::move(deps)), m_jwks(m_d.http, m_d.clock, std::chrono::hours(1), m_d.jwks_min_refresh) {
  if (!m_d.webhook_base_url.empty()) {
    if (m_d.allow_insecure_base_url) {
      spdlog::warn("webhook base URL {} is accepted without checks (--allow-insecure-base-url): development only",
                   m_d.webhook_base_url);
    } else if (auto ok = url::check_public_base_url(m_d.webhook_base_url); !ok) {
      m_base_problem = ok.error().message;
      spdlog::warn("webhook base URL {} refused: {}; receive URLs use the control listener until it is fixed",
                   m_d.webhook_base_url, m_base_problem);
    }
  }
}

std::string WebhookService::receive_base() const {
  std::string base = (!m_d.webhook_base_url.empty() && m_base_problem.empty()) ? m_d.webhook_base_url : m_d.control_url;
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

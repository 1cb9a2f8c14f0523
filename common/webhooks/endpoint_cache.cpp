// The cache of endpoints with their secrets opened (the receiver's and the relay worker's read path).
#include <alumia/webhooks/endpoint_cache.hpp>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <iterator>

namespace alumia {

using nlohmann::json;

EndpointCache::EndpointCache(WebhookStore& hooks, Store& secrets, const Sealer& sealer, std::string default_relay_to,
                             RateLimit default_rate_limit)
    : m_hooks(hooks),
      m_secrets(secrets),
      m_sealer(sealer),
      m_default_relay_to(std::move(default_relay_to)),
      m_default_rate_limit(default_rate_limit) {}

Result<std::shared_ptr<const CachedEndpoint>> EndpointCache::load(const WebhookEndpointRecord& record) {
  const std::string_view table = k_webhook_endpoints_table;
  auto sealed = m_secrets.load_secrets(table, record.id);
  if (!sealed) return std::unexpected(sealed.error());
  auto c = std::make_shared<CachedEndpoint>(record, rate_limit(record));
  std::string secret, previous, verify_token;
  for (const auto& v : *sealed) {
    auto opened = m_sealer.open(v.blob, table, record.id, v.field);
    if (!opened) return std::unexpected(opened.error());
    if (v.field == "secret") secret = opened->str();
    else if (v.field == "previous_secret") previous = opened->str();
    else if (v.field == "verify_token") verify_token = opened->str();
    else if (v.field == "relay_secret") c->relay_secret = std::move(*opened);
  }
  webhooks::EndpointConfig cfg;
  cfg.provider = record.provider;
  if (!secret.empty()) cfg.secrets.push_back(secret);
  const json extra = json::parse(record.config, nullptr, false);
  auto str = [&](const char* k) {
    return extra.is_object() && extra.contains(k) && extra[k].is_string() ? extra[k].get<std::string>() : std::string();
  };
  cfg.bot_id = str("botId");
  cfg.audience = str("audience");
  cfg.jwks_url = str("jwksUrl");
  cfg.service_account_email = str("serviceAccountEmail");
  if (record.provider == Provider::gmail) cfg.legacy_token = verify_token;
  else cfg.verify_token = verify_token;
  c->current = cfg;
  c->during_grace = cfg;
  if (!previous.empty()) c->during_grace.secrets.push_back(previous);
  wipe_string(secret);
  wipe_string(previous);
  wipe_string(verify_token);
  if (auto w = webhooks::secret_whitespace_warning(cfg)) spdlog::warn("webhook endpoint {}: {}", record.id, *w);
  return std::shared_ptr<const CachedEndpoint>(std::move(c));
}

Result<std::shared_ptr<const CachedEndpoint>> EndpointCache::get(const std::string& id) {
  for (;;) {
    uint64_t generation = 0;
    uint64_t ids_generation = 0;
    bool load_ids = false;
    {
      std::lock_guard lock(m_mutex);
      if (auto it = m_cache.find(id); it != m_cache.end()) return it->second;
      if (m_ids && !m_ids->contains(id)) return std::shared_ptr<const CachedEndpoint>();
      generation = m_generation;
      ids_generation = m_ids_generation;
      load_ids = !m_ids && !m_ids_unavailable;
    }
    if (load_ids) {
      // The ids are read before any expect() made after this point could be missed: expect() adds to
      // the set once it exists, and an id expected meanwhile is merged in below.
      auto ids = m_hooks.endpoint_ids();
      if (!ids) return std::unexpected(ids.error());
      std::lock_guard lock(m_mutex);
      if (ids_generation != m_ids_generation) {
        // Everything was declared stale while the set was read: read it again.
      } else if (!*ids) {
        m_ids_unavailable = true;
      } else if (!m_ids) {
        m_ids.emplace(std::make_move_iterator((*ids)->begin()), std::make_move_iterator((*ids)->end()));
        for (auto& e : m_expected_early) m_ids->insert(std::move(e));
        m_expected_early.clear();
      }
      continue;
    }
    auto found = m_hooks.find_endpoint(id);
    if (!found) return std::unexpected(found.error());
    if (!*found) return std::shared_ptr<const CachedEndpoint>();
    auto loaded = load(**found);
    if (!loaded) return loaded;
    std::lock_guard lock(m_mutex);
    // An update, rotation or delete that forgot endpoints while this load ran may have changed the
    // row after it was read: caching that copy would serve the old state until the next change.
    if (generation == m_generation) return m_cache.emplace(id, *loaded).first->second;
  }
}

std::optional<std::shared_ptr<const CachedEndpoint>> EndpointCache::cached(const std::string& id) {
  std::lock_guard lock(m_mutex);
  if (auto it = m_cache.find(id); it != m_cache.end()) return it->second;
  if (m_ids && !m_ids->contains(id)) return std::shared_ptr<const CachedEndpoint>();
  return std::nullopt;
}

void EndpointCache::expect(const std::string& id) {
  std::lock_guard lock(m_mutex);
  if (m_ids) m_ids->insert(id);
  else if (!m_ids_unavailable) m_expected_early.push_back(id);
}

void EndpointCache::forget(const std::string& id) {
  std::lock_guard lock(m_mutex);
  m_cache.erase(id);
  ++m_generation;
}

void EndpointCache::changed_elsewhere(const std::string& id) {
  std::lock_guard lock(m_mutex);
  ++m_generation;
  if (id.empty()) {
    m_cache.clear();
    m_ids.reset();
    m_ids_unavailable = false;
    ++m_ids_generation;
    return;
  }
  m_cache.erase(id);
  if (m_ids) m_ids->insert(id);
  else if (!m_ids_unavailable) m_expected_early.push_back(id);
}

Result<std::optional<RelayTarget>> EndpointCache::relay_target(const std::string& endpoint_id) {
  auto got = get(endpoint_id);
  if (!got) return std::unexpected(got.error());
  const auto ep = *got;
  if (!ep || ep->record.deleted_at || ep->relay_secret.empty()) return std::optional<RelayTarget>();
  std::string target = ep->record.relay_to.value_or(m_default_relay_to);
  if (target.empty()) return std::optional<RelayTarget>();
  return std::optional<RelayTarget>(RelayTarget{std::move(target), ep->relay_secret});
}

}  // namespace alumia

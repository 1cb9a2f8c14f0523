#pragma once
// Webhook endpoints with their secrets opened, kept in memory: the receiver's hot path does no store
// read and no decryption per delivery, and the relay worker reads each job's target from here. Every
// change to an endpoint forget()s it, so the next read sees the change (a disabled endpoint answers
// NOT_FOUND from the next delivery on).
#include <alumia/base/token_bucket.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>
#include <alumia/webhooks/relay_target.hpp>
#include <alumia/webhooks/webhook_limits.hpp>
#include <alumia/webhooks/webhooks.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

namespace alumia {

struct CachedEndpoint {
  CachedEndpoint(WebhookEndpointRecord r, const RateLimit& limit)
      : record(std::move(r)), rate_limit(limit.per_second, limit.burst) {}
  WebhookEndpointRecord record;
  webhooks::EndpointConfig current;       // the current secret only
  webhooks::EndpointConfig during_grace;  // current + previous secret
  SecretBytes relay_secret;
  // The receiver's token bucket for this endpoint (its own limit, or the default): in memory only, so
  // a refused request writes nothing; a change to the endpoint (a new cache entry) starts it full.
  mutable TokenBucket rate_limit;
};

class EndpointCache final : public EndpointTargets {
 public:
  // `default_relay_to`: the setting relay-to ("" = none), the target of endpoints without their own;
  // `default_rate_limit`: the settings webhook-rate-limit and webhook-rate-burst, the limit of
  // endpoints without their own.
  EndpointCache(WebhookStore& hooks, Store& secrets, const Sealer& sealer, std::string default_relay_to,
                RateLimit default_rate_limit = {k_default_webhook_rate_per_second, k_default_webhook_rate_burst});

  // The endpoint (deleted and disabled ones too: callers decide); nullptr when there is no such row.
  Result<std::shared_ptr<const CachedEndpoint>> get(const std::string& id);
  // What get(id) answers when it can from memory, without reading the store; nullopt when it cannot.
  // An id that names no endpoint is answered (nullptr) from memory once get() has loaded the set of
  // endpoint ids: a stranger spraying random ids at the receiver costs no store read each.
  std::optional<std::shared_ptr<const CachedEndpoint>> cached(const std::string& id);
  // Drops the endpoint; a load that raced with this is not cached.
  void forget(const std::string& id);
  // Another daemon on the same store inserted or changed endpoint `id` (EndpointWatch): drops it, and
  // counts the id as existing, so that a new endpoint is read rather than answered "no such" from the
  // id set. `id` empty: anything cached may be stale (the watch reconnected, or its periodic re-check):
  // drops every endpoint and the id set, so both are read again.
  void changed_elsewhere(const std::string& id);
  // A new endpoint's id, before its row is inserted (a failed insert leaves a harmless extra id).
  void expect(const std::string& id);
  const std::string& default_relay_to() const { return m_default_relay_to; }
  // The endpoint's rate limit in force: its own, else the default.
  RateLimit rate_limit(const WebhookEndpointRecord& e) const { return e.rate_limit.value_or(m_default_rate_limit); }

  Result<std::optional<RelayTarget>> relay_target(const std::string& endpoint_id) override;

 private:
  Result<std::shared_ptr<const CachedEndpoint>> load(const WebhookEndpointRecord& record);

  WebhookStore& m_hooks;
  Store& m_secrets;
  const Sealer& m_sealer;
  std::string m_default_relay_to;
  RateLimit m_default_rate_limit;
  std::mutex m_mutex;
  std::map<std::string, std::shared_ptr<const CachedEndpoint>> m_cache;
  // Every endpoint id in the store (the negative cache, exact): loaded by the first get(), then kept
  // by expect(). Its size is the owners' endpoints, never what strangers send; unset until loaded.
  std::optional<std::unordered_set<std::string>> m_ids;
  bool m_ids_unavailable = false;             // the store cannot list them: every unknown id is read
  std::vector<std::string> m_expected_early;  // expect()ed before the set was loaded
  uint64_t m_generation = 0;                  // bumped by forget() and changed_elsewhere()
  uint64_t m_ids_generation = 0;              // bumped by changed_elsewhere(""): an id set read before is stale
};

}  // namespace alumia

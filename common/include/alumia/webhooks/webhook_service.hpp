#pragma once
// Webhook endpoints, the receiver pipeline, events and jobs (SPEC §7). Handlers in daemon/ call
// this; persistence is WebhookStore (rows) + Store (sealed secrets); verification is the per-provider
// Verifier table in webhooks.hpp.
//
// Endpoint secrets are opened once (at first use, create and rotate) and kept in memory, so the
// receiver's hot path does no store read and no decryption per request.
#include <alumia/base/clock.hpp>
#include <alumia/base/error.hpp>
#include <alumia/base/secret.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/net/http.hpp>
#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>
#include <alumia/webhooks/webhooks.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace alumia {

inline constexpr int64_t k_default_webhook_body_cap = 256 * 1024;
inline constexpr int64_t k_max_webhook_body_cap = 25 * 1024 * 1024;
inline constexpr int64_t k_dedup_ttl_ms = 8LL * 24 * 3600 * 1000;

struct WebhookServiceDeps {
  const Sealer& sealer;            // endpoint secrets
  ConnectionService& connections;  // an endpoint's connection (Telegram bot id)
  Store& store;
  WebhookStore& hooks;
  const Clock& clock;
  Random& random;
  http::Client& http;            // JWKS fetches (gmail)
  std::string webhook_base_url;  // setting webhook-base-url ("" = none)
  bool allow_insecure_base_url = false;
  std::string control_url;       // fallback base of receiveUrl
  std::string default_relay_to;  // setting relay-to
  std::chrono::milliseconds secret_grace{std::chrono::hours(24)};
  std::chrono::seconds jwks_min_refresh{60};  // Gmail push: an unknown kid refetches at most this often
};

// Where a job of an endpoint goes and the key that signs it.
struct RelayTarget {
  std::string url;
  SecretBytes secret;
};

class WebhookService {
 public:
  explicit WebhookService(WebhookServiceDeps deps);

  void set_control_url(std::string url);
  // Called after a commit that created a job (wakes the relay worker).
  void set_job_listener(std::function<void()> listener);
  const std::string& default_relay_to() const { return m_d.default_relay_to; }

  // Endpoints.
  Result<nlohmann::json> create_endpoint(const Caller& caller, const nlohmann::json& body);
  Result<PageResult<WebhookEndpointRecord>> list_endpoints(const Caller& caller, const Page& page);
  Result<WebhookEndpointRecord> get_endpoint(const Caller& caller, const std::string& id);
  Status delete_endpoint(const Caller& caller, const std::string& id);
  // PATCH: any of status ("active" | "disabled"), label, relayTo (null clears), maxBodyBytes. Unknown
  // fields and wrong types are VALIDATION_ERROR and change nothing.
  Result<WebhookEndpointRecord> update_endpoint(const Caller& caller, const std::string& id,
                                                const nlohmann::json& body);
  Result<nlohmann::json> rotate_secret(const Caller& caller, const std::string& id, const nlohmann::json& body);
  nlohmann::json endpoint_json(const WebhookEndpointRecord& e) const;

  // The receiver (params "provider" and "endpointId"), common/webhooks/webhook_receiver.cpp. Its errors
  // are public_refusal()s: the sender learns the code, never the reason, which goes to the log (at
  // a bounded rate) and, when the endpoint is known, to its lastError and counters.
  Result<http::Response> receive(const http::Request& req);
  // The receiver's body cap, checked on Content-Length before the body is read: the endpoint's
  // maxBodyBytes when `endpoint_id` is an active endpoint of `provider`, else the 256 KiB default.
  // PAYLOAD_TOO_LARGE (counted as rejected for a known endpoint) when `content_length` exceeds it.
  Status admit_body(const std::string& provider, const std::string& endpoint_id, std::size_t content_length);
  // What the receiver answers for a refusal with this detail: UNAUTHORIZED, NOT_FOUND, BAD_REQUEST,
  // method not allowed and PAYLOAD_TOO_LARGE keep their code with one fixed message each; anything
  // else becomes SERVICE_UNAVAILABLE (the provider retries) without detail.
  static Error public_refusal(const Error& detail);

  // Events and jobs of the caller.
  Result<PageResult<WebhookEvent>> list_events(const Caller& caller, EventFilter filter, const Page& page);
  Result<WebhookEvent> get_event(const Caller& caller, const std::string& id);
  Result<WebhookJob> replay_event(const Caller& caller, const std::string& id);
  Result<PageResult<WebhookJob>> list_jobs(const Caller& caller, JobFilter filter, const Page& page);
  Result<WebhookJob> retry_job(const Caller& caller, const std::string& id);
  Result<int64_t> retry_jobs(const Caller& caller, const std::string& state, std::optional<int64_t> since);

  static nlohmann::json event_json(const WebhookEvent& e, bool full);
  static nlohmann::json job_json(const WebhookJob& j);

  // The relay worker's view of an endpoint; nullopt when it has no target (or is gone).
  Result<std::optional<RelayTarget>> relay_target(const std::string& endpoint_id);

  // "2026-11-29T03:25:19Z" (fractions allowed), unix milliseconds, or an age like 15m / 2h / 7d.
  static std::optional<int64_t> parse_since(std::string_view text, int64_t now_ms);

 private:
  struct Cached {
    WebhookEndpointRecord record;
    webhooks::EndpointConfig current;       // the current secret only
    webhooks::EndpointConfig during_grace;  // current + previous secret
    SecretBytes relay_secret;
  };
  Result<std::shared_ptr<const Cached>> cached(const std::string& id);
  Result<std::shared_ptr<const Cached>> load(const WebhookEndpointRecord& record);
  void forget(const std::string& id);
  Result<WebhookEndpointRecord> owned_endpoint(const Caller& caller, const std::string& id);
  Result<WebhookEvent> owned_event(const Caller& caller, const std::string& id);
  std::string receive_base() const;
  Status seal_and_store(const std::string& id, const std::map<std::string, std::string>& values);
  // Counts, records (lastError) and logs a refused delivery to a known endpoint; the public answer.
  Error refuse(const std::string& provider, const std::string& endpoint_id, const Error& detail,
               std::optional<EndpointCounter> counter);
  void log_refusal(const std::string& line);

  // Refusals are logged at most k_refusal_log_lines times a window, then counted: a stranger can
  // cause them in a loop.
  static constexpr int64_t k_refusal_log_window_ms = 60'000;
  static constexpr int k_refusal_log_lines = 20;
  struct RefusalLog {
    int64_t window_start = 0;
    int lines = 0;
    int64_t suppressed = 0;
  };

  WebhookServiceDeps m_d;
  std::string m_base_problem;  // why webhook_base_url was refused ("" when usable or unset)
  webhooks::CachingJwks m_jwks;
  std::function<void()> m_job_listener;
  std::mutex m_cache_mutex;
  std::map<std::string, std::shared_ptr<const Cached>> m_cache;
  uint64_t m_cache_generation = 0;  // bumped by forget(): a load that raced with it is not cached
  std::mutex m_refusal_log_mutex;
  RefusalLog m_refusal_log;
};

}  // namespace alumia

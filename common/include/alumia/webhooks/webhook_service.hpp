#pragma once
// Webhook endpoints, the receiver pipeline, events and jobs (SPEC §7). Handlers in daemon/ parse
// requests into the structs below and render what comes back (daemon/wire.cpp); this service takes
// and returns domain types only. Persistence is WebhookStore (rows) + Store (sealed secrets);
// verification is the per-provider Verifier table in webhooks.hpp; endpoints with their opened
// secrets come from the EndpointCache, which the relay worker reads too. The service wakes the
// worker through JobWaker and never sees it.
//
// The member functions live in one file per seam: webhook_endpoints.cpp (create, update, delete,
// rotate and their validation), webhook_receiver.cpp (the public receiver), webhook_events.cpp
// (events and jobs: list, show, replay, retry), webhook_admin.cpp (the admin summary, SPEC §9).
#include <alumia/base/clock.hpp>
#include <alumia/base/error.hpp>
#include <alumia/base/secret.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/net/http.hpp>
#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>
#include <alumia/webhooks/endpoint_cache.hpp>
#include <alumia/webhooks/refusal_tally.hpp>
#include <alumia/webhooks/relay_target.hpp>
#include <alumia/webhooks/retention.hpp>
#include <alumia/webhooks/webhook_limits.hpp>
#include <alumia/webhooks/webhooks.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>

namespace alumia {

struct WebhookServiceDeps {
  ConnectionService& connections;  // an endpoint's connection (a Telegram endpoint's bot id: its token)
  Store& store;                    // sealed endpoint secrets
  const Sealer& sealer;            // seals them
  WebhookStore& hooks;
  EndpointCache& endpoints;
  JobWaker& relay;  // told when a job became due
  const Clock& clock;
  Random& random;
  http::Client& http;  // JWKS fetches (gmail)
  // The base of receiveUrls: the setting webhook-base-url as the daemon judged it at start (SPEC §8;
  // an unsafe one stops the start unless --allow-insecure-base-url), "" when not set.
  std::string webhook_base_url;
  // Set when webhook_base_url broke the rule and --allow-insecure-base-url let it through: said on
  // every reply that carries a receiveUrl built on it.
  std::string base_url_warning{};
  std::string control_url;  // the base of receiveUrls without webhook_base_url
  std::chrono::milliseconds secret_grace{std::chrono::hours(24)};
  std::chrono::seconds jwks_min_refresh{60};          // Gmail push: an unknown kid refetches at most this often
  int64_t retention_days = k_default_retention_days;  // events-retention-days: an endpoint's window unless its own
};

// An endpoint's own rate limit as asked for (rateLimit: {perSecond, burst?}); burst defaults to twice
// perSecond.
struct RateLimitRequest {
  int64_t per_second = 0;
  std::optional<int64_t> burst;
};

// A new endpoint (POST /webhook-endpoints). Absent fields are nullopt; an empty secret is none.
struct CreateEndpointRequest {
  std::optional<std::string> provider;
  std::optional<std::string> connection_id;
  std::optional<std::string> label;
  std::optional<std::string> relay_to;
  std::optional<int64_t> max_body_bytes;
  std::optional<RateLimitRequest> rate_limit;  // none: the daemon's default
  std::optional<int64_t> retention_days;       // none: the daemon's default (events-retention-days)
  std::optional<std::string> audience;         // gmail
  std::optional<std::string> jwks_url;         // gmail
  std::optional<std::string> service_account_email;
  std::optional<std::string> bot_id;  // telegram
  SecretBytes secret;                 // empty: the daemon generates it, for providers whose secret we choose
  SecretBytes verify_token;           // whatsapp handshake token; gmail legacy ?token=
};

struct CreatedEndpoint {
  WebhookEndpointRecord endpoint;
  SecretBytes relay_secret;           // shown once
  std::optional<SecretBytes> secret;  // when the daemon generated it: shown once
};

// PATCH: what is set changes; everything is checked before anything is written.
struct UpdateEndpointRequest {
  std::optional<std::string> status;  // "active" | "disabled"
  std::optional<std::string> label;
  std::optional<std::optional<std::string>> relay_to;  // holding nullopt: back to the daemon's default target
  std::optional<int64_t> max_body_bytes;
  std::optional<std::optional<RateLimitRequest>> rate_limit;  // holding nullopt: back to the daemon's default
  std::optional<std::optional<int64_t>> retention_days;       // holding nullopt: back to the daemon's default
};

struct RotateSecretRequest {
  SecretBytes secret;                    // empty: generated, for providers whose secret we choose
  std::optional<int64_t> grace_seconds;  // how long the old secret still verifies (default: the setting)
};

struct RotatedSecret {
  WebhookEndpointRecord endpoint;     // previous_secret_expires_at: until when the old secret verifies
  std::optional<SecretBytes> secret;  // when the daemon generated it: shown once
};

// A delivery admitted before its body was read: its endpoint as the cache answered (null when the id is
// not a UUID or names no endpoint; the error when the lookup failed), for receive().
struct AdmittedDelivery {
  Result<std::shared_ptr<const CachedEndpoint>> endpoint = std::shared_ptr<const CachedEndpoint>();
};

// What the receiver answers a delivery it took.
struct Receipt {
  // Sent verbatim when set: handshakes, ignored requests and providers that need an exact reply.
  std::optional<http::Response> exact_reply;
  std::string event_id;  // the event stored, or for a duplicate the original one
  bool duplicate = false;
};

// GET /admin/connector-events (SPEC §9): which events to list. The summary beside them is always the
// caller's whole picture; these select the events only.
struct AdminEventsQuery {
  std::optional<std::string> endpoint_id;  // one of the caller's endpoints (else NOT_FOUND)
  std::optional<Provider> provider;
  std::optional<JobState> job_state;  // of the event's newest job
  std::optional<int64_t> since;       // received at or after (unix ms)
};

struct EndpointSummary {
  WebhookEndpointRecord endpoint;    // its counters exact: the refusal tally is flushed first
  std::map<JobState, int64_t> jobs;  // every state, 0 included
  std::optional<WebhookJob> oldest_queued;
};

// The admin view: per endpoint its counters and jobs, the caller's jobs per state and the queued job
// that has waited longest, and a page of recent events. Every figure comes from a maintained counter
// or an index probe (WebhookStore::job_counts, oldest_queued_job), never a pass over events or jobs.
struct AdminSummary {
  int64_t now = 0;                         // when it was read: the oldest queued job's age is from it
  std::vector<EndpointSummary> endpoints;  // the caller's endpoints not deleted, newest first
  std::map<JobState, int64_t> jobs;        // every state, 0 included; deleted endpoints' jobs too
  std::optional<WebhookJob> oldest_queued;
  PageResult<WebhookEvent> events;
  int64_t retention_days = 0;  // the daemon's window (events-retention-days); an endpoint's own is on it
  StoreSize store;             // the store's files now
};

// `alumia-connect events prune` (SPEC §9): the caller's delivered and dead events received before
// `before` removed (rows, bodies, jobs), or with dry_run counted.
struct PruneResult {
  int64_t before = 0;
  bool dry_run = false;
  RetentionBatch removed;
  int64_t vacuumed = 0;  // bytes given back to the file system
};

class WebhookService {
 public:
  explicit WebhookService(WebhookServiceDeps deps);
  // Non-empty when receiveUrls are built on a base URL that broke SPEC §8 (development mode).
  const std::string& base_url_warning() const { return m_d.base_url_warning; }

  // Endpoints (webhook_endpoints.cpp).
  Result<CreatedEndpoint> create_endpoint(const Caller& caller, CreateEndpointRequest request);
  Result<PageResult<WebhookEndpointRecord>> list_endpoints(const Caller& caller, const Page& page);
  Result<WebhookEndpointRecord> get_endpoint(const Caller& caller, const std::string& id);
  Status delete_endpoint(const Caller& caller, const std::string& id);
  // Out-of-range values are VALIDATION_ERROR and change nothing.
  Result<WebhookEndpointRecord> update_endpoint(const Caller& caller, const std::string& id,
                                                const UpdateEndpointRequest& request);
  Result<RotatedSecret> rotate_secret(const Caller& caller, const std::string& id, RotateSecretRequest request);
  // Where the provider delivers to this endpoint: the webhook base URL when set, else the control listener.
  std::string receive_url(const WebhookEndpointRecord& e) const;
  // The endpoint's rate limit in force: its own, else the daemon's default (the settings).
  RateLimit rate_limit(const WebhookEndpointRecord& e) const { return m_d.endpoints.rate_limit(e); }

  // For setup commands (alumia/setup/setup_service.hpp), webhook_endpoints.cpp. The caller's
  // non-deleted endpoint of `provider` made for `connection_id`, or nullopt (the oldest when several).
  Result<std::optional<WebhookEndpointRecord>> find_connection_endpoint(const Caller& caller,
                                                                        const std::string& connection_id,
                                                                        Provider provider);
  // A new endpoint of the connection for a provider to be registered with. A secret we generate is
  // made now (it is shown nowhere: the setup command gives it to the provider); an endpoint of a
  // provider that issues its secret (stripe) is created disabled and without one, until the setup
  // command stores the issued one (rotate_secret). The relay secret is in the answer, to be shown once.
  Result<CreatedEndpoint> create_setup_endpoint(const Caller& caller, const std::string& connection_id,
                                                Provider provider, const std::string& label);
  // The endpoint's current verification secret (empty when it has none yet).
  Result<SecretBytes> current_secret(const Caller& caller, const std::string& id);
  // A fresh secret of the kind this service generates for `provider` (telegram: 64 chars of
  // [A-Za-z0-9_-]), stored nowhere; rotate_secret() stores it once the provider has it.
  SecretBytes fresh_secret(Provider provider);
  // Writes the setup command's state under "registration" in the endpoint's config (null removes it).
  Result<WebhookEndpointRecord> set_registration(const Caller& caller, const std::string& id,
                                                 const nlohmann::json& state);

  // The receiver (params "provider" and "endpointId"), webhook_receiver.cpp. Its errors are
  // public_refusal()s: the sender learns the code, never the reason, which goes to the log (at a
  // bounded rate) and, when the endpoint is known, to its lastError and counters (summed in memory,
  // written at most once a second per endpoint: RefusalTally). Before the verifier runs, the
  // endpoint's token bucket: over its rate limit, TOO_MANY_REQUESTS with Retry-After (counted as
  // rateLimited), and nothing else is done for the request.
  // `admitted` is admit_body()'s answer for this request; the body is moved out of `req` into the store.
  Result<Receipt> receive(http::Request& req, const AdmittedDelivery& admitted);
  // receive() on a thread that must not block (the public listener's poll thread): false, with `req`
  // as it was, when it would block — a verifier that may fetch keys (Gmail's JWKS), or a delivery the
  // store cannot settle from memory (WebhookStore::ingest_async); the caller then calls receive() on a
  // thread that may. Else true, and `done` gets what receive() would have returned, exactly once: at
  // once on this thread for a refusal, a handshake or a repeat, or on the intake log's flusher thread
  // once a new delivery is durable.
  bool receive_now(http::Request& req, const AdmittedDelivery& admitted, std::function<void(Result<Receipt>)> done);
  // Before the body is read (the daemon calls it with Content-Length): the delivery's endpoint, looked
  // up in the cache once for the whole delivery, and the receiver's body cap, its one check: the
  // endpoint's maxBodyBytes when `endpoint_id` is an active endpoint of `provider`, else the 256 KiB
  // default. PAYLOAD_TOO_LARGE (counted as rejected for a known endpoint) when `content_length` exceeds it;
  // then the endpoint's rate limit (a token from its bucket): TOO_MANY_REQUESTS with Retry-After, counted
  // as rateLimited, so that a flood is refused before its bodies are read.
  Result<AdmittedDelivery> admit_body(const std::string& provider, const std::string& endpoint_id,
                                      std::size_t content_length);
  // admit_body() when it can answer without reading the store (the endpoint is in the cache, or the id
  // is no endpoint id at all); nullopt when it would read the store, so that the listener admits on a
  // worker rather than on its poll thread.
  std::optional<Result<AdmittedDelivery>> admit_body_cached(const std::string& provider, const std::string& endpoint_id,
                                                            std::size_t content_length);
  // What the receiver answers for a refusal with this detail: UNAUTHORIZED, NOT_FOUND, BAD_REQUEST,
  // method not allowed, PAYLOAD_TOO_LARGE and TOO_MANY_REQUESTS (with its Retry-After) keep their code
  // with one fixed message each; anything else becomes SERVICE_UNAVAILABLE (the provider retries)
  // without detail.
  static Error public_refusal(const Error& detail);

  // Store write transactions so far (GET /status): a flood of refusals must not drive them up.
  uint64_t store_write_transactions() const { return m_d.hooks.write_transactions(); }

  // Events and jobs of the caller (webhook_events.cpp).
  Result<PageResult<WebhookEvent>> list_events(const Caller& caller, EventFilter filter, const Page& page);
  Result<WebhookEvent> get_event(const Caller& caller, const std::string& id);
  Result<WebhookJob> replay_event(const Caller& caller, const std::string& id);
  Result<PageResult<WebhookJob>> list_jobs(const Caller& caller, JobFilter filter, const Page& page);
  Result<WebhookJob> retry_job(const Caller& caller, const std::string& id);
  Result<int64_t> retry_jobs(const Caller& caller, JobState state, std::optional<int64_t> since);

  // The admin view (webhook_admin.cpp).
  Result<AdminSummary> admin_summary(const Caller& caller, const AdminEventsQuery& query, const Page& page);
  // Retention by hand (webhook_admin.cpp): `older_than` is an age (15m, 2h, 30d) or a time, as for
  // `since`; BAD_REQUEST otherwise.
  Result<PruneResult> prune_events(const Caller& caller, std::string_view older_than, bool dry_run);

  // "2026-11-29T03:25:19Z" (fractions allowed), unix milliseconds, or an age like 15m / 2h / 7d.
  static std::optional<int64_t> parse_since(std::string_view text, int64_t now_ms);

 private:
  Result<WebhookEndpointRecord> owned_endpoint(const Caller& caller, const std::string& id);
  Result<WebhookEvent> owned_event(const Caller& caller, const std::string& id);
  std::string receive_base() const;
  // A verified delivery, ready for the store.
  struct Verified {
    IngestRequest in;  // moved into the store
    std::string provider, endpoint_id;
    bool wake_relay = false;                    // its job can go somewhere
    std::optional<http::Response> exact_reply;  // sent instead of the receipt once it is stored
  };
  // receive() before the store: the answer already settled (a refusal, a handshake), or the delivery
  // to store. `may_block` false: nullopt for a verifier that may block, having done nothing.
  std::optional<std::variant<Result<Receipt>, Verified>> verify_delivery(http::Request& req,
                                                                         const AdmittedDelivery& admitted,
                                                                         bool may_block);
  // receive() after the store: the receipt for `outcome`, the relay woken for a new job.
  Result<Receipt> receipt_for(Verified& v, Result<IngestOutcome> outcome);
  Status seal_and_store(const std::string& id, const std::map<std::string, std::string>& values);
  // `e` inserted as a new endpoint of the caller (its id, owner and times set here) with a fresh relay
  // secret: the secrets (`values` and the relay secret) sealed first, so that a row never exists
  // without them, and destroyed again when the row cannot be inserted. `values` is wiped.
  Result<CreatedEndpoint> insert_new_endpoint(const Caller& caller, WebhookEndpointRecord e,
                                              std::map<std::string, std::string> values);
  // admit_body()'s rules once the endpoint is looked up (`admitted.endpoint`).
  Result<AdmittedDelivery> admit(const std::string& provider, const std::string& id, std::size_t content_length,
                                 AdmittedDelivery admitted);
  // Counts and records (lastError) a refused delivery to a known endpoint in the tally, logs it at a
  // bounded rate (naming `client`, the sender's address, when known: behind a trusted proxy the
  // forwarded one); the public answer.
  Error refuse(const std::string& provider, const std::string& endpoint_id, const Error& detail,
               std::optional<EndpointCounter> counter, const std::string& client = {});
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
  webhooks::CachingJwks m_jwks;
  std::mutex m_refusal_log_mutex;
  RefusalLog m_refusal_log;
  RefusalTally m_tally;  // last: its destructor hands what it holds to the store
};

}  // namespace alumia

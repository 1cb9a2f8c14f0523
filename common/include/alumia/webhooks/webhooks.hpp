#pragma once
// Webhook verification (PROVIDERS.md): one Verifier per provider behind one interface, listed once
// in the registry table (common/webhooks/verifiers/registry.cpp). Verifiers are pure logic over our own
// http::Request: no sockets, no SQL, no clock reads (time comes in through VerifyContext).
//
// Pipeline owned by the receiver (SPEC §7, PROVIDERS §0.6):
//   body cap → endpoint lookup → find_verifier(provider)->verify(req, ctx)
//   → error: answer error.http_status() (401 verification, 400 malformed, 405 method, 503 JWKS down)
//   → handshake / ignored: answer verdict.status / reply_body / reply_content_type, store nothing
//   → event: dedup on the keys (see Verdict), commit, then answer verdict.status (+ reply_body).
#include <alumia/base/clock.hpp>
#include <alumia/base/error.hpp>
#include <alumia/base/vocabulary.hpp>
#include <alumia/net/http.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alumia::webhooks {

// What the verifiers need to know about one endpoint. Fields a provider does not use stay empty.
struct EndpointConfig {
  Provider provider = Provider::github;
  // Active secrets, newest first; a request is accepted when any of them verifies (rotation grace,
  // PROVIDERS §0.2). Used verbatim as HMAC keys. Per provider:
  //   telegram: the secret_token; slack: signing secret; discord: the app public key (64 hex);
  //   whatsapp: the App Secret; twilio: the Auth Token; github/linear: webhook secret;
  //   stripe: the whole whsec_… string; gmail: unused (see below).
  std::vector<std::string> secrets;
  std::string verify_token;  // whatsapp: the GET subscription handshake token
  std::string bot_id;        // telegram: numeric prefix of the bot token, part of the event key
  // twilio: Webhooks Rule SharedKeys by key id, for `X-Twilio-Webhooks-Signature-Settings`
  // (HMAC-SHA256). Empty: that scheme is refused.
  std::map<std::string, std::string> shared_keys;
  // gmail (Pub/Sub push). JWT mode is on when `audience` is set (then `service_account_email` is
  // required); legacy `?token=` mode is on when `legacy_token` is set; both set = both required.
  std::string audience;
  std::string jwks_url;  // empty: k_google_jwks_url
  std::string service_account_email;
  std::string legacy_token;
};

enum class Outcome {
  event,      // new work: dedup on the keys, commit, then reply
  handshake,  // answer with the verdict's reply, enqueue nothing
  ignored,    // verified but carries no work (e.g. Slack app_rate_limited): reply, enqueue nothing
};

struct Verdict {
  Outcome outcome = Outcome::event;
  // The normalized key stored on the event (PROVIDERS §0.8), e.g. "github:<delivery>". Empty for
  // handshakes and ignored requests.
  std::string event_key;
  // Extra keys recorded with the event; a hit on event_key OR any alias is a duplicate (Linear's
  // content key, because retries may not reuse Linear-Delivery).
  std::vector<std::string> alias_keys;
  // Batched deliveries (WhatsApp, Twilio Event Streams): one key per item, event_key ==
  // item_keys.front(). The request is a duplicate only when EVERY item key is already known.
  std::vector<std::string> item_keys;
  std::string event_type;  // provider's event name, e.g. "push", "customer.created", "Issue.create"
  // The success reply. For events it applies to new deliveries and duplicates alike when
  // `exact_reply` is set (Telegram: 200 with an empty body; Discord events: 204; Twilio: TwiML).
  int status = 200;
  std::string reply_body;
  std::string reply_content_type;  // empty when reply_body is empty
  bool exact_reply = false;        // send reply_body verbatim; never add a JSON envelope or duplicate marker
};

// JWKS documents ({"keys":[...]}) by URL. force_refresh asks for a refetch (unknown kid); an
// implementation may rate-limit it and answer from its cache.
class JwksSource {
 public:
  virtual ~JwksSource() = default;
  virtual Result<nlohmann::json> keys(const std::string& jwks_url, bool force_refresh) = 0;
};

struct VerifyContext {
  const EndpointConfig& endpoint;
  int64_t now_ms;              // the injected clock (Clock::now_ms()); never read the clock here
  JwksSource* jwks = nullptr;  // gmail only
  // twilio: the full URL the provider called, rebuilt from the public base URL + req.target.
  // Empty: rebuilt from X-Forwarded-Proto (default https) + Host + req.target.
  std::string public_url;

  int64_t now_unix() const { return now_ms >= 0 ? now_ms / 1000 : -((-now_ms + 999) / 1000); }
};

class Verifier {
 public:
  virtual ~Verifier() = default;
  virtual std::string_view provider() const = 0;
  // Load-time check of an endpoint's configuration (VALIDATION_ERROR naming the problem): e.g. a
  // Discord key that is not 32 bytes, a Telegram token outside [A-Za-z0-9_-]{1,256}.
  virtual Status check_config(const EndpointConfig& endpoint) const = 0;
  // Errors: UNAUTHORIZED for every verification failure (bad/missing/duplicated signature headers,
  // stale timestamps, bad tokens), BAD_REQUEST for a verified but malformed request (bad JSON, no
  // event id), method_not_allowed for a method the scheme never uses, SERVICE_UNAVAILABLE when the
  // JWKS cannot be fetched.
  virtual Result<Verdict> verify(const http::Request& req, const VerifyContext& ctx) const = 0;
  // Whether verify() may wait on the network (a key fetch): such a verifier never runs on the
  // listener's poll thread (WebhookService::receive_now).
  virtual bool may_block() const { return false; }
};

// The one table: each Provider (alumia/base/vocabulary.hpp) and its verifier.
const Verifier& find_verifier(Provider provider);
// By name (parse_provider); nullptr for an unknown provider.
const Verifier* find_verifier(std::string_view provider);
// Provider names in table order: telegram, slack, discord, whatsapp, twilio, gmail, github, linear,
// stripe.
std::span<const std::string_view> providers();
// The names for help texts and messages, in table order: "telegram, slack, ..., linear, stripe";
// with last_separator " or ": "telegram, slack, ..., linear or stripe".
std::string provider_list(std::string_view last_separator = ", ");
// Whether the daemon chooses this provider's webhook secret (Telegram's secret_token, GitHub's hook
// secret) rather than the provider issuing it (PROVIDERS §0.2).
bool daemon_generates_secret(Provider provider);

// Secrets with leading/trailing whitespace are legal but almost always a paste error (PROVIDERS
// §0.2): the loader warns with this message (nullopt: nothing to warn about).
std::optional<std::string> secret_whitespace_warning(const EndpointConfig& endpoint);

// Telegram secret_token rule: ^[A-Za-z0-9_-]{1,256}$.
bool valid_telegram_secret_token(std::string_view token);

// Pub/Sub message.data: standard or url-safe base64, padding optional (PROVIDERS §6 pitfalls).
std::optional<std::string> decode_pubsub_data(std::string_view data);

inline constexpr std::string_view k_google_jwks_url = "https://www.googleapis.com/oauth2/v3/certs";

// JwksSource over the outbound HTTP client: caches each URL for Cache-Control max-age (else
// default_ttl, at most 24 h) and serves the stale copy if a refetch fails. Thread-safe.
// A forced refresh (an unknown kid) refetches at most once per
// `min_refresh`; a failed fetch is remembered for min(min_refresh, 10 s), so an outage of the key
// server (or tokens with made-up kids) never turns every delivery into an outbound request. The
// fetch runs outside the lock: other deliveries keep using the cached keys meanwhile.
class CachingJwks final : public JwksSource {
 public:
  CachingJwks(http::Client& client, const Clock& clock, std::chrono::seconds default_ttl = std::chrono::hours(1),
              std::chrono::seconds min_refresh = std::chrono::seconds(60));
  Result<nlohmann::json> keys(const std::string& jwks_url, bool force_refresh) override;

 private:
  struct Entry {
    nlohmann::json doc;
    int64_t fetched_at = 0;
    int64_t expires_at = 0;
  };
  struct Slot {
    std::optional<Entry> entry;
    bool fetching = false;
    std::optional<int64_t> failed_at;
    Error failure;
  };
  Result<Entry> fetch(const std::string& jwks_url, int64_t now);

  http::Client& m_client;
  const Clock& m_clock;
  std::chrono::seconds m_default_ttl;
  int64_t m_min_refresh;
  int64_t m_failure_hold;
  std::mutex m_mutex;
  std::condition_variable m_fetched;
  std::map<std::string, Slot> m_cache;
};

}  // namespace alumia::webhooks

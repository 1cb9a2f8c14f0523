#pragma once
// Registering a webhook endpoint with its provider (SPEC §8, `setup-webhook`): one Registrar per
// provider behind one interface, listed once in the registry table (common/setup/registry.cpp), like
// the verifiers. A registrar speaks the provider's API only: it gets everything it needs in
// RegistrarContext (the receive URL, the endpoint's current secret, the connection's credential, the
// API base, the state it left last time) and answers what to keep. It never touches the store; the
// SetupService (setup_service.hpp) finds or creates the endpoint, judges the base URL, opens the
// credential, stores what the registrar returns (state in the endpoint's config under
// "registration", a provider-issued secret sealed) and enables or disables the endpoint.
//
// Contract:
// - apply() is idempotent: with `previous` state it finds the provider-side object it made (by id,
//   else by listing and matching the receive URL) and updates it in place; it never makes a second.
// - Nothing provider-side is created when a check fails first: a registrar validates its options
//   before its first call.
// - Provider answers map to our codes: a rejected credential (401/403) → VALIDATION_ERROR naming the
//   connection and the fix (`alumia-connect credentials ID` or `connect --reconnect ID`); a refused
//   value (400/422) → VALIDATION_ERROR with the provider's own description; 404 of a repo/org/object
//   → NOT_FOUND; 429 → TOO_MANY_REQUESTS with Error::retry_after_seconds; 5xx and transport failures →
//   SERVICE_UNAVAILABLE. Messages never carry a secret (token, secret_token, whsec_).
#include <alumia/base/clock.hpp>
#include <alumia/base/error.hpp>
#include <alumia/base/secret.hpp>
#include <alumia/base/vocabulary.hpp>
#include <alumia/net/http.hpp>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace alumia::setup {

// The command's options, as the handler parsed them (POST .../commands/setup-webhook body).
struct SetupOptions {
  std::optional<std::string> base_url;  // --base-url: judged like the setting before any provider call
  bool remove = false;                  // --remove: delete the provider-side object, disable the endpoint
  bool rotate_secret = false;           // --rotate-secret: a new generated secret (telegram, github)
  bool drop_pending = false;            // telegram: drop_pending_updates
  std::optional<std::string> repo;      // github: OWNER/NAME
  std::optional<std::string> org;       // github: ORG
  // telegram allowed_updates, github events, stripe enabled_events; absent: the provider default
  // (telegram: every update type the Bot API sends by default, github: ["*"], stripe: ["*"]).
  std::optional<std::vector<std::string>> events;
};

struct RegistrarContext {
  std::string connection_id;  // for messages ("reconnect with ...")
  std::string receive_url;    // <base>/api/v1/connectors/webhooks/<provider>/<endpoint id>
  std::string api_base;       // e.g. https://api.telegram.org (no trailing slash)
  SecretBytes credential;     // telegram: the bot token; github: an access token; stripe: the secret key
  // The endpoint's current verification secret (telegram secret_token, github webhook secret, stripe
  // whsec_); empty when it has none yet (stripe before its first registration).
  SecretBytes secret;
  // What this registrar returned as `state` last time (endpoint config "registration"), or null.
  nlohmann::json previous;
  http::Client& http;
  Random& random;
};

struct Registration {
  nlohmann::json state = nlohmann::json::object();  // kept for the next run (non-secret: ids, targets)
  // A secret the provider issued (stripe's whsec_): the service stores it as the endpoint's secret.
  std::optional<SecretBytes> issued_secret;
  // What the provider reports now, shown to the user (non-secret): telegram getWebhookInfo
  // {url, pendingUpdateCount, lastErrorDate, lastErrorMessage, ...}; github {hookId, target, events,
  // active, url}; stripe {webhookEndpointId, url, enabledEvents, status}.
  nlohmann::json report = nlohmann::json::object();
  // When the endpoint still has provider-side registrations after a removal (github: hooks on other
  // repositories), the service keeps it active.
  bool still_registered = false;
};

class Registrar {
 public:
  virtual ~Registrar() = default;
  virtual Provider provider() const = 0;
  // Whether the endpoint secret is ours to generate (telegram, github) or issued by the provider (stripe).
  virtual bool generates_secret() const = 0;
  // Checks the options before anything is called (e.g. github needs exactly one of --repo/--org).
  virtual Status check(const SetupOptions& options) const = 0;
  virtual Result<Registration> apply(const RegistrarContext& ctx, const SetupOptions& options) const = 0;
  virtual Result<Registration> remove(const RegistrarContext& ctx, const SetupOptions& options) const = 0;
};

// The registrar of a provider, or null when it has no setup command.
const Registrar* find_registrar(Provider provider);

// One per provider (common/setup/<provider>.cpp); registry.cpp lists them.
const Registrar& telegram_registrar();
const Registrar& github_registrar();
const Registrar& stripe_registrar();

}  // namespace alumia::setup

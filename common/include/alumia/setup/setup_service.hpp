#pragma once
// The setup command (SPEC §8, POST /api/v1/connections/:id/commands/setup-webhook): registers a
// connection's webhook endpoint with its provider through that provider's Registrar (registrar.hpp).
//
// One run, in this order, so that nothing reaches a provider before every local check passed:
//   1. the caller's connection, active (else CONFLICT naming how to finish or reconnect it);
//   2. its connector's webhook provider and that provider's registrar (none: BAD_REQUEST), whose
//      check() judges the options;
//   3. the base URL: the request's baseUrl judged by url::judge_base_url, else the setting
//      webhook-base-url the daemon judged at start; none is VALIDATION_ERROR; allow-insecure-base-url
//      turns a refusal into a warning of the result;
//   4. the connection's credential (OAuth: a fresh access token; api_key: the connector's first
//      secret credential field) and the connector's API base (settings > catalog default);
//   5. the connection's endpoint for that provider, found or created (WebhookService), and the
//      receive URL on the judged base: <base>/api/v1/connectors/webhooks/<provider>/<endpoint id>;
//   6. the registrar's apply() or remove(), then what it returned stored: its state under
//      "registration" in the endpoint's config, an issued secret through the secret rotation (the old
//      one verifies during the grace), the endpoint enabled, or disabled after a removal.
// Running it twice finds the same endpoint and the registrar updates what it made: nothing is
// rotated unless `rotate_secret` asks (a fresh generated secret, registered first, then stored).
#include <alumia/base/clock.hpp>
#include <alumia/base/error.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/net/http.hpp>
#include <alumia/oauth/oauth.hpp>
#include <alumia/setup/registrar.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <nlohmann/json.hpp>

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace alumia::setup {

struct SetupServiceDeps {
  ConnectionService& connections;
  oauth::FlowService& oauth;  // access tokens of OAuth connections
  WebhookService& webhooks;
  const Catalog& catalog;
  EnvLookup env;  // API bases: the catalog's envVar names, answered from the settings (daemon.cpp)
  http::Client& http;
  Random& random;
  // The setting webhook-base-url as the daemon judged it at start (url::judge_base_url): its normal
  // form ("" = none), where it came from ("CONNECTOR_WEBHOOK_BASE_URL (env)") and, when
  // --allow-insecure-base-url let an unsafe one through, the warning every run repeats.
  std::string webhook_base_url = {};
  std::string base_url_origin = {};
  std::string base_url_warning = {};
  bool allow_insecure_base_url = false;  // also lifts the rule for a command's --base-url
};

struct SetupResult {
  std::string connection_id;
  WebhookEndpointRecord endpoint;
  std::string receive_url;  // on the judged base URL
  bool endpoint_created = false;
  bool removed = false;
  nlohmann::json report = nlohmann::json::object();  // Registration::report
  // The relay secret of an endpoint this run created, to be shown once (as `webhooks create` does).
  std::optional<SecretBytes> relay_secret;
  // For the reply's envelope: e.g. the base URL accepted only because of allow-insecure-base-url.
  std::vector<std::string> warnings;
};

class SetupService {
 public:
  explicit SetupService(SetupServiceDeps deps) : m_d(std::move(deps)) {}

  Result<SetupResult> run(const Caller& caller, std::string_view connection_id, const SetupOptions& options);

 private:
  // The base URL this run registers, in its normal form.
  Result<std::string> judged_base_url(const SetupOptions& options, std::vector<std::string>& warnings) const;
  Result<SecretBytes> open_credential(const Connection& c, const Connector& connector);

  SetupServiceDeps m_d;
  std::mutex m_run_mutex;  // serializes run(): find-or-create of an endpoint is not atomic otherwise
};

}  // namespace alumia::setup

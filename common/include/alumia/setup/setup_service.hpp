#pragma once
// The setup command (SPEC §8, POST /api/v1/connections/:id/commands/setup-webhook): registers a
// connection's webhook endpoint with its provider through that provider's Registrar (registrar.hpp).
//
// One run, in this order, so that nothing reaches a provider before every local check passed:
//   1. the caller's connection, active (else CONFLICT naming how to finish or reconnect it);
//   2. its connector's webhook provider and that provider's registrar (none: BAD_REQUEST), whose
//      check() judges the options;
//   3. the base URL (the request's baseUrl, else the setting webhook-base-url; none is
//      VALIDATION_ERROR) judged by url::check_public_base_url, unless allow-insecure-base-url is on,
//      which turns the refusal into a warning of the result;
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
  std::string webhook_base_url = {};  // the setting webhook-base-url ("" = none)
  std::string base_url_origin = {};   // where it came from, for messages: "CONNECTOR_WEBHOOK_BASE_URL (env)"
  bool allow_insecure_base_url = false;
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
  // The base URL this run registers: judged, trailing slashes dropped.
  Result<std::string> judged_base_url(const SetupOptions& options, std::vector<std::string>& warnings) const;
  Result<SecretBytes> open_credential(const Connection& c, const Connector& connector);

  SetupServiceDeps m_d;
  std::mutex m_run_mutex;  // serializes run(): find-or-create of an endpoint is not atomic otherwise
};

}  // namespace alumia::setup

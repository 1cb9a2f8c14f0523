#pragma once
// The wire format, in one place (SPEC §3): the envelope, the typed request structs that handlers parse
// request bodies into, and every JSON shape the daemon answers with. common/ takes and returns domain
// types and never builds wire JSON; the CLI reads exactly these shapes.
#include "context.hpp"
#include "master_key_rotation.hpp"

#include <alumia/auth/api_keys.hpp>
#include <alumia/base/error.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/connections/oauth_clients.hpp>
#include <alumia/net/http.hpp>
#include <alumia/oauth/oauth.hpp>
#include <alumia/setup/setup_service.hpp>
#include <alumia/store/domain.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alumia::daemon {

// ---- the envelope ----

// {"success": true, "data": …, "warnings"?: ["…"]}: `warnings` only when there are any, each a sentence
// the CLI prints on stderr as "warning: …" (a success that the caller should hear more about, e.g. a
// receiveUrl built on a base URL that --allow-insecure-base-url let through).
http::Response ok(const nlohmann::json& data, int status = 200, const std::vector<std::string>& warnings = {});
// {"success": false, "error": {"code", "message"}} with the code's HTTP status (and Retry-After).
http::Response error_response(const Error& e);
Result<nlohmann::json> parse_json_body(const http::Request& req);
// A page of a list: {"items", "limit", "nextCursor", "hasMore"}.
nlohmann::json list_json(nlohmann::json items, std::size_t limit, const std::optional<std::string>& next_cursor);
// ?limit=1..200&cursor=…
Result<Page> page_from_query(const http::Request& req);
// An RFC 3339 time, or null.
nlohmann::json time_or_null(const std::optional<int64_t>& unix_ms);

// ---- request bodies ----

// POST /api/v1/api-keys {name?, scopes?}
Result<CreateApiKey> parse_create_api_key(const nlohmann::json& body);
// POST /api/v1/connections {connectorSlug, label?}
Result<StartConnection> parse_start_connection(const nlohmann::json& body);
// POST /api/v1/connections/:id/credentials {values: {field: value}}
Result<SubmitCredentials> parse_submit_credentials(const nlohmann::json& body);
// POST /api/v1/oauth-clients/:slug {clientId, clientSecret}
Result<SetOAuthClient> parse_set_oauth_client(const nlohmann::json& body);

// ---- API keys (SPEC §2) ----

nlohmann::json api_key_json(const ApiKeyRecord& k);
// The reply to a create: the record and the key's value, shown this once.
nlohmann::json api_key_created_json(const ApiKeyRecord& k, const std::string& plaintext);
nlohmann::json deleted_json();  // {"deleted": true}

// ---- connectors (SPEC §4) ----

// The public API item of SPEC §4. `configured` is whether an OAuth client is set; api_key and none
// connectors are always configured. Never contains a secret.
nlohmann::json connector_json(const Connector& c, bool configured);

// ---- connections (SPEC §5, §6) ----

nlohmann::json connection_json(const Connection& c);
nlohmann::json start_json(const StartResult& r);
nlohmann::json submitted_json(const Connection& c);  // {"connection": …}
nlohmann::json disconnected_json(const oauth::RevocationOutcome& r);
nlohmann::json access_token_json(const oauth::AccessToken& t, const std::string& connection_id);
// The API-key values of a connection; the caller wipes its copies.
nlohmann::json credential_values_json(const std::map<std::string, std::string>& values,
                                      const std::string& connection_id);
nlohmann::json oauth_url_json(const Connection& c, const std::string& oauth_url);
// POST /api/v1/admin/login-links: {url, expiresAt}.
nlohmann::json login_link_json(const std::string& url, int64_t expires_at_ms);

// The OAuth result page the callback 303s to (static text, no token; the handler adds strict headers).

// ---- the daemon ----

// `write_transactions`: the webhook store's since start (WebhookStore::write_transactions).
nlohmann::json status_json(const DaemonInfo& info, std::string_view store_backend, const std::string& env,
                           uint64_t write_transactions);
nlohmann::json health_json();

// GET /api/v1/diagnostics (what `doctor` reads beyond the status): the caller's key, the store's
// files, the webhook base URL as judged. Sizes are of the files on disk, read at the request.
struct StoreFile {
  std::string path;
  bool present = false;
  uint64_t bytes = 0;
  bool private_mode = false;  // no permission bits for group or others
};
struct Diagnostics {
  const Caller* caller = nullptr;
  std::string store_backend;
  StoreFile store, wal, intake_log;
  std::optional<std::string> store_read_error;  // nullopt: a read of the store succeeded
  std::string webhook_base;                     // "" when the setting is unset
  std::string webhook_base_origin;              // where it came from (Settings::origin)
  std::string webhook_base_broken_rule;         // "" when it is a safe public base URL
};
nlohmann::json diagnostics_json(const DaemonInfo& info, const Diagnostics& d);
// GET /api/v1/admin/config: every setting the daemon resolved, its source and origin; secrets "(set)".
nlohmann::json config_json(const Settings& settings);

// ---- webhook endpoints, events and jobs ----
// GET/PATCH /webhook-endpoints/:id and the items of the list; `receive_url` from WebhookService::receive_url.
// `rate_limit`: the one in force (WebhookService::rate_limit: the endpoint's own, else the default).
nlohmann::json endpoint_json(const WebhookEndpointRecord& e, std::string_view receive_url, const RateLimit& rate_limit);
// POST /webhook-endpoints: {endpoint, relaySecret, secret (when generated)}; the secrets are shown once.
nlohmann::json created_endpoint_json(const CreatedEndpoint& c, std::string_view receive_url,
                                     const RateLimit& rate_limit);
// POST /webhook-endpoints/:id/rotate-secret: {endpoint, previousSecretExpiresAt, secret (when generated)}.
nlohmann::json rotated_secret_json(const RotatedSecret& r, std::string_view receive_url, const RateLimit& rate_limit);
// An event; `full` adds its headers and body (bodyEncoding utf-8 or base64).
nlohmann::json event_json(const WebhookEvent& e, bool full);
nlohmann::json job_json(const WebhookJob& j);
// GET /admin/connector-events (SPEC §9): {generatedAt, endpoints: [{id, provider, label, status, counts,
// lastDeliveryAt, lastError, jobs, oldestQueuedJob}], jobs: {queued, running, succeeded, failed, dead},
// oldestQueuedJob: {id, eventId, endpointId, queuedAt, ageSeconds} | null, events: a list page,
// retentionDays: the daemon's window, storeBytes: store.db and its WAL on disk}.
nlohmann::json admin_summary_json(const AdminSummary& s, std::size_t limit);
// POST /api/v1/connector-events/prune: what went (or, dry, would go).
nlohmann::json prune_json(const PruneResult& r);
// The receiver's answer to a stored delivery: {eventId} or {duplicate: true, eventId}.
nlohmann::json receipt_json(const Receipt& r);
http::Response receipt_ok(const Receipt& r);  // ok(receipt_json(r)), built faster

// ---- setup commands (SPEC §8) ----

// POST /api/v1/connections/:id/commands/setup-webhook {baseUrl?, remove?, rotateSecret?, dropPending?,
// repo?, org?, events?}; `{}` is the default run; an unknown member or a wrong type is BAD_REQUEST.
Result<setup::SetupOptions> parse_setup_options(const nlohmann::json& body);
// {connectionId, endpoint (as GET /webhook-endpoints/:id), receiveUrl, endpointCreated, removed,
// provider (the registrar's report)}, plus relaySecret when the run created the endpoint (shown once).
// The endpoint's verification secret is never in it.
nlohmann::json setup_result_json(const setup::SetupResult& r, std::string_view endpoint_receive_url,
                                 const RateLimit& rate_limit);

// POST /api/v1/admin/master-key/rotate {dryRun?, to?}: `to` is "secret-service" or "file".
Result<RotateMasterRequest> parse_rotate_master(const nlohmann::json& body);
// {dryRun, rotated, secretsChecked, from: {backend, location}, to: {backend, location}}.
nlohmann::json rotate_master_json(const RotateMasterResult& r);

}  // namespace alumia::daemon

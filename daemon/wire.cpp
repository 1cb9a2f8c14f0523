// The daemon's one file of wire shapes (SPEC §3): the envelope, request parsing, and every reply.
#include "wire.hpp"

#include <alumia/base/clock.hpp>
#include <alumia/base/encoding.hpp>
#include <alumia/base/secret.hpp>
#include <alumia/base/strings.hpp>
#include <alumia/base/try.hpp>
#include <alumia/webhooks/event_content.hpp>

#include <charconv>

namespace alumia::daemon {
namespace {

using nlohmann::json;

// A string field of an object body: absent or null is "" (or an error when required).
Result<std::string> string_field(const json& body, const char* name, bool required) {
  if (!body.contains(name) || body[name].is_null()) {
    if (required) return fail(ErrorCode::bad_request, std::string("missing field '") + name + "'");
    return std::string();
  }
  if (!body[name].is_string())
    return fail(ErrorCode::bad_request, std::string("field '") + name + "' must be a string");
  return body[name].get<std::string>();
}

}  // namespace

// ---- the envelope ----

http::Response ok(const json& data, int status, const std::vector<std::string>& warnings) {
  http::Response r;
  r.status = status;
  json envelope{{"success", true}, {"data", data}};
  if (!warnings.empty()) envelope["warnings"] = warnings;
  r.body = envelope.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

http::Response error_response(const Error& e) {
  http::Response r;
  r.status = e.http_status();
  // A message may quote what the client sent (a path segment that is not UTF-8): such bytes become
  // U+FFFD instead of the dump throwing (the bad-input matrix found it answered 500).
  r.body = json{{"success", false}, {"error", {{"code", e.wire()}, {"message", e.message}}}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
  if (e.retry_after_seconds > 0) r.headers.emplace_back("Retry-After", std::to_string(e.retry_after_seconds));
  return r;
}

Result<json> parse_json_body(const http::Request& req) {
  if (req.body.empty()) return json::object();
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded()) return fail(ErrorCode::bad_request, "malformed JSON body");
  return j;
}

json list_json(json items, std::size_t limit, const std::optional<std::string>& next_cursor) {
  return json{{"items", std::move(items)},
              {"limit", limit},
              {"nextCursor", next_cursor ? json(*next_cursor) : json(nullptr)},
              {"hasMore", next_cursor.has_value()}};
}

Result<Page> page_from_query(const http::Request& req) {
  Page p;
  if (auto l = req.query_param("limit")) {
    std::size_t v = 0;
    auto [ptr, ec] = std::from_chars(l->data(), l->data() + l->size(), v);
    if (ec != std::errc{} || ptr != l->data() + l->size() || v == 0 || v > 200)
      return fail(ErrorCode::bad_request, "limit must be an integer from 1 to 200");
    p.limit = v;
  }
  if (auto c = req.query_param("cursor"); c && !c->empty()) p.cursor = *c;
  return p;
}

json time_or_null(const std::optional<int64_t>& unix_ms) {
  return unix_ms ? json(format_time_ms(*unix_ms)) : json(nullptr);
}

// ---- request bodies ----

Result<CreateApiKey> parse_create_api_key(const json& body) {
  if (!body.is_object()) return fail(ErrorCode::bad_request, "body must be a JSON object");
  CreateApiKey out;
  auto name = TRY(string_field(body, "name", false));
  out.name = std::move(name);
  if (body.contains("scopes")) {
    const json& scopes = body["scopes"];
    if (!scopes.is_array()) return fail(ErrorCode::bad_request, "field 'scopes' must be an array of strings");
    out.scopes.emplace();
    for (const auto& s : scopes) {
      if (!s.is_string()) return fail(ErrorCode::bad_request, "field 'scopes' must be an array of strings");
      out.scopes->push_back(s.get<std::string>());
    }
  }
  return out;
}

Result<StartConnection> parse_start_connection(const json& body) {
  if (!body.is_object()) return fail(ErrorCode::bad_request, "body must be a JSON object {connectorSlug, label?}");
  auto slug = TRY(string_field(body, "connectorSlug", true));
  auto label = TRY(string_field(body, "label", false));
  return StartConnection{std::move(slug), std::move(label)};
}

Result<SubmitCredentials> parse_submit_credentials(const json& body) {
  if (!body.is_object() || !body.contains("values") || !body["values"].is_object())
    return fail(ErrorCode::bad_request, "body must be {\"values\": {field: value, ...}}");
  SubmitCredentials out;
  for (const auto& [k, v] : body["values"].items()) {
    if (!v.is_string()) {
      for (auto& [field, value] : out.values) wipe_string(value);
      return fail(ErrorCode::bad_request, "value of '" + k + "' must be a string");
    }
    out.values[k] = v.get<std::string>();
  }
  return out;
}

Result<SetOAuthClient> parse_set_oauth_client(const json& body) {
  if (!body.is_object() || !body.contains("clientId") || !body["clientId"].is_string() ||
      !body.contains("clientSecret") || !body["clientSecret"].is_string())
    return fail(ErrorCode::bad_request, "body must be {\"clientId\": \"…\", \"clientSecret\": \"…\"}");
  std::string secret = body["clientSecret"].get<std::string>();
  SetOAuthClient out{body["clientId"].get<std::string>(), SecretBytes(secret)};
  wipe_string(secret);
  return out;
}

// ---- API keys ----

json api_key_json(const ApiKeyRecord& k) {
  return json{{"id", k.id},
              {"name", k.name},
              {"prefix", k.prefix},
              {"scopes", scope_names(k.scopes)},
              {"createdAt", format_time_ms(k.created_at)},
              {"lastUsedAt", time_or_null(k.last_used_at)},
              {"revokedAt", time_or_null(k.revoked_at)}};
}

json api_key_created_json(const ApiKeyRecord& k, const std::string& plaintext) {
  return json{{"apiKey", api_key_json(k)}, {"key", plaintext}};
}

json deleted_json() { return json{{"deleted", true}}; }

// ---- connectors ----

json connector_json(const Connector& c, bool configured) {
  const bool is_configured = c.auth_type != AuthType::oauth || configured;
  json j = json::object();
  j["slug"] = c.slug;
  j["name"] = c.name;
  j["description"] = c.description;
  j["category"] = c.category;
  j["authType"] = to_string(c.auth_type);
  j["configured"] = is_configured;
  if (c.availability == Availability::coming_soon) {
    j["availability"] = "coming_soon";
    j["availabilityReason"] = c.availability_reason.empty() ? c.name + " is not available yet" : c.availability_reason;
  } else if (!is_configured) {
    const auto env = oauth_client_env_names(c.slug);
    j["availability"] = "unconfigured";
    j["availabilityReason"] = "no OAuth client is configured for " + c.slug + ": set " + env.client_id + " and " +
                              env.client_secret + ", or pipe the secret to `alumia-connect oauth-client set " + c.slug +
                              " --client-id ID`";
  } else {
    j["availability"] = "available";
  }
  json tools = json::array();
  for (const auto& t : c.tools) tools.push_back({{"name", t.name}, {"description", t.description}});
  j["tools"] = std::move(tools);
  if (c.auth_type == AuthType::api_key) {
    json fields = json::array();
    for (const auto& f : c.credential_fields) {
      json field = {{"key", f.key}, {"label", f.label}, {"required", f.required}, {"secret", f.secret}};
      if (f.pattern) field["pattern"] = *f.pattern;
      if (f.placeholder) field["placeholder"] = *f.placeholder;
      fields.push_back(std::move(field));
    }
    j["credentialFields"] = std::move(fields);
  }
  if (c.webhook) {
    const auto& w = *c.webhook;
    const std::string provider(to_string(w.provider));
    json webhook = {{"provider", provider},
                    {"scheme", w.scheme},
                    {"secretSource", to_string(w.secret_source)},
                    {"receivePath", "/api/v1/connectors/webhooks/" + provider + "/{endpointId}"},
                    {"setupCommands", c.commands}};
    if (!w.signature_header.empty()) webhook["signatureHeader"] = w.signature_header;
    if (!w.secret_label.empty()) webhook["secretLabel"] = w.secret_label;
    if (!w.endpoint_extras.empty()) webhook["endpointExtras"] = w.endpoint_extras;
    j["webhook"] = std::move(webhook);
  } else {
    j["webhook"] = nullptr;
  }
  j["commands"] = c.commands;
  return j;
}

// ---- connections ----

json connection_json(const Connection& c) {
  json err = nullptr;
  if (c.error) err = json{{"code", c.error->code}, {"message", c.error->message}};
  return json{{"id", c.id},
              {"connectorSlug", c.connector_slug},
              {"label", c.label},
              {"authType", to_string(c.auth_type)},
              {"status", to_string(c.status)},
              {"accountLabel", c.account_label.empty() ? json(nullptr) : json(c.account_label)},
              {"scopes", c.scopes},
              {"expiresAt", time_or_null(c.expires_at)},
              {"lastRefreshedAt", time_or_null(c.last_refreshed_at)},
              {"error", err},
              {"createdAt", format_time_ms(c.created_at)},
              {"updatedAt", format_time_ms(c.updated_at)},
              {"deletedAt", time_or_null(c.deleted_at)}};
}

json start_json(const StartResult& r) {
  return json{{"connection", connection_json(r.connection)},
              {"oauthUrl", r.oauth_url ? json(*r.oauth_url) : json(nullptr)},
              {"credentialSubmitUrl", r.credential_submit_url ? json(*r.credential_submit_url) : json(nullptr)}};
}

json submitted_json(const Connection& c) { return json{{"connection", connection_json(c)}}; }

json disconnected_json(const oauth::RevocationOutcome& r) {
  return json{{"deleted", true},
              {"providerRevocation", {{"attempted", r.attempted}, {"ok", r.ok}, {"detail", r.detail}}}};
}

json access_token_json(const oauth::AccessToken& t, const std::string& connection_id) {
  return json{{"accessToken", std::string(t.access_token.view())},
              {"tokenType", t.token_type},
              {"expiresAt", time_or_null(t.expires_at)},
              {"scopes", t.scopes},
              {"connectionId", connection_id}};
}

json credential_values_json(const std::map<std::string, std::string>& values, const std::string& connection_id) {
  json v = json::object();
  for (const auto& [k, val] : values) v[k] = val;
  return json{{"values", std::move(v)}, {"connectionId", connection_id}};
}

json oauth_url_json(const Connection& c, const std::string& oauth_url) {
  return json{{"connection", connection_json(c)}, {"oauthUrl", oauth_url}};
}

json login_link_json(const std::string& url, int64_t expires_at_ms) {
  return json{{"url", url}, {"expiresAt", format_time_ms(expires_at_ms)}};
}

// ---- the daemon ----

json status_json(const DaemonInfo& i, std::string_view store_backend, const std::string& env,
                 uint64_t write_transactions) {
  json keyring{{"backend", i.keyring_backend}, {"location", i.keyring_location}};
  keyring["warning"] = i.keyring_warning.empty() ? json(nullptr) : json(i.keyring_warning);
  return json{
      {"version", i.version},
      {"pid", i.pid},
      {"url", i.control_url},
      {"publicUrl", i.public_url.empty() ? json(nullptr) : json(i.public_url)},
      {"keyring", keyring},
      {"store", {{"backend", store_backend}, {"path", i.store_path}, {"writeTransactions", write_transactions}}},
      {"startedAt", format_time_ms(i.started_at_ms)},
      {"env", env}};
}

json health_json() { return json{{"ok", true}}; }

namespace {

json store_file_json(const StoreFile& f) {
  return json{{"path", f.path}, {"present", f.present}, {"bytes", f.bytes}, {"private", f.private_mode}};
}

}  // namespace

json diagnostics_json(const DaemonInfo& i, const Diagnostics& d) {
  json key = nullptr;
  if (d.caller != nullptr && !d.caller->key.id.empty())
    key = json{{"id", d.caller->key.id},
               {"name", d.caller->key.name},
               {"prefix", d.caller->key.prefix},
               {"scopes", scope_names(d.caller->key.scopes)}};
  json store = store_file_json(d.store);
  store["backend"] = d.store_backend;
  store["readable"] = !d.store_read_error;
  store["readError"] = d.store_read_error ? json(*d.store_read_error) : json(nullptr);
  store["wal"] = store_file_json(d.wal);
  store["intakeLog"] = store_file_json(d.intake_log);
  json base{{"url", d.webhook_base.empty() ? json(nullptr) : json(d.webhook_base)},
            {"origin", d.webhook_base_origin},
            {"safe", !d.webhook_base.empty() && d.webhook_base_broken_rule.empty()},
            {"brokenRule", d.webhook_base_broken_rule.empty() ? json(nullptr) : json(d.webhook_base_broken_rule)}};
  return json{{"version", i.version},
              {"key", std::move(key)},
              {"store", std::move(store)},
              {"webhookBase", std::move(base)},
              {"publicUrl", i.public_url.empty() ? json(nullptr) : json(i.public_url)}};
}

json config_json(const Settings& settings) {
  json items = json::array();
  for (const auto& spec : setting_specs()) {
    const auto& s = settings.setting(spec.name);
    items.push_back(json{{"name", spec.name},
                         {"value", spec.secret ? json(s.value.empty() ? "" : "(set)") : json(s.value)},
                         {"source", std::string(to_string(s.source))},
                         {"origin", settings.origin(spec.name)},
                         {"env", spec.env},
                         {"configKey", spec.config_key},
                         {"default", spec.default_value},
                         {"secret", spec.secret},
                         {"testOnly", spec.test_only}});
  }
  return json{{"settings", std::move(items)}};
}

// ---- webhook endpoints, events and jobs ----

namespace {

nlohmann::json webhook_time_or_null(const std::optional<int64_t>& v) {
  return v ? nlohmann::json(format_time_ms(*v)) : nlohmann::json(nullptr);
}

}  // namespace

namespace {

// An endpoint's counters (maintained by the store; SPEC §7).
json endpoint_counts_json(const WebhookEndpointRecord& e) {
  return {{"received", e.received},
          {"duplicates", e.duplicates},
          {"rejected", e.rejected},
          {"verificationFailures", e.verification_failures},
          {"rateLimited", e.rate_limited}};
}

// The owner's view of the receiver's last refusal (the sender got a generic answer).
json last_error_json(const WebhookEndpointRecord& e) {
  if (!e.last_error) return nullptr;
  return {{"code", e.last_error->code}, {"message", e.last_error->message}, {"at", format_time_ms(e.last_error->at)}};
}

}  // namespace

nlohmann::json endpoint_json(const WebhookEndpointRecord& e, std::string_view receive_url,
                             const RateLimit& rate_limit) {
  using nlohmann::json;
  return json{
      {"id", e.id},
      {"provider", to_string(e.provider)},
      {"connectionId", e.connection_id ? json(*e.connection_id) : json(nullptr)},
      {"label", e.label},
      {"status", to_string(e.deleted_at ? EndpointStatus::disabled : e.status)},
      {"receiveUrl", receive_url},
      {"relayTo", e.relay_to ? json(*e.relay_to) : json(nullptr)},
      {"maxBodyBytes", e.max_body_bytes},
      // The limit in force; "default": the daemon's (settings webhook-rate-limit, -burst), not its own.
      {"rateLimit", {{"perSecond", rate_limit.per_second}, {"burst", rate_limit.burst}, {"default", !e.rate_limit}}},
      {"retentionDays", e.retention_days ? nlohmann::json(*e.retention_days) : nlohmann::json(nullptr)},
      {"counts", endpoint_counts_json(e)},
      {"lastDeliveryAt", webhook_time_or_null(e.last_delivery_at)},
      {"lastError", last_error_json(e)},
      {"createdAt", format_time_ms(e.created_at)}};
}

nlohmann::json created_endpoint_json(const CreatedEndpoint& c, std::string_view receive_url,
                                     const RateLimit& rate_limit) {
  nlohmann::json out{{"endpoint", endpoint_json(c.endpoint, receive_url, rate_limit)},
                     {"relaySecret", c.relay_secret.str()}};
  if (c.secret) out["secret"] = c.secret->str();
  return out;
}

nlohmann::json rotated_secret_json(const RotatedSecret& r, std::string_view receive_url, const RateLimit& rate_limit) {
  nlohmann::json out{{"endpoint", endpoint_json(r.endpoint, receive_url, rate_limit)},
                     {"previousSecretExpiresAt", webhook_time_or_null(r.endpoint.previous_secret_expires_at)}};
  if (r.secret) out["secret"] = r.secret->str();
  return out;
}

nlohmann::json event_json(const WebhookEvent& e, bool full) {
  using nlohmann::json;
  json j{{"id", e.id},
         {"endpointId", e.endpoint_id},
         {"provider", to_string(e.provider)},
         {"eventKey", e.event_key},
         {"eventType", e.event_type},
         {"receivedAt", format_time_ms(e.received_at)},
         {"jobState", e.job_state ? json(to_string(*e.job_state)) : json(nullptr)},
         {"bodyRemovedAt", webhook_time_or_null(e.body_removed_at)}};
  if (full) {
    j["headers"] = event_headers(e);
    // Valid UTF-8 shows as text; anything else as base64 (bodyEncoding says which).
    const bool text = body_is_text(e.body);
    j["body"] = text ? e.body : encoding::base64_encode(e.body);
    j["bodyEncoding"] = text ? "utf-8" : "base64";
  }
  return j;
}

nlohmann::json job_json(const WebhookJob& j) {
  using nlohmann::json;
  return json{{"id", j.id},
              {"eventId", j.event_id},
              {"endpointId", j.endpoint_id},
              {"state", to_string(j.state)},
              {"attempts", j.attempts},
              {"nextAttemptAt", is_pending(j.state) ? json(format_time_ms(j.next_attempt_at)) : json(nullptr)},
              {"lastStatus", j.last_status ? json(*j.last_status) : json(nullptr)},
              {"lastError", j.last_error ? json(*j.last_error) : json(nullptr)},
              {"createdAt", format_time_ms(j.created_at)},
              {"updatedAt", format_time_ms(j.updated_at)},
              {"finishedAt", webhook_time_or_null(j.finished_at)}};
}

namespace {

nlohmann::json job_counts_json(const std::map<JobState, int64_t>& counts) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [state, n] : counts) out[std::string(to_string(state))] = n;
  return out;
}

nlohmann::json oldest_queued_json(const std::optional<WebhookJob>& j, int64_t now) {
  if (!j) return nullptr;
  return nlohmann::json{{"id", j->id},
                        {"eventId", j->event_id},
                        {"endpointId", j->endpoint_id},
                        {"queuedAt", format_time_ms(j->next_attempt_at)},
                        {"ageSeconds", std::max<int64_t>(0, (now - j->next_attempt_at) / 1000)}};
}

}  // namespace

nlohmann::json admin_summary_json(const AdminSummary& s, std::size_t limit) {
  using nlohmann::json;
  json endpoints = json::array();
  for (const auto& es : s.endpoints) {
    const auto& e = es.endpoint;
    endpoints.push_back(json{{"id", e.id},
                             {"provider", to_string(e.provider)},
                             {"label", e.label},
                             {"status", to_string(e.status)},
                             {"counts", endpoint_counts_json(e)},
                             {"lastDeliveryAt", webhook_time_or_null(e.last_delivery_at)},
                             {"lastError", last_error_json(e)},
                             {"jobs", job_counts_json(es.jobs)},
                             {"oldestQueuedJob", oldest_queued_json(es.oldest_queued, s.now)}});
  }
  json events = json::array();
  for (const auto& e : s.events.items) events.push_back(event_json(e, false));
  return json{{"generatedAt", format_time_ms(s.now)},
              {"endpoints", std::move(endpoints)},
              {"jobs", job_counts_json(s.jobs)},
              {"oldestQueuedJob", oldest_queued_json(s.oldest_queued, s.now)},
              {"events", list_json(std::move(events), limit, s.events.next_cursor)},
              {"retentionDays", s.retention_days},
              {"storeBytes", s.store.file_bytes}};
}

nlohmann::json prune_json(const PruneResult& r) {
  return nlohmann::json{{"olderThan", format_time_ms(r.before)},
                        {"dryRun", r.dry_run},
                        {"events", r.removed.events},
                        {"jobs", r.removed.jobs},
                        {"bytes", r.removed.bytes},
                        {"reclaimedBytes", r.vacuumed}};
}

nlohmann::json receipt_json(const Receipt& r) {
  if (r.duplicate) return nlohmann::json{{"duplicate", true}, {"eventId", r.event_id}};
  return nlohmann::json{{"eventId", r.event_id}};
}

// The answer to every stored delivery (thousands a second, built on the intake log's flusher thread, which
// every acknowledgement waits for): the bytes of ok(receipt_json(r)), written without a json tree. An
// event id is a UUID; anything else takes the general path.
http::Response receipt_ok(const Receipt& r) {
  http::Response out;
  out.status = 200;
  out.body = r.duplicate ? R"({"data":{"duplicate":true,"eventId":)" : R"({"data":{"eventId":)";
  if (!append_json_string_ascii(out.body, r.event_id)) return ok(receipt_json(r));
  out.body += R"(},"success":true})";
  return out;
}

// ---- setup commands ----

Result<setup::SetupOptions> parse_setup_options(const nlohmann::json& body) {
  using nlohmann::json;
  const auto malformed = [](std::string message) { return fail(ErrorCode::bad_request, std::move(message)); };
  if (!body.is_object())
    return malformed(
        "body must be a JSON object: {baseUrl?, remove?, rotateSecret?, dropPending?, repo?, org?, events?}");
  setup::SetupOptions o;
  for (const auto& [key, value] : body.items()) {
    if (value.is_null()) continue;
    if (key == "baseUrl" || key == "repo" || key == "org") {
      if (!value.is_string()) return malformed(key + " must be a string");
      (key == "baseUrl" ? o.base_url : key == "repo" ? o.repo : o.org) = value.get<std::string>();
    } else if (key == "remove" || key == "rotateSecret" || key == "dropPending") {
      if (!value.is_boolean()) return malformed(key + " must be true or false");
      (key == "remove" ? o.remove : key == "rotateSecret" ? o.rotate_secret : o.drop_pending) = value.get<bool>();
    } else if (key == "events") {
      if (!value.is_array()) return malformed("events must be an array of strings");
      o.events.emplace();
      for (const auto& e : value) {
        if (!e.is_string()) return malformed("events must be an array of strings");
        o.events->push_back(e.get<std::string>());
      }
    } else {
      return malformed("unknown field '" + key +
                       "'; setup-webhook accepts baseUrl, remove, rotateSecret, dropPending, repo, org and events");
    }
  }
  return o;
}

nlohmann::json setup_result_json(const setup::SetupResult& r, std::string_view endpoint_receive_url,
                                 const RateLimit& rate_limit) {
  nlohmann::json out{{"connectionId", r.connection_id},
                     {"endpoint", endpoint_json(r.endpoint, endpoint_receive_url, rate_limit)},
                     {"receiveUrl", r.receive_url},
                     {"endpointCreated", r.endpoint_created},
                     {"removed", r.removed},
                     {"provider", r.report}};
  if (r.relay_secret) out["relaySecret"] = r.relay_secret->str();
  return out;
}

Result<RotateMasterRequest> parse_rotate_master(const json& body) {
  constexpr std::string_view shape =
      "body must be a JSON object {dryRun?: boolean, to?: \"secret-service\" | \"file\"}";
  if (!body.is_object()) return fail(ErrorCode::bad_request, std::string(shape));
  RotateMasterRequest out;
  for (const auto& [key, value] : body.items()) {
    if (key == "dryRun") {
      if (!value.is_boolean()) return fail(ErrorCode::bad_request, "field 'dryRun' must be true or false");
      out.dry_run = value.get<bool>();
    } else if (key == "to") {
      const auto mode = value.is_string() ? parse_keyring_mode(value.get<std::string>()) : std::nullopt;
      if (!mode || *mode == KeyringMode::auto_)
        return fail(ErrorCode::bad_request, "field 'to' must be \"secret-service\" or \"file\"");
      out.to = *mode;
    } else {
      return fail(ErrorCode::bad_request, "unknown field '" + key + "'; " + std::string(shape));
    }
  }
  return out;
}

json rotate_master_json(const RotateMasterResult& r) {
  return json{{"dryRun", r.dry_run},
              {"rotated", !r.dry_run},
              {"secretsChecked", r.secrets_checked},
              {"from", {{"backend", r.from_backend}, {"location", r.from_location}}},
              {"to", {{"backend", r.to_backend}, {"location", r.to_location}}}};
}

}  // namespace alumia::daemon

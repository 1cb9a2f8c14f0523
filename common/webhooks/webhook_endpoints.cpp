// Webhook endpoints (SPEC §7): create, list, show, update, delete, rotate-secret, and the checks of
// their fields (one set, so that create and update accept exactly the same values).
#include <alumia/base/text.hpp>
#include <alumia/base/try.hpp>
#include <alumia/net/url.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace alumia {
namespace {

using nlohmann::json;

constexpr std::string_view k_table = k_webhook_endpoints_table;

std::string generate_secret(Provider provider, Random& random) {
  if (provider == Provider::telegram) return random.base64url(48);  // 64 chars of [A-Za-z0-9_-]
  return random.hex(32);
}

Status check_label(const std::string& label) {
  TRY(check_no_control_characters(label, "label"));
  if (label.size() > 200) return fail(ErrorCode::validation_error, "label must be at most 200 characters");
  return {};
}

Status check_relay_to(const std::string& relay_to) {
  auto u = url::parse(relay_to);
  if (!u || (u->scheme != "http" && u->scheme != "https"))
    return fail(ErrorCode::validation_error, "relayTo must be an http(s) URL");
  if (auto ok = url::check_outbound_url(relay_to); !ok)
    return fail(ErrorCode::validation_error, "relayTo: " + ok.error().message);
  return {};
}

Status check_max_body(int64_t max_body) {
  if (max_body < 1 || max_body > k_max_webhook_body_cap)
    return fail(ErrorCode::validation_error, "maxBodyBytes must be from 1 to 26214400 (25 MiB)");
  return {};
}

// rateLimit as asked → the limit stored with the endpoint (burst: twice perSecond unless given).
Result<RateLimit> check_rate_limit(const RateLimitRequest& r) {
  const std::string range = " must be an integer from 1 to " + std::to_string(k_max_webhook_rate);
  if (r.per_second < 1 || r.per_second > k_max_webhook_rate)
    return fail(ErrorCode::validation_error, "rateLimit.perSecond" + range);
  const int64_t burst = r.burst.value_or(std::min(2 * r.per_second, k_max_webhook_rate));
  if (burst < 1 || burst > k_max_webhook_rate) return fail(ErrorCode::validation_error, "rateLimit.burst" + range);
  return RateLimit{r.per_second, burst};
}

Status check_retention_days(int64_t days) {
  if (days < 1 || days > k_max_retention_days)
    return fail(ErrorCode::validation_error, "retentionDays must be an integer from 1 to " +
                                                 std::to_string(k_max_retention_days) +
                                                 " (days), or null for the daemon's default (events-retention-days)");
  return {};
}

}  // namespace

Result<CreatedEndpoint> WebhookService::create_endpoint(const Caller& caller, CreateEndpointRequest r) {
  if (!r.provider)
    return fail(ErrorCode::bad_request, "provider is required (one of " + webhooks::provider_list() + ")");
  const auto parsed = parse_provider(*r.provider);
  if (!parsed)
    return fail(ErrorCode::bad_request,
                "unknown provider '" + *r.provider + "'; use one of " + webhooks::provider_list());
  const Provider provider = *parsed;
  const std::string name(to_string(provider));
  const webhooks::Verifier& verifier = webhooks::find_verifier(provider);

  const int64_t max_body = r.max_body_bytes.value_or(k_default_webhook_body_cap);
  TRY(check_max_body(max_body));
  std::optional<RateLimit> rate_limit;
  if (r.rate_limit) rate_limit = TRY(check_rate_limit(*r.rate_limit));
  if (r.retention_days) TRY(check_retention_days(*r.retention_days));
  if (r.label) TRY(check_label(*r.label));
  if (r.relay_to) TRY(check_relay_to(*r.relay_to));
  if (r.jwks_url)
    if (auto ok = url::check_outbound_url(*r.jwks_url); !ok)
      return fail(ErrorCode::validation_error,
                  "jwksUrl must be https (or http on a loopback host): " + ok.error().message);

  if (r.connection_id) {
    auto c = TRY(m_d.connections.get(caller, *r.connection_id));
    if (provider == Provider::telegram && !r.bot_id && c.connector_slug == "telegram") {
      // The bot id is the numeric prefix of the bot token (part of Telegram's event key).
      if (auto values = m_d.connections.credential_values(c); values && values->count("bot_token")) {
        const std::string& token = values->at("bot_token");
        r.bot_id = token.substr(0, token.find(':'));
        for (auto& [k, v] : *values) wipe_string(v);
      }
    }
  }
  if (provider == Provider::telegram && !r.bot_id) r.bot_id = "0";  // unknown bot: dedup is per endpoint anyway

  const bool generates = webhooks::daemon_generates_secret(provider);
  bool generated = false;
  if (r.secret.empty()) {
    if (!generates && provider != Provider::gmail)
      return fail(ErrorCode::bad_request, name +
                                              " issues its own secret; pass it as `secret` (CLI: `alumia-connect "
                                              "webhooks create --provider " +
                                              name + " --secret-from-stdin`)");
    if (generates) {
      std::string fresh = generate_secret(provider, m_d.random);
      r.secret = SecretBytes(fresh);
      wipe_string(fresh);
      generated = true;
    }
  }

  webhooks::EndpointConfig cfg;
  cfg.provider = provider;
  if (!r.secret.empty()) cfg.secrets.push_back(r.secret.str());
  cfg.bot_id = r.bot_id.value_or("");
  cfg.audience = r.audience.value_or("");
  cfg.jwks_url = r.jwks_url.value_or("");
  cfg.service_account_email = r.service_account_email.value_or("");
  if (provider == Provider::gmail) cfg.legacy_token = r.verify_token.str();
  else cfg.verify_token = r.verify_token.str();
  const auto checked = verifier.check_config(cfg);
  for (auto& s : cfg.secrets) wipe_string(s);
  wipe_string(cfg.legacy_token);
  wipe_string(cfg.verify_token);
  TRY(checked);

  WebhookEndpointRecord e;
  e.provider = provider;
  e.connection_id = r.connection_id;
  e.label = r.label.value_or("");
  e.relay_to = r.relay_to;
  json extra = json::object();
  if (r.bot_id) extra["botId"] = *r.bot_id;
  if (r.audience) extra["audience"] = *r.audience;
  if (r.jwks_url) extra["jwksUrl"] = *r.jwks_url;
  if (r.service_account_email) extra["serviceAccountEmail"] = *r.service_account_email;
  e.config = extra.dump();
  e.max_body_bytes = max_body;
  e.rate_limit = rate_limit;
  e.retention_days = r.retention_days;
  std::map<std::string, std::string> values;
  if (!r.secret.empty()) values["secret"] = r.secret.str();
  if (!r.verify_token.empty()) values["verify_token"] = r.verify_token.str();
  auto out = TRY(insert_new_endpoint(caller, std::move(e), std::move(values)));
  spdlog::info("webhook endpoint {} ({}) created", out.endpoint.id, name);
  if (generated) out.secret = std::move(r.secret);
  return out;
}

Result<CreatedEndpoint> WebhookService::insert_new_endpoint(const Caller& caller, WebhookEndpointRecord e,
                                                            std::map<std::string, std::string> values) {
  const int64_t now = m_d.clock.now_ms();
  CreatedEndpoint out;
  e.id = m_d.random.uuid_v4();
  e.user_id = caller.user.id;
  e.created_at = now;
  e.updated_at = now;
  std::string relay_secret = "whrelay_" + m_d.random.hex(32);
  out.relay_secret = SecretBytes(relay_secret);
  values["relay_secret"] = relay_secret;
  wipe_string(relay_secret);
  // Secrets first: an endpoint row never exists without them.
  auto st = seal_and_store(e.id, values);
  for (auto& [k, v] : values) wipe_string(v);
  TRY(st);
  m_d.endpoints.expect(e.id);  // before the row: the cache's set of ids never misses an endpoint
  if (auto ins = m_d.hooks.insert_endpoint(e); !ins) {
    (void)m_d.store.delete_secrets(k_table, e.id);
    return std::unexpected(ins.error());
  }
  out.endpoint = std::move(e);
  return out;
}

Result<WebhookEndpointRecord> WebhookService::owned_endpoint(const Caller& caller, const std::string& id) {
  if (!is_uuid(id)) return fail(ErrorCode::bad_request, "'" + id + "' is not an endpoint id (a UUID)");
  m_tally.flush(id);  // the owner sees every refusal so far
  auto found = TRY(m_d.hooks.find_endpoint(id));
  if (!found || found->user_id != caller.user.id || found->deleted_at)
    return fail(ErrorCode::not_found, "no webhook endpoint " + id);
  return *found;
}

Result<PageResult<WebhookEndpointRecord>> WebhookService::list_endpoints(const Caller& caller, const Page& page) {
  m_tally.flush();
  return m_d.hooks.list_endpoints(caller.user.id, page);
}

Result<WebhookEndpointRecord> WebhookService::get_endpoint(const Caller& caller, const std::string& id) {
  return owned_endpoint(caller, id);
}

Status WebhookService::delete_endpoint(const Caller& caller, const std::string& id) {
  auto e = TRY(owned_endpoint(caller, id));
  const int64_t now = m_d.clock.now_ms();
  e.status = EndpointStatus::disabled;
  e.deleted_at = now;
  e.updated_at = now;
  // Row first: from here on the receiver answers NOT_FOUND even if destroying the secrets fails.
  TRY(m_d.hooks.update_endpoint(e));
  m_d.endpoints.forget(id);
  TRY(m_d.hooks.cancel_endpoint_jobs(id, now));
  TRY(m_d.store.delete_secrets(k_table, id));
  spdlog::info("webhook endpoint {} deleted", id);
  return {};
}

Result<WebhookEndpointRecord> WebhookService::update_endpoint(const Caller& caller, const std::string& id,
                                                              const UpdateEndpointRequest& r) {
  auto e = TRY(owned_endpoint(caller, id));
  // Everything is checked before anything is written: a bad field changes nothing.
  WebhookEndpointRecord next = e;
  if (r.label) {
    TRY(check_label(*r.label));
    next.label = *r.label;
  }
  if (r.max_body_bytes) {
    TRY(check_max_body(*r.max_body_bytes));
    next.max_body_bytes = *r.max_body_bytes;
  }
  if (r.relay_to) {
    if (*r.relay_to) TRY(check_relay_to(**r.relay_to));
    next.relay_to = *r.relay_to;
  }
  if (r.rate_limit) {
    next.rate_limit.reset();
    if (*r.rate_limit) next.rate_limit = TRY(check_rate_limit(**r.rate_limit));
  }
  if (r.retention_days) {
    if (*r.retention_days) TRY(check_retention_days(**r.retention_days));
    next.retention_days = *r.retention_days;
  }
  if (r.status) {
    const auto status = parse_endpoint_status(*r.status);
    if (!status) return fail(ErrorCode::validation_error, "status must be \"active\" or \"disabled\"");
    next.status = *status;
  }
  if (next.status == e.status && next.label == e.label && next.relay_to == e.relay_to &&
      next.max_body_bytes == e.max_body_bytes && next.rate_limit == e.rate_limit &&
      next.retention_days == e.retention_days)
    return next;
  next.updated_at = m_d.clock.now_ms();
  TRY(m_d.hooks.update_endpoint(next));
  // The receiver reads endpoints from the cache: drop it so a disable answers NOT_FOUND at once.
  m_d.endpoints.forget(id);
  spdlog::info("webhook endpoint {} updated (status {})", id, to_string(next.status));
  // Queued jobs without a target wait; a new target must wake the worker to drain them.
  if (next.relay_to && next.relay_to != e.relay_to) m_d.relay.jobs_due();
  return next;
}

Result<RotatedSecret> WebhookService::rotate_secret(const Caller& caller, const std::string& id,
                                                    RotateSecretRequest r) {
  auto e = TRY(owned_endpoint(caller, id));
  int64_t grace_ms = m_d.secret_grace.count();
  if (r.grace_seconds) {
    if (*r.grace_seconds < 0 || *r.grace_seconds > k_max_secret_grace_seconds)
      return fail(ErrorCode::validation_error, "graceSeconds must be an integer from 0 to 604800 (7 days)");
    grace_ms = *r.grace_seconds * 1000;
  }
  bool generated = false;
  if (r.secret.empty()) {
    if (!webhooks::daemon_generates_secret(e.provider))
      return fail(ErrorCode::bad_request, std::string(to_string(e.provider)) +
                                              " issues its own secret; pass the new one as `secret` (CLI: "
                                              "`alumia-connect webhooks rotate-secret " +
                                              id + " --secret-from-stdin`)");
    std::string fresh = generate_secret(e.provider, m_d.random);
    r.secret = SecretBytes(fresh);
    wipe_string(fresh);
    generated = true;
  }
  auto current = TRY(m_d.endpoints.get(id));
  if (!current) return fail(ErrorCode::not_found, "no webhook endpoint " + id);
  webhooks::EndpointConfig cfg = current->current;
  cfg.secrets = {r.secret.str()};
  const auto checked = webhooks::find_verifier(e.provider).check_config(cfg);
  wipe_string(cfg.secrets.front());
  TRY(checked);

  std::map<std::string, std::string> values{{"secret", r.secret.str()}, {"relay_secret", current->relay_secret.str()}};
  if (!current->current.secrets.empty() && grace_ms > 0) values["previous_secret"] = current->current.secrets.front();
  const std::string vt = e.provider == Provider::gmail ? current->current.legacy_token : current->current.verify_token;
  if (!vt.empty()) values["verify_token"] = vt;
  const int64_t now = m_d.clock.now_ms();
  e.previous_secret_expires_at =
      values.count("previous_secret") ? std::optional<int64_t>(now + grace_ms) : std::nullopt;
  e.updated_at = now;
  auto st = seal_and_store(id, values);
  for (auto& [k, v] : values) wipe_string(v);
  TRY(st);
  m_d.endpoints.forget(id);
  TRY(m_d.hooks.update_endpoint(e));
  m_d.endpoints.forget(id);
  spdlog::info("webhook endpoint {}: secret rotated (old one verifies until {})", id,
               e.previous_secret_expires_at ? format_time_ms(*e.previous_secret_expires_at) : std::string("now"));
  RotatedSecret out{std::move(e), std::nullopt};
  if (generated) out.secret = std::move(r.secret);
  return out;
}

// ---- for setup commands (SetupService) ----

Result<std::optional<WebhookEndpointRecord>> WebhookService::find_connection_endpoint(const Caller& caller,
                                                                                      const std::string& connection_id,
                                                                                      Provider provider) {
  Page page{.limit = 200, .cursor = std::nullopt};
  std::optional<WebhookEndpointRecord> oldest;
  for (;;) {
    auto res = TRY(m_d.hooks.list_endpoints(caller.user.id, page));
    for (auto& e : res.items)
      if (e.provider == provider && e.connection_id == connection_id && !e.deleted_at &&
          (!oldest || e.created_at < oldest->created_at))
        oldest = std::move(e);
    if (!res.next_cursor) return oldest;
    page.cursor = std::move(res.next_cursor);
  }
}

Result<CreatedEndpoint> WebhookService::create_setup_endpoint(const Caller& caller, const std::string& connection_id,
                                                              Provider provider, const std::string& label) {
  CreateEndpointRequest r;
  r.provider = std::string(to_string(provider));
  r.connection_id = connection_id;
  r.label = label;
  if (webhooks::daemon_generates_secret(provider)) {
    auto created = TRY(create_endpoint(caller, std::move(r)));
    created.secret.reset();  // registered with the provider by the setup command, never shown
    return created;
  }
  // The provider issues the secret when the endpoint is registered: until then the endpoint has
  // none, and is disabled so that the receiver answers NOT_FOUND rather than verify against nothing.
  TRY(m_d.connections.get(caller, connection_id));
  TRY(check_label(label));
  WebhookEndpointRecord e;
  e.provider = provider;
  e.connection_id = connection_id;
  e.label = label;
  e.status = EndpointStatus::disabled;
  e.max_body_bytes = k_default_webhook_body_cap;
  auto out = TRY(insert_new_endpoint(caller, std::move(e), {}));
  spdlog::info("webhook endpoint {} ({}) created for setup, disabled until the provider issues its secret",
               out.endpoint.id, to_string(provider));
  return out;
}

Result<SecretBytes> WebhookService::current_secret(const Caller& caller, const std::string& id) {
  TRY(owned_endpoint(caller, id));
  auto cached = TRY(m_d.endpoints.get(id));
  if (!cached || cached->current.secrets.empty()) return SecretBytes();
  return SecretBytes(cached->current.secrets.front());
}

SecretBytes WebhookService::fresh_secret(Provider provider) {
  std::string fresh = generate_secret(provider, m_d.random);
  SecretBytes out(fresh);
  wipe_string(fresh);
  return out;
}

Result<WebhookEndpointRecord> WebhookService::set_registration(const Caller& caller, const std::string& id,
                                                               const json& state) {
  auto e = TRY(owned_endpoint(caller, id));
  json config = json::parse(e.config, nullptr, false);
  if (!config.is_object()) config = json::object();
  if (state.is_null()) config.erase("registration");
  else config["registration"] = state;
  e.config = config.dump();
  e.updated_at = m_d.clock.now_ms();
  TRY(m_d.hooks.update_endpoint(e));
  m_d.endpoints.forget(id);
  return e;
}

}  // namespace alumia

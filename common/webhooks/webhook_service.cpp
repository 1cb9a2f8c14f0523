// Webhook endpoints, the receiver pipeline (SPEC §7, PROVIDERS §0.6), events and jobs.
#include <alumia/base/text.hpp>
#include <alumia/connections/sealed_values.hpp>
#include <alumia/crypto/crypto.hpp>
#include <alumia/net/url.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <ctime>

namespace alumia {
namespace {

using nlohmann::json;

constexpr std::string_view k_table = k_webhook_endpoints_table;

// Providers whose secret the daemon may generate; the others issue their own (SPEC §7).
// Providers whose webhook secret we choose (Telegram secret_token, GitHub hook secret); the others
// issue theirs (Linear shows its signing secret in its settings, PROVIDERS §8).
bool generates_secret(std::string_view provider) { return provider == "telegram" || provider == "github"; }

std::string generate_secret(std::string_view provider, Random& random) {
  if (provider == "telegram") return random.base64url(48);  // 64 chars of [A-Za-z0-9_-]
  return random.hex(32);
}

std::optional<std::string> opt_string(const json& body, const char* key, Error* err) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) {
    *err = Error{ErrorCode::bad_request, std::string(key) + " must be a string", 0};
    return std::nullopt;
  }
  return it->get<std::string>();
}

json opt_time(const std::optional<int64_t>& v) { return v ? json(format_time_ms(*v)) : json(nullptr); }

// Field checks shared by create and update, so both accept exactly the same values.
Status check_label(const std::string& label) {
  if (auto st = check_no_control_characters(label, "label"); !st) return st;
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

}  // namespace

WebhookService::WebhookService(WebhookServiceDeps deps)
    : m_d(std::move(deps)), m_jwks(m_d.http, m_d.clock, std::chrono::hours(1), m_d.jwks_min_refresh) {
  if (!m_d.webhook_base_url.empty()) {
    if (m_d.allow_insecure_base_url) {
      spdlog::warn("webhook base URL {} is accepted without checks (--allow-insecure-base-url): development only",
                   m_d.webhook_base_url);
    } else if (auto ok = url::check_public_base_url(m_d.webhook_base_url); !ok) {
      m_base_problem = ok.error().message;
      spdlog::warn("webhook base URL {} refused: {}; receive URLs use the control listener until it is fixed",
                   m_d.webhook_base_url, m_base_problem);
    }
  }
}

void WebhookService::set_control_url(std::string url) { m_d.control_url = std::move(url); }
void WebhookService::set_job_listener(std::function<void()> listener) { m_job_listener = std::move(listener); }

std::string WebhookService::receive_base() const {
  std::string base = (!m_d.webhook_base_url.empty() && m_base_problem.empty()) ? m_d.webhook_base_url : m_d.control_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

json WebhookService::endpoint_json(const WebhookEndpointRecord& e) const {
  return json{{"id", e.id},
              {"provider", e.provider},
              {"connectionId", e.connection_id ? json(*e.connection_id) : json(nullptr)},
              {"label", e.label},
              {"status", e.deleted_at ? "disabled" : e.status},
              {"receiveUrl", receive_base() + "/api/v1/connectors/webhooks/" + e.provider + "/" + e.id},
              {"relayTo", e.relay_to ? json(*e.relay_to) : json(nullptr)},
              {"maxBodyBytes", e.max_body_bytes},
              {"counts",
               {{"received", e.received},
                {"duplicates", e.duplicates},
                {"rejected", e.rejected},
                {"verificationFailures", e.verification_failures}}},
              {"lastDeliveryAt", opt_time(e.last_delivery_at)},
              // The owner's view of the receiver's last refusal (the sender got a generic answer).
              {"lastError", e.last_error ? json{{"code", e.last_error->code},
                                                {"message", e.last_error->message},
                                                {"at", format_time_ms(e.last_error->at)}}
                                         : json(nullptr)},
              {"createdAt", format_time_ms(e.created_at)}};
}

json WebhookService::event_json(const WebhookEvent& e, bool full) {
  json j{{"id", e.id},
         {"endpointId", e.endpoint_id},
         {"provider", e.provider},
         {"eventKey", e.event_key},
         {"eventType", e.event_type},
         {"receivedAt", format_time_ms(e.received_at)},
         {"jobState", e.job_state.empty() ? json(nullptr) : json(e.job_state)}};
  if (full) {
    json headers = json::object();
    const json raw = json::parse(e.headers, nullptr, false);
    if (raw.is_array())
      for (const auto& h : raw)
        if (h.is_array() && h.size() == 2 && h[0].is_string() && h[1].is_string()) {
          const std::string name = h[0].get<std::string>();
          if (headers.contains(name)) headers[name] = headers[name].get<std::string>() + ", " + h[1].get<std::string>();
          else headers[name] = h[1];
        }
    j["headers"] = headers;
    // Valid UTF-8 shows as text; anything else as base64 (bodyEncoding says which).
    const json probe = e.body;
    bool utf8 = true;
    try {
      (void)probe.dump();
    } catch (const json::type_error&) {
      utf8 = false;
    }
    j["body"] = utf8 ? e.body : encoding::base64_encode(e.body);
    j["bodyEncoding"] = utf8 ? "utf-8" : "base64";
  }
  return j;
}

json WebhookService::job_json(const WebhookJob& j) {
  return json{{"id", j.id},
              {"eventId", j.event_id},
              {"endpointId", j.endpoint_id},
              {"state", j.state},
              {"attempts", j.attempts},
              {"nextAttemptAt",
               (j.state == "queued" || j.state == "failed") ? json(format_time_ms(j.next_attempt_at)) : json(nullptr)},
              {"lastStatus", j.last_status ? json(*j.last_status) : json(nullptr)},
              {"lastError", j.last_error ? json(*j.last_error) : json(nullptr)},
              {"createdAt", format_time_ms(j.created_at)},
              {"updatedAt", format_time_ms(j.updated_at)},
              {"finishedAt", opt_time(j.finished_at)}};
}

std::optional<int64_t> WebhookService::parse_since(std::string_view text, int64_t now_ms) {
  if (text.empty()) return std::nullopt;
  const bool digits = std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || p != text.data() + text.size()) return std::nullopt;
    return v;
  }
  // Relative age: <n>s|m|h|d.
  const char unit = text.back();
  const std::string_view num = text.substr(0, text.size() - 1);
  if (!num.empty() && std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int64_t n = 0;
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
    if (ec == std::errc{} && p == num.data() + num.size() && n < 100000) {
      const int64_t mult = unit == 's'   ? 1000
                           : unit == 'm' ? 60000
                           : unit == 'h' ? 3600000
                           : unit == 'd' ? 86400000
                                         : 0;
      if (mult) return now_ms - n * mult;
    }
  }
  // RFC 3339 in UTC: YYYY-MM-DDTHH:MM:SS[.fff]Z
  std::tm tm{};
  int ms = 0;
  const std::string s(text);
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec, &consumed) != 6)
    return std::nullopt;
  std::string_view rest = text.substr(static_cast<std::size_t>(consumed));
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    int digits_seen = 0;
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
      if (digits_seen < 3) ms = ms * 10 + (rest.front() - '0');
      ++digits_seen;
      rest.remove_prefix(1);
    }
    for (int i = digits_seen; i < 3; ++i) ms *= 10;
    if (digits_seen == 0) return std::nullopt;
  }
  if (rest != "Z" && rest != "z") return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const time_t t = timegm(&tm);
  return static_cast<int64_t>(t) * 1000 + ms;
}

// ---- the cache of opened endpoint secrets ----

Result<std::shared_ptr<const WebhookService::Cached>> WebhookService::load(const WebhookEndpointRecord& record) {
  auto sealed = m_d.store.load_secrets(k_table, record.id);
  if (!sealed) return std::unexpected(sealed.error());
  auto c = std::make_shared<Cached>();
  c->record = record;
  std::string secret, previous, verify_token;
  for (const auto& v : *sealed) {
    auto opened = m_d.sealer.open(v.blob, k_table, record.id, v.field);
    if (!opened) return std::unexpected(opened.error());
    if (v.field == "secret") secret = opened->str();
    else if (v.field == "previous_secret") previous = opened->str();
    else if (v.field == "verify_token") verify_token = opened->str();
    else if (v.field == "relay_secret") c->relay_secret = std::move(*opened);
  }
  webhooks::EndpointConfig cfg;
  cfg.provider = record.provider;
  if (!secret.empty()) cfg.secrets.push_back(secret);
  const json extra = json::parse(record.config, nullptr, false);
  auto str = [&](const char* k) {
    return extra.is_object() && extra.contains(k) && extra[k].is_string() ? extra[k].get<std::string>() : std::string();
  };
  cfg.bot_id = str("botId");
  cfg.audience = str("audience");
  cfg.jwks_url = str("jwksUrl");
  cfg.service_account_email = str("serviceAccountEmail");
  if (record.provider == "gmail") cfg.legacy_token = verify_token;
  else cfg.verify_token = verify_token;
  c->current = cfg;
  c->during_grace = cfg;
  if (!previous.empty()) c->during_grace.secrets.push_back(previous);
  wipe_string(secret);
  wipe_string(previous);
  wipe_string(verify_token);
  if (auto w = webhooks::secret_whitespace_warning(cfg)) spdlog::warn("webhook endpoint {}: {}", record.id, *w);
  return std::shared_ptr<const Cached>(std::move(c));
}

Result<std::shared_ptr<const WebhookService::Cached>> WebhookService::cached(const std::string& id) {
  for (;;) {
    uint64_t generation = 0;
    {
      std::lock_guard lock(m_cache_mutex);
      if (auto it = m_cache.find(id); it != m_cache.end()) return it->second;
      generation = m_cache_generation;
    }
    auto found = m_d.hooks.find_endpoint(id);
    if (!found) return std::unexpected(found.error());
    if (!*found) return std::shared_ptr<const Cached>();
    auto loaded = load(**found);
    if (!loaded) return loaded;
    std::lock_guard lock(m_cache_mutex);
    // An update, rotation or delete that forgot endpoints while this load ran may have changed the
    // row after it was read: caching that copy would serve the old state until the next change.
    if (generation == m_cache_generation) return m_cache.emplace(id, *loaded).first->second;
  }
}

void WebhookService::forget(const std::string& id) {
  std::lock_guard lock(m_cache_mutex);
  m_cache.erase(id);
  ++m_cache_generation;
}

Status WebhookService::seal_and_store(const std::string& id, const std::map<std::string, std::string>& values) {
  auto sealed = seal_values(m_d.sealer, k_table, id, values);
  if (!sealed) return std::unexpected(sealed.error());
  return m_d.store.put_secrets(k_table, id, *sealed);
}

// ---- endpoints ----

Result<json> WebhookService::create_endpoint(const Caller& caller, const json& body) {
  if (!body.is_object()) return fail(ErrorCode::bad_request, "body must be a JSON object");
  Error err;
  const auto provider = opt_string(body, "provider", &err);
  if (!err.message.empty()) return std::unexpected(err);
  if (!provider)
    return fail(
        ErrorCode::bad_request,
        "provider is required (one of telegram, slack, discord, whatsapp, twilio, gmail, github, linear, stripe)");
  const webhooks::Verifier* verifier = webhooks::find_verifier(*provider);
  if (!verifier)
    return fail(ErrorCode::bad_request,
                "unknown provider '" + *provider +
                    "'; use one of telegram, slack, discord, whatsapp, twilio, gmail, github, linear, stripe");
  if (!m_base_problem.empty())
    return fail(ErrorCode::validation_error,
                "the configured webhook base URL is unsafe: " + m_base_problem +
                    " (fix CONNECTOR_WEBHOOK_BASE_URL, or use --allow-insecure-base-url for development)");

  const auto connection_id = opt_string(body, "connectionId", &err);
  const auto label = opt_string(body, "label", &err);
  auto secret = opt_string(body, "secret", &err);
  const auto relay_to = opt_string(body, "relayTo", &err);
  auto verify_token = opt_string(body, "verifyToken", &err);
  const auto audience = opt_string(body, "audience", &err);
  const auto jwks_url = opt_string(body, "jwksUrl", &err);
  const auto sa_email = opt_string(body, "serviceAccountEmail", &err);
  auto bot_id = opt_string(body, "botId", &err);
  if (!err.message.empty()) return std::unexpected(err);

  int64_t max_body = k_default_webhook_body_cap;
  if (auto it = body.find("maxBodyBytes"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer()) return fail(ErrorCode::bad_request, "maxBodyBytes must be an integer");
    max_body = it->get<int64_t>();
    if (auto st = check_max_body(max_body); !st) return std::unexpected(st.error());
  }
  if (label)
    if (auto st = check_label(*label); !st) return std::unexpected(st.error());
  if (relay_to)
    if (auto st = check_relay_to(*relay_to); !st) return std::unexpected(st.error());
  if (jwks_url)
    if (auto ok = url::check_outbound_url(*jwks_url); !ok)
      return fail(ErrorCode::validation_error,
                  "jwksUrl must be https (or http on a loopback host): " + ok.error().message);

  if (connection_id) {
    auto c = m_d.connections.get(caller, *connection_id);
    if (!c) return std::unexpected(c.error());
    if (*provider == "telegram" && !bot_id && c->connector_slug == "telegram") {
      // The bot id is the numeric prefix of the bot token (part of Telegram's event key).
      if (auto values = m_d.connections.credential_values(*c); values && values->count("bot_token")) {
        const std::string& token = values->at("bot_token");
        bot_id = token.substr(0, token.find(':'));
        for (auto& [k, v] : *values) wipe_string(v);
      }
    }
  }
  if (*provider == "telegram" && !bot_id) bot_id = "0";  // unknown bot: dedup is per endpoint anyway

  bool generated = false;
  if (!secret || secret->empty()) {
    if (!generates_secret(*provider) && *provider != "gmail")
      return fail(ErrorCode::bad_request, *provider +
                                              " issues its own secret; pass it as `secret` (CLI: `alumia-connect "
                                              "webhooks create --provider " +
                                              *provider + " --secret-from-stdin`)");
    if (generates_secret(*provider)) {
      secret = generate_secret(*provider, m_d.random);
      generated = true;
    }
  }

  webhooks::EndpointConfig cfg;
  cfg.provider = *provider;
  if (secret && !secret->empty()) cfg.secrets.push_back(*secret);
  cfg.bot_id = bot_id.value_or("");
  cfg.audience = audience.value_or("");
  cfg.jwks_url = jwks_url.value_or("");
  cfg.service_account_email = sa_email.value_or("");
  if (*provider == "gmail") cfg.legacy_token = verify_token.value_or("");
  else cfg.verify_token = verify_token.value_or("");
  if (auto ok = verifier->check_config(cfg); !ok) return std::unexpected(ok.error());

  const int64_t now = m_d.clock.now_ms();
  WebhookEndpointRecord e;
  e.id = m_d.random.uuid_v4();
  e.user_id = caller.user.id;
  e.provider = *provider;
  e.connection_id = connection_id;
  e.label = label.value_or("");
  e.relay_to = relay_to;
  json extra = json::object();
  if (bot_id) extra["botId"] = *bot_id;
  if (audience) extra["audience"] = *audience;
  if (jwks_url) extra["jwksUrl"] = *jwks_url;
  if (sa_email) extra["serviceAccountEmail"] = *sa_email;
  e.config = extra.dump();
  e.max_body_bytes = max_body;
  e.created_at = now;
  e.updated_at = now;

  const std::string relay_secret = "whrelay_" + m_d.random.hex(32);
  std::map<std::string, std::string> values{{"relay_secret", relay_secret}};
  if (secret && !secret->empty()) values["secret"] = *secret;
  if (verify_token && !verify_token->empty()) values["verify_token"] = *verify_token;
  // Secrets first: an endpoint row never exists without them.
  auto st = seal_and_store(e.id, values);
  for (auto& [k, v] : values) wipe_string(v);
  if (!st) return std::unexpected(st.error());
  if (auto ins = m_d.hooks.insert_endpoint(e); !ins) {
    (void)m_d.store.delete_secrets(k_table, e.id);
    return std::unexpected(ins.error());
  }
  spdlog::info("webhook endpoint {} ({}) created", e.id, e.provider);
  json out{{"endpoint", endpoint_json(e)}, {"relaySecret", relay_secret}};
  if (generated) out["secret"] = *secret;
  if (secret) wipe_string(*secret);
  if (verify_token) wipe_string(*verify_token);
  return out;
}

Result<WebhookEndpointRecord> WebhookService::owned_endpoint(const Caller& caller, const std::string& id) {
  if (!is_uuid(id)) return fail(ErrorCode::bad_request, "'" + id + "' is not an endpoint id (a UUID)");
  auto found = m_d.hooks.find_endpoint(id);
  if (!found) return std::unexpected(found.error());
  if (!*found || (*found)->user_id != caller.user.id || (*found)->deleted_at)
    return fail(ErrorCode::not_found, "no webhook endpoint " + id);
  return **found;
}

Result<PageResult<WebhookEndpointRecord>> WebhookService::list_endpoints(const Caller& caller, const Page& page) {
  return m_d.hooks.list_endpoints(caller.user.id, page);
}

Result<WebhookEndpointRecord> WebhookService::get_endpoint(const Caller& caller, const std::string& id) {
  return owned_endpoint(caller, id);
}

Status WebhookService::delete_endpoint(const Caller& caller, const std::string& id) {
  auto e = owned_endpoint(caller, id);
  if (!e) return std::unexpected(e.error());
  const int64_t now = m_d.clock.now_ms();
  e->status = "disabled";
  e->deleted_at = now;
  e->updated_at = now;
  // Row first: from here on the receiver answers NOT_FOUND even if destroying the secrets fails.
  if (auto st = m_d.hooks.update_endpoint(*e); !st) return st;
  forget(id);
  if (auto st = m_d.hooks.cancel_endpoint_jobs(id, now); !st) return st;
  if (auto st = m_d.store.delete_secrets(k_table, id); !st) return st;
  spdlog::info("webhook endpoint {} deleted", id);
  return {};
}

Result<WebhookEndpointRecord> WebhookService::update_endpoint(const Caller& caller, const std::string& id,
                                                              const json& body) {
  auto e = owned_endpoint(caller, id);
  if (!e) return std::unexpected(e.error());
  // SPEC §3: a wrong type or an unknown field is BAD_REQUEST; a well-typed value out of range is VALIDATION_ERROR.
  const auto malformed = [](std::string message) { return fail(ErrorCode::bad_request, std::move(message)); };
  const auto invalid = [](std::string message) { return fail(ErrorCode::validation_error, std::move(message)); };
  if (!body.is_object())
    return malformed("body must be a JSON object with any of status, label, relayTo, maxBodyBytes");
  // Everything is checked before anything is written: a bad field changes nothing.
  WebhookEndpointRecord next = *e;
  for (const auto& [key, value] : body.items()) {
    if (key == "status") {
      if (!value.is_string()) return malformed("status must be a string: \"active\" or \"disabled\"");
      if (value != "active" && value != "disabled") return invalid("status must be \"active\" or \"disabled\"");
      next.status = value.get<std::string>();
    } else if (key == "label") {
      if (!value.is_string()) return malformed("label must be a string");
      next.label = value.get<std::string>();
      if (auto st = check_label(next.label); !st) return std::unexpected(st.error());
    } else if (key == "relayTo") {
      if (value.is_null()) {
        next.relay_to.reset();
        continue;
      }
      if (!value.is_string()) return malformed("relayTo must be a URL string, or null for the daemon's default target");
      if (auto st = check_relay_to(value.get<std::string>()); !st) return std::unexpected(st.error());
      next.relay_to = value.get<std::string>();
    } else if (key == "maxBodyBytes") {
      if (!value.is_number_integer()) return malformed("maxBodyBytes must be an integer");
      next.max_body_bytes = value.get<int64_t>();
      if (auto st = check_max_body(next.max_body_bytes); !st) return std::unexpected(st.error());
    } else {
      return malformed("unknown field '" + key +
                       "'; an endpoint update accepts status, label, relayTo and maxBodyBytes");
    }
  }
  if (next.status == e->status && next.label == e->label && next.relay_to == e->relay_to &&
      next.max_body_bytes == e->max_body_bytes)
    return next;
  next.updated_at = m_d.clock.now_ms();
  if (auto st = m_d.hooks.update_endpoint(next); !st) return std::unexpected(st.error());
  // The receiver reads endpoints from the cache: drop it so a disable answers NOT_FOUND at once.
  forget(id);
  spdlog::info("webhook endpoint {} updated (status {})", id, next.status);
  // Queued jobs without a target wait; a new target must wake the worker to drain them.
  if (next.relay_to && next.relay_to != e->relay_to && m_job_listener) m_job_listener();
  return next;
}

Result<json> WebhookService::rotate_secret(const Caller& caller, const std::string& id, const json& body) {
  auto e = owned_endpoint(caller, id);
  if (!e) return std::unexpected(e.error());
  if (!body.is_object()) return fail(ErrorCode::bad_request, "body must be a JSON object");
  Error err;
  auto secret = opt_string(body, "secret", &err);
  if (!err.message.empty()) return std::unexpected(err);
  int64_t grace_ms = m_d.secret_grace.count();
  if (auto it = body.find("graceSeconds"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 7 * 86400)
      return fail(ErrorCode::validation_error, "graceSeconds must be an integer from 0 to 604800 (7 days)");
    grace_ms = it->get<int64_t>() * 1000;
  }
  bool generated = false;
  if (!secret || secret->empty()) {
    if (!generates_secret(e->provider))
      return fail(ErrorCode::bad_request, e->provider +
                                              " issues its own secret; pass the new one as `secret` (CLI: "
                                              "`alumia-connect webhooks rotate-secret " +
                                              id + " --secret-from-stdin`)");
    secret = generate_secret(e->provider, m_d.random);
    generated = true;
  }
  auto current = cached(id);
  if (!current) return std::unexpected(current.error());
  if (!*current) return fail(ErrorCode::not_found, "no webhook endpoint " + id);
  webhooks::EndpointConfig cfg = (*current)->current;
  cfg.secrets = {*secret};
  if (auto ok = webhooks::find_verifier(e->provider)->check_config(cfg); !ok) return std::unexpected(ok.error());

  std::map<std::string, std::string> values{{"secret", *secret}, {"relay_secret", (*current)->relay_secret.str()}};
  if (!(*current)->current.secrets.empty() && grace_ms > 0)
    values["previous_secret"] = (*current)->current.secrets.front();
  const std::string vt = e->provider == "gmail" ? (*current)->current.legacy_token : (*current)->current.verify_token;
  if (!vt.empty()) values["verify_token"] = vt;
  const int64_t now = m_d.clock.now_ms();
  e->previous_secret_expires_at =
      values.count("previous_secret") ? std::optional<int64_t>(now + grace_ms) : std::nullopt;
  e->updated_at = now;
  auto st = seal_and_store(id, values);
  for (auto& [k, v] : values) wipe_string(v);
  if (!st) return std::unexpected(st.error());
  forget(id);
  if (auto up = m_d.hooks.update_endpoint(*e); !up) return std::unexpected(up.error());
  forget(id);
  spdlog::info("webhook endpoint {}: secret rotated (old one verifies until {})", id,
               e->previous_secret_expires_at ? format_time_ms(*e->previous_secret_expires_at) : std::string("now"));
  json out{{"endpoint", endpoint_json(*e)}, {"previousSecretExpiresAt", opt_time(e->previous_secret_expires_at)}};
  if (generated) out["secret"] = *secret;
  wipe_string(*secret);
  return out;
}

// ---- events and jobs ----

Result<WebhookEvent> WebhookService::owned_event(const Caller& caller, const std::string& id) {
  if (!is_uuid(id)) return fail(ErrorCode::bad_request, "'" + id + "' is not an event id (a UUID)");
  auto found = m_d.hooks.find_event(id, true);
  if (!found) return std::unexpected(found.error());
  if (!*found || (*found)->user_id != caller.user.id) return fail(ErrorCode::not_found, "no event " + id);
  return **found;
}

Result<PageResult<WebhookEvent>> WebhookService::list_events(const Caller& caller, EventFilter filter,
                                                             const Page& page) {
  filter.user_id = caller.user.id;
  return m_d.hooks.list_events(filter, page);
}

Result<WebhookEvent> WebhookService::get_event(const Caller& caller, const std::string& id) {
  return owned_event(caller, id);
}

Result<WebhookJob> WebhookService::replay_event(const Caller& caller, const std::string& id) {
  auto ev = owned_event(caller, id);
  if (!ev) return std::unexpected(ev.error());
  auto ep = m_d.hooks.find_endpoint(ev->endpoint_id);
  if (!ep) return std::unexpected(ep.error());
  if (!*ep || (*ep)->deleted_at)
    return fail(ErrorCode::conflict, "the endpoint of event " + id + " was deleted; its events cannot be relayed");
  const int64_t now = m_d.clock.now_ms();
  WebhookJob j;
  j.id = m_d.random.uuid_v7(now);
  j.event_id = ev->id;
  j.endpoint_id = ev->endpoint_id;
  j.user_id = ev->user_id;
  j.state = "queued";
  j.next_attempt_at = now;
  j.created_at = now;
  j.updated_at = now;
  if (auto st = m_d.hooks.insert_job(j); !st) return std::unexpected(st.error());
  if (m_job_listener) m_job_listener();
  return j;
}

Result<PageResult<WebhookJob>> WebhookService::list_jobs(const Caller& caller, JobFilter filter, const Page& page) {
  filter.user_id = caller.user.id;
  return m_d.hooks.list_jobs(filter, page);
}

Result<WebhookJob> WebhookService::retry_job(const Caller& caller, const std::string& id) {
  if (!is_uuid(id)) return fail(ErrorCode::bad_request, "'" + id + "' is not a job id (a UUID)");
  auto found = m_d.hooks.find_job(id);
  if (!found) return std::unexpected(found.error());
  if (!*found || (*found)->user_id != caller.user.id) return fail(ErrorCode::not_found, "no job " + id);
  auto changed = m_d.hooks.retry_job(id, m_d.clock.now_ms());
  if (!changed) return std::unexpected(changed.error());
  if (!*changed)
    return fail(ErrorCode::conflict,
                "job " + id + " is " + (*found)->state +
                    "; only queued, failed or dead jobs can be retried (replay the event to deliver it again)");
  if (m_job_listener) m_job_listener();
  auto after = m_d.hooks.find_job(id);
  if (!after) return std::unexpected(after.error());
  if (!*after) return fail(ErrorCode::not_found, "no job " + id);
  return **after;
}

Result<int64_t> WebhookService::retry_jobs(const Caller& caller, const std::string& state,
                                           std::optional<int64_t> since) {
  if (state != "dead" && state != "failed")
    return fail(ErrorCode::bad_request, "state must be dead or failed for a bulk retry");
  auto n = m_d.hooks.retry_jobs(caller.user.id, state, since, m_d.clock.now_ms());
  if (n && *n > 0 && m_job_listener) m_job_listener();
  return n;
}

Result<std::optional<RelayTarget>> WebhookService::relay_target(const std::string& endpoint_id) {
  auto got = cached(endpoint_id);
  if (!got) return std::unexpected(got.error());
  const auto ep = *got;
  if (!ep || ep->record.deleted_at || ep->relay_secret.empty()) return std::optional<RelayTarget>();
  std::string target = ep->record.relay_to.value_or(m_d.default_relay_to);
  if (target.empty()) return std::optional<RelayTarget>();
  return std::optional<RelayTarget>(RelayTarget{std::move(target), ep->relay_secret});
}

}  // namespace alumia

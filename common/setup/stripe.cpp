// Stripe setup-webhook: a webhook endpoint through the API (https://docs.stripe.com/api/webhook_endpoints),
// form-encoded, with enabled_events (`*` unless --events). Stripe issues the signing secret (whsec_)
// once, in the answer that creates the endpoint: it goes back as Registration::issued_secret for the
// service to seal, and is never in a message, the state or the report. The state is
// {"webhookEndpointId":"we_..."}. A re-run updates the remembered endpoint and keeps the stored
// secret; without one (or when it is gone) it looks for an endpoint with our URL, so one URL never
// has two endpoints: exactly one, with a secret stored for it, is updated; otherwise (no secret we
// could verify with, or several) they are deleted and one is created.
#include "provider_call.hpp"

#include <alumia/base/try.hpp>
#include <alumia/setup/registrar.hpp>

#include <algorithm>

namespace alumia::setup {

namespace {

using nlohmann::json;
using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view k_name = "Stripe";
constexpr int k_max_pages = 20;  // 2,000 endpoints; Stripe allows 16 per account

// "*" or an event type: lower-case letters, digits, '_' and '.' (charge.succeeded, v2.core.account.updated).
bool valid_event(std::string_view s) {
  if (s == "*") return true;
  if (s.empty() || s.size() > 100) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'; });
}

const detail::EventRule k_events{valid_event, "Stripe event type",
                                 "lower-case letters, digits, '_' and '.', e.g. charge.succeeded; * for all"};

// Stripe object ids: a prefix, '_', letters and digits. Anything else never reaches a URL.
bool valid_id(std::string_view s) {
  if (!s.starts_with("we_") || s.size() < 4 || s.size() > 255) return false;
  return std::all_of(s.begin() + 3, s.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); });
}

std::optional<std::string> remembered(const json& previous) {
  const auto id = detail::string_member(previous, "webhookEndpointId");
  if (id && valid_id(*id)) return id;
  return std::nullopt;
}

json report_of(const json& endpoint) {
  return {{"webhookEndpointId", detail::string_member(endpoint, "id").value_or("")},
          {"url", detail::string_member(endpoint, "url").value_or("")},
          {"enabledEvents", endpoint.contains("enabled_events") ? endpoint["enabled_events"] : json::array()},
          {"status", detail::string_member(endpoint, "status").value_or("")}};
}

class StripeApi {
 public:
  explicit StripeApi(const RegistrarContext& ctx) : m_ctx(ctx), m_base(detail::trimmed_base(ctx.api_base)) {}

  Result<http::OutboundResponse> call(std::string method, const std::string& path, const Fields& form = {}) {
    auto r = detail::bearer_request(m_ctx, std::move(method), m_base + path);
    if (r.method == "POST") {
      r.body = http::form_encode(form);
      r.content_type = "application/x-www-form-urlencoded";
    }
    return detail::send(m_ctx, std::move(r), k_name);
  }

  Error error(const http::OutboundResponse& res) const {
    const json doc = detail::parse_body(res);
    const json err = doc.is_object() && doc.contains("error") ? doc["error"] : json::object();
    const std::string said = detail::provider_text(detail::string_member(err, "message").value_or(""), m_ctx);
    const std::string http = detail::http_status(res.status, said);
    const std::string id = m_ctx.connection_id;
    switch (res.status) {
      case 400:
        return {ErrorCode::validation_error, "Stripe refused the webhook endpoint (" + http + ")", 0};
      case 401:
        return {ErrorCode::validation_error,
                "Stripe refused the API key of connection " + id + " (" + http +
                    "): enter a valid one with `alumia-connect credentials " + id + "`",
                0};
      case 403:
        return {ErrorCode::validation_error,
                "the API key of connection " + id + " may not manage webhook endpoints (" + http +
                    "): a restricted key needs the permission Webhook Endpoints: write; grant it in the Stripe "
                    "dashboard or enter another key with `alumia-connect credentials " +
                    id + "`",
                0};
      case 404:
        return {ErrorCode::not_found, "Stripe has no such webhook endpoint (" + http + ")", 0};
      case 429:
        return {ErrorCode::too_many_requests,
                "Stripe is rate limiting connection " + id + " (" + http + "); try again shortly",
                detail::retry_after(res, 2)};
      default:
        break;
    }
    return detail::unexpected_answer(k_name, res.status, http);
  }

  Result<json> expect_object(const http::OutboundResponse& res) const {
    if (res.status < 200 || res.status >= 300) return std::unexpected(error(res));
    json doc = detail::parse_body(res);
    if (!doc.is_object())
      return fail(ErrorCode::service_unavailable,
                  "Stripe answered HTTP " + std::to_string(res.status) + " without a JSON object");
    return doc;
  }

  // GET /v1/webhook_endpoints/{id}: the endpoint, or nullopt when Stripe has none by that id.
  Result<std::optional<json>> find(const std::string& id) {
    const auto res = TRY(call("GET", "/v1/webhook_endpoints/" + id));
    if (res.status == 404) return std::optional<json>{};
    return std::optional<json>(TRY(expect_object(res)));
  }

  // Every endpoint whose url is the receive URL (GET /v1/webhook_endpoints?limit=100, by starting_after).
  Result<std::vector<json>> with_our_url() {
    std::vector<json> out;
    std::string after;
    for (int page = 0; page < k_max_pages; ++page) {
      const auto res = TRY(call("GET", "/v1/webhook_endpoints?limit=100" +
                                           (after.empty() ? "" : "&starting_after=" + http::url_encode(after))));
      const json doc = TRY(expect_object(res));
      if (!doc.contains("data") || !doc["data"].is_array())
        return fail(ErrorCode::service_unavailable, "Stripe's list of webhook endpoints has no data");
      for (const auto& e : doc["data"])
        if (detail::string_member(e, "url") == m_ctx.receive_url &&
            valid_id(detail::string_member(e, "id").value_or("")))
          out.push_back(e);
      const bool more = doc.contains("has_more") && doc["has_more"] == true;
      if (!more || doc["data"].empty()) break;
      after = detail::string_member(doc["data"].back(), "id").value_or("");
      if (!valid_id(after)) break;
    }
    return out;
  }

  // DELETE /v1/webhook_endpoints/{id}; false when it was already gone.
  Result<bool> erase(const std::string& id) {
    const auto res = TRY(call("DELETE", "/v1/webhook_endpoints/" + id));
    if (res.status == 404) return false;
    TRY(expect_object(res));
    return true;
  }

  Fields fields(const std::vector<std::string>& events, bool create) const {
    Fields f = {{"url", m_ctx.receive_url}};
    for (const auto& e : events) f.emplace_back("enabled_events[]", e);
    f.emplace_back("description", "alumia-connect (connection " + m_ctx.connection_id + ")");
    f.emplace_back("metadata[alumia_endpoint_url]", m_ctx.receive_url);
    if (!create) f.emplace_back("disabled", "false");
    return f;
  }

 private:
  const RegistrarContext& m_ctx;
  std::string m_base;
};

class StripeRegistrar final : public Registrar {
 public:
  Provider provider() const override { return Provider::stripe; }
  bool generates_secret() const override { return false; }

  Status check(const SetupOptions& options) const override {
    if (options.repo || options.org)
      return fail(ErrorCode::validation_error, "--repo and --org apply to github connections only");
    if (options.drop_pending)
      return fail(ErrorCode::validation_error, "--drop-pending applies to telegram connections only");
    if (options.rotate_secret)
      return fail(ErrorCode::validation_error,
                  "Stripe issues the signing secret itself: roll it in the Stripe dashboard, or run setup-webhook "
                  "--remove and then setup-webhook again for a new endpoint with a new secret");
    return detail::check_events(options.events, k_events);
  }

  Result<Registration> apply(const RegistrarContext& ctx, const SetupOptions& options) const override {
    TRY(check(options));
    StripeApi api(ctx);
    const auto events = options.events ? *options.events : std::vector<std::string>{"*"};

    std::optional<json> current;
    if (const auto id = remembered(ctx.previous)) current = TRY(api.find(*id));
    if (current && ctx.secret.empty()) {
      // We cannot verify its deliveries without the secret, which Stripe shows only once.
      TRY(api.erase(detail::string_member(*current, "id").value_or("")));
      current.reset();
    }
    if (!current) {
      const auto same_url = TRY(api.with_our_url());
      if (same_url.size() == 1 && !ctx.secret.empty()) current = same_url.front();
      else
        for (const auto& e : same_url) TRY(api.erase(detail::string_member(e, "id").value_or("")));
    }

    Registration out;
    json endpoint;
    if (current) {
      const std::string id = detail::string_member(*current, "id").value_or("");
      const auto res = TRY(api.call("POST", "/v1/webhook_endpoints/" + id, api.fields(events, false)));
      endpoint = TRY(api.expect_object(res));
    } else {
      auto res = TRY(api.call("POST", "/v1/webhook_endpoints", api.fields(events, true)));
      endpoint = TRY(api.expect_object(res));
      wipe_string(res.body);
      auto secret = detail::string_member(endpoint, "secret");
      if (!secret || !secret->starts_with("whsec_")) {
        if (const auto id = detail::string_member(endpoint, "id"); id && valid_id(*id)) (void)api.erase(*id);
        if (secret) wipe_string(*secret);
        return fail(ErrorCode::service_unavailable,
                    "Stripe created the webhook endpoint without its signing secret; it was deleted again, try "
                    "again");
      }
      out.issued_secret = SecretBytes(*secret);
      wipe_string(*secret);
      wipe_string(endpoint["secret"].get_ref<std::string&>());
      endpoint.erase("secret");
    }
    const std::string id = detail::string_member(endpoint, "id").value_or("");
    if (!valid_id(id)) return fail(ErrorCode::service_unavailable, "Stripe answered without the endpoint's id");
    out.state = {{"webhookEndpointId", id}};
    out.report = report_of(endpoint);
    out.still_registered = true;
    return out;
  }

  Result<Registration> remove(const RegistrarContext& ctx, const SetupOptions& options) const override {
    if (options.repo || options.org)
      return fail(ErrorCode::validation_error, "--repo and --org apply to github connections only");
    StripeApi api(ctx);
    std::vector<std::string> ids;
    if (const auto id = remembered(ctx.previous)) ids.push_back(*id);
    if (ids.empty()) {
      for (const auto& e : TRY(api.with_our_url())) ids.push_back(detail::string_member(e, "id").value_or(""));
      if (ids.empty())
        return fail(ErrorCode::not_found,
                    "no Stripe webhook endpoint delivers to " + ctx.receive_url + ": nothing to remove");
    }
    bool deleted = false;
    for (const auto& id : ids) deleted = TRY(api.erase(id)) || deleted;
    Registration out;
    out.state = json::object();
    out.report = {{"webhookEndpointId", ids.front()}, {"deleted", deleted}};
    out.still_registered = false;
    return out;
  }
};

}  // namespace

const Registrar& stripe_registrar() {
  static const StripeRegistrar k_registrar;
  return k_registrar;
}

}  // namespace alumia::setup

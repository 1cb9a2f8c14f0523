// Gmail push via Cloud Pub/Sub (PROVIDERS §6): OIDC JWT (RS256, Google JWKS) in Authorization,
// claims iss/aud/email/email_verified/exp/iat; optional legacy ?token= query secret.
#include "verifiers/detail.hpp"

#include <alumia/base/try.hpp>
#include <alumia/crypto/crypto.hpp>

#include <array>

namespace alumia::webhooks::detail {

namespace {

constexpr int64_t k_clock_skew_seconds = 60;
constexpr std::array<std::string_view, 2> k_issuers{"https://accounts.google.com", "accounts.google.com"};

// Unpadded base64url only (JWS compact serialisation).
std::optional<std::string> b64url_segment(std::string_view s) {
  if (s.empty()) return std::nullopt;
  for (const char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return std::nullopt;
  }
  return encoding::base64url_decode(s);
}

std::optional<nlohmann::json> json_object(std::string_view text) {
  auto doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
  return doc;
}

std::optional<nlohmann::json> find_key(const Result<nlohmann::json>& jwks, const std::string& kid) {
  if (!jwks || !jwks->is_object()) return std::nullopt;
  auto keys = jwks->find("keys");
  if (keys == jwks->end() || !keys->is_array()) return std::nullopt;
  for (const auto& key : *keys)
    if (string_field(key, "kid") == kid) return key;
  return std::nullopt;
}

std::optional<int64_t> int_claim(const nlohmann::json& claims, std::string_view name) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_number()) return std::nullopt;
  if (it->is_number_float()) {
    const double d = it->get<double>();
    if (!(d > -9.0e18 && d < 9.0e18)) return std::nullopt;
    return static_cast<int64_t>(d);
  }
  return it->get<int64_t>();
}

Status check_claims(const nlohmann::json& claims, const EndpointConfig& endpoint, int64_t now) {
  const auto iss = string_field(claims, "iss");
  bool iss_ok = false;
  for (const auto issuer : k_issuers) iss_ok = iss_ok || (iss && *iss == issuer);
  if (!iss_ok) return unauthorized("push token issuer is not accounts.google.com");

  bool aud_ok = false;
  if (auto aud = claims.find("aud"); aud != claims.end()) {
    if (aud->is_string()) aud_ok = aud->get<std::string>() == endpoint.audience;
    if (aud->is_array())
      for (const auto& a : *aud) aud_ok = aud_ok || (a.is_string() && a.get<std::string>() == endpoint.audience);
  }
  if (!aud_ok)
    return unauthorized(
        "push token audience does not match the endpoint's audience (check the subscription's audience setting)");

  const auto exp = int_claim(claims, "exp");
  const auto iat = int_claim(claims, "iat");
  if (!exp || !iat) return unauthorized("push token has no numeric exp or iat");
  if (*exp <= now - k_clock_skew_seconds) return unauthorized("push token has expired");
  if (*iat > now + k_clock_skew_seconds) return unauthorized("push token is issued in the future");

  if (string_field(claims, "email") != endpoint.service_account_email)
    return unauthorized("push token email is not the subscription's service account");
  auto verified = claims.find("email_verified");
  if (verified == claims.end() || !verified->is_boolean() || !verified->get<bool>())
    return unauthorized("push token email is not verified");
  return {};
}

Status check_jwt(const http::Request& req, const VerifyContext& ctx) {
  auto authorization = TRY(single_header(req, "Authorization"));
  constexpr std::string_view k_scheme = "bearer ";
  if (authorization.size() <= k_scheme.size() || http::to_lower(authorization.substr(0, k_scheme.size())) != k_scheme)
    return unauthorized("Authorization must be a Bearer token");
  const std::string_view token = std::string_view(authorization).substr(k_scheme.size());

  const auto dot1 = token.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return unauthorized("push token is not a three-part JWT");
  const auto header_raw = b64url_segment(token.substr(0, dot1));
  const auto claims_raw = b64url_segment(token.substr(dot1 + 1, dot2 - dot1 - 1));
  const auto signature = b64url_segment(token.substr(dot2 + 1));
  if (!header_raw || !claims_raw || !signature) return unauthorized("push token segments are not unpadded base64url");
  const auto header = json_object(*header_raw);
  const auto claims = json_object(*claims_raw);
  if (!header || !claims) return unauthorized("push token header or claims are not JSON objects");
  if (string_field(*header, "alg") != std::optional<std::string>("RS256"))
    return unauthorized("push token alg must be RS256");
  const auto kid = string_field(*header, "kid");
  if (!kid) return unauthorized("push token has no kid");

  if (ctx.jwks == nullptr) return fail(ErrorCode::internal, "gmail verifier has no JWKS source");
  const std::string jwks_url = ctx.endpoint.jwks_url.empty() ? std::string(k_google_jwks_url) : ctx.endpoint.jwks_url;
  auto jwks = TRY(ctx.jwks->keys(jwks_url, false));
  auto jwk = find_key(jwks, *kid);
  if (!jwk) {
    // Google rotated its keys: refetch once (the source rate-limits), then fail closed.
    jwks = TRY(ctx.jwks->keys(jwks_url, true));
    jwk = find_key(jwks, *kid);
  }
  if (!jwk) return unauthorized("push token kid is not in the JWKS");
  if (string_field(*jwk, "kty") != std::optional<std::string>("RSA"))
    return unauthorized("JWKS key for the push token is not an RSA key");
  if (const auto alg = string_field(*jwk, "alg"); alg && *alg != "RS256")
    return unauthorized("JWKS key for the push token is not an RS256 key");
  if (const auto use = string_field(*jwk, "use"); use && *use != "sig")
    return unauthorized("JWKS key for the push token is not a signing key");
  const auto n = b64url_segment(string_field(*jwk, "n").value_or(""));
  const auto e = b64url_segment(string_field(*jwk, "e").value_or(""));
  if (!n || !e) return unauthorized("JWKS key has no usable n/e");
  // Signed bytes: the token text exactly as received.
  if (!crypto::rs256_verify_jwk(*n, *e, token.substr(0, dot2), *signature))
    return unauthorized("push token signature does not verify");
  return check_claims(*claims, ctx.endpoint, ctx.now_unix());
}

Status check_legacy_token(const http::Request& req, const EndpointConfig& endpoint) {
  if (req.query.count("token") != 1) return unauthorized("push URL needs exactly one token query parameter");
  if (!crypto::token_equal_ct(req.query.find("token")->second, endpoint.legacy_token))
    return unauthorized("push URL token does not match the endpoint's verification token");
  return {};
}

class GmailVerifier final : public Verifier {
 public:
  std::string_view provider() const override { return "gmail"; }
  bool may_block() const override { return true; }  // the JWKS fetch

  Status check_config(const EndpointConfig& endpoint) const override {
    if (endpoint.audience.empty() && endpoint.legacy_token.empty())
      return fail(ErrorCode::validation_error,
                  "gmail endpoint needs an audience (JWT push authentication) or a legacy verification token");
    if (!endpoint.audience.empty() && endpoint.service_account_email.empty())
      return fail(ErrorCode::validation_error,
                  "gmail endpoint with an audience also needs the push subscription's service account email");
    return {};
  }

  Result<Verdict> verify(const http::Request& req, const VerifyContext& ctx) const override {
    TRY(require_method(req, "POST", "gmail"));
    const EndpointConfig& ep = ctx.endpoint;
    if (ep.audience.empty() && ep.legacy_token.empty())
      return unauthorized("gmail endpoint has neither an audience nor a legacy token configured");
    if (!ep.audience.empty()) {
      // Fail closed: without the service account any Google-signed token for this audience passes.
      if (ep.service_account_email.empty())
        return unauthorized("gmail endpoint has no service account email configured");
      TRY(check_jwt(req, ctx));
    }
    if (!ep.legacy_token.empty()) TRY(check_legacy_token(req, ep));

    auto doc = TRY(parse_json(req.body, "gmail push"));
    auto message = doc.is_object() ? doc.find("message") : doc.end();
    if (!doc.is_object() || message == doc.end() || !message->is_object())
      return bad_request("pub/sub push body has no message object");
    auto id = string_field(*message, "messageId");
    if (!id) id = string_field(*message, "message_id");
    const auto subscription = string_field(doc, "subscription");
    if (!id || !subscription) return bad_request("pub/sub push body has no messageId or subscription");
    return event_verdict("gmail:pubsub:" + *subscription + ":" + *id, "gmail.notification");
  }
};

}  // namespace

const Verifier& gmail_verifier() {
  static const GmailVerifier k_verifier;
  return k_verifier;
}

}  // namespace alumia::webhooks::detail

// WhatsApp Cloud API / Meta webhooks (PROVIDERS §4): GET subscription handshake by verify token;
// POST events signed with HMAC-SHA256 of the raw body under the App Secret, "sha256=<hex>".
#include "verifiers/detail.hpp"

#include <alumia/base/try.hpp>
#include <alumia/crypto/crypto.hpp>

namespace alumia::webhooks::detail {

namespace {

Result<Verdict> subscription_handshake(const http::Request& req, const VerifyContext& ctx) {
  auto single = [&](const std::string& name) -> std::optional<std::string> {
    if (req.query.count(name) != 1) return std::nullopt;
    return req.query.find(name)->second;
  };
  const auto mode = single("hub.mode");
  const auto token = single("hub.verify_token");
  const auto challenge = single("hub.challenge");
  if (!mode || *mode != "subscribe") return unauthorized("meta subscription handshake needs hub.mode=subscribe");
  if (!token) return unauthorized("meta subscription handshake has no single hub.verify_token");
  if (ctx.endpoint.verify_token.empty())
    return unauthorized("endpoint has no verify token configured for the meta subscription handshake");
  if (!crypto::token_equal_ct(*token, ctx.endpoint.verify_token))
    return unauthorized("hub.verify_token does not match the endpoint's verify token");
  if (!challenge) return bad_request("meta subscription handshake has no hub.challenge");
  // Echo the challenge exactly: no quotes, no JSON, no newline.
  return handshake_verdict(200, *challenge, "text/plain");
}

// One key per item: a POST can batch entries, changes, messages and statuses.
std::vector<std::string> item_keys(const nlohmann::json& doc, std::string& first_field) {
  std::vector<std::string> keys;
  auto entries = doc.find("entry");
  if (entries == doc.end() || !entries->is_array()) return keys;
  for (const auto& entry : *entries) {
    auto changes = entry.find("changes");
    if (changes == entry.end() || !changes->is_array()) continue;
    for (const auto& change : *changes) {
      if (first_field.empty()) first_field = string_field(change, "field").value_or("");
      auto value = change.find("value");
      if (value == change.end() || !value->is_object()) continue;
      if (auto messages = value->find("messages"); messages != value->end() && messages->is_array())
        for (const auto& m : *messages)
          if (auto id = string_field(m, "id")) keys.push_back("whatsapp:msg:" + *id);
      if (auto statuses = value->find("statuses"); statuses != value->end() && statuses->is_array())
        for (const auto& s : *statuses) {
          const auto id = string_field(s, "id");
          const auto status = string_field(s, "status");
          if (id && status) keys.push_back("whatsapp:status:" + *id + ":" + *status);
        }
    }
  }
  return keys;
}

class WhatsappVerifier final : public Verifier {
 public:
  std::string_view provider() const override { return "whatsapp"; }

  Status check_config(const EndpointConfig& endpoint) const override {
    return require_secrets(endpoint, "the Meta App Secret");
  }

  Result<Verdict> verify(const http::Request& req, const VerifyContext& ctx) const override {
    if (req.method == "GET") return subscription_handshake(req, ctx);
    TRY(require_method(req, "POST", "whatsapp"));
    auto header = TRY(single_header(req, "X-Hub-Signature-256"));
    constexpr std::string_view k_prefix = "sha256=";
    if (!header.starts_with(k_prefix)) return unauthorized("X-Hub-Signature-256 must be sha256=<hex>");
    const auto mac = decode_hex_digest(std::string_view(header).substr(k_prefix.size()), 32);
    if (!mac) return unauthorized("X-Hub-Signature-256 is not 64 hex digits");
    if (!hmac_sha256_matches_any(ctx.endpoint.secrets, req.body, *mac))
      return unauthorized("X-Hub-Signature-256 does not match the App Secret");

    auto doc = TRY(parse_json(req.body, "whatsapp"));
    if (!doc.is_object()) return bad_request("whatsapp body is not a JSON object");
    std::string field;
    auto keys = item_keys(doc, field);
    if (keys.empty()) {
      // Notifications without messages or statuses (account or template updates) carry no id; the
      // retried bytes are identical, so the body hash identifies them (our convention).
      keys.push_back("whatsapp:body:" + encoding::hex_encode(crypto::sha256(req.body)));
    }
    Verdict v = event_verdict(keys.front(), field.empty() ? "whatsapp" : field);
    v.item_keys = std::move(keys);
    return v;  // Meta needs exactly 200
  }
};

}  // namespace

const Verifier& whatsapp_verifier() {
  static const WhatsappVerifier k_verifier;
  return k_verifier;
}

}  // namespace alumia::webhooks::detail

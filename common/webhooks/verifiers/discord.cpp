// Discord interactions and webhook events (PROVIDERS §3): Ed25519 over "<ts><raw body>" with the
// app public key.
#include "verifiers/detail.hpp"

#include <alumia/base/try.hpp>
#include <alumia/crypto/crypto.hpp>

namespace alumia::webhooks::detail {

namespace {

std::string_view interaction_type_name(int64_t type) {
  switch (type) {
    case 2:
      return "application_command";
    case 3:
      return "message_component";
    case 4:
      return "application_command_autocomplete";
    case 5:
      return "modal_submit";
    default:
      return "interaction";
  }
}

std::optional<int64_t> int_field(const nlohmann::json& doc, std::string_view key) {
  auto it = doc.find(key);
  if (it == doc.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

// Interactions carry an interaction token; webhook events never do. The two URLs number their
// types differently, so each has its own dispatcher.
Result<Verdict> interaction(const nlohmann::json& doc, int64_t type) {
  if (type == 1) return handshake_verdict(200, R"({"type":1})", "application/json");  // PING → PONG
  const auto id = id_field(doc, "id");
  if (!id) return bad_request("discord interaction has no id");
  Verdict v = event_verdict("discord:interaction:" + *id, std::string(interaction_type_name(type)));
  // The relay answers through the callback endpoint, so the HTTP reply is 202 with no body.
  v.status = 202;
  v.exact_reply = true;
  return v;
}

Result<Verdict> webhook_event(const nlohmann::json& doc, int64_t type, std::string_view raw_body) {
  if (type == 0) return handshake_verdict(204, "", "");  // webhook events PING
  if (type != 1) return bad_request("discord webhook event has unknown type " + std::to_string(type));
  const auto app = id_field(doc, "application_id");
  auto it = doc.find("event");
  if (!app || it == doc.end() || !it->is_object())
    return bad_request("discord webhook event has no application_id or event");
  const auto event_type = string_field(*it, "type");
  const auto timestamp = string_field(*it, "timestamp");
  if (!event_type || !timestamp) return bad_request("discord webhook event has no event.type or event.timestamp");
  Verdict v = event_verdict("discord:event:" + *app + ":" + *event_type + ":" + *timestamp + ":" +
                                encoding::hex_encode(crypto::sha256(raw_body)),
                            *event_type);
  v.status = 204;  // Discord requires 204, no body
  v.exact_reply = true;
  return v;
}

class DiscordVerifier final : public Verifier {
 public:
  std::string_view provider() const override { return "discord"; }

  Status check_config(const EndpointConfig& endpoint) const override {
    TRY(require_secrets(endpoint, "the application's public key"));
    for (const auto& key : endpoint.secrets)
      if (!decode_hex_digest(key, 32))
        return fail(ErrorCode::validation_error,
                    "discord public key must be 64 hex characters (32 bytes), as shown in the Developer Portal");
    return {};
  }

  Result<Verdict> verify(const http::Request& req, const VerifyContext& ctx) const override {
    TRY(require_method(req, "POST", "discord"));
    auto signature = TRY(single_header(req, "X-Signature-Ed25519"));
    auto timestamp = TRY(single_header(req, "X-Signature-Timestamp"));
    const auto sig = decode_hex_digest(signature, 64);
    if (!sig) return unauthorized("X-Signature-Ed25519 is not 128 hex digits");

    const std::string message = timestamp + req.body;
    bool matched = false;
    for (const auto& key_hex : ctx.endpoint.secrets) {
      const auto key = decode_hex_digest(key_hex, 32);
      if (key && crypto::ed25519_verify(*key, message, *sig)) matched = true;
    }
    if (!matched) return unauthorized("X-Signature-Ed25519 does not verify with the application's public key");

    auto doc = TRY(parse_json(req.body, "discord"));
    if (!doc.is_object()) return bad_request("discord body is not a JSON object");
    const auto type = int_field(doc, "type");
    if (!type) return bad_request("discord body has no integer type");
    if (doc.contains("token")) return interaction(doc, *type);
    return webhook_event(doc, *type, req.body);
  }
};

}  // namespace

const Verifier& discord_verifier() {
  static const DiscordVerifier k_verifier;
  return k_verifier;
}

}  // namespace alumia::webhooks::detail

// Slack Events API, slash commands and interactivity (PROVIDERS §2): HMAC-SHA256 over
// "v0:<ts>:<raw body>", ±300 s window.
#include "verifiers/detail.hpp"

#include <alumia/base/try.hpp>
#include <alumia/crypto/crypto.hpp>

namespace alumia::webhooks::detail {

namespace {

constexpr int64_t k_window_seconds = 300;

std::string media_type(const http::Request& req) {
  const auto value = req.header("content-type").value_or("");
  std::string media = http::to_lower(value.substr(0, value.find(';')));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.pop_back();
  return media;
}

std::optional<std::string> form_field(const std::vector<std::pair<std::string, std::string>>& form,
                                      std::string_view name) {
  for (const auto& [key, value] : form)
    if (key == name) return value;
  return std::nullopt;
}

Result<Verdict> json_body(const http::Request& req) {
  auto doc = TRY(parse_json(req.body, "slack"));
  const auto type = string_field(doc, "type");
  if (!type) return bad_request("slack body has no type");
  if (*type == "url_verification") {
    const auto challenge = string_field(doc, "challenge");
    if (!challenge) return bad_request("slack url_verification has no challenge");
    return handshake_verdict(200, nlohmann::json{{"challenge", *challenge}}.dump(), "application/json");
  }
  if (*type == "app_rate_limited") {
    Verdict v = handshake_verdict(200, "", "");
    v.outcome = Outcome::ignored;
    v.event_type = *type;
    return v;
  }
  const auto app = string_field(doc, "api_app_id");
  const auto event_id = string_field(doc, "event_id");
  if (!app || !event_id) return bad_request("slack event has no api_app_id or event_id");
  std::string event_type = *type;
  if (doc.contains("event")) event_type = string_field(doc["event"], "type").value_or(*type);
  return event_verdict("slack:" + *app + ":" + *event_id, event_type);
}

Result<Verdict> form_body(const http::Request& req) {
  const auto form = http::form_decode(req.body);
  if (form_field(form, "ssl_check").value_or("") == "1") return handshake_verdict(200, "", "");
  if (const auto payload = form_field(form, "payload")) {
    // Interactivity: the JSON sits in the payload field.
    auto doc = TRY(parse_json(*payload, "slack interactivity payload"));
    std::optional<std::string> app = string_field(doc, "api_app_id");
    if (!app && doc.contains("view")) app = string_field(doc["view"], "app_id");
    if (!app) return bad_request("slack interactivity payload has no api_app_id");
    const std::string type = string_field(doc, "type").value_or("interactivity");
    if (const auto trigger = string_field(doc, "trigger_id"))
      return event_verdict("slack:" + *app + ":" + *trigger, type);
    // Some payloads (view_closed, block_suggestion) carry no trigger_id; a retry resends the same
    // bytes, so the body hash identifies it (our convention).
    return event_verdict("slack:" + *app + ":payload:" + encoding::hex_encode(crypto::sha256(req.body)), type);
  }
  const auto command = form_field(form, "command");
  const auto app = form_field(form, "api_app_id");
  const auto trigger = form_field(form, "trigger_id");
  if (!command) return bad_request("slack form body is neither a slash command, interactivity nor ssl_check");
  if (!trigger || trigger->empty()) return bad_request("slack slash command has no trigger_id");
  // Older slash-command bodies carry no api_app_id; team_id stands in so the key stays scoped.
  std::string scope = app && !app->empty() ? *app : form_field(form, "team_id").value_or("");
  if (scope.empty()) return bad_request("slack slash command has neither api_app_id nor team_id");
  return event_verdict("slack:" + scope + ":" + *trigger, "command");
}

class SlackVerifier final : public Verifier {
 public:
  std::string_view provider() const override { return "slack"; }

  Status check_config(const EndpointConfig& endpoint) const override {
    return require_secrets(endpoint, "the app's signing secret");
  }

  Result<Verdict> verify(const http::Request& req, const VerifyContext& ctx) const override {
    TRY(require_method(req, "POST", "slack"));
    auto signature = TRY(single_header(req, "X-Slack-Signature"));
    auto timestamp = TRY(single_header(req, "X-Slack-Request-Timestamp"));

    const auto ts = parse_decimal(timestamp);
    if (!ts) return unauthorized("X-Slack-Request-Timestamp is not a base-10 integer");
    const int64_t now = ctx.now_unix();
    if (now - *ts > k_window_seconds || *ts - now > k_window_seconds)
      return unauthorized("X-Slack-Request-Timestamp is more than 300 s from the current time");

    const auto eq = signature.find('=');
    if (eq == std::string::npos || signature.substr(0, eq) != "v0")
      return unauthorized("X-Slack-Signature must be v0=<hex>");
    const auto mac = decode_hex_digest(std::string_view(signature).substr(eq + 1), 32);
    if (!mac) return unauthorized("X-Slack-Signature is not 64 hex digits");
    const std::string signed_bytes = "v0:" + timestamp + ":" + req.body;
    if (!hmac_sha256_matches_any(ctx.endpoint.secrets, signed_bytes, *mac))
      return unauthorized("X-Slack-Signature does not match the signing secret");

    // Verified: only now look inside (the form stays encoded in the signed bytes).
    const std::string media = media_type(req);
    if (media == "application/x-www-form-urlencoded") return form_body(req);
    if (media == "application/json" || (!req.body.empty() && req.body.front() == '{')) return json_body(req);
    return form_body(req);
  }
};

}  // namespace

const Verifier& slack_verifier() {
  static const SlackVerifier k_verifier;
  return k_verifier;
}

}  // namespace alumia::webhooks::detail

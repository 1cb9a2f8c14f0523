// Telegram Bot API webhooks (PROVIDERS §1): shared secret_token header, no signature.
#include "verifiers/detail.hpp"

#include <alumia/base/try.hpp>
#include <alumia/crypto/crypto.hpp>

namespace alumia::webhooks::detail {

namespace {

constexpr std::string_view k_token_header = "X-Telegram-Bot-Api-Secret-Token";

bool is_json_content_type(const std::optional<std::string>& value) {
  if (!value) return false;
  std::string media = http::to_lower(value->substr(0, value->find(';')));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.pop_back();
  return media == "application/json";
}

class TelegramVerifier final : public Verifier {
 public:
  std::string_view provider() const override { return "telegram"; }

  Status check_config(const EndpointConfig& endpoint) const override {
    TRY(require_secrets(endpoint, "a secret_token"));
    for (const auto& token : endpoint.secrets)
      if (!valid_telegram_secret_token(token))
        return fail(ErrorCode::validation_error, "telegram secret_token must be 1-256 characters of A-Z a-z 0-9 _ -");
    if (!parse_decimal(endpoint.bot_id))
      return fail(ErrorCode::validation_error, "telegram endpoint needs the numeric bot id (the bot token's prefix)");
    return {};
  }

  Result<Verdict> verify(const http::Request& req, const VerifyContext& ctx) const override {
    TRY(require_method(req, "POST", "telegram"));
    auto token = TRY(single_header(req, k_token_header));
    bool matched = false;
    for (const auto& expected : ctx.endpoint.secrets)
      if (!expected.empty() && crypto::token_equal_ct(token, expected)) matched = true;
    if (!matched) return unauthorized("X-Telegram-Bot-Api-Secret-Token does not match the endpoint's secret_token");

    if (!is_json_content_type(req.header("content-type")))
      return bad_request("telegram updates must be sent as application/json");
    auto doc = TRY(parse_json(req.body, "telegram"));
    if (!doc.is_object()) return bad_request("telegram update is not a JSON object");
    auto it = doc.find("update_id");
    if (it == doc.end() || !it->is_number_integer()) return bad_request("telegram update has no integer update_id");
    if (ctx.endpoint.bot_id.empty()) return fail(ErrorCode::internal, "telegram endpoint has no bot id configured");

    std::string type;
    for (const auto& [key, value] : doc.items())
      if (key != "update_id") {
        type = key;
        break;
      }
    Verdict v = event_verdict("telegram:" + ctx.endpoint.bot_id + ":" + std::to_string(it->get<int64_t>()), type);
    // Telegram reads a JSON reply body as a Bot API call: 200, empty, for new and repeat alike.
    v.exact_reply = true;
    return v;
  }
};

}  // namespace

const Verifier& telegram_verifier() {
  static const TelegramVerifier k_verifier;
  return k_verifier;
}

}  // namespace alumia::webhooks::detail

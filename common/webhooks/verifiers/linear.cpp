// Linear webhooks (PROVIDERS §8): HMAC-SHA256 of the raw body, bare hex; webhookTimestamp (ms,
// in the body) within ±60 s. Order: HMAC, JSON, window.
#include "verifiers/detail.hpp"

#include <alumia/base/try.hpp>

namespace alumia::webhooks::detail {

namespace {

constexpr int64_t k_window_ms = 60'000;

class LinearVerifier final : public Verifier {
 public:
  std::string_view provider() const override { return "linear"; }

  Status check_config(const EndpointConfig& endpoint) const override {
    return require_secrets(endpoint, "the webhook signing secret");
  }

  Result<Verdict> verify(const http::Request& req, const VerifyContext& ctx) const override {
    TRY(require_method(req, "POST", "linear"));
    auto header = TRY(single_header(req, "Linear-Signature"));
    const auto mac = decode_hex_digest(header, 32);
    if (!mac) return unauthorized("Linear-Signature is not 64 hex digits");
    if (!hmac_sha256_matches_any(ctx.endpoint.secrets, req.body, *mac))
      return unauthorized("Linear-Signature does not match the webhook secret");

    auto doc = TRY(parse_json(req.body, "linear"));
    if (!doc.is_object()) return bad_request("linear body is not a JSON object");
    auto ts = doc.find("webhookTimestamp");
    if (ts == doc.end() || !ts->is_number_integer()) return unauthorized("linear body has no integer webhookTimestamp");
    const int64_t sent_ms = ts->get<int64_t>();
    // Written so that neither subtraction can overflow on hostile input.
    if (sent_ms < ctx.now_ms - k_window_ms || sent_ms > ctx.now_ms + k_window_ms)
      return unauthorized("linear webhookTimestamp is more than 60 s from the current time");

    auto delivery = TRY(optional_header(req, "Linear-Delivery"));
    const auto type = string_field(doc, "type");
    const auto action = string_field(doc, "action");
    std::string event_type = type.value_or("") + (action ? "." + *action : "");

    // Retries may or may not reuse Linear-Delivery, so the content key rides along (our convention).
    std::optional<std::string> content_key;
    if (auto data = doc.find("data"); data != doc.end() && data->is_object() && type && action) {
      const auto id = id_field(*data, "id");
      auto when = string_field(*data, "updatedAt");
      if (!when) when = string_field(*data, "createdAt");
      if (!when) when = string_field(doc, "createdAt");
      if (id && when) content_key = "linear:" + *type + ":" + *id + ":" + *action + ":" + *when;
    }
    if (delivery && !delivery->empty()) {
      Verdict v = event_verdict("linear:" + *delivery, event_type);
      if (content_key) v.alias_keys.push_back(*content_key);
      return v;
    }
    if (content_key) return event_verdict(*content_key, event_type);
    return bad_request("linear delivery has neither Linear-Delivery nor data.id with a timestamp");
  }
};

}  // namespace

const Verifier& linear_verifier() {
  static const LinearVerifier k_verifier;
  return k_verifier;
}

}  // namespace alumia::webhooks::detail

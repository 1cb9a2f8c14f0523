// Stripe webhooks (PROVIDERS §9): Stripe-Signature "t=<ts>,v1=<hex>[,v1=…]" over "<t>.<raw body>",
// HMAC-SHA256 keyed with the whole whsec_… string; 300 s age limit, future timestamps allowed.
#include "verifiers/detail.hpp"

#include <alumia/base/try.hpp>
#include <alumia/crypto/crypto.hpp>

namespace alumia::webhooks::detail {

namespace {

constexpr int64_t k_tolerance_seconds = 300;

struct ParsedHeader {
  std::string t;
  std::vector<std::string> v1;
};

Result<ParsedHeader> parse_header(std::string_view header) {
  ParsedHeader out;
  int t_count = 0;
  while (!header.empty()) {
    const auto comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = item.substr(eq + 1);
    if (key == "t") {
      ++t_count;
      out.t = std::string(value);
    } else if (key == "v1") {
      out.v1.emplace_back(value);
    }
    // v0 is a fake test-mode signature and unknown keys are for the future: both ignored.
  }
  if (t_count == 0) return unauthorized("Stripe-Signature has no t= timestamp");
  if (t_count > 1) return unauthorized("Stripe-Signature has more than one t= timestamp");
  if (out.v1.empty()) return unauthorized("Stripe-Signature has no v1= signature");
  return out;
}

class StripeVerifier final : public Verifier {
 public:
  std::string_view provider() const override { return "stripe"; }

  Status check_config(const EndpointConfig& endpoint) const override {
    return require_secrets(endpoint, "the endpoint signing secret (whsec_…)");
  }

  Result<Verdict> verify(const http::Request& req, const VerifyContext& ctx) const override {
    TRY(require_method(req, "POST", "stripe"));
    auto header = TRY(single_header(req, "Stripe-Signature"));
    auto parsed = TRY(parse_header(header));
    const auto t = parse_decimal(parsed.t);
    if (!t) return unauthorized("Stripe-Signature t= is not a base-10 integer");
    if (ctx.now_unix() - *t > k_tolerance_seconds)
      return unauthorized("Stripe-Signature timestamp is older than 300 s");

    // The t text as received, never a re-formatted number.
    const std::string signed_bytes = parsed.t + "." + req.body;
    bool matched = false;
    for (const auto& candidate : parsed.v1) {
      const auto mac = decode_hex_digest(candidate, 32);
      if (mac && hmac_sha256_matches_any(ctx.endpoint.secrets, signed_bytes, *mac)) matched = true;
    }
    if (!matched) return unauthorized("no Stripe-Signature v1 matches the endpoint signing secret");

    auto doc = TRY(parse_json(req.body, "stripe"));
    const auto id = string_field(doc, "id");
    if (!id) return bad_request("stripe event has no id");
    const std::string account = string_field(doc, "account").value_or("platform");
    return event_verdict("stripe:" + account + ":" + *id, string_field(doc, "type").value_or(""));
  }
};

}  // namespace

const Verifier& stripe_verifier() {
  static const StripeVerifier k_verifier;
  return k_verifier;
}

}  // namespace alumia::webhooks::detail

// GitHub webhooks (PROVIDERS §7): HMAC-SHA256 of the raw body, "sha256=<hex>"; never SHA-1.
#include "verifiers/detail.hpp"

#include <alumia/base/try.hpp>

namespace alumia::webhooks::detail {

namespace {

class GithubVerifier final : public Verifier {
 public:
  std::string_view provider() const override { return "github"; }

  Status check_config(const EndpointConfig& endpoint) const override {
    return require_secrets(endpoint, "the webhook secret");
  }

  Result<Verdict> verify(const http::Request& req, const VerifyContext& ctx) const override {
    TRY(require_method(req, "POST", "github"));
    if (http::header_count(req.headers, "X-Hub-Signature-256") == 0 &&
        http::header_count(req.headers, "X-Hub-Signature") > 0)
      return unauthorized("missing X-Hub-Signature-256 header (the SHA-1 X-Hub-Signature is never accepted)");
    auto header = TRY(single_header(req, "X-Hub-Signature-256"));
    constexpr std::string_view k_prefix = "sha256=";
    if (!header.starts_with(k_prefix)) return unauthorized("X-Hub-Signature-256 must be sha256=<hex>");
    const auto mac = decode_hex_digest(std::string_view(header).substr(k_prefix.size()), 32);
    if (!mac) return unauthorized("X-Hub-Signature-256 is not 64 hex digits");
    if (!hmac_sha256_matches_any(ctx.endpoint.secrets, req.body, *mac))
      return unauthorized("X-Hub-Signature-256 does not match the webhook secret");

    auto event = TRY(optional_header(req, "X-GitHub-Event"));
    auto delivery = TRY(optional_header(req, "X-GitHub-Delivery"));
    if (!event || event->empty()) return bad_request("github delivery has no X-GitHub-Event header");
    if (*event == "ping") {
      Verdict v = handshake_verdict(200, "", "");
      v.event_type = "ping";
      return v;
    }
    if (!delivery || delivery->empty()) return bad_request("github delivery has no X-GitHub-Delivery header");
    return event_verdict("github:" + *delivery, *event);
  }
};

}  // namespace

const Verifier& github_verifier() {
  static const GithubVerifier k_verifier;
  return k_verifier;
}

}  // namespace alumia::webhooks::detail

// The verifier table (PROVIDERS §0.8 provider names) and cross-cutting helpers.
#include "webhook_test_util.hpp"

#include <alumia/webhooks/webhook_service.hpp>

#include <tuple>
#include <vector>

using namespace alumia;
using namespace alumia::webhooks;

TEST_CASE("registry lists every provider once, in PROVIDERS.md order", "[webhooks]") {
  const std::vector<std::string_view> expected{"telegram", "slack",  "discord", "whatsapp", "twilio",
                                               "gmail",    "github", "linear",  "stripe"};
  const auto names = providers();
  REQUIRE(std::vector<std::string_view>(names.begin(), names.end()) == expected);
  for (const auto name : names) {
    const Verifier* v = find_verifier(name);
    REQUIRE(v != nullptr);
    CHECK(v->provider() == name);
  }
  CHECK(find_verifier("svix") == nullptr);
  CHECK(find_verifier("") == nullptr);
  CHECK(find_verifier("GitHub") == nullptr);
}

TEST_CASE("secret whitespace warning", "[webhooks]") {
  EndpointConfig ep;
  ep.provider = Provider::github;
  ep.secrets = {"fine"};
  CHECK_FALSE(secret_whitespace_warning(ep));
  ep.secrets = {"fine", " padded"};
  auto warning = secret_whitespace_warning(ep);
  REQUIRE(warning);
  CHECK(warning->find("#2") != std::string::npos);
  ep.secrets = {"trailing\n"};
  CHECK(secret_whitespace_warning(ep));
}

TEST_CASE("verifiers refuse an endpoint with no secret", "[webhooks]") {
  for (const auto name : providers()) {
    if (name == "gmail") continue;
    EndpointConfig ep;
    ep.provider = *parse_provider(name);
    auto st = find_verifier(name)->check_config(ep);
    INFO(name);
    REQUIRE_FALSE(st.has_value());
    CHECK(st.error().code == ErrorCode::validation_error);
  }
}

TEST_CASE("secret rotation: any active secret verifies", "[webhooks]") {
  // GitHub official vector, with the right secret second in the list.
  const std::string body = "Hello, World!";
  auto ep = testing::endpoint("github", {"new-secret-not-yet-used", "It's a Secret to Everybody"});
  auto req = testing::post(
      body, {{"x-hub-signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
             {"x-github-event", "push"},
             {"x-github-delivery", "d1"}});
  REQUIRE(testing::run(ep, req, 0).has_value());
  ep.secrets = {"new-secret-not-yet-used"};
  REQUIRE_UNAUTHORIZED(testing::run(ep, req, 0));
}

TEST_CASE("the receiver's public answer to any refusal carries no detail", "[webhooks][strangers]") {
  const std::string detail = "JWKS http://127.0.0.1:18081/admin answered HTTP 403 (kid k1)";
  const std::vector<std::tuple<ErrorCode, ErrorCode, std::string>> expected{
      {ErrorCode::unauthorized, ErrorCode::unauthorized, "signature verification failed"},
      {ErrorCode::not_found, ErrorCode::not_found, "no such webhook endpoint"},
      {ErrorCode::bad_request, ErrorCode::bad_request, "malformed webhook delivery"},
      {ErrorCode::method_not_allowed, ErrorCode::method_not_allowed, "method not allowed for this webhook endpoint"},
      {ErrorCode::payload_too_large, ErrorCode::payload_too_large, "request body too large"},
      // Trouble on our side, whatever its code: 503 so the provider retries, and no detail.
      {ErrorCode::service_unavailable, ErrorCode::service_unavailable,
       "webhook receiver temporarily unavailable; retry later"},
      {ErrorCode::internal, ErrorCode::service_unavailable, "webhook receiver temporarily unavailable; retry later"},
      {ErrorCode::validation_error, ErrorCode::service_unavailable,
       "webhook receiver temporarily unavailable; retry later"},
      {ErrorCode::forbidden, ErrorCode::service_unavailable, "webhook receiver temporarily unavailable; retry later"},
  };
  for (const auto& [code, public_code, message] : expected) {
    const Error shown = WebhookService::public_refusal(Error{code, detail, 7});
    INFO(static_cast<int>(code));
    CHECK(shown.code == public_code);
    CHECK(shown.message == message);
    CHECK(shown.retry_after_seconds == (public_code == ErrorCode::service_unavailable ? 7 : 0));
  }
}

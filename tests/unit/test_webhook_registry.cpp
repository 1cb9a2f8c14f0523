// The verifier table (PROVIDERS §0.8 provider names) and cross-cutting helpers.
#include "webhook_test_util.hpp"

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
  ep.provider = "github";
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
    ep.provider = std::string(name);
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

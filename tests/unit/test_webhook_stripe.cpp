// Stripe (PROVIDERS §9): stripe-dotnet official vector (484-byte fixture), the trailing-LF
// negative, rotation, v0, stripe-node primitives, the regression vector, age-only window.
#include "webhook_test_util.hpp"

using namespace alumia;
using namespace alumia::webhooks;

namespace {

const std::string k_fixture =
    "{\n"
    "  \"id\": \"evt_123\",\n"
    "  \"object\": \"event\",\n"
    "  \"account\": \"acct_123\",\n"
    "  \"api_version\": \"2017-05-25\",\n"
    "  \"created\": 1533204620,\n"
    "  \"data\": {\n"
    "    \"object\": {\n"
    "      \"id\": \"cus_123\",\n"
    "      \"object\": \"customer\",\n"
    "      \"created\": 123456789,\n"
    "      \"email\": \"test@stripe.com\",\n"
    "      \"livemode\": false,\n"
    "      \"metadata\": {}\n"
    "    }\n"
    "  },\n"
    "  \"livemode\": false,\n"
    "  \"pending_webhooks\": 1,\n"
    "  \"request\": {\n"
    "    \"id\": \"req_123\",\n"
    "    \"idempotency_key\": \"idempotency-key-123\"\n"
    "  },\n"
    "  \"type\": \"customer.created\"\n"
    "}\n";
const std::string k_v1 = "2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7";
const std::string k_v0 = "63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef";

EndpointConfig stripe_endpoint(std::string secret = "webhook_secret") {
  return testing::endpoint("stripe", {std::move(secret)});
}

http::Request request(std::string body, std::string header) {
  return testing::post(std::move(body),
                       {{"content-type", "application/json; charset=utf-8"}, {"stripe-signature", std::move(header)}});
}

}  // namespace

TEST_CASE("stripe: official stripe-dotnet vector", "[webhooks][stripe]") {
  REQUIRE(k_fixture.size() == 484);
  CHECK(encoding::hex_encode(crypto::sha256(k_fixture)) ==
        "98cc89412549ca7faf118fca984763bdb6f81e13d1ce8c528dbbb5be602ec1be");
  const auto req = request(k_fixture, "t=1533204620,v1=" + k_v1 + ",v0=" + k_v0);
  for (const int64_t now : {int64_t{1533204620}, int64_t{1533204920}}) {
    REQUIRE_OK(testing::run(stripe_endpoint(), req, now), v);
    CHECK(v->outcome == Outcome::event);
    CHECK(v->event_key == "stripe:acct_123:evt_123");
    CHECK(v->event_type == "customer.created");
    CHECK(v->status == 200);
  }
}

TEST_CASE("stripe: 300 s on age only", "[webhooks][stripe]") {
  const auto req = request(k_fixture, "t=1533204620,v1=" + k_v1);
  REQUIRE_UNAUTHORIZED(testing::run(stripe_endpoint(), req, 1533204921));
  // Future timestamps are not rejected (the SDKs do not).
  CHECK(testing::run(stripe_endpoint(), req, 1533204000).has_value());
}

TEST_CASE("stripe: trailing LF matters", "[webhooks][stripe]") {
  const std::string no_lf = k_fixture.substr(0, 483);
  CHECK(testing::hex_hmac_sha256("webhook_secret", "1533204620." + no_lf) ==
        "8c506d7d19ece69e9a38e398964787dda54eeb2583381ffc7f56070c28d7f119");
  REQUIRE_UNAUTHORIZED(testing::run(stripe_endpoint(), request(no_lf, "t=1533204620,v1=" + k_v1), 1533204620));
  // ...and the no-LF HMAC does not authenticate the real body either.
  REQUIRE_UNAUTHORIZED(testing::run(
      stripe_endpoint(),
      request(k_fixture, "t=1533204620,v1=8c506d7d19ece69e9a38e398964787dda54eeb2583381ffc7f56070c28d7f119"),
      1533204620));
}

TEST_CASE("stripe: rotation and v0", "[webhooks][stripe]") {
  // A zero v1 ahead of the valid one: still accepted.
  CHECK(testing::run(stripe_endpoint(), request(k_fixture, "t=1533204620,v1=" + std::string(64, '0') + ",v1=" + k_v1),
                     1533204620)
            .has_value());
  // Only t and v0: rejected.
  REQUIRE_UNAUTHORIZED(testing::run(stripe_endpoint(), request(k_fixture, "t=1533204620,v0=" + k_v0), 1533204620));
  // v0 carrying the real HMAC is still never accepted.
  REQUIRE_UNAUTHORIZED(testing::run(stripe_endpoint(), request(k_fixture, "t=1533204620,v0=" + k_v1), 1533204620));
  // Several active secrets: any of them.
  auto ep = testing::endpoint("stripe", {"whsec_new", "webhook_secret"});
  CHECK(testing::run(ep, request(k_fixture, "t=1533204620,v1=" + k_v1), 1533204620).has_value());
  // Unknown keys are ignored.
  CHECK(testing::run(stripe_endpoint(), request(k_fixture, "t=1533204620,v2=abc,v1=" + k_v1), 1533204620).has_value());
}

TEST_CASE("stripe: malformed or tampered headers → 401", "[webhooks][stripe]") {
  const auto ep = stripe_endpoint();
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(k_fixture, "v1=" + k_v1), 1533204620));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(k_fixture, "t=1533204620"), 1533204620));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(k_fixture, "t=1533204620,t=1533204620,v1=" + k_v1), 1533204620));
  REQUIRE_UNAUTHORIZED(
      testing::run(ep, request(k_fixture, "t=1533204620,v1=" + testing::flip_hex(k_v1, 3)), 1533204620));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(k_fixture, "t=1533204621,v1=" + k_v1), 1533204620));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(k_fixture, "t=01533204620,v1=" + k_v1), 1533204620));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(k_fixture, "t=1533204620x,v1=" + k_v1), 1533204620));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(k_fixture, ""), 1533204620));
  REQUIRE_UNAUTHORIZED(testing::run(ep, testing::post(k_fixture, {}), 1533204620));
  // A repeated header (what a `, `-joining framework would hide).
  auto dup = request(k_fixture, "t=1533204620,v1=" + std::string(64, '0'));
  dup.headers.emplace_back("stripe-signature", "t=1533204620,v1=" + k_v1);
  REQUIRE_UNAUTHORIZED(testing::run(ep, dup, 1533204620));
  // The secret is the whole string: stripping or base64-decoding would differ.
  REQUIRE_UNAUTHORIZED(
      testing::run(stripe_endpoint("whsec_webhook_secret"), request(k_fixture, "t=1533204620,v1=" + k_v1), 1533204620));
}

TEST_CASE("stripe: stripe-node HMAC primitives", "[webhooks][stripe]") {
  CHECK(testing::hex_hmac_sha256("test_secret", "") ==
        "f7f9bd47fb987337b5796fdc1fdb9ba221d0d5396814bfcaf9521f43fd8927fd");
  CHECK(testing::hex_hmac_sha256("test_secret", R"({"obj1":"hello","obj2":"world"})") ==
        "bebb1a643997f419b315ddba19e6f5411e1ce7f810ba6d3617ce72823092f363");
  CHECK(testing::hex_hmac_sha256("test_secret", "\xF0\x9F\x98\x80") ==
        "837da296d05c4fe31f61d5d7ead035099d9585a5bcde87de952012a78f0b0c43");
}

TEST_CASE("stripe: regression vector with a whsec_ secret used verbatim", "[webhooks][stripe]") {
  const std::string body = R"({"id":"evt_test_webhook","object":"event"})";
  REQUIRE(body.size() == 42);
  const auto req = request(body, "t=1700000000,v1=d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990");
  REQUIRE_OK(testing::run(stripe_endpoint("whsec_test_secret"), req, 1700000000), v);
  CHECK(v->event_key == "stripe:platform:evt_test_webhook");
  REQUIRE_UNAUTHORIZED(testing::run(stripe_endpoint("test_secret"), req, 1700000000));
}

TEST_CASE("stripe: verified event without an id → 400", "[webhooks][stripe]") {
  const std::string body = R"({"object":"event"})";
  const auto req = request(body, "t=1700000000,v1=" + testing::hex_hmac_sha256("webhook_secret", "1700000000." + body));
  auto r = testing::run(stripe_endpoint(), req, 1700000000);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::bad_request);
}

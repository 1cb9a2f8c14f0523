// Linear (PROVIDERS §8): regression vector, ±60 s window on webhookTimestamp (ms), check order,
// keys.
#include "webhook_test_util.hpp"

using namespace alumia;
using namespace alumia::webhooks;

namespace {

constexpr std::string_view k_secret = "lin_wh_test_secret";
constexpr std::string_view k_body =
    R"({"action":"create","type":"Issue","data":{"id":"2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9","title":"Test"},"url":"https://linear.app/x/issue/X-1","organizationId":"org_1","webhookTimestamp":1700000000000,"webhookId":"f4b1b6f0-5c1e-4f0b-9b2f-3a7e0c9d8e11"})";
constexpr std::string_view k_sig = "3ee6dfa4cedb58be034fc28d06ad181e5d7da193611cdc4dd7c0cac5b8519464";

EndpointConfig linear_endpoint() { return testing::endpoint("linear", {std::string(k_secret)}); }

http::Request request(std::string body, std::string sig, std::string delivery = "0f3a2d8e-delivery") {
  http::Headers h{
      {"content-type", "application/json"}, {"linear-signature", std::move(sig)}, {"linear-event", "Issue"}};
  if (!delivery.empty()) h.emplace_back("linear-delivery", std::move(delivery));
  return testing::post(std::move(body), std::move(h));
}

http::Request signed_request(const std::string& body) {
  return request(body, testing::hex_hmac_sha256(k_secret, body));
}

}  // namespace

TEST_CASE("linear: regression vector", "[webhooks][linear]") {
  REQUIRE(k_body.size() == 250);
  CHECK(encoding::hex_encode(crypto::sha256(k_body)) ==
        "b0523ead94783150fb67092f66d2e4705424cb50493dc40be0d0bcbe5d3782c6");
  REQUIRE_OK(testing::run(linear_endpoint(), request(std::string(k_body), std::string(k_sig)), 1700000000), v);
  CHECK(v->outcome == Outcome::event);
  CHECK(v->event_key == "linear:0f3a2d8e-delivery");
  CHECK(v->event_type == "Issue.create");
  CHECK(v->status == 200);
}

TEST_CASE("linear: ±60 s window in milliseconds", "[webhooks][linear]") {
  const auto req = request(std::string(k_body), std::string(k_sig));
  CHECK(testing::run_ms(linear_endpoint(), req, 1699999940000).has_value());
  CHECK(testing::run_ms(linear_endpoint(), req, 1700000060000).has_value());
  REQUIRE_UNAUTHORIZED(testing::run_ms(linear_endpoint(), req, 1700000060001));
  REQUIRE_UNAUTHORIZED(testing::run_ms(linear_endpoint(), req, 1699999939999));
  REQUIRE_UNAUTHORIZED(testing::run(linear_endpoint(), req, 1700000061));
  // Seconds mistaken for milliseconds would be decades off.
  REQUIRE_UNAUTHORIZED(
      testing::run(linear_endpoint(),
                   signed_request(R"({"type":"Issue","action":"create","webhookTimestamp":1700000000})"), 1700000000));
}

TEST_CASE("linear: tampered variants → 401", "[webhooks][linear]") {
  const auto ep = linear_endpoint();
  const std::string body(k_body);
  const std::string sig(k_sig);
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(body, testing::flip_hex(sig, 7)), 1700000000));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(body, "sha256=" + sig), 1700000000));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(body, sig.substr(0, 62)), 1700000000));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(body + "\n", sig), 1700000000));
  REQUIRE_UNAUTHORIZED(testing::run(ep, testing::post(body, {{"linear-delivery", "d"}}), 1700000000));
  auto dup = request(body, sig);
  dup.headers.emplace_back("linear-signature", sig);
  REQUIRE_UNAUTHORIZED(testing::run(ep, dup, 1700000000));
}

TEST_CASE("linear: order is HMAC, JSON, window; bad timestamps rejected", "[webhooks][linear]") {
  const auto ep = linear_endpoint();
  // Bad JSON with a bad signature: 401 (the HMAC comes first).
  REQUIRE_UNAUTHORIZED(testing::run(ep, request("{nope", std::string(64, '0')), 1700000000));
  // Bad JSON with a good signature: 400.
  auto bad_json = testing::run(ep, signed_request("{nope"), 1700000000);
  REQUIRE_FALSE(bad_json);
  CHECK(bad_json.error().code == ErrorCode::bad_request);
  REQUIRE_UNAUTHORIZED(testing::run(ep, signed_request(R"({"type":"Issue","action":"create"})"), 1700000000));
  REQUIRE_UNAUTHORIZED(
      testing::run(ep, signed_request(R"({"type":"Issue","webhookTimestamp":"1700000000000"})"), 1700000000));
  REQUIRE_UNAUTHORIZED(
      testing::run(ep, signed_request(R"({"type":"Issue","webhookTimestamp":1700000000000.5})"), 1700000000));
}

TEST_CASE("linear: content key rides along; missing delivery falls back to it", "[webhooks][linear]") {
  const std::string body =
      R"({"action":"update","type":"Issue","data":{"id":"i1","updatedAt":"2024-01-01T00:00:00.000Z"},"webhookTimestamp":1700000000000})";
  REQUIRE_OK(testing::run(linear_endpoint(), signed_request(body), 1700000000), v);
  CHECK(v->event_key == "linear:0f3a2d8e-delivery");
  CHECK(v->alias_keys == std::vector<std::string>{"linear:Issue:i1:update:2024-01-01T00:00:00.000Z"});

  auto no_delivery = request(body, testing::hex_hmac_sha256(k_secret, body), "");
  REQUIRE_OK(testing::run(linear_endpoint(), no_delivery, 1700000000), w);
  CHECK(w->event_key == "linear:Issue:i1:update:2024-01-01T00:00:00.000Z");

  auto nothing = request(std::string(k_body), std::string(k_sig), "");
  auto r = testing::run(linear_endpoint(), nothing, 1700000000);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::bad_request);
}

TEST_CASE("linear: non-POST → 405", "[webhooks][linear]") {
  auto req = request(std::string(k_body), std::string(k_sig));
  req.method = "PUT";
  auto r = testing::run(linear_endpoint(), req, 1700000000);
  REQUIRE_FALSE(r);
  CHECK(r.error().http_status() == 405);
}

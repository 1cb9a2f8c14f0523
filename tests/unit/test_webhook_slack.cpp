// Slack (PROVIDERS §2): official vector from Slack's docs / python-slack-sdk, window edges,
// version prefix, handshakes and event keys.
#include "webhook_test_util.hpp"

using namespace alumia;
using namespace alumia::webhooks;

namespace {

constexpr std::string_view k_secret = "8f742231b10e8888abcd99yyyzzz85a5";
constexpr int64_t k_ts = 1531420618;
const std::string k_body =
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
    "channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
    "response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
    "trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
constexpr std::string_view k_hex = "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

EndpointConfig slack_endpoint() { return testing::endpoint("slack", {std::string(k_secret)}); }

http::Request signed_request(const std::string& body, const std::string& signature, const std::string& ts,
                             const std::string& content_type = "application/x-www-form-urlencoded") {
  return testing::post(
      body, {{"content-type", content_type}, {"x-slack-request-timestamp", ts}, {"x-slack-signature", signature}});
}

http::Request sign(const std::string& body, const std::string& content_type, int64_t ts = k_ts) {
  const std::string t = std::to_string(ts);
  return signed_request(body, "v0=" + testing::hex_hmac_sha256(k_secret, "v0:" + t + ":" + body), t, content_type);
}

}  // namespace

TEST_CASE("slack: official vector", "[webhooks][slack]") {
  REQUIRE(k_body.size() == 362);
  CHECK(testing::hex_hmac_sha256(k_secret, "v0:1531420618:" + k_body) == k_hex);
  const auto req = signed_request(k_body, "v0=" + std::string(k_hex), "1531420618");
  REQUIRE_OK(testing::run(slack_endpoint(), req, k_ts), v);
  CHECK(v->outcome == Outcome::event);
  // A slash command without api_app_id: scoped by team_id, keyed by trigger_id (our convention).
  CHECK(v->event_key == "slack:T1DC2JH3J:398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c");
  CHECK(v->event_type == "command");
  CHECK(v->status == 200);
}

TEST_CASE("slack: ±300 s window edges", "[webhooks][slack]") {
  const auto req = signed_request(k_body, "v0=" + std::string(k_hex), "1531420618");
  CHECK(testing::run(slack_endpoint(), req, 1531420318).has_value());
  CHECK(testing::run(slack_endpoint(), req, 1531420918).has_value());
  REQUIRE_UNAUTHORIZED(testing::run(slack_endpoint(), req, 1531420919));
  REQUIRE_UNAUTHORIZED(testing::run(slack_endpoint(), req, 1531420317));
}

TEST_CASE("slack: tampered variants → 401", "[webhooks][slack]") {
  const auto ep = slack_endpoint();
  const std::string good = "v0=" + std::string(k_hex);
  SECTION("v1 prefix with the right hex") {
    REQUIRE_UNAUTHORIZED(testing::run(ep, signed_request(k_body, "v1=" + std::string(k_hex), "1531420618"), k_ts));
  }
  SECTION("flipped digit") {
    REQUIRE_UNAUTHORIZED(testing::run(
        ep, signed_request(k_body, "v0=" + testing::flip_hex(std::string(k_hex), 10), "1531420618"), k_ts));
  }
  SECTION("uppercase hex still verifies (hex is decoded either case)") {
    std::string upper(k_hex);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    CHECK(testing::run(ep, signed_request(k_body, "v0=" + upper, "1531420618"), k_ts).has_value());
  }
  SECTION("short, non-hex and empty signatures") {
    REQUIRE_UNAUTHORIZED(testing::run(ep, signed_request(k_body, good.substr(0, good.size() - 2), "1531420618"), k_ts));
    REQUIRE_UNAUTHORIZED(testing::run(ep, signed_request(k_body, "v0=" + std::string(64, 'g'), "1531420618"), k_ts));
    REQUIRE_UNAUTHORIZED(testing::run(ep, signed_request(k_body, "v0=", "1531420618"), k_ts));
    REQUIRE_UNAUTHORIZED(testing::run(ep, signed_request(k_body, std::string(k_hex), "1531420618"), k_ts));
  }
  SECTION("body changed: %2F decoded is not the signed bytes") {
    std::string decoded = k_body;
    decoded.replace(decoded.find("%2Fwebhook"), 3, "/");
    REQUIRE_UNAUTHORIZED(testing::run(ep, signed_request(decoded, good, "1531420618"), k_ts));
  }
  SECTION("timestamp text must be signed as received") {
    REQUIRE_UNAUTHORIZED(testing::run(ep, signed_request(k_body, good, "01531420618"), k_ts));
    REQUIRE_UNAUTHORIZED(testing::run(ep, signed_request(k_body, good, "+1531420618"), k_ts));
    REQUIRE_UNAUTHORIZED(testing::run(ep, signed_request(k_body, good, "1531420618.0"), k_ts));
    REQUIRE_UNAUTHORIZED(testing::run(ep, signed_request(k_body, good, "99999999999999999999999"), k_ts));
  }
  SECTION("missing or duplicated headers") {
    REQUIRE_UNAUTHORIZED(testing::run(ep, testing::post(k_body, {{"x-slack-request-timestamp", "1531420618"}}), k_ts));
    REQUIRE_UNAUTHORIZED(testing::run(ep, testing::post(k_body, {{"x-slack-signature", good}}), k_ts));
    auto dup_sig = signed_request(k_body, good, "1531420618");
    dup_sig.headers.emplace_back("x-slack-signature", good);
    REQUIRE_UNAUTHORIZED(testing::run(ep, dup_sig, k_ts));
    auto dup_ts = signed_request(k_body, good, "1531420618");
    dup_ts.headers.emplace_back("x-slack-request-timestamp", "1531420618");
    REQUIRE_UNAUTHORIZED(testing::run(ep, dup_ts, k_ts));
  }
  SECTION("wrong secret") {
    REQUIRE_UNAUTHORIZED(
        testing::run(testing::endpoint("slack", {"another"}), signed_request(k_body, good, "1531420618"), k_ts));
  }
}

TEST_CASE("slack: url_verification is verified, then answered with the challenge", "[webhooks][slack]") {
  const std::string body =
      R"({"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"})";
  REQUIRE_OK(testing::run(slack_endpoint(), sign(body, "application/json"), k_ts), v);
  CHECK(v->outcome == Outcome::handshake);
  CHECK(v->status == 200);
  CHECK(v->reply_content_type == "application/json");
  CHECK(v->reply_body == R"({"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})");
  CHECK(v->event_key.empty());
  // Unsigned: rejected before any reply.
  auto unsigned_req = testing::post(body, {{"content-type", "application/json"}});
  REQUIRE_UNAUTHORIZED(testing::run(slack_endpoint(), unsigned_req, k_ts));
}

TEST_CASE("slack: ssl_check → 200 empty, nothing processed", "[webhooks][slack]") {
  REQUIRE_OK(testing::run(slack_endpoint(), sign("ssl_check=1&token=x", "application/x-www-form-urlencoded"), k_ts), v);
  CHECK(v->outcome == Outcome::handshake);
  CHECK(v->status == 200);
  CHECK(v->reply_body.empty());
}

TEST_CASE("slack: event_callback key and malformed bodies", "[webhooks][slack]") {
  const std::string body =
      R"({"type":"event_callback","api_app_id":"A0123","event_id":"Ev123ABC456","event":{"type":"app_mention"}})";
  REQUIRE_OK(testing::run(slack_endpoint(), sign(body, "application/json"), k_ts), v);
  CHECK(v->outcome == Outcome::event);
  CHECK(v->event_key == "slack:A0123:Ev123ABC456");
  CHECK(v->event_type == "app_mention");

  auto no_id = testing::run(slack_endpoint(),
                            sign(R"({"type":"event_callback","api_app_id":"A0123"})", "application/json"), k_ts);
  REQUIRE_FALSE(no_id);
  CHECK(no_id.error().code == ErrorCode::bad_request);
  auto garbage = testing::run(slack_endpoint(), sign("{not json", "application/json"), k_ts);
  REQUIRE_FALSE(garbage);
  CHECK(garbage.error().code == ErrorCode::bad_request);

  REQUIRE_OK(testing::run(slack_endpoint(),
                          sign(R"({"type":"app_rate_limited","api_app_id":"A0123"})", "application/json"), k_ts),
             rl);
  CHECK(rl->outcome == Outcome::ignored);
}

TEST_CASE("slack: interactivity payload keyed by trigger_id", "[webhooks][slack]") {
  const std::string payload = R"({"type":"block_actions","api_app_id":"A0123","trigger_id":"111.222.abc"})";
  const std::string body = http::form_encode({{"payload", payload}});
  REQUIRE_OK(testing::run(slack_endpoint(), sign(body, "application/x-www-form-urlencoded"), k_ts), v);
  CHECK(v->event_key == "slack:A0123:111.222.abc");
  CHECK(v->event_type == "block_actions");
}

TEST_CASE("slack: only POST", "[webhooks][slack]") {
  auto req = signed_request(k_body, "v0=" + std::string(k_hex), "1531420618");
  req.method = "GET";
  auto r = testing::run(slack_endpoint(), req, k_ts);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::method_not_allowed);
}

// WhatsApp / Meta (PROVIDERS §4): GET handshake (Meta's docs example), the regression POST vector,
// GitHub's official vector for the shared sha256= scheme, per-item keys, tampered variants.
#include "webhook_test_util.hpp"

using namespace alumia;
using namespace alumia::webhooks;

namespace {

constexpr std::string_view k_body =
    R"({"object":"whatsapp_business_account","entry":[{"id":"0","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"16505551111","phone_number_id":"123456123"},"contacts":[{"profile":{"name":"test user name"},"wa_id":"16315551181"}],"messages":[{"from":"16315551181","id":"ABGGFlA5Fpa","timestamp":"1504902988","type":"text","text":{"body":"this is a text message"}}]}}]}]})";
constexpr std::string_view k_sig = "sha256=f8586d9ffbea92dce2f45cbdfaad128ad16b57260fa5cbff43d7ba5fd27c74a7";

EndpointConfig meta_endpoint() {
  auto ep = testing::endpoint("whatsapp", {"test_app_secret"});
  ep.verify_token = "meatyhamhock";
  return ep;
}

http::Request get(std::multimap<std::string, std::string> query) {
  http::Request req;
  req.method = "GET";
  req.path = "/hook";
  req.target = "/hook?...";
  req.query = std::move(query);
  return req;
}

http::Request signed_post(const std::string& body, const std::string& secret = "test_app_secret") {
  return testing::post(body, {{"content-type", "application/json"},
                              {"x-hub-signature-256", "sha256=" + testing::hex_hmac_sha256(secret, body)}});
}

}  // namespace

TEST_CASE("whatsapp: GET subscription handshake echoes the challenge", "[webhooks][whatsapp]") {
  REQUIRE_OK(
      testing::run(
          meta_endpoint(),
          get({{"hub.mode", "subscribe"}, {"hub.challenge", "1158201444"}, {"hub.verify_token", "meatyhamhock"}}), 0),
      v);
  CHECK(v->outcome == Outcome::handshake);
  CHECK(v->status == 200);
  CHECK(v->reply_body == "1158201444");
  CHECK(v->reply_content_type == "text/plain");
  CHECK(v->event_key.empty());
  // Echoed unchanged, even when not an integer.
  REQUIRE_OK(
      testing::run(meta_endpoint(),
                   get({{"hub.mode", "subscribe"}, {"hub.challenge", "abc 123"}, {"hub.verify_token", "meatyhamhock"}}),
                   0),
      w);
  CHECK(w->reply_body == "abc 123");
}

TEST_CASE("whatsapp: GET handshake failures → 401", "[webhooks][whatsapp]") {
  const auto ep = meta_endpoint();
  REQUIRE_UNAUTHORIZED(testing::run(
      ep, get({{"hub.mode", "subscribe"}, {"hub.challenge", "1"}, {"hub.verify_token", "meatyhamhoc"}}), 0));
  REQUIRE_UNAUTHORIZED(testing::run(
      ep, get({{"hub.mode", "subscribe"}, {"hub.challenge", "1"}, {"hub.verify_token", "meatyhamhockk"}}), 0));
  REQUIRE_UNAUTHORIZED(testing::run(
      ep, get({{"hub.mode", "unsubscribe"}, {"hub.challenge", "1"}, {"hub.verify_token", "meatyhamhock"}}), 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep, get({{"hub.challenge", "1"}, {"hub.verify_token", "meatyhamhock"}}), 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep, get({{"hub.mode", "subscribe"}, {"hub.challenge", "1"}}), 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep,
                                    get({{"hub.mode", "subscribe"},
                                         {"hub.challenge", "1"},
                                         {"hub.verify_token", "x"},
                                         {"hub.verify_token", "meatyhamhock"}}),
                                    0));
  auto no_token = meta_endpoint();
  no_token.verify_token.clear();
  REQUIRE_UNAUTHORIZED(
      testing::run(no_token, get({{"hub.mode", "subscribe"}, {"hub.challenge", "1"}, {"hub.verify_token", ""}}), 0));
  // The App Secret is not the verify token.
  REQUIRE_UNAUTHORIZED(testing::run(
      ep, get({{"hub.mode", "subscribe"}, {"hub.challenge", "1"}, {"hub.verify_token", "test_app_secret"}}), 0));
}

TEST_CASE("whatsapp: regression POST vector", "[webhooks][whatsapp]") {
  REQUIRE(k_body.size() == 421);
  CHECK(encoding::hex_encode(crypto::sha256(k_body)) ==
        "b05881b2d2fab7cd53b50fb9f48495ddffce382a5b06ec3a7d8be0a710a54017");
  auto req = testing::post(std::string(k_body),
                           {{"content-type", "application/json"}, {"x-hub-signature-256", std::string(k_sig)}});
  REQUIRE_OK(testing::run(meta_endpoint(), req, 0), v);
  CHECK(v->outcome == Outcome::event);
  CHECK(v->event_key == "whatsapp:msg:ABGGFlA5Fpa");
  CHECK(v->item_keys == std::vector<std::string>{"whatsapp:msg:ABGGFlA5Fpa"});
  CHECK(v->event_type == "messages");
  CHECK(v->status == 200);
}

TEST_CASE("whatsapp: GitHub's official vector checks the shared sha256= scheme", "[webhooks][whatsapp]") {
  auto ep = testing::endpoint("whatsapp", {"It's a Secret to Everybody"});
  auto req = testing::post(
      "Hello, World!",
      {{"x-hub-signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}});
  // The signature verifies; the body is not JSON, so the verified request is malformed (400, not 401).
  auto r = testing::run(ep, req, 0);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::bad_request);
}

TEST_CASE("whatsapp: tampered POST → 401", "[webhooks][whatsapp]") {
  const auto ep = meta_endpoint();
  const std::string body(k_body);
  const std::string hex(k_sig.substr(7));
  auto with = [&](const std::string& b, const std::string& sig) {
    return testing::post(b, {{"x-hub-signature-256", sig}});
  };
  REQUIRE_UNAUTHORIZED(testing::run(ep, with(body, "sha256=" + testing::flip_hex(hex, 63)), 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep, with(body, hex), 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep, with(body, "sha1=" + hex), 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep, with(body, "SHA256=" + hex), 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep, with(body, "sha256=" + hex.substr(0, 40)), 0));
  // Re-serialised JSON (unicode or spacing changed) is not the signed bytes.
  std::string respaced = body;
  respaced.insert(1, " ");
  REQUIRE_UNAUTHORIZED(testing::run(ep, with(respaced, std::string(k_sig)), 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep, testing::post(body, {}), 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep, testing::post(body, {{"x-hub-signature", "sha1=00"}}), 0));
  auto dup = with(body, std::string(k_sig));
  dup.headers.emplace_back("x-hub-signature-256", std::string(k_sig));
  REQUIRE_UNAUTHORIZED(testing::run(ep, dup, 0));
}

TEST_CASE("whatsapp: one key per message and status in a batch", "[webhooks][whatsapp]") {
  const std::string body =
      R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":[{"id":"wamid.A"},{"id":"wamid.B"}],"statuses":[{"id":"wamid.C","status":"delivered"},{"id":"wamid.C","status":"read"}]}}]},{"id":"2","changes":[{"field":"messages","value":{"messages":[{"id":"wamid.D"}]}}]}]})";
  REQUIRE_OK(testing::run(meta_endpoint(), signed_post(body), 0), v);
  CHECK(v->item_keys == std::vector<std::string>{"whatsapp:msg:wamid.A", "whatsapp:msg:wamid.B",
                                                 "whatsapp:status:wamid.C:delivered", "whatsapp:status:wamid.C:read",
                                                 "whatsapp:msg:wamid.D"});
  CHECK(v->event_key == "whatsapp:msg:wamid.A");

  const std::string other =
      R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"account_update","value":{}}]}]})";
  REQUIRE_OK(testing::run(meta_endpoint(), signed_post(other), 0), o);
  CHECK(o->event_key == "whatsapp:body:" + encoding::hex_encode(crypto::sha256(other)));

  auto bad = testing::run(meta_endpoint(), signed_post("[1,"), 0);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == ErrorCode::bad_request);
}

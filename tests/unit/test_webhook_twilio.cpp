// Twilio (PROVIDERS §5): the twilio-python official vectors with their port variants, repeated
// params, the JSON bodySHA256 variant, the docs example, the HMAC-SHA256 SharedKey scheme, URL
// rebuilding, tampered variants and event keys.
#include "webhook_test_util.hpp"

using namespace alumia;
using namespace alumia::webhooks;

namespace {

const std::string k_url = "https://mycompany.com/myapp.php?foo=1&bar=2";

std::string form_body(const std::string& from = "+14158675309") {
  // http::form_encode sends '+' as %2B, as PROVIDERS §5 pitfalls require.
  return http::form_encode(
      {{"CallSid", "CA1234567890ABCDE"}, {"Caller", from}, {"Digits", "1234"}, {"From", from}, {"To", "+18005551212"}});
}

EndpointConfig twilio_endpoint() { return testing::endpoint("twilio", {"12345"}); }

http::Request request(std::string body, std::string signature, std::string target = "/myapp.php?foo=1&bar=2") {
  return testing::post(
      std::move(body),
      {{"content-type", "application/x-www-form-urlencoded"}, {"x-twilio-signature", std::move(signature)}},
      std::move(target));
}

// The official vector has no AccountSid, so a verified request stops at the event key (400);
// anything else than 401 proves the signature passed.
void check_verified(const Result<Verdict>& r) {
  if (r) return;
  INFO(r.error().message);
  CHECK(r.error().code == ErrorCode::bad_request);
  CHECK(r.error().message.find("AccountSid") != std::string::npos);
}

}  // namespace

TEST_CASE("twilio: string to sign of the official vector", "[webhooks][twilio]") {
  const std::string text =
      "https://mycompany.com/"
      "myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675309Digits1234From+14158675309To+18005551212";
  CHECK(encoding::base64_encode(crypto::hmac_sha1("12345", text)) == "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
  CHECK(encoding::base64_encode(crypto::hmac_sha256("12345", text)) == "033hgUJA9M/hXIZsYjwkerEP/DBm35nEri5FhCYjA5s=");
}

TEST_CASE("twilio: official vectors with port variants", "[webhooks][twilio]") {
  struct Row {
    std::string url;
    std::string signature;
  };
  const std::vector<Row> rows{
      {"https://mycompany.com/myapp.php?foo=1&bar=2", "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
      {"https://mycompany.com:1234/myapp.php?foo=1&bar=2", "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
      {"https://mycompany.com/myapp.php?foo=1&bar=2", "kvajT1Ptam85bY51eRf/AJRuM3w="},
      {"http://mycompany.com/myapp.php?foo=1&bar=2", "0ZXoZLH/DfblKGATFgpif+LLRf4="},
      {"http://mycompany.com:1234/myapp.php?foo=1&bar=2", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="},
  };
  for (const auto& row : rows) {
    INFO(row.url << " " << row.signature);
    check_verified(testing::run(twilio_endpoint(), request(form_body(), row.signature), 0, nullptr, row.url));
  }
  // A port the signer never used does not match.
  REQUIRE_UNAUTHORIZED(testing::run(twilio_endpoint(), request(form_body(), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="), 0, nullptr,
                                    "http://mycompany.com:4321/myapp.php?foo=1&bar=2"));
  // The fragment is never signed.
  check_verified(testing::run(twilio_endpoint(), request(form_body(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="), 0, nullptr,
                              k_url + "#rc=2&rp=all"));
}

TEST_CASE("twilio: repeated params are sorted by name then value", "[webhooks][twilio]") {
  check_verified(testing::run(
      twilio_endpoint(), request("Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234", "IK+Dwps556ElfBT0I3Rgjkr1wJU="),
      0, nullptr, k_url));
}

TEST_CASE("twilio: JSON body signed through bodySHA256", "[webhooks][twilio]") {
  const std::string body = R"({"property": "value", "boolean": true})";
  REQUIRE(body.size() == 38);
  const std::string hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
  CHECK(encoding::hex_encode(crypto::sha256(body)) == hash);
  const std::string url = k_url + "&bodySHA256=" + hash;
  auto req = testing::post(
      body, {{"content-type", "application/json"}, {"x-twilio-signature", "a9nBmqA0ju/hNViExpshrM61xv4="}});
  REQUIRE_OK(testing::run(twilio_endpoint(), req, 0, nullptr, url), v);
  CHECK(v->outcome == Outcome::event);
  CHECK(v->event_key == "twilio:body:" + hash);
  // Body changed: the hash check fails even though the URL signature is intact.
  auto changed = req;
  changed.body = R"({"property": "value", "boolean": false})";
  REQUIRE_UNAUTHORIZED(testing::run(twilio_endpoint(), changed, 0, nullptr, url));
  // Hash changed in the URL: the URL signature fails.
  REQUIRE_UNAUTHORIZED(testing::run(twilio_endpoint(), req, 0, nullptr, k_url + "&bodySHA256=" + std::string(64, '0')));
}

TEST_CASE("twilio: security docs example (secondary)", "[webhooks][twilio]") {
  check_verified(testing::run(twilio_endpoint(), request(form_body("+12349013030"), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="), 0,
                              nullptr, k_url));
}

TEST_CASE("twilio: HMAC-SHA256 with a SharedKey named by the settings header", "[webhooks][twilio]") {
  auto ep = twilio_endpoint();
  ep.shared_keys = {{"KS1", "12345"}};
  auto req = request(form_body(), "033hgUJA9M/hXIZsYjwkerEP/DBm35nEri5FhCYjA5s=");
  req.headers.emplace_back("x-twilio-webhooks-signature-settings", "key=KS1,algorithm=HMAC_SHA256");
  check_verified(testing::run(ep, req, 0, nullptr, k_url));

  auto unknown = req;
  unknown.headers.back().second = "key=KS2,algorithm=HMAC_SHA256";
  REQUIRE_UNAUTHORIZED(testing::run(ep, unknown, 0, nullptr, k_url));
  auto bad_alg = req;
  bad_alg.headers.back().second = "key=KS1,algorithm=HMAC_SHA1";
  REQUIRE_UNAUTHORIZED(testing::run(ep, bad_alg, 0, nullptr, k_url));
  auto dup = req;
  dup.headers.emplace_back("x-twilio-webhooks-signature-settings", "key=KS1,algorithm=HMAC_SHA256");
  REQUIRE_UNAUTHORIZED(testing::run(ep, dup, 0, nullptr, k_url));
  // The SHA-1 signature is not accepted once the settings header asks for SHA-256.
  auto sha1 = request(form_body(), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
  sha1.headers.emplace_back("x-twilio-webhooks-signature-settings", "key=KS1,algorithm=HMAC_SHA256");
  REQUIRE_UNAUTHORIZED(testing::run(ep, sha1, 0, nullptr, k_url));
}

TEST_CASE("twilio: tampered variants → 401", "[webhooks][twilio]") {
  const auto ep = twilio_endpoint();
  // A bare '+' decodes to a space, so the signed values differ.
  std::string raw_plus = form_body();
  for (std::size_t p; (p = raw_plus.find("%2B")) != std::string::npos;) raw_plus.replace(p, 3, "+");
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(raw_plus, "RSOYDt4T1cUTdK1PDd93/VVr8B8="), 0, nullptr, k_url));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(form_body(), "RSOYDt4T1cUTdK1PDd93/VVr8B9="), 0, nullptr, k_url));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(form_body(), "RSOYDt4T1cUTdK1PDd93/VVr8B8"), 0, nullptr, k_url));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(form_body(), ""), 0, nullptr, k_url));
  REQUIRE_UNAUTHORIZED(testing::run(testing::endpoint("twilio", {"54321"}),
                                    request(form_body(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="), 0, nullptr, k_url));
  // Query parameters are part of the URL, never merged into the sorted list.
  REQUIRE_UNAUTHORIZED(
      testing::run(ep, request(form_body() + "&foo=1&bar=2", "RSOYDt4T1cUTdK1PDd93/VVr8B8="), 0, nullptr, k_url));
  // Another path or host.
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(form_body(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="), 0, nullptr,
                                    "https://mycompany.com/other.php?foo=1&bar=2"));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(form_body(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="), 0, nullptr,
                                    "https://mycompany.com/myapp.php?bar=2&foo=1"));
  auto missing = testing::post(form_body(), {});
  REQUIRE_UNAUTHORIZED(testing::run(ep, missing, 0, nullptr, k_url));
  auto dup = request(form_body(), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
  dup.headers.emplace_back("x-twilio-signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
  REQUIRE_UNAUTHORIZED(testing::run(ep, dup, 0, nullptr, k_url));
}

TEST_CASE("twilio: URL rebuilt from X-Forwarded-Proto and Host without a public URL", "[webhooks][twilio]") {
  auto req = request(form_body(), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
  req.headers.emplace_back("host", "mycompany.com");
  req.headers.emplace_back("x-forwarded-proto", "https");
  check_verified(testing::run(twilio_endpoint(), req, 0));
  auto wrong_proto = req;
  wrong_proto.headers.back().second = "http";
  REQUIRE_UNAUTHORIZED(testing::run(twilio_endpoint(), wrong_proto, 0));
  auto no_host = request(form_body(), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
  REQUIRE_UNAUTHORIZED(testing::run(twilio_endpoint(), no_host, 0));
}

TEST_CASE("twilio: event keys and TwiML reply", "[webhooks][twilio]") {
  auto signed_req = [](const std::vector<std::pair<std::string, std::string>>& fields) {
    auto sorted = fields;
    std::sort(sorted.begin(), sorted.end());
    std::string text = k_url;
    for (const auto& [k, v] : sorted) text += k + v;
    return request(http::form_encode(fields), encoding::base64_encode(crypto::hmac_sha1("12345", text)));
  };
  REQUIRE_OK(testing::run(twilio_endpoint(), signed_req({{"AccountSid", "AC1"}, {"MessageSid", "SM1"}, {"Body", "hi"}}),
                          0, nullptr, k_url),
             sms);
  CHECK(sms->event_key == "twilio:AC1:SM1");
  CHECK(sms->event_type == "message");
  CHECK(sms->status == 200);
  CHECK(sms->reply_body == "<Response></Response>");
  CHECK(sms->reply_content_type == "text/xml");

  REQUIRE_OK(testing::run(twilio_endpoint(),
                          signed_req({{"AccountSid", "AC1"}, {"MessageSid", "SM1"}, {"MessageStatus", "delivered"}}), 0,
                          nullptr, k_url),
             status);
  CHECK(status->event_key == "twilio:AC1:SM1:delivered");

  REQUIRE_OK(
      testing::run(
          twilio_endpoint(),
          signed_req({{"AccountSid", "AC1"}, {"CallSid", "CA1"}, {"CallStatus", "completed"}, {"SequenceNumber", "3"}}),
          0, nullptr, k_url),
      call);
  CHECK(call->event_key == "twilio:AC1:CA1:completed:3");
  CHECK(call->event_type == "call");
}

TEST_CASE("twilio: GET webhooks sign the URL only", "[webhooks][twilio]") {
  const std::string url = "https://mycompany.com/myapp.php?AccountSid=AC1&CallSid=CA9&CallStatus=ringing";
  http::Request req;
  req.method = "GET";
  req.target = "/myapp.php?AccountSid=AC1&CallSid=CA9&CallStatus=ringing";
  req.query = {{"AccountSid", "AC1"}, {"CallSid", "CA9"}, {"CallStatus", "ringing"}};
  req.headers = {{"x-twilio-signature", encoding::base64_encode(crypto::hmac_sha1("12345", url))}};
  REQUIRE_OK(testing::run(twilio_endpoint(), req, 0, nullptr, url), v);
  CHECK(v->event_key == "twilio:AC1:CA9:ringing");
}

// The relay's POST body is written field by field (relay_message.cpp) and an event's body is judged
// text by a UTF-8 walk (event_content.cpp). Both once went through nlohmann::json (a document object
// dumped; a throw-away escape of the body): these tests hold the fast versions to what that gave.
#include <alumia/webhooks/event_content.hpp>
#include <alumia/webhooks/relay_message.hpp>

#include <alumia/base/clock.hpp>
#include <alumia/base/encoding.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <random>
#include <string>
#include <vector>

using namespace alumia;
using nlohmann::json;

namespace {

// What nlohmann's serializer accepts as a JSON string (it throws type_error 316 on invalid UTF-8).
bool serializer_accepts(const std::string& text) {
  try {
    (void)json(text).dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

// The relay body as it was built before: a json object (sorted keys) dumped with invalid UTF-8 replaced.
json reference_document(const WebhookEvent& e) {
  const bool text = serializer_accepts(e.body);
  json doc{{"id", e.id},
           {"endpointId", e.endpoint_id},
           {"provider", to_string(e.provider)},
           {"eventKey", e.event_key},
           {"eventType", e.event_type},
           {"receivedAt", format_time_ms(e.received_at)},
           {"headers", event_headers(e)},
           {"body", text ? e.body : encoding::base64_encode(e.body)},
           {"bodyEncoding", text ? "utf-8" : "base64"}};
  if (text) {
    json parsed = json::parse(e.body, nullptr, false);
    if (!parsed.is_discarded()) doc["payload"] = std::move(parsed);
  }
  return doc;
}

WebhookEvent event_with_body(std::string body) {
  WebhookEvent e;
  e.id = "0d5c3f0e-3b7e-4f57-9a53-1b0c7f6a4d21";
  e.endpoint_id = "ep\"1\\";
  e.provider = Provider::github;
  e.event_key = "github:d\u00e91";
  e.event_type = "push";
  e.received_at = 1'700'000'000'123;
  e.headers = R"([["X-GitHub-Event","push"],["Accept","a"],["Accept","b\"\n"],["X-Hook","\u00e9\u2028"]])";
  e.body = std::move(body);
  return e;
}

}  // namespace

TEST_CASE("body_is_text: exactly the UTF-8 that the JSON serializer accepts", "[webhooks][relay]") {
  const std::vector<std::string> cases = {
      "",
      "plain ascii {\"a\":1}",
      std::string("nul \0 inside", 12),
      "\xc3\xa9",                    // é
      "\xe2\x82\xac",                // €
      "\xf0\x9f\x98\x80",            // U+1F600
      "\xf4\x8f\xbf\xbf",            // U+10FFFF
      "\xf4\x90\x80\x80",            // above U+10FFFF
      "\xc0\xaf",                    // overlong '/'
      "\xc1\xbf",                    // overlong
      "\xe0\x80\xaf",                // overlong, 3 bytes
      "\xf0\x80\x80\xaf",            // overlong, 4 bytes
      "\xed\xa0\x80",                // a surrogate (U+D800)
      "\xed\x9f\xbf",                // U+D7FF
      "\xee\x80\x80",                // U+E000
      "\x80",                        // a lone continuation byte
      "abc\xc3",                     // cut short at the end
      "\xe2\x82",                    // cut short
      "\xe2\x28\xa1",                // a bad continuation
      "\xf5\x80\x80\x80",            // F5 lead
      "\xff\xfe\x00\x01",            // binary
      "\xef\xbb\xbf{\"bom\":true}",  // a byte order mark is UTF-8
  };
  for (const auto& c : cases) {
    CAPTURE(encoding::hex_encode(c));
    CHECK(body_is_text(c) == serializer_accepts(c));
  }
  // Random bytes, biased towards UTF-8's lead and continuation bytes so both answers come up often.
  std::mt19937 rng(20261207);
  const std::string alphabet = "a{\"\x7f\x80\x8f\x9f\xa0\xbf\xc0\xc2\xdf\xe0\xed\xef\xf0\xf4\xf5\xff";
  std::size_t text = 0, binary = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 9, '\0');
    for (auto& ch : s) ch = alphabet[rng() % alphabet.size()];
    const bool expected = serializer_accepts(s);
    (expected ? text : binary) += 1;
    CAPTURE(encoding::hex_encode(s));
    REQUIRE(body_is_text(s) == expected);
  }
  CHECK(text > 1000);
  CHECK(binary > 1000);
}

TEST_CASE("relay_body: the same document as the json object it replaced, the payload as sent", "[webhooks][relay]") {
  const std::vector<std::string> bodies = {
      R"({"ref":"main","n":[1,2.5,-3e2,true,null],"o":{"z":"\u00e9","a":"x\"y\\"}})",
      "  {\n  \"ref\" : \"main\" ,\n  \"nested\": {\"k\": [ ]}\n}\n",  // whitespace around and inside
      "\xef\xbb\xbf{\"bom\":true}",                                    // a byte order mark before JSON
      "\"just a string\"",
      "42",
      "not json at all",
      "{\"cut\":",                              // text, not JSON: no payload
      std::string("\xff\xfe\x00\x01", 4),       // binary: base64, no payload
      "caf\xc3\xa9 \xe2\x80\xa8 ctl \x01\x1f",  // text with control characters and U+2028
      "",
  };
  for (const auto& b : bodies) {
    const WebhookEvent e = event_with_body(b);
    CAPTURE(encoding::hex_encode(b));
    const std::string body = relay_body(e);
    const json doc = json::parse(body);  // a valid document whatever the body
    CHECK(doc == reference_document(e));
  }
  // A body already in the serializer's form is the old output byte for byte (the fields in the same
  // order, the same escapes).
  const WebhookEvent compact = event_with_body("{\"a\":[1,\"\u00e9\\n\"],\"b\":null}");
  CHECK(relay_body(compact) == reference_document(compact).dump(-1, ' ', false, json::error_handler_t::replace));
  // The payload is the body as sent (not re-serialized): its text appears in the document.
  const WebhookEvent spaced = event_with_body("{ \"ref\" : \"main\" }");
  CHECK(relay_body(spaced).find(",\"payload\":{ \"ref\" : \"main\" },") != std::string::npos);
}

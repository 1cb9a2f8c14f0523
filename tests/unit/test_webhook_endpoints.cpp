// Webhook endpoint create and update validation (SPEC §3, §7) through dispatch(), without sockets:
// wrong types and unknown fields are BAD_REQUEST, well-typed values out of range VALIDATION_ERROR,
// and a refused request changes nothing.
#include "daemon_under_test.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using alumia::test::DaemonUnderTest;
using alumia::test::error_code_of;
using nlohmann::json;

namespace {

struct Case {
  const char* body;
  int status;
  const char* code;
};

std::size_t endpoint_count(DaemonUnderTest& d) {
  auto r = d.send("GET", "/api/v1/webhook-endpoints?limit=200");
  REQUIRE(r.status == 200);
  return json::parse(r.body)["data"]["items"].size();
}

}  // namespace

TEST_CASE("webhook endpoints: create refuses what it cannot use, and stores nothing", "[webhooks][endpoints]") {
  DaemonUnderTest d;
  // clang-format off
  const std::vector<Case> refused = {
      {"", 400, "BAD_REQUEST"},                                              // no body: no provider
      {"[]", 400, "BAD_REQUEST"},
      {"{not json", 400, "BAD_REQUEST"},
      {R"({})", 400, "BAD_REQUEST"},
      {R"({"provider":"myspace"})", 400, "BAD_REQUEST"},
      {R"({"provider":5})", 400, "BAD_REQUEST"},
      {R"({"provider":"github","label":5})", 400, "BAD_REQUEST"},
      {R"({"provider":"github","relayTo":5})", 400, "BAD_REQUEST"},
      {R"({"provider":"github","maxBodyBytes":"1024"})", 400, "BAD_REQUEST"},
      {R"({"provider":"github","maxBodyBytes":1.5})", 400, "BAD_REQUEST"},
      {R"({"provider":"stripe"})", 400, "BAD_REQUEST"},                     // Stripe issues its own secret
      {R"({"provider":"github","maxBodyBytes":0})", 422, "VALIDATION_ERROR"},
      {R"({"provider":"github","maxBodyBytes":26214401})", 422, "VALIDATION_ERROR"},
      {R"({"provider":"github","relayTo":"ftp://example.com/x"})", 422, "VALIDATION_ERROR"},
      {R"({"provider":"github","relayTo":"http://example.com/plain"})", 422, "VALIDATION_ERROR"},
      {R"({"provider":"github","label":"a\u0007b"})", 400, "BAD_REQUEST"},       // a control character
      {R"({"provider":"discord","secret":"abcd"})", 422, "VALIDATION_ERROR"},   // not an Ed25519 key
      {R"({"provider":"gmail"})", 422, "VALIDATION_ERROR"},
      {R"({"provider":"gmail","audience":"https://x.example/push","serviceAccountEmail":"a@b.example",)"
       R"("jwksUrl":"http://keys.example.com/certs"})", 422, "VALIDATION_ERROR"},
  };
  // clang-format on
  for (const auto& c : refused) {
    INFO(c.body);
    auto r = d.send("POST", "/api/v1/webhook-endpoints", c.body);
    INFO(r.body);
    CHECK(r.status == c.status);
    CHECK(error_code_of(r) == c.code);
  }
  const std::string long_label(201, 'x');
  auto too_long =
      d.send("POST", "/api/v1/webhook-endpoints", json{{"provider", "github"}, {"label", long_label}}.dump());
  CHECK(too_long.status == 422);
  CHECK(endpoint_count(d) == 0);

  // And what it accepts.
  auto ok = d.send("POST", "/api/v1/webhook-endpoints",
                   json{{"provider", "github"},
                        {"label", std::string(200, 'x')},
                        {"relayTo", "http://127.0.0.1:9/in"},
                        {"maxBodyBytes", 26214400}}
                       .dump());
  INFO(ok.body);
  CHECK(ok.status == 201);
  CHECK(json::parse(ok.body)["data"]["secret"].is_string());  // generated, shown once
  CHECK(endpoint_count(d) == 1);
}

TEST_CASE("webhook endpoints: update takes status, label, relayTo and maxBodyBytes; a refusal changes nothing",
          "[webhooks][endpoints]") {
  DaemonUnderTest d;
  auto created = d.send("POST", "/api/v1/webhook-endpoints",
                        R"({"provider":"github","label":"before","relayTo":"http://127.0.0.1:9/a"})");
  REQUIRE(created.status == 201);
  const std::string id = json::parse(created.body)["data"]["endpoint"]["id"];
  const std::string path = "/api/v1/webhook-endpoints/" + id;
  const json before = json::parse(d.send("GET", path).body)["data"];

  // clang-format off
  const std::vector<Case> refused = {
      {R"({"status":false})", 400, "BAD_REQUEST"},
      {R"({"label":5})", 400, "BAD_REQUEST"},
      {R"({"label":null})", 400, "BAD_REQUEST"},
      {R"({"relayTo":5})", 400, "BAD_REQUEST"},
      {R"({"maxBodyBytes":"1024"})", 400, "BAD_REQUEST"},
      {R"({"status":"disabled","color":"red"})", 400, "BAD_REQUEST"},      // unknown field: nothing applied
      {R"({"provider":"stripe"})", 400, "BAD_REQUEST"},                     // not changeable
      {"[]", 400, "BAD_REQUEST"},
      {"{not json", 400, "BAD_REQUEST"},
      {R"({"status":"paused"})", 422, "VALIDATION_ERROR"},
      {R"({"status":"disabled","relayTo":"ftp://example.com/x"})", 422, "VALIDATION_ERROR"},
      {R"({"maxBodyBytes":0})", 422, "VALIDATION_ERROR"},
      {R"({"maxBodyBytes":26214401})", 422, "VALIDATION_ERROR"},
      {R"({"label":"tab\tin"})", 400, "BAD_REQUEST"},                        // a control character
  };
  // clang-format on
  for (const auto& c : refused) {
    INFO(c.body);
    auto r = d.send("PATCH", path, c.body);
    INFO(r.body);
    CHECK(r.status == c.status);
    CHECK(error_code_of(r) == c.code);
    CHECK(json::parse(d.send("GET", path).body)["data"] == before);
  }

  auto after = d.send("PATCH", path, R"({"relayTo":null,"label":"after","maxBodyBytes":1024,"status":"disabled"})");
  INFO(after.body);
  REQUIRE(after.status == 200);
  const json e = json::parse(after.body)["data"];
  CHECK(e["relayTo"].is_null());
  CHECK(e["label"] == "after");
  CHECK(e["maxBodyBytes"] == 1024);
  CHECK(e["status"] == "disabled");
  CHECK(d.send("PATCH", "/api/v1/webhook-endpoints/not-a-uuid", "{}").status == 400);
  CHECK(d.send("PATCH", "/api/v1/webhook-endpoints/00000000-0000-4000-8000-00000000abcd", "{}").status == 404);
}

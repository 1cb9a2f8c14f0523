// The setup command's wire shapes (daemon/wire.cpp): the body parsed into setup::SetupOptions (an
// unknown member or a wrong type is BAD_REQUEST) and the answer, which never holds the endpoint's secret.
#include "wire.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>

using namespace alumia;
using namespace alumia::daemon;
using nlohmann::json;

TEST_CASE("setup-webhook body: every member, defaults, and refusals", "[wire][setup]") {
  auto empty = parse_setup_options(json::object());
  REQUIRE(empty);
  CHECK_FALSE(empty->base_url);
  CHECK_FALSE(empty->remove);
  CHECK_FALSE(empty->rotate_secret);
  CHECK_FALSE(empty->drop_pending);
  CHECK_FALSE(empty->events);

  auto full = parse_setup_options(json{{"baseUrl", "https://hooks.example.com"},
                                       {"remove", true},
                                       {"rotateSecret", false},
                                       {"dropPending", true},
                                       {"repo", "octo/hello"},
                                       {"org", nullptr},
                                       {"events", {"push", "issues"}}});
  REQUIRE(full);
  CHECK(full->base_url == "https://hooks.example.com");
  CHECK(full->remove);
  CHECK_FALSE(full->rotate_secret);
  CHECK(full->drop_pending);
  CHECK(full->repo == "octo/hello");
  CHECK_FALSE(full->org);  // null is absent
  CHECK(full->events == std::vector<std::string>{"push", "issues"});
  auto no_events = parse_setup_options(json{{"events", json::array()}});
  REQUIRE(no_events);
  CHECK(no_events->events == std::vector<std::string>{});  // given and empty: not the same as absent

  for (const json& bad : {json::array(), json("x"), json{{"nosuch", 1}}, json{{"remove", "true"}}, json{{"baseUrl", 5}},
                          json{{"events", "push"}}, json{{"events", {1}}}, json{{"dropPending", 1}}}) {
    INFO(bad.dump());
    auto r = parse_setup_options(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::bad_request);
  }
  CHECK(parse_setup_options(json{{"nosuch", 1}}).error().message.find("unknown field 'nosuch'") != std::string::npos);
}

TEST_CASE("setup-webhook answer: the endpoint as GET shows it, the report, the relay secret only when created",
          "[wire][setup]") {
  setup::SetupResult r;
  r.connection_id = "c-1";
  r.endpoint.id = "e-1";
  r.endpoint.provider = Provider::telegram;
  r.endpoint.connection_id = "c-1";
  r.receive_url = "https://hooks.example.com/api/v1/connectors/webhooks/telegram/e-1";
  r.report = {{"url", r.receive_url}, {"pendingUpdateCount", 0}};
  const RateLimit limit{1000, 2000};
  const json reused = setup_result_json(r, "http://127.0.0.1:7465/x", limit);
  CHECK(reused == json{{"connectionId", "c-1"},
                       {"endpoint", endpoint_json(r.endpoint, "http://127.0.0.1:7465/x", limit)},
                       {"receiveUrl", r.receive_url},
                       {"endpointCreated", false},
                       {"removed", false},
                       {"provider", r.report}});
  r.endpoint_created = true;
  r.relay_secret = SecretBytes(std::string("whrelay_abc"));
  const json created = setup_result_json(r, r.receive_url, limit);
  CHECK(created["endpointCreated"] == true);
  CHECK(created["relaySecret"] == "whrelay_abc");
  CHECK_FALSE(created.contains("secret"));
}

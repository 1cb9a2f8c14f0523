// The daemon on a PostgreSQL store (issue 17, SPEC §12), end to end: a signed delivery stored once, its
// repeat answered as a duplicate of it, relayed to a target, and all of it still there after a restart
// (nothing of the webhook store lives in the daemon's data directory any more).
#include "http_sink.hpp"
#include "postgres.hpp"
#include "process.hpp"
#include "webhook_helpers.hpp"

#include <httplib.h>

#include <catch2/catch.hpp>

#include <mutex>
#include <vector>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;

TEST_CASE("postgres store: a signed delivery is stored once, relayed, and kept across a restart", "[webhooks][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  auto& server = shared_postgres();
  const std::string uri = server.uri(server.fresh_database());
  std::mutex m;
  std::vector<std::string> relayed;
  HttpSink sink({{"/hook", [&](const httplib::Request& req, httplib::Response& res) {
                    std::lock_guard lock(m);
                    relayed.push_back(req.get_header_value("Alumia-Event-Id"));
                    res.status = 200;
                  }}});
  const auto relayed_ids = [&] {
    std::lock_guard lock(m);
    return relayed;
  };

  TempDir home;
  Daemon::Options opts;
  opts.env["ALUMIA_STORE"] = uri;
  std::string event_id;
  Signer s;
  {
    Daemon d(home.path(), opts);
    CHECK_FALSE(std::filesystem::exists(home.path() / "store.db"));
    json c = create_endpoint(d, {{"provider", "github"}, {"relayTo", sink.url("/hook")}});
    s = make_signer("github", c["secret"].get<std::string>(), c["endpoint"]["id"].get<std::string>());

    auto first = send(d, s, make_delivery(s, 1));
    REQUIRE(first.status == 200);
    CHECK_FALSE(first.json()["data"].contains("duplicate"));
    event_id = first.json()["data"]["eventId"];
    auto again = send(d, s, make_delivery(s, 1));
    REQUIRE(again.status == 200);
    CHECK(again.json()["data"]["duplicate"].get<bool>());
    CHECK(again.json()["data"]["eventId"] == event_id);

    REQUIRE(eventually([&] { return relayed_ids().size() == 1; }, std::chrono::seconds(15)));
    CHECK(relayed_ids()[0] == event_id);
    REQUIRE(eventually(
        [&] {
          auto ev = d.api("GET", "/api/v1/connector-events/" + event_id);
          return ev.status == 200 && ev.json()["data"]["jobState"] == "succeeded";
        },
        std::chrono::seconds(10)));
    CHECK(eventually([&] { return endpoint_of(d, s.endpoint_id)["counts"]["duplicates"] == 1; },
                     std::chrono::seconds(5)));
    CHECK(d.stop() == 0);
  }

  // A restart on the same database: the event, its delivered job and its dedup key are there.
  Daemon d(home.path(), opts);
  auto ev = d.api("GET", "/api/v1/connector-events/" + event_id);
  REQUIRE(ev.status == 200);
  CHECK(ev.json()["data"]["jobState"] == "succeeded");
  auto repeat = send(d, s, make_delivery(s, 1));
  REQUIRE(repeat.status == 200);
  CHECK(repeat.json()["data"]["duplicate"].get<bool>());
  CHECK(repeat.json()["data"]["eventId"] == event_id);
  auto fresh = send(d, s, make_delivery(s, 2));
  REQUIRE(fresh.status == 200);
  CHECK_FALSE(fresh.json()["data"].contains("duplicate"));
  REQUIRE(eventually([&] { return relayed_ids().size() == 2; }, std::chrono::seconds(15)));
  CHECK(relayed_ids()[0] == event_id);  // the first was not delivered again
  auto counts = endpoint_of(d, s.endpoint_id)["counts"];
  CHECK(counts["received"] == 2);
  CHECK(counts["duplicates"] == 2);
  CHECK(d.stop() == 0);
}

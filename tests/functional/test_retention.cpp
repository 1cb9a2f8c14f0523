// Retention (SPEC §9) against the real daemon and CLI: `alumia-connect events prune` counts, then
// removes, the delivered and dead events (never one still waiting), the counters and job counts
// stay, a repeat of a removed delivery is still a duplicate, and the admin view shows the window and
// the store's size; and the daemon's own sweep, with a day shortened by the test hook, drops the
// bodies of delivered events and later their rows, and the dedup keys once their TTL (shortened by the
// test hook dedup-ttl-ms) has passed.
#include "cli_helpers.hpp"
#include "http_sink.hpp"
#include "process.hpp"
#include "webhook_helpers.hpp"

#include <catch2/catch.hpp>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;

namespace {

// The signer of a GitHub endpoint as POST /api/v1/webhook-endpoints answered its creation.
Signer github(const json& created) {
  return make_signer("github", created["secret"].get<std::string>(), created["endpoint"]["id"].get<std::string>());
}

json admin_view(const Daemon& d) {
  auto r = d.api("GET", "/api/v1/admin/connector-events");
  INFO(r.body);
  REQUIRE(r.status == 200);
  return r.json()["data"];
}

json events_of(const Daemon& d) {
  auto r = d.api("GET", "/api/v1/connector-events?limit=200");
  REQUIRE(r.status == 200);
  return r.json()["data"]["items"];
}

}  // namespace

TEST_CASE("retention: events prune through the CLI", "[webhooks][retention]") {
  HttpSink sink = HttpSink::ok_and_fail();
  TempDir dir;
  Daemon d(dir.path(), daemon_options({{"ALUMIA_RELAY_BACKOFF_MS", "50,50"}}));
  const Signer relayed = github(create_endpoint(d, {{"provider", "github"}, {"relayTo", sink.url("/ok")}}));
  const Signer dying = github(create_endpoint(d, {{"provider", "github"}, {"relayTo", sink.url("/fail")}}));
  const Signer waiting = github(create_endpoint(d, {{"provider", "github"}}));  // no target: stays queued
  REQUIRE(send(d, relayed, make_delivery(relayed, 1)).status == 200);
  REQUIRE(send(d, relayed, make_delivery(relayed, 2)).status == 200);
  REQUIRE(send(d, dying, make_delivery(dying, 3)).status == 200);
  REQUIRE(send(d, waiting, make_delivery(waiting, 4)).status == 200);
  REQUIRE(eventually([&] {
    const json v = admin_view(d);
    return v["jobs"]["succeeded"] == 2 && v["jobs"]["dead"] == 1;
  }));

  const json before = admin_view(d);
  CHECK(before["retentionDays"] == 30);
  CHECK(before["storeBytes"].get<int64_t>() > 0);
  auto shown = cli(d, {"admin", "events"});
  REQUIRE(shown.exit_code == 0);
  CHECK(shown.out.find("delivered and dead events keep their bodies 30 days and their rows 90") != std::string::npos);

  // Fresh events are younger than an hour: nothing to do.
  auto young = cli(d, {"events", "prune", "--older-than", "1h", "--json"});
  INFO(young.out << young.err);
  REQUIRE(young.exit_code == 0);
  CHECK(json_out(young)["events"] == 0);

  // A dry run counts the two delivered and the dead one, and changes nothing.
  auto dry = cli(d, {"events", "prune", "--older-than", "0s", "--dry-run"});
  INFO(dry.out << dry.err);
  REQUIRE(dry.exit_code == 0);
  CHECK(dry.out.find("Would remove 3 delivered or dead events") != std::string::npos);
  CHECK(dry.out.find("Nothing was changed") != std::string::npos);
  CHECK(events_of(d).size() == 4);

  auto pruned = cli(d, {"events", "prune", "--older-than", "0s"});
  INFO(pruned.out << pruned.err);
  REQUIRE(pruned.exit_code == 0);
  CHECK(pruned.out.find("Removed 3 delivered or dead events") != std::string::npos);
  CHECK(pruned.out.find("(3 jobs, ") != std::string::npos);

  // Only the waiting event is left; the counters and the job counts are as they were.
  const json left = events_of(d);
  REQUIRE(left.size() == 1);
  CHECK(left[0]["eventKey"] == "github:delivery-4");
  const json after = admin_view(d);
  CHECK(after["jobs"] == before["jobs"]);
  for (const auto& e : after["endpoints"]) {
    INFO(e.dump());
    bool found = false;
    for (const auto& b : before["endpoints"])
      if (b["id"] == e["id"]) {
        CHECK(b["counts"] == e["counts"]);
        CHECK(b["jobs"] == e["jobs"]);
        found = true;
      }
    CHECK(found);
  }
  // A provider's retry of a removed delivery is still a duplicate (dedup keeps its 8 days).
  auto repeat = send(d, relayed, make_delivery(relayed, 1));
  REQUIRE(repeat.status == 200);
  CHECK(repeat.json()["data"]["duplicate"] == true);

  // Refusals: a bad age names the field and the forms it takes; the flag is required.
  auto bad = cli(d, {"events", "prune", "--older-than", "yesterday"});
  CHECK(bad.exit_code != 0);
  CHECK(bad.err.find("olderThan must be an age") != std::string::npos);
  CHECK(cli(d, {"events", "prune"}).exit_code == 2);
  auto bad_body = d.api("POST", "/api/v1/connector-events/prune", R"({"olderThan": 5})");
  CHECK(bad_body.status == 400);
  CHECK(bad_body.json()["error"]["code"] == "BAD_REQUEST");
  CHECK(events_of(d).size() == 1);
  stop_clean(d);
}

TEST_CASE("retention: the daemon's sweep drops bodies, then rows", "[webhooks][retention]") {
  HttpSink sink = HttpSink::ok_and_fail();
  TempDir dir;
  // A day of the window lasts 1 s: bodies go after 1 s, rows after 3 s.
  Daemon d(dir.path(), daemon_options({{"ALUMIA_EVENTS_RETENTION_DAYS", "1"},
                                       {"ALUMIA_RETENTION_DAY_MS", "1000"},
                                       {"ALUMIA_RETENTION_SWEEP_INTERVAL_MS", "100"}}));
  const Signer relayed = github(create_endpoint(d, {{"provider", "github"}, {"relayTo", sink.url("/ok")}}));
  const Signer waiting = github(create_endpoint(d, {{"provider", "github"}}));
  auto sent = send(d, relayed, make_delivery(relayed, 1));
  REQUIRE(sent.status == 200);
  const std::string delivered = sent.json()["data"]["eventId"];
  auto kept = send(d, waiting, make_delivery(waiting, 2));
  REQUIRE(kept.status == 200);
  const std::string queued = kept.json()["data"]["eventId"];

  // The body goes (the row stays, saying when), and a replay is refused.
  REQUIRE(eventually([&] {
    auto e = d.api("GET", "/api/v1/connector-events/" + delivered);
    return e.status == 200 && e.json()["data"]["bodyRemovedAt"].is_string();
  }));
  auto e = d.api("GET", "/api/v1/connector-events/" + delivered).json()["data"];
  CHECK(e["body"] == "");
  auto replay = d.api("POST", "/api/v1/connector-events/" + delivered + "/replay");
  CHECK(replay.status == 409);
  // Then the row.
  REQUIRE(eventually([&] { return d.api("GET", "/api/v1/connector-events/" + delivered).status == 404; }));
  // The event still waiting for a target keeps its body and row whatever its age.
  auto q = d.api("GET", "/api/v1/connector-events/" + queued);
  REQUIRE(q.status == 200);
  CHECK(q.json()["data"]["bodyRemovedAt"].is_null());
  CHECK(q.json()["data"]["body"] != "");
  CHECK(admin_view(d)["jobs"]["succeeded"] == 1);
  stop_clean(d);
}

TEST_CASE("retention: the daemon's sweep drops dedup keys past their TTL (test hook)", "[webhooks][retention]") {
  TempDir dir;
  // Dedup keys live 1 s here (8 days in the product); the sweep runs every 100 ms.
  Daemon d(dir.path(),
           daemon_options({{"ALUMIA_DEDUP_TTL_MS", "1000"}, {"ALUMIA_RETENTION_SWEEP_INTERVAL_MS", "100"}}));
  const Signer endpoint = github(create_endpoint(d, {{"provider", "github"}}));
  const auto delivery = make_delivery(endpoint, 1);
  auto first = send(d, endpoint, delivery);
  REQUIRE(first.status == 200);
  const std::string original = first.json()["data"]["eventId"];
  // Within the TTL a repeat is a duplicate of the original.
  auto repeat = send(d, endpoint, delivery);
  REQUIRE(repeat.status == 200);
  CHECK(repeat.json()["data"]["duplicate"] == true);
  CHECK(repeat.json()["data"]["eventId"] == original);
  // Once the sweep has dropped its key, the same delivery is a new event.
  std::string fresh;
  REQUIRE(eventually([&] {
    auto again = send(d, endpoint, delivery);
    if (again.status != 200 || again.json()["data"]["duplicate"] == true) return false;
    fresh = again.json()["data"]["eventId"];
    return true;
  }));
  CHECK(fresh != original);
  // The sweep logs its pass once the pass is over (after the space is given back), which may be after
  // the store already answers without the key.
  CHECK(eventually([&] { return d.log().find("dedup keys pruned") != std::string::npos; }));
  stop_clean(d);
}

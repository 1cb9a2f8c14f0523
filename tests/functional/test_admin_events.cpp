// The admin view (SPEC §9) against the real daemon and CLI: a scripted mix of signed GitHub
// deliveries — new, a duplicate, a forged one, one relayed to a sink, one dead after the (test-only,
// short) retries, one waiting with no target — then GET /api/v1/admin/connector-events and
// `alumia-connect admin events` (aligned tables, --json, filters, refusals).
#include "cli_helpers.hpp"
#include "http_sink.hpp"
#include "process.hpp"
#include "webhook_helpers.hpp"

#include <httplib.h>
#include <catch2/catch.hpp>

#include <sstream>
#include <thread>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;

namespace {

// The signer of a GitHub endpoint as POST /api/v1/webhook-endpoints answered its creation.
Signer github(const json& created) {
  return make_signer("github", created["secret"].get<std::string>(), created["endpoint"]["id"].get<std::string>());
}

json admin_view(const Daemon& d, const std::string& query = {}) {
  auto r = d.api("GET", "/api/v1/admin/connector-events" + query);
  INFO(r.body);
  REQUIRE(r.status == 200);
  return r.json()["data"];
}

const json& endpoint_in(const json& view, const std::string& id) {
  for (const auto& e : view["endpoints"])
    if (e["id"] == id) return e;
  FAIL("endpoint " << id << " is not in the admin view");
  static const json none;
  return none;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("admin events: the JSON view and the CLI tables after a mix of deliveries", "[webhooks][admin]") {
  HttpSink sink = HttpSink::ok_and_fail();
  TempDir dir;
  // Two retries 50 ms apart: a job whose target keeps failing is dead after three attempts.
  Daemon d(dir.path(), daemon_options({{"ALUMIA_RELAY_BACKOFF_MS", "50,50"}}));

  const json relayed_c =
      create_endpoint(d, {{"provider", "github"}, {"label", "relayed"}, {"relayTo", sink.url("/ok")}});
  const json dying_c = create_endpoint(d, {{"provider", "github"}, {"label", "dying"}, {"relayTo", sink.url("/fail")}});
  const json waiting_c = create_endpoint(d, {{"provider", "github"}, {"label", "waiting"}});  // no target anywhere
  const Signer relayed = github(relayed_c), dying = github(dying_c), waiting = github(waiting_c);

  REQUIRE(send(d, relayed, make_delivery(relayed, 1)).status == 200);
  REQUIRE(send(d, relayed, make_delivery(relayed, 2)).status == 200);
  auto dup = send(d, relayed, make_delivery(relayed, 1));  // a provider's retry of delivery 1
  REQUIRE(dup.status == 200);
  CHECK(dup.json()["data"]["duplicate"] == true);
  CHECK(send(d, relayed, make_delivery(relayed, 3, /*bad=*/true)).status == 401);  // forged
  REQUIRE(send(d, dying, make_delivery(dying, 4)).status == 200);
  REQUIRE(send(d, waiting, make_delivery(waiting, 5)).status == 200);

  // The relay settles: two delivered, one dead; the waiting one stays queued.
  REQUIRE(eventually(
      [&] {
        const json v = admin_view(d);
        return v["jobs"]["succeeded"] == 2 && v["jobs"]["dead"] == 1;
      },
      std::chrono::seconds(20)));

  const json v = admin_view(d);
  INFO(v.dump(2));
  CHECK(v["jobs"] == json{{"queued", 1}, {"running", 0}, {"succeeded", 2}, {"failed", 0}, {"dead", 1}});
  REQUIRE(v["endpoints"].size() == 3);
  CHECK(v["endpoints"][0]["label"] == "waiting");  // newest first

  const json& r = endpoint_in(v, relayed.endpoint_id);
  CHECK(r["provider"] == "github");
  CHECK(r["status"] == "active");
  CHECK(r["counts"]["received"] == 2);
  CHECK(r["counts"]["duplicates"] == 1);
  CHECK(r["counts"]["verificationFailures"] == 1);  // exact at once: the refusal tally is flushed first
  CHECK(r["counts"]["rejected"] == 0);
  CHECK(r["lastError"]["code"] == "UNAUTHORIZED");
  CHECK(r["lastDeliveryAt"].is_string());
  CHECK(r["jobs"]["succeeded"] == 2);
  CHECK(r["oldestQueuedJob"].is_null());

  const json& dead = endpoint_in(v, dying.endpoint_id);
  CHECK(dead["jobs"]["dead"] == 1);
  CHECK(dead["counts"]["received"] == 1);

  const json& w = endpoint_in(v, waiting.endpoint_id);
  CHECK(w["jobs"]["queued"] == 1);
  CHECK(w["oldestQueuedJob"]["endpointId"] == waiting.endpoint_id);
  CHECK(v["oldestQueuedJob"]["endpointId"] == waiting.endpoint_id);
  CHECK(v["oldestQueuedJob"]["ageSeconds"].get<int64_t>() >= 0);

  // The events: four stored (the duplicate and the forged one are not), newest first, paged.
  const json& events = v["events"];
  REQUIRE(events["items"].size() == 4);
  CHECK(events["items"][0]["eventKey"] == "github:delivery-5");
  CHECK(events["items"][0]["jobState"] == "queued");
  CHECK(events["hasMore"] == false);
  const json page1 = admin_view(d, "?limit=3");
  CHECK(page1["events"]["items"].size() == 3);
  CHECK(page1["events"]["hasMore"] == true);
  const json page2 = admin_view(d, "?limit=3&cursor=" + page1["events"]["nextCursor"].get<std::string>());
  REQUIRE(page2["events"]["items"].size() == 1);
  CHECK(page2["events"]["items"][0]["eventKey"] == "github:delivery-1");

  // Filters select the events.
  const json dead_events = admin_view(d, "?state=dead")["events"]["items"];
  REQUIRE(dead_events.size() == 1);
  CHECK(dead_events[0]["eventKey"] == "github:delivery-4");
  CHECK(admin_view(d, "?endpoint=" + relayed.endpoint_id + "&state=succeeded")["events"]["items"].size() == 2);
  CHECK(admin_view(d, "?provider=stripe")["events"]["items"].empty());
  CHECK(admin_view(d, "?provider=github&since=1h")["events"]["items"].size() == 4);

  // Refusals: the envelope names what is wrong; a key without `admin` is FORBIDDEN.
  for (const char* bad : {"?state=stuck", "?since=yesterday", "?limit=500", "?provider=myspace", "?cursor=%%"}) {
    auto refused = d.api("GET", std::string("/api/v1/admin/connector-events") + bad);
    INFO(bad << " -> " << refused.body);
    CHECK(refused.status == 400);
    CHECK(refused.json()["error"]["code"] == "BAD_REQUEST");
  }
  const json webhooks_key =
      d.api("POST", "/api/v1/api-keys", json{{"name", "hooks"}, {"scopes", {"webhooks"}}}.dump()).json()["data"];
  const std::string narrow = webhooks_key["key"];
  CHECK(d.api("GET", "/api/v1/admin/connector-events", {}, narrow).status == 403);

  SECTION("the CLI prints aligned tables") {
    auto out = cli(d, {"admin", "events"});
    INFO(out.out << out.err);
    REQUIRE(out.exit_code == 0);
    const auto lines = lines_of(out.out);
    CHECK(out.out.find("Endpoints\n") != std::string::npos);
    CHECK(out.out.find("relayed") != std::string::npos);
    CHECK(out.out.find("github:delivery-4") != std::string::npos);
    CHECK(out.out.find("UNAUTHORIZED") != std::string::npos);
    // The jobs table: each count under its state's header.
    const auto header =
        std::find_if(lines.begin(), lines.end(), [](const std::string& l) { return l.rfind("QUEUED", 0) == 0; });
    REQUIRE(header != lines.end());
    REQUIRE(header + 1 != lines.end());
    const std::string& row = *(header + 1);
    for (const auto& [name, count] : std::vector<std::pair<std::string, std::string>>{
             {"QUEUED", "1"}, {"RUNNING", "0"}, {"SUCCEEDED", "2"}, {"FAILED", "0"}, {"DEAD", "1"}}) {
      const auto col = header->find(name);
      REQUIRE(col != std::string::npos);
      CHECK(row.substr(col, count.size() + 1) == count + " ");
    }
    const auto oldest_col = header->find("OLDEST QUEUED");
    REQUIRE(row.size() > oldest_col);
    CHECK(row[oldest_col] != ' ');  // the age starts under its header
    CHECK(row.find(v["oldestQueuedJob"]["id"].get<std::string>()) != std::string::npos);
    // The endpoints table: each row's counts under RECEIVED and DUPLICATES.
    const auto ep_header =
        std::find_if(lines.begin(), lines.end(), [](const std::string& l) { return l.rfind("ENDPOINT ", 0) == 0; });
    REQUIRE(ep_header != lines.end());
    const auto relayed_row = std::find_if(lines.begin(), lines.end(),
                                          [&](const std::string& l) { return l.rfind(relayed.endpoint_id, 0) == 0; });
    REQUIRE(relayed_row != lines.end());
    CHECK(relayed_row->substr(ep_header->find("RECEIVED"), 2) == "2 ");
    CHECK(relayed_row->substr(ep_header->find("DUPLICATES"), 2) == "1 ");
    CHECK(relayed_row->substr(ep_header->find("BAD SIGNATURES"), 2) == "1 ");

    // Filters as flags; --json is the data of the API.
    auto dead_only = cli(d, {"admin", "events", "--state", "dead", "--json"});
    const json j = json_out(dead_only);
    REQUIRE(j["events"]["items"].size() == 1);
    CHECK(j["events"]["items"][0]["eventKey"] == "github:delivery-4");
    CHECK(j["jobs"]["succeeded"] == 2);
    auto paged = cli(d, {"admin", "events", "--limit", "1", "--endpoint", relayed.endpoint_id});
    REQUIRE(paged.exit_code == 0);
    CHECK(paged.err.find("--cursor ") != std::string::npos);  // the next page's flag, on stderr

    // Refusals: a usage error before any request, the daemon's error after one.
    CHECK(cli(d, {"admin", "events", "--state", "stuck"}).exit_code == 2);
    auto bad_since = cli(d, {"admin", "events", "--since", "yesterday"});
    CHECK(bad_since.exit_code != 0);
    CHECK(bad_since.err.find("since must be") != std::string::npos);
    auto env = cli_env();
    env["ALUMIA_API_KEY"] = narrow;
    auto forbidden = d.cli({"admin", "events"}, env, {}, std::chrono::seconds(30));
    CHECK(forbidden.exit_code == 4);
  }
  stop_clean(d);
}

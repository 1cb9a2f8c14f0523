// Webhook endpoints, events and jobs through the real CLI against the real daemon (SPEC §7, §10):
// secrets shown once or read from stdin, a disabled endpoint's receiver, events tail --follow,
// replays and retries, with exact exit codes.
#include "cli_helpers.hpp"
#include "process.hpp"
#include "webhook_helpers.hpp"

#include <signal.h>
#include <catch2/catch.hpp>

#include <regex>
#include <sstream>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;

namespace {

namespace fs = std::filesystem;

const std::string k_stripe_secret = "whsec_cliTestSigningSecret0123456789abcdef";
const std::string k_stripe_secret2 = "whsec_cliRotatedSigningSecret9876543210fedc";
const std::string k_unknown_id = "00000000-0000-4000-8000-000000000000";

// The value of a "key:   value" line of human output ("" when absent).
std::string field(const std::string& out, const std::string& key) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    const auto value = line.find_first_not_of(' ', key.size() + 1);
    return value == std::string::npos ? std::string() : line.substr(value);
  }
  return {};
}

bool is_uuid(const std::string& s) {
  return std::regex_match(s, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"));
}

Signer signer(const std::string& provider, const std::string& secret, const std::string& endpoint_id) {
  Signer s;
  s.provider = provider;
  s.secret = secret;
  s.endpoint_id = endpoint_id;
  return s;
}

std::string event_id_of(const HttpReply& r) {
  INFO(r.body);
  REQUIRE(r.status == 200);
  return r.json()["data"]["eventId"].get<std::string>();
}

std::size_t jobs_in(const Daemon& d, const std::string& state) {
  auto r = d.api("GET", "/api/v1/jobs?limit=200&state=" + state);
  REQUIRE(r.status == 200);
  return r.json()["data"]["items"].size();
}

// No secret in plaintext in the store files or the daemon's log.
void check_not_stored(const Daemon& d, const std::string& secret) {
  for (const char* f : {"store.db", "store.db-wal", "store.db-shm"}) {
    const fs::path p = d.home() / f;
    if (fs::exists(p)) CHECK(read_file(p).find(secret) == std::string::npos);
  }
  CHECK(d.log().find(secret) == std::string::npos);
}

}  // namespace

TEST_CASE("webhooks cli: generated secrets are shown once; provider-issued ones come from stdin", "[webhooks-cli]") {
  TempDir home;
  Daemon d(home.path(), daemon_options());

  // github: the daemon generates the secret; it and the relay secret are printed once.
  auto created = cli(d, {"webhooks", "create", "--provider", "github", "--label", "gh"});
  REQUIRE_EXIT(created, 0);
  const std::string id = field(created.out, "id");
  const std::string secret = field(created.out, "secret");
  const std::string relay_secret = field(created.out, "relay secret");
  REQUIRE(is_uuid(id));
  CHECK(std::regex_match(secret, std::regex("[0-9a-f]{64}")));
  CHECK(relay_secret.rfind("whrelay_", 0) == 0);
  CHECK(field(created.out, "receive url") == d.url() + receive_path("github", id));
  CHECK(field(created.out, "status") == "active");
  CHECK(created.err.find("not shown again") != std::string::npos);
  CHECK(send(d, signer("github", secret, id), make_delivery(signer("github", secret, id), 1)).status == 200);

  auto shown = cli(d, {"webhooks", "show", id});
  REQUIRE_EXIT(shown, 0);
  CHECK(field(shown.out, "label") == "gh");
  CHECK(field(shown.out, "received") == "1");
  CHECK(shown.out.find(secret) == std::string::npos);
  CHECK(shown.out.find(relay_secret) == std::string::npos);
  const json shown_json = json_out(cli(d, {"--json", "webhooks", "show", id}));
  CHECK(shown_json["id"] == id);
  CHECK(shown_json["receiveUrl"] == d.url() + receive_path("github", id));
  CHECK(shown_json.dump().find(secret) == std::string::npos);

  // stripe issues its own secret: without stdin the daemon says how to pass it; an empty stdin is a usage error.
  auto missing = cli(d, {"webhooks", "create", "--provider", "stripe"});
  REQUIRE_EXIT(missing, 7);
  CHECK(missing.err.find("--secret-from-stdin") != std::string::npos);
  REQUIRE_EXIT(cli(d, {"webhooks", "create", "--provider", "stripe", "--secret-from-stdin"}), 2);

  auto stripe =
      cli(d, {"--json", "webhooks", "create", "--provider", "stripe", "--label", "billing", "--secret-from-stdin"},
          k_stripe_secret + "\n");
  const json stripe_json = json_out(stripe);
  const std::string stripe_id = stripe_json["endpoint"]["id"];
  CHECK(stripe_json["endpoint"]["provider"] == "stripe");
  CHECK_FALSE(stripe_json.contains("secret"));  // not generated: never echoed back
  CHECK(stripe_json["relaySecret"].is_string());
  CHECK(stripe.out.find(k_stripe_secret) == std::string::npos);
  CHECK(stripe.err.find(k_stripe_secret) == std::string::npos);
  const Signer st = signer("stripe", k_stripe_secret, stripe_id);
  CHECK(send(d, st, make_delivery(st, 1)).status == 200);  // the secret from stdin verifies

  // whatsapp: the app secret and the verify token, one line each.
  auto wa = cli(
      d, {"--json", "webhooks", "create", "--provider", "whatsapp", "--secret-from-stdin", "--verify-token-from-stdin"},
      "meta-app-secret\nmeta-verify-token\n");
  const std::string wa_id = json_out(wa)["endpoint"]["id"];
  auto handshake = http_request("GET", d.url() + receive_path("whatsapp", wa_id) +
                                           "?hub.mode=subscribe&hub.verify_token=meta-verify-token&hub.challenge=42");
  CHECK(handshake.status == 200);
  CHECK(handshake.body == "42");
  const Signer wa_signer = signer("whatsapp", "meta-app-secret", wa_id);
  CHECK(send(d, wa_signer, make_delivery(wa_signer, 1)).status == 200);

  auto ls = cli(d, {"webhooks", "list"});
  REQUIRE_EXIT(ls, 0);
  for (const auto& e : {id, stripe_id, wa_id}) CHECK(ls.out.find(e) != std::string::npos);
  CHECK(ls.out.find("billing") != std::string::npos);
  const json ls_json = json_out(cli(d, {"webhooks", "list", "--json"}));
  CHECK(ls_json["items"].size() == 3);
  CHECK(json_out(cli(d, {"webhooks", "list", "--json", "--limit", "1"}))["hasMore"] == true);

  REQUIRE_EXIT(cli(d, {"webhooks", "create"}), 2);  // --provider is required
  REQUIRE_EXIT(cli(d, {"webhooks", "create", "--provider", "myspace"}), 7);
  REQUIRE_EXIT(cli(d, {"webhooks", "create", "--provider", "github", "--relay-to", "ftp://example.com/x"}), 7);
  REQUIRE_EXIT(cli(d, {"webhooks", "create", "--provider", "github", "--max-body-bytes", "26214401"}), 2);
  REQUIRE_EXIT(cli(d, {"webhooks", "show", "not-a-uuid"}), 7);
  REQUIRE_EXIT(cli(d, {"webhooks", "show", k_unknown_id}), 5);

  check_not_stored(d, k_stripe_secret);
  check_not_stored(d, "meta-app-secret");
  stop_clean(d);
}

TEST_CASE("webhooks cli: a disabled endpoint's receiver answers 404 until it is enabled; update, rotate, delete",
          "[webhooks-cli]") {
  TempDir home;
  Daemon d(home.path(), daemon_options());
  const json created = json_out(cli(d, {"--json", "webhooks", "create", "--provider", "github"}));
  const std::string id = created["endpoint"]["id"];
  Signer s = signer("github", created["secret"], id);
  CHECK(send(d, s, make_delivery(s, 1)).status == 200);  // the endpoint is now in the receiver's cache

  auto disabled = cli(d, {"webhooks", "update", id, "--disable"});
  REQUIRE_EXIT(disabled, 0);
  CHECK(field(disabled.out, "status") == "disabled");
  auto refused = send(d, s, make_delivery(s, 2));
  CHECK(refused.status == 404);
  CHECK(refused.json()["error"]["code"] == "NOT_FOUND");
  CHECK(events_of(d, id).size() == 1);
  CHECK(json_out(cli(d, {"--json", "webhooks", "list"}))["items"][0]["status"] == "disabled");

  const json enabled = json_out(cli(d, {"--json", "webhooks", "update", id, "--enable"}));
  CHECK(enabled["status"] == "active");
  CHECK(send(d, s, make_delivery(s, 3)).status == 200);
  CHECK(events_of(d, id).size() == 2);

  // Label, relay target and body cap; the new cap applies to the next delivery.
  const json changed = json_out(cli(d, {"--json", "webhooks", "update", id, "--label", "renamed", "--relay-to",
                                        "http://127.0.0.1:9/hook", "--max-body-bytes", "16"}));
  CHECK(changed["label"] == "renamed");
  CHECK(changed["relayTo"] == "http://127.0.0.1:9/hook");
  CHECK(changed["maxBodyBytes"] == 16);
  CHECK(send(d, s, make_delivery(s, 4)).status == 413);
  const json cleared =
      json_out(cli(d, {"--json", "webhooks", "update", id, "--clear-relay-to", "--max-body-bytes", "262144"}));
  CHECK(cleared["relayTo"].is_null());
  CHECK(cleared["label"] == "renamed");
  CHECK(send(d, s, make_delivery(s, 5)).status == 200);

  REQUIRE_EXIT(cli(d, {"webhooks", "update", id}), 2);  // nothing to change
  REQUIRE_EXIT(cli(d, {"webhooks", "update", id, "--disable", "--enable"}), 2);
  REQUIRE_EXIT(cli(d, {"webhooks", "update", id, "--relay-to", "https://example.com/", "--clear-relay-to"}), 2);
  REQUIRE_EXIT(cli(d, {"webhooks", "update", id, "--max-body-bytes", "26214401"}), 2);
  REQUIRE_EXIT(cli(d, {"webhooks", "update", id, "--relay-to", "ftp://example.com/x"}), 7);
  REQUIRE_EXIT(cli(d, {"webhooks", "update", k_unknown_id, "--disable"}), 5);

  // rotate-secret: a generated secret is shown once; the old one verifies during the grace period.
  auto rotated = cli(d, {"webhooks", "rotate-secret", id});
  REQUIRE_EXIT(rotated, 0);
  const std::string fresh = field(rotated.out, "secret");
  CHECK(std::regex_match(fresh, std::regex("[0-9a-f]{64}")));
  CHECK(fresh != s.secret);
  CHECK(field(rotated.out, "old secret").rfind("accepted until ", 0) == 0);
  CHECK(rotated.err.find("not shown again") != std::string::npos);
  CHECK(send(d, s, make_delivery(s, 6)).status == 200);
  const json no_grace = json_out(cli(d, {"--json", "webhooks", "rotate-secret", id, "--grace-seconds", "0"}));
  CHECK(no_grace["previousSecretExpiresAt"].is_null());
  CHECK(send(d, s, make_delivery(s, 7)).status == 401);
  s.secret = no_grace["secret"].get<std::string>();
  CHECK(send(d, s, make_delivery(s, 8)).status == 200);

  // A provider-issued secret is rotated from stdin only.
  const std::string stripe_id =
      json_out(cli(d, {"--json", "webhooks", "create", "--provider", "stripe", "--secret-from-stdin"},
                   k_stripe_secret))["endpoint"]["id"];
  auto no_stdin = cli(d, {"webhooks", "rotate-secret", stripe_id});
  REQUIRE_EXIT(no_stdin, 7);
  CHECK(no_stdin.err.find("--secret-from-stdin") != std::string::npos);
  auto stripe_rotated =
      cli(d, {"webhooks", "rotate-secret", stripe_id, "--secret-from-stdin"}, k_stripe_secret2 + "\n");
  REQUIRE_EXIT(stripe_rotated, 0);
  CHECK(stripe_rotated.out.find(k_stripe_secret2) == std::string::npos);
  CHECK(field(stripe_rotated.out, "secret").empty());
  const Signer old_stripe = signer("stripe", k_stripe_secret, stripe_id);
  const Signer new_stripe = signer("stripe", k_stripe_secret2, stripe_id);
  CHECK(send(d, new_stripe, make_delivery(new_stripe, 1)).status == 200);
  CHECK(send(d, old_stripe, make_delivery(old_stripe, 2)).status == 200);  // grace period

  // delete: confirmation needed without a terminal; afterwards the receiver and the API say 404.
  REQUIRE_EXIT(cli(d, {"webhooks", "delete", id}), 2);
  auto deleted = cli(d, {"webhooks", "delete", id, "--yes"});
  REQUIRE_EXIT(deleted, 0);
  CHECK(deleted.out.find(id) != std::string::npos);
  CHECK(send(d, s, make_delivery(s, 9)).status == 404);
  REQUIRE_EXIT(cli(d, {"webhooks", "delete", id, "--yes"}), 5);
  REQUIRE_EXIT(cli(d, {"webhooks", "show", id}), 5);
  REQUIRE_EXIT(cli(d, {"webhooks", "update", id, "--enable"}), 5);
  CHECK(json_out(cli(d, {"--json", "webhooks", "delete", stripe_id, "--yes"}))["deleted"] == true);

  check_not_stored(d, k_stripe_secret2);
  stop_clean(d);
}

TEST_CASE("PATCH /webhook-endpoints/:id: unknown fields and wrong types change nothing", "[webhooks][webhooks-cli]") {
  TempDir home;
  Daemon d(home.path(), daemon_options());
  const json created =
      create_endpoint(d, {{"provider", "github"}, {"label", "before"}, {"relayTo", "http://127.0.0.1:9/a"}});
  const std::string id = created["endpoint"]["id"];
  const auto patch = [&](const std::string& body) { return d.api("PATCH", "/api/v1/webhook-endpoints/" + id, body); };

  // SPEC §3: wrong types and unknown fields are BAD_REQUEST, well-typed values out of range VALIDATION_ERROR.
  for (const std::string bad :
       {R"({"status":false})", R"({"label":5})", R"({"label":null})", R"({"relayTo":5})", R"({"maxBodyBytes":"1024"})",
        R"({"maxBodyBytes":1.5})", R"({"status":"disabled","color":"red"})", R"([])"}) {
    INFO(bad);
    auto r = patch(bad);
    CHECK(r.status == 400);
    CHECK(r.json()["error"]["code"] == "BAD_REQUEST");
  }
  for (const std::string bad :
       {R"({"status":"paused"})", R"({"relayTo":"ftp://example.com/x"})",
        R"({"relayTo":"http://example.com/plain-http"})", R"({"maxBodyBytes":0})", R"({"maxBodyBytes":26214401})"}) {
    INFO(bad);
    auto r = patch(bad);
    CHECK(r.status == 422);
    CHECK(r.json()["error"]["code"] == "VALIDATION_ERROR");
  }
  const json unchanged = endpoint_of(d, id);
  CHECK(unchanged["status"] == "active");
  CHECK(unchanged["label"] == "before");
  CHECK(unchanged["relayTo"] == "http://127.0.0.1:9/a");
  CHECK(unchanged["maxBodyBytes"] == 256 * 1024);

  CHECK(patch("{not json").status == 400);
  CHECK(patch("{}").status == 200);
  auto r = patch(R"({"relayTo":null,"label":"after","maxBodyBytes":26214400,"status":"disabled"})");
  INFO(r.body);
  REQUIRE(r.status == 200);
  const json after = r.json()["data"];
  CHECK(after["relayTo"].is_null());
  CHECK(after["label"] == "after");
  CHECK(after["maxBodyBytes"] == 26214400);
  CHECK(after["status"] == "disabled");
  CHECK(endpoint_of(d, id) == after);

  CHECK(d.api("PATCH", "/api/v1/webhook-endpoints/not-a-uuid", "{}").status == 400);
  CHECK(d.api("PATCH", "/api/v1/webhook-endpoints/" + k_unknown_id, R"({"status":"active"})").status == 404);
  auto k = d.api("POST", "/api/v1/api-keys", R"({"name":"conn only","scopes":["connections"]})");
  REQUIRE(k.status == 201);
  CHECK(d.api("PATCH", "/api/v1/webhook-endpoints/" + id, R"({"status":"active"})", k.json()["data"]["key"]).status ==
        403);
  CHECK(endpoint_of(d, id)["status"] == "disabled");
  REQUIRE(d.api("DELETE", "/api/v1/webhook-endpoints/" + id).status == 200);
  CHECK(patch(R"({"status":"active"})").status == 404);
  stop_clean(d);
}

TEST_CASE("events and jobs cli: list, show, replay, retry one and retry dead in bulk", "[webhooks-cli]") {
  TempDir home;
  // Nothing listens on the relay target: each job fails once, is retried after 50 ms, then is dead.
  Daemon d(home.path(), daemon_options({{"ALUMIA_RELAY_BACKOFF_MS", "50"}}));
  const std::string target = "http://127.0.0.1:" + std::to_string(free_port()) + "/hook";
  const json created = json_out(cli(d, {"--json", "webhooks", "create", "--provider", "github", "--relay-to", target}));
  const std::string id = created["endpoint"]["id"];
  const Signer s = signer("github", created["secret"], id);
  const std::string first = event_id_of(send(d, s, make_delivery(s, 1)));
  const std::string second = event_id_of(send(d, s, make_delivery(s, 2)));
  REQUIRE(eventually([&] { return jobs_in(d, "dead") == 2; }, std::chrono::seconds(15)));

  auto ls = cli(d, {"events", "list"});
  REQUIRE_EXIT(ls, 0);
  CHECK(ls.out.find(first) != std::string::npos);
  CHECK(ls.out.find(second) != std::string::npos);
  CHECK(ls.out.find("github:delivery-1") != std::string::npos);
  CHECK(ls.out.find("push") != std::string::npos);
  const json page = json_out(
      cli(d, {"--json", "events", "list", "--endpoint", id, "--status", "dead", "--since", "1h", "--limit", "1"}));
  REQUIRE(page["items"].size() == 1);
  CHECK(page["items"][0]["id"] == second);  // newest first
  CHECK(page["items"][0]["jobState"] == "dead");
  CHECK(page["hasMore"] == true);
  CHECK(json_out(cli(d, {"--json", "events", "list", "--status", "succeeded"}))["items"].empty());
  REQUIRE_EXIT(cli(d, {"events", "list", "--since", "yesterday"}), 7);
  REQUIRE_EXIT(cli(d, {"events", "list", "--endpoint", "nope"}), 7);
  REQUIRE_EXIT(cli(d, {"events", "list", "--status", "bogus"}), 2);

  const std::string body = make_delivery(s, 1).body;
  auto shown = cli(d, {"events", "show", first});
  REQUIRE_EXIT(shown, 0);
  CHECK(field(shown.out, "event key") == "github:delivery-1");
  CHECK(shown.out.find("x-github-delivery") != std::string::npos);
  CHECK(shown.out.find("x-hub-signature-256") == std::string::npos);
  CHECK(shown.out.find("\nbody:\n" + body + "\n") != std::string::npos);  // UTF-8 bodies as text
  const json shown_json = json_out(cli(d, {"--json", "events", "show", first}));
  CHECK(shown_json["body"] == body);
  CHECK(shown_json["bodyEncoding"] == "utf-8");
  CHECK(shown_json["headers"]["x-github-delivery"] == "delivery-1");
  REQUIRE_EXIT(cli(d, {"events", "show", k_unknown_id}), 5);
  REQUIRE_EXIT(cli(d, {"events", "show", "nope"}), 7);

  const json replayed = json_out(cli(d, {"--json", "events", "replay", first}));
  CHECK(replayed["job"]["eventId"] == first);
  CHECK(replayed["job"]["state"] == "queued");
  REQUIRE(eventually([&] { return jobs_in(d, "dead") == 3; }, std::chrono::seconds(15)));
  auto replayed_human = cli(d, {"events", "replay", second});
  REQUIRE_EXIT(replayed_human, 0);
  CHECK(replayed_human.out.find("will be relayed again") != std::string::npos);
  REQUIRE_EXIT(cli(d, {"events", "replay", k_unknown_id}), 5);
  REQUIRE(eventually([&] { return jobs_in(d, "dead") == 4; }, std::chrono::seconds(15)));

  auto jobs = cli(d, {"jobs", "list", "--state", "dead"});
  REQUIRE_EXIT(jobs, 0);
  CHECK(jobs.out.find(first) != std::string::npos);
  CHECK(jobs.out.find("dead") != std::string::npos);
  const json jobs_json = json_out(cli(d, {"--json", "jobs", "list", "--limit", "2"}));
  CHECK(jobs_json["items"].size() == 2);
  CHECK(jobs_json["hasMore"] == true);
  const std::string job_id = jobs_json["items"][0]["id"];

  const json one = json_out(cli(d, {"--json", "jobs", "retry", job_id}));
  CHECK(one["job"]["id"] == job_id);
  REQUIRE(eventually([&] { return jobs_in(d, "dead") == 4; }, std::chrono::seconds(15)));
  const json bulk = json_out(cli(d, {"--json", "jobs", "retry", "--state", "dead", "--since", "1h"}));
  CHECK(bulk["retried"] == 4);
  REQUIRE(eventually([&] { return jobs_in(d, "dead") == 4; }, std::chrono::seconds(15)));
  auto bulk_human = cli(d, {"jobs", "retry", "--state", "failed"});
  REQUIRE_EXIT(bulk_human, 0);
  CHECK(bulk_human.out.find("Retried") != std::string::npos);

  REQUIRE_EXIT(cli(d, {"jobs", "retry"}), 2);
  REQUIRE_EXIT(cli(d, {"jobs", "retry", job_id, "--state", "dead"}), 2);
  REQUIRE_EXIT(cli(d, {"jobs", "retry", "--since", "1h"}), 2);
  REQUIRE_EXIT(cli(d, {"jobs", "retry", "--state", "queued"}), 2);
  REQUIRE_EXIT(cli(d, {"jobs", "list", "--state", "bogus"}), 2);
  REQUIRE_EXIT(cli(d, {"jobs", "retry", k_unknown_id}), 5);
  stop_clean(d);
}

TEST_CASE("events tail prints the newest events oldest first; --follow prints new ones until SIGINT",
          "[webhooks-cli]") {
  TempDir home;
  Daemon d(home.path(), daemon_options());
  const json created = create_endpoint(d, {{"provider", "github"}});
  const std::string id = created["endpoint"]["id"];
  const Signer s = signer("github", created["secret"], id);
  const json other_created = create_endpoint(d, {{"provider", "github"}});
  const Signer other = signer("github", other_created["secret"], other_created["endpoint"]["id"]);
  const std::string e1 = event_id_of(send(d, s, make_delivery(s, 1)));
  const std::string e2 = event_id_of(send(d, s, make_delivery(s, 2)));

  auto newest = cli(d, {"events", "tail", "-n", "1"});
  REQUIRE_EXIT(newest, 0);
  CHECK(newest.out.find(e2) != std::string::npos);
  CHECK(newest.out.find(e1) == std::string::npos);
  auto both = cli(d, {"events", "tail"});
  REQUIRE_EXIT(both, 0);
  REQUIRE(both.out.find(e1) != std::string::npos);
  CHECK(both.out.find(e1) < both.out.find(e2));  // oldest first

  EnvOverrides env = cli_env();
  env["ALUMIA_HOME"] = home.path().string();
  env["NO_COLOR"] = "1";
  env["ALUMIA_API_KEY"] = std::nullopt;
  Process follow({ALUMIA_CLI_BIN, "--json", "events", "tail", "--follow", "--endpoint", id}, env);
  REQUIRE(eventually([&] { return follow.out().find(e2) != std::string::npos; }, std::chrono::seconds(10)));
  const std::string e3 = event_id_of(send(d, s, make_delivery(s, 3)));
  REQUIRE(eventually([&] { return follow.out().find(e3) != std::string::npos; }, std::chrono::seconds(10)));
  // Another endpoint's event is filtered out: it is committed before e4, so the poll that shows e4 saw it.
  const std::string foreign = event_id_of(send(d, other, make_delivery(other, 1)));
  const std::string e4 = event_id_of(send(d, s, make_delivery(s, 4)));
  REQUIRE(eventually([&] { return follow.out().find(e4) != std::string::npos; }, std::chrono::seconds(10)));

  follow.signal(SIGINT);
  const auto code = follow.wait(std::chrono::seconds(10));
  INFO("stderr: " << follow.err());
  REQUIRE(code.has_value());
  CHECK(*code == 130);
  CHECK(follow.err().find("error") == std::string::npos);

  // NDJSON: one event per line, each once, oldest first.
  std::vector<std::string> ids;
  std::istringstream lines(follow.out());
  for (std::string line; std::getline(lines, line);) {
    const json e = json::parse(line, nullptr, false);
    REQUIRE_FALSE(e.is_discarded());
    CHECK(e["endpointId"] == id);
    ids.push_back(e["id"]);
  }
  CHECK(ids == std::vector<std::string>{e1, e2, e3, e4});
  CHECK(follow.out().find(foreign) == std::string::npos);
  stop_clean(d);
}

// GET /metrics (SPEC §9) against the real daemon: signed deliveries (new, a duplicate, a forged one,
// one over a rate limit), relayed to a sink (delivered, and one dead after a retry), API calls; then scrapes with the
// owner key and with the metrics-token bearer, refusals without either or with a key lacking `admin`, and the text
// parsed by a real exposition-format parser (Debian's python3-prometheus-client), its values checked against what the
// test sent.
#include "cli_helpers.hpp"
#include "http_sink.hpp"
#include "process.hpp"
#include "webhook_helpers.hpp"

#include <alumia/base/strings.hpp>

#include <httplib.h>
#include <catch2/catch.hpp>

#include <thread>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;

namespace {

constexpr const char* k_token = "scrape-me-0123456789abcdef";

// prometheus_client's parser over the text: [{name, type, samples: [[name, labels, value]]}]; a value
// that JSON cannot hold (+Inf, NaN) as its string. Fails the test when the parser refuses the text.
json parse_exposition(const std::string& text) {
  const std::string script = R"(
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "samples": [
        [s.name, s.labels, s.value if math.isfinite(s.value) else str(s.value)] for s in f.samples]})
print(json.dumps(out))
)";
  const ProcessResult r = run({"/usr/bin/python3", "-c", script}, {}, text, std::chrono::seconds(30));
  INFO(r.err);
  if (r.err.find("No module named 'prometheus_client'") != std::string::npos)
    FAIL("python3-prometheus-client is not installed; run scripts/install-deps.sh");
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out);
}

// The value of the one sample `name` with exactly these labels; null when there is none.
json sample(const json& families, const std::string& name, const json& labels) {
  for (const auto& f : families)
    for (const auto& s : f["samples"])
      if (s[0] == name && s[1] == labels) return s[2];
  return nullptr;
}

std::string type_of(const json& families, const std::string& name) {
  for (const auto& f : families)
    if (f["name"] == name) return f["type"];
  return "";
}

HttpReply scrape(const Daemon& d, const std::optional<std::string>& authorization) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (authorization) headers.emplace_back("Authorization", *authorization);
  return http_request("GET", d.url() + "/metrics", headers);
}

}  // namespace

TEST_CASE("metrics: a scrape parses as Prometheus text and counts what was sent", "[webhooks][metrics]") {
  HttpSink sink = HttpSink::ok_and_fail();
  TempDir dir;
  // One retry 50 ms later: a job whose target keeps failing is dead after two attempts.
  Daemon d(dir.path(), daemon_options({{"ALUMIA_METRICS_TOKEN", k_token}, {"ALUMIA_RELAY_BACKOFF_MS", "50"}}));

  const json created = create_endpoint(d, {{"provider", "github"}, {"label", "m"}, {"relayTo", sink.url("/ok")}});
  Signer s;
  s.provider = "github";
  s.secret = created["secret"].get<std::string>();
  s.endpoint_id = created["endpoint"]["id"].get<std::string>();
  for (int n = 1; n <= 3; ++n) REQUIRE(send(d, s, make_delivery(s, n)).status == 200);
  REQUIRE(send(d, s, make_delivery(s, 1)).status == 200);                // a duplicate
  REQUIRE(send(d, s, make_delivery(s, 9, /*bad=*/true)).status == 401);  // forged
  for (int i = 0; i < 2; ++i) REQUIRE(d.api("GET", "/api/v1/status").status == 200);
  const json dying_c = create_endpoint(d, {{"provider", "github"}, {"relayTo", sink.url("/fail")}});
  Signer dying = s;
  dying.secret = dying_c["secret"].get<std::string>();
  dying.endpoint_id = dying_c["endpoint"]["id"].get<std::string>();
  REQUIRE(send(d, dying, make_delivery(dying, 7)).status == 200);
  // An endpoint allowing one delivery a second: an unsigned one takes the token (401), the next is 429
  // before its body is read, so the router never sees it. The bucket refills a token a second, so on a
  // machine slow enough to take that long between two requests the next one is another 401: sent until
  // the 429, each 401 counted below.
  const json limited = create_endpoint(d, {{"provider", "github"}, {"rateLimit", {{"perSecond", 1}, {"burst", 1}}}});
  const std::string limited_url = d.url() + receive_path("github", limited["endpoint"]["id"]);
  REQUIRE(http_request("POST", limited_url, {}, "{}").status == 401);
  int unsigned_refused = 1;  // the 401s of the limited endpoint
  for (;;) {
    const int status = http_request("POST", limited_url, {}, "{}").status;
    if (status == 429) break;
    REQUIRE(status == 401);
    REQUIRE(++unsigned_refused <= 5);
  }

  // The relay delivers the three events; the fourth is dead after a retry.
  REQUIRE(eventually(
      [&] {
        auto v = d.api("GET", "/api/v1/admin/connector-events");
        return v.status == 200 && v.json()["data"]["jobs"]["succeeded"] == 3 && v.json()["data"]["jobs"]["dead"] == 1;
      },
      std::chrono::seconds(20)));

  // With the owner key (scope admin).
  const HttpReply by_key = scrape(d, "Bearer " + d.key());
  INFO(by_key.body);
  REQUIRE(by_key.status == 200);
  std::string content_type;
  for (const auto& [k, v] : by_key.headers)
    if (alumia::iequals(k, "content-type")) content_type = v;
  CHECK(content_type == "text/plain; version=0.0.4; charset=utf-8");
  const json f = parse_exposition(by_key.body);

  const json github = {{"provider", "github"}};
  CHECK(type_of(f, "alumia_webhook_received") == "counter");  // the parser names a counter without _total
  CHECK(sample(f, "alumia_webhook_received_total", github) == 4);
  CHECK(sample(f, "alumia_webhook_duplicates_total", github) == 1);
  CHECK(sample(f, "alumia_webhook_verification_failures_total", github) == 1 + unsigned_refused);
  CHECK(sample(f, "alumia_webhook_rate_limited_total", github) == 1);
  CHECK(sample(f, "alumia_webhook_jobs", {{"state", "succeeded"}}) == 3);
  CHECK(sample(f, "alumia_webhook_jobs", {{"state", "queued"}}) == 0);
  CHECK(sample(f, "alumia_webhook_oldest_queued_job_age_seconds", json::object()) == 0);
  CHECK(sample(f, "alumia_webhook_jobs", {{"state", "dead"}}) == 1);
  CHECK(sample(f, "alumia_relay_attempts_total", {{"outcome", "delivered"}}) == 3);
  CHECK(sample(f, "alumia_relay_attempts_total", {{"outcome", "retry"}}) == 1);
  CHECK(sample(f, "alumia_relay_attempts_total", {{"outcome", "dead"}}) == 1);

  // Requests per route, by pattern (never the raw path) and status class.
  const json status_route = {{"route", "/api/v1/status"}, {"method", "GET"}, {"status", "2xx"}};
  CHECK(sample(f, "alumia_http_requests_total", status_route) == 2);
  const json receiver = {{"route", "/api/v1/connectors/webhooks/:provider/:endpointId"}, {"method", "POST"}};
  json ok_deliveries = receiver;
  ok_deliveries["status"] = "2xx";
  json refused = receiver;
  refused["status"] = "4xx";
  CHECK(sample(f, "alumia_http_requests_total", ok_deliveries) == 5);
  CHECK(sample(f, "alumia_http_requests_total", refused) == 1 + unsigned_refused);  // forged, unsigned; not the 429
  CHECK(type_of(f, "alumia_http_request_duration_seconds") == "histogram");
  json inf = receiver;
  inf["le"] = "+Inf";
  CHECK(sample(f, "alumia_http_request_duration_seconds_bucket", inf) == 6 + unsigned_refused);
  CHECK(sample(f, "alumia_http_request_duration_seconds_count", receiver) == 6 + unsigned_refused);
  CHECK(by_key.body.find(s.endpoint_id) == std::string::npos);  // no endpoint id, no raw path

  // Group commits happened, each of at least one operation.
  const json batches = sample(f, "alumia_store_write_batch_size_count", json::object());
  REQUIRE(batches.is_number());
  CHECK(batches.get<double>() >= 1);

  // With the metrics-token bearer: the same figures, no API key needed.
  const HttpReply by_token = scrape(d, std::string("Bearer ") + k_token);
  REQUIRE(by_token.status == 200);
  const json g = parse_exposition(by_token.body);
  CHECK(sample(g, "alumia_webhook_received_total", github) == 4);
  CHECK(sample(g, "alumia_http_requests_total", status_route) == 2);
  json metrics_route = {{"route", "/metrics"}, {"method", "GET"}, {"status", "2xx"}};
  CHECK(sample(g, "alumia_http_requests_total", metrics_route) == 1);  // the scrape by key

  // Refused: none, a wrong token, a key without admin; in the envelope.
  const HttpReply none = scrape(d, std::nullopt);
  CHECK(none.status == 401);
  CHECK(none.json()["error"]["code"] == "UNAUTHORIZED");
  CHECK(scrape(d, "Bearer scrape-me-wrong").status == 401);
  const json narrow = d.api("POST", "/api/v1/api-keys", json{{"name", "n"}, {"scopes", {"webhooks"}}}.dump()).json();
  const HttpReply forbidden = scrape(d, "Bearer " + narrow["data"]["key"].get<std::string>());
  CHECK(forbidden.status == 403);
  CHECK(forbidden.json()["error"]["code"] == "FORBIDDEN");
  CHECK(forbidden.json()["error"]["message"].get<std::string>().find("metrics-token") != std::string::npos);

  // `config show` says the token is set, never what it is.
  for (const bool as_json : {false, true}) {
    std::vector<std::string> args{"config", "show"};
    if (as_json) args.insert(args.begin(), "--json");
    auto env = cli_env();
    env["ALUMIA_METRICS_TOKEN"] = k_token;
    const ProcessResult shown = d.cli(args, env);
    INFO(shown.out << shown.err);
    CHECK(shown.exit_code == 0);
    CHECK(shown.out.find("metrics-token") != std::string::npos);
    CHECK(shown.out.find("(set)") != std::string::npos);
    CHECK(shown.out.find(k_token) == std::string::npos);
  }

  d.stop();
  CHECK(d.log().find(k_token) == std::string::npos);  // the token is never logged
}

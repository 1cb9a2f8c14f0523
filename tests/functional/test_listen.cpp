// `alumia-connect listen` against the real daemon (issue 15 item 2, SPEC §10): a local relay target,
// signed GitHub deliveries, the stream of forwards (NDJSON and human), Ctrl-C/SIGTERM and what is left
// of the endpoint afterwards.
#include "cli_helpers.hpp"
#include "http_sink.hpp"
#include "webhook_helpers.hpp"

#include <httplib.h>
#include <signal.h>
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <sstream>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;

namespace {

// `alumia-connect listen ARGS` running in the background against `d`.
std::unique_ptr<Process> start_listen(const Daemon& d, std::vector<std::string> args,
                                      const std::string& stdin_data = {}) {
  std::vector<std::string> argv{ALUMIA_CLI_BIN, "listen"};
  argv.insert(argv.end(), args.begin(), args.end());
  EnvOverrides env = cli_env();
  env["ALUMIA_HOME"] = d.home().string();
  env["NO_COLOR"] = "1";
  env["ALUMIA_API_KEY"] = std::nullopt;
  return std::make_unique<Process>(argv, env, stdin_data);
}

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

std::vector<json> lines_of_type(const Process& p, const std::string& type) {
  std::vector<json> out;
  for (auto& j : json_lines(p.out()))
    if (j.is_object() && j.value("type", "") == type) out.push_back(std::move(j));
  return out;
}

json endpoints(const Daemon& d) {
  auto r = d.api("GET", "/api/v1/webhook-endpoints?limit=200");
  REQUIRE(r.status == 200);
  return r.json()["data"]["items"];
}

// Stops `p` with `sig` and requires the exit code `listen` gives an interruption (130).
void interrupt(Process& p, int sig) {
  p.signal(sig);
  const auto code = p.wait(std::chrono::seconds(20));
  INFO("stdout: " << p.out() << "\nstderr: " << p.err());
  REQUIRE(code.has_value());
  CHECK(*code == 130);
}

// A relay target that answers 500 to the first `fail_first` requests, then 200; it records the
// event ids it accepted.
class Target {
 public:
  explicit Target(int fail_first) : m_fail(fail_first) {}
  std::string url() const { return m_http.url("/hook"); }
  std::vector<std::string> accepted() {
    std::lock_guard lock(m_mutex);
    return m_accepted;
  }

 private:
  void serve(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(m_mutex);
    if (m_fail > 0) {
      --m_fail;
      res.status = 500;
      return;
    }
    m_accepted.push_back(req.get_header_value("Alumia-Event-Id"));
    res.status = 200;
  }
  std::mutex m_mutex;
  int m_fail;
  std::vector<std::string> m_accepted;
  HttpSink m_http{{{"/hook", [this](const httplib::Request& req, httplib::Response& res) { serve(req, res); }}}};
};

Signer github_signer(const std::string& secret, const std::string& endpoint_id) {
  Signer s;
  s.provider = "github";
  s.secret = secret;
  s.endpoint_id = endpoint_id;
  return s;
}

}  // namespace

TEST_CASE("listen: creates an endpoint relaying to the target, streams each forward as NDJSON, deletes it on Ctrl-C",
          "[listen]") {
  Target target(1);  // the first forward fails: a retry follows
  TempDir dir;
  Daemon d(dir.path(), daemon_options({{"ALUMIA_RELAY_BACKOFF_MS", "50,50,50"}}));

  auto listen = start_listen(d, {"--provider", "github", "--forward-to", target.url(), "--json"});
  REQUIRE(eventually([&] { return !lines_of_type(*listen, "ready").empty(); }, std::chrono::seconds(20)));
  const json ready = lines_of_type(*listen, "ready").front();
  INFO(ready.dump());
  CHECK(ready["created"] == true);
  CHECK(ready["removeOnExit"] == true);
  CHECK(ready["forwardTo"] == target.url());
  const std::string id = ready["endpoint"]["id"];
  CHECK(ready["endpoint"]["relayTo"] == target.url());
  CHECK(ready["receiveUrl"] == d.url() + receive_path("github", id));
  REQUIRE(ready["secret"].is_string());
  REQUIRE(ready["relaySecret"].is_string());
  // The endpoint exists in the daemon, with the label that says where it came from.
  json e = endpoint_of(d, id);
  CHECK(e["label"] == "alumia-connect listen");

  const Signer s = github_signer(ready["secret"], id);
  auto r1 = send(d, s, make_delivery(s, 1));
  REQUIRE(r1.status == 200);
  const std::string first = r1.json()["data"]["eventId"];
  auto r2 = send(d, s, make_delivery(s, 2));
  REQUIRE(r2.status == 200);
  const std::string second = r2.json()["data"]["eventId"];

  // Each event's forward ends in a success; the one the target refused first (either: the relay
  // delivers them concurrently) shows attempt 2. Its failed attempt 1 has a line of its own when a poll
  // saw it before the retry (50 ms later), so between 2 and 3 lines.
  const auto succeeded = [&] {
    int n = 0;
    for (const auto& l : lines_of_type(*listen, "delivery")) n += l["state"] == "succeeded" ? 1 : 0;
    return n;
  };
  REQUIRE(eventually([&] { return succeeded() == 2; }, std::chrono::seconds(20)));
  const auto lines = lines_of_type(*listen, "delivery");
  INFO(listen->out());
  REQUIRE(lines.size() >= 2);
  REQUIRE(lines.size() <= 3);
  std::map<std::string, std::vector<json>> by_event;
  for (const auto& l : lines) {
    CHECK(l["eventType"] == "push");
    // A first attempt's latency counts from the receipt; a retry's from when it was due, known only
    // when a poll saw the failed attempt (else null, never a guess).
    if (l["attempt"] == 1) CHECK(l["latencyMs"].is_number_integer());
    if (l["latencyMs"].is_number_integer()) {
      CHECK(l["latencyMs"].get<int64_t>() >= 0);
      CHECK(l["latencyMs"].get<int64_t>() < 20000);
    } else {
      CHECK(l["latencyMs"].is_null());
    }
    by_event[l["eventId"]].push_back(l);
  }
  REQUIRE(by_event.size() == 2);
  REQUIRE(by_event.count(first) == 1);
  REQUIRE(by_event.count(second) == 1);
  int retried = 0;
  for (const auto& [event, ls] : by_event) {
    const json& last = ls.back();
    CHECK(last["state"] == "succeeded");
    CHECK(last["status"] == 200);
    CHECK(last["eventKey"] == (event == first ? "github:delivery-1" : "github:delivery-2"));
    if (last["attempt"] == 2) {
      ++retried;
      if (ls.size() == 2) {
        CHECK(ls[0]["attempt"] == 1);
        CHECK(ls[0]["state"] == "failed");
        CHECK(ls[0]["status"] == 500);
        CHECK(ls[0]["error"] == "relay target answered HTTP 500");
      }
    } else {
      CHECK(last["attempt"] == 1);
      CHECK(ls.size() == 1);
    }
  }
  CHECK(retried == 1);
  const auto accepted = target.accepted();
  CHECK(std::find(accepted.begin(), accepted.end(), first) != accepted.end());
  CHECK(std::find(accepted.begin(), accepted.end(), second) != accepted.end());

  interrupt(*listen, SIGINT);
  CHECK(listen->err().find("Deleted endpoint " + id) != std::string::npos);
  CHECK(d.api("GET", "/api/v1/webhook-endpoints/" + id).status == 404);
  // stdout stayed NDJSON only: every line parses.
  std::istringstream out(listen->out());
  std::string line;
  while (std::getline(out, line)) CHECK_FALSE(json::parse(line, nullptr, false).is_discarded());
  stop_clean(d);
}

TEST_CASE("listen: --keep keeps the endpoint; a second listen reuses it, filters --events and leaves it", "[listen]") {
  Target target(0);
  TempDir dir;
  Daemon d(dir.path(), daemon_options());

  auto keep = start_listen(d, {"--provider", "github", "--forward-to", target.url(), "--keep"});
  REQUIRE(eventually([&] { return keep->err().find("Waiting for deliveries") != std::string::npos; },
                     std::chrono::seconds(20)));
  INFO(keep->out());
  CHECK(keep->out().find("Forwarding github deliveries to " + target.url()) != std::string::npos);
  CHECK(keep->out().find("receive url:") != std::string::npos);
  CHECK(keep->out().find("relay secret:") != std::string::npos);
  REQUIRE(endpoints(d).size() == 1);
  const std::string id = endpoints(d)[0]["id"];
  CHECK(keep->out().find("(created; kept after you stop: --keep)") != std::string::npos);
  interrupt(*keep, SIGTERM);  // SIGTERM ends it like Ctrl-C
  CHECK(keep->err().find("Kept endpoint " + id) != std::string::npos);
  REQUIRE(d.api("GET", "/api/v1/webhook-endpoints/" + id).status == 200);

  // The secret is not shown again: the test reads it from a rotation of its own.
  auto rotated = d.api("POST", "/api/v1/webhook-endpoints/" + id + "/rotate-secret", R"({"graceSeconds":0})");
  REQUIRE(rotated.status == 200);
  const Signer s = github_signer(rotated.json()["data"]["secret"], id);

  auto again = start_listen(d, {"--provider", "github", "--forward-to", target.url(), "--events", "ping,iss*"});
  REQUIRE(eventually([&] { return again->err().find("Waiting for deliveries") != std::string::npos; },
                     std::chrono::seconds(20)));
  CHECK(again->out().find(id + " (reused") != std::string::npos);
  CHECK(again->out().find("(the endpoint's own, unchanged") != std::string::npos);
  CHECK(again->err().find("Showing only ping, iss*") != std::string::npos);
  CHECK(endpoints(d).size() == 1);

  auto push = make_delivery(s, 10);
  REQUIRE(send(d, s, push).status == 200);
  auto issue = make_delivery(s, 11);
  for (auto& [name, value] : issue.headers)
    if (name == "X-GitHub-Event") value = "issues";
  auto sent = send(d, s, issue);
  REQUIRE(sent.status == 200);
  const std::string issue_id = sent.json()["data"]["eventId"];
  REQUIRE(eventually([&] { return again->out().find(issue_id) != std::string::npos; }, std::chrono::seconds(20)));
  REQUIRE(eventually([&] { return target.accepted().size() == 2; }, std::chrono::seconds(20)));
  INFO(again->out());
  CHECK(again->out().find("issues  " + issue_id + "  --> [200] ") != std::string::npos);
  CHECK(again->out().find("push  ") == std::string::npos);  // filtered out
  interrupt(*again, SIGINT);
  CHECK(again->err().find("Deleted endpoint") == std::string::npos);
  CHECK(d.api("GET", "/api/v1/webhook-endpoints/" + id).status == 200);  // reused: left as it was
  stop_clean(d);
}

TEST_CASE("listen: a provider-issued secret comes from stdin; bad arguments change nothing", "[listen]") {
  Target target(0);
  TempDir dir;
  Daemon d(dir.path(), daemon_options());

  auto no_secret = cli(d, {"listen", "--provider", "stripe", "--forward-to", target.url()});
  REQUIRE_EXIT(no_secret, 2);
  CHECK(no_secret.err.find("--secret-from-stdin") != std::string::npos);
  REQUIRE_EXIT(cli(d, {"listen", "--provider", "github", "--forward-to", "ftp://127.0.0.1/x"}), 2);
  REQUIRE_EXIT(cli(d, {"listen", "--provider", "nosuch", "--forward-to", target.url()}), 2);
  REQUIRE_EXIT(cli(d, {"listen", "--provider", "github"}), 2);
  CHECK(endpoints(d).empty());

  const std::string whsec = "whsec_listen_test_secret";
  auto listen = start_listen(d, {"--provider", "stripe", "--forward-to", target.url(), "--secret-from-stdin", "--json"},
                             whsec + "\n");
  REQUIRE(eventually([&] { return !lines_of_type(*listen, "ready").empty(); }, std::chrono::seconds(20)));
  const json ready = lines_of_type(*listen, "ready").front();
  CHECK_FALSE(ready.contains("secret"));  // the provider's secret is never echoed
  CHECK(listen->out().find(whsec) == std::string::npos);
  CHECK(listen->err().find(whsec) == std::string::npos);
  Signer s;
  s.provider = "stripe";
  s.secret = whsec;
  s.endpoint_id = ready["endpoint"]["id"];
  auto r = send(d, s, make_delivery(s, 1));
  REQUIRE(r.status == 200);
  REQUIRE(eventually([&] { return lines_of_type(*listen, "delivery").size() == 1; }, std::chrono::seconds(20)));
  CHECK(lines_of_type(*listen, "delivery")[0]["eventType"] == "customer.created");
  interrupt(*listen, SIGINT);
  CHECK(endpoints(d).empty());
  stop_clean(d);
}

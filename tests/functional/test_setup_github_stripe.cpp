// setup-webhook for github and stripe, end to end: the real daemon and CLI against a fake GitHub REST
// API and a fake Stripe API that record every call. A github connection is made active through the
// real OAuth test peer (a connectors.d merge patch points the github connector's OAuth endpoints at
// it, its account label at the fake GitHub); a stripe connection through its live check against the
// fake Stripe. Then: setup registers the receive URL, a delivery signed with the secret the provider
// holds arrives as an event and a job, a wrong secret is refused, a second setup keeps the endpoint
// and makes no second hook, --remove, provider errors with their exit codes, and an unsafe
// --base-url refused before any provider call.
#include <catch2/catch.hpp>

#include "cli_helpers.hpp"
#include "fake_github.hpp"
#include "fake_stripe.hpp"
#include "oauth_peer.hpp"
#include "process.hpp"
#include "skip.hpp"
#include "webhook_helpers.hpp"

#include <fstream>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;

namespace {

constexpr const char* k_base_url = "https://hooks.example.com";
constexpr const char* k_stripe_key = "sk_test_51FakeShopKey0123456789";

// The github connector's OAuth endpoints on the peer (revocation by POST, RFC 7009; its
// token answer read as plain JSON), its account label on the fake GitHub.
void write_github_patch(const std::filesystem::path& home, const std::string& issuer, const std::string& github) {
  write_peer_patch(home, "github", issuer,
                   {{"revocation", {{"method", "POST"}}},
                    {"tokenResponse", nullptr},
                    {"accountLabel", {{"url", github + "/user"}, {"jsonPointers", {"/login"}}}}});
}

struct World {
  TempDir dir;
  FakeGitHub github{{}, "octocat"};  // any token: the one the OAuth flow issues
  FakeStripe stripe{{k_stripe_key}};
  std::unique_ptr<OAuthPeer> peer;
  std::filesystem::path browser;
  std::unique_ptr<Daemon> daemon;

  explicit World(bool with_peer, EnvOverrides extra = {}) {
    github.add_repo("octo-org/hello-world");
    github.add_org("octo-org");
    EnvOverrides env = {{"CONNECTOR_WEBHOOK_BASE_URL", k_base_url},
                        {"ALUMIA_GITHUB_API_BASE", github.base()},
                        {"ALUMIA_STRIPE_API_BASE", stripe.base()}};
    if (with_peer) {
      peer = std::make_unique<OAuthPeer>();
      write_github_patch(dir.path(), peer->issuer(), github.base());
      browser = write_browser_wrapper(dir.path());
      env["ALUMIA_GITHUB_CLIENT_ID"] = "alumia-test";
      env["ALUMIA_GITHUB_CLIENT_SECRET"] = "test-only-secret";
    }
    for (auto& [k, v] : extra) env[k] = v;
    daemon = std::make_unique<Daemon>(dir.path(), daemon_options(env));
  }
  ~World() {
    if (daemon) CHECK(daemon->stop() == 0);
  }

  ProcessResult cli(std::vector<std::string> args) const { return alumia::test::cli(*daemon, std::move(args)); }

  // An active github connection made through the peer; its id.
  std::string connect_github() {
    auto r = daemon->cli({"connect", "github", "--timeout", "60"}, browser_env(browser, cli_env()));
    INFO(r.out << r.err << daemon->log());
    REQUIRE(r.exit_code == 0);
    auto list = daemon->api("GET", "/api/v1/connections?connector=github").json();
    REQUIRE(list["data"]["items"].size() == 1);
    const json c = list["data"]["items"][0];
    REQUIRE(c["status"] == "active");
    CHECK(c["accountLabel"] == "octocat");
    return c["id"];
  }

  // An active stripe connection (live check GET /v1/account on the fake); its id.
  std::string connect_stripe() {
    auto r =
        alumia::test::cli(*daemon, {"connect", "stripe", "--from-stdin"}, json{{"secret_key", k_stripe_key}}.dump());
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    auto list = daemon->api("GET", "/api/v1/connections?connector=stripe").json();
    REQUIRE(list["data"]["items"].size() == 1);
    const json c = list["data"]["items"][0];
    REQUIRE(c["status"] == "active");
    CHECK(c["accountLabel"] == "Fake Shop");
    return c["id"];
  }

  std::string access_token(const std::string& id) const {
    auto r = daemon->api("POST", "/api/v1/connections/" + id + "/token", "{}");
    REQUIRE(r.status == 200);
    return r.json()["data"]["accessToken"];
  }
};

// A delivery POSTed to the daemon at the path of the URL the provider was given (its base is the
// public https origin; the daemon itself listens on loopback).
HttpReply deliver(const Daemon& d, const std::string& registered_url, const Delivery& delivery) {
  REQUIRE(registered_url.starts_with(std::string(k_base_url) + "/"));
  return http_request("POST", d.url() + registered_url.substr(std::string(k_base_url).size()), delivery.headers,
                      delivery.body);
}

// The delivery arrived: an event with its key and a queued job for it.
void arrived(const Daemon& d, const std::string& endpoint_id, const HttpReply& reply, const std::string& key) {
  INFO(reply.body);
  REQUIRE(reply.status / 100 == 2);
  const json events = events_of(d, endpoint_id);
  const auto event = std::find_if(events.begin(), events.end(), [&](const json& e) { return e["eventKey"] == key; });
  REQUIRE(event != events.end());
  const json jobs = d.api("GET", "/api/v1/jobs?limit=200").json()["data"]["items"];
  CHECK(std::any_of(jobs.begin(), jobs.end(), [&](const json& j) { return j["eventId"] == (*event)["id"]; }));
}

// `setup-webhook ARGS --json`: the exit code, and the data when it succeeded.
json setup(const World& w, std::vector<std::string> args, int exit_code = 0) {
  args.insert(args.begin(), "setup-webhook");
  args.push_back("--json");
  const auto r = w.cli(args);
  REQUIRE_EXIT(r, exit_code);
  return exit_code == 0 ? json_out(r) : json{{"stderr", r.err}};
}

std::size_t count_calls(const std::vector<FakeCall>& calls, const std::string& method, const std::string& path) {
  return static_cast<std::size_t>(std::count_if(
      calls.begin(), calls.end(), [&](const FakeCall& c) { return c.method == method && c.path == path; }));
}

}  // namespace

TEST_CASE("setup-webhook harness: github through the OAuth peer, stripe through its live check", "[setup-webhook]") {
  ALUMIA_SKIP_WITHOUT_OAUTH_PEER();
  World w(true);
  const std::string gh = w.connect_github();
  const std::string token = w.access_token(gh);
  // The account label came from the fake GitHub, asked with the token the peer issued.
  const auto calls = w.github.calls();
  REQUIRE_FALSE(calls.empty());
  CHECK(calls.front().path == "/user");
  CHECK(calls.front().headers.at("authorization") == "Bearer " + token);
  w.connect_stripe();
  CHECK(w.stripe.calls().front().path == "/v1/account");
}

TEST_CASE("setup-webhook github: a hook per target, signed deliveries, no second hook, --remove", "[setup-webhook]") {
  ALUMIA_SKIP_WITHOUT_OAUTH_PEER();
  World w(true);
  const std::string id = w.connect_github();
  const std::string token = w.access_token(id);
  w.github.clear_calls();

  const json first = setup(w, {id, "--repo", "octo-org/hello-world"});
  CHECK(first["connectionId"] == id);
  CHECK(first["endpointCreated"] == true);
  CHECK(first["removed"] == false);
  const std::string endpoint_id = first["endpoint"]["id"];
  CHECK(first["endpoint"]["status"] == "active");
  const std::string url = first["receiveUrl"];
  CHECK(url == std::string(k_base_url) + "/api/v1/connectors/webhooks/github/" + endpoint_id);
  auto hooks = w.github.hooks("repo:octo-org/hello-world");
  REQUIRE(hooks.size() == 1);
  CHECK(hooks[0].config["url"] == url);
  CHECK(hooks[0].config["content_type"] == "json");
  CHECK(hooks[0].events == std::vector<std::string>{"*"});
  const std::string secret = hooks[0].config["secret"];
  CHECK(secret.size() >= 32);
  CHECK(first["provider"]["hookId"] == hooks[0].id);
  CHECK(first["provider"]["target"] == "repo:octo-org/hello-world");
  for (const auto& c : w.github.calls()) CHECK(c.headers.at("authorization") == "Bearer " + token);
  // The secret went to GitHub and the store only.
  CHECK(first.dump().find(secret) == std::string::npos);
  CHECK(w.daemon->log().find(secret) == std::string::npos);

  // A delivery signed with the secret GitHub holds arrives; one signed otherwise does not.
  Signer signer{"github", secret, "", nullptr, "", endpoint_id};
  arrived(*w.daemon, endpoint_id, deliver(*w.daemon, url, make_delivery(signer, 1)), "github:delivery-1");
  CHECK(deliver(*w.daemon, url, make_delivery(signer, 2, true)).status == 401);

  // Again: the same endpoint, the same hook patched, no second hook, the secret unchanged.
  w.github.clear_calls();
  const json second = setup(w, {id, "--repo", "octo-org/hello-world", "--events", "push,pull_request"});
  CHECK(second["endpointCreated"] == false);
  CHECK(second["endpoint"]["id"] == endpoint_id);
  CHECK(second["receiveUrl"] == url);
  auto calls = w.github.calls();
  CHECK(count_calls(calls, "POST", "/repos/octo-org/hello-world/hooks") == 0);
  CHECK(count_calls(calls, "PATCH", "/repos/octo-org/hello-world/hooks/" + std::to_string(hooks[0].id)) == 1);
  hooks = w.github.hooks("repo:octo-org/hello-world");
  REQUIRE(hooks.size() == 1);
  CHECK(hooks[0].config["secret"] == secret);
  CHECK(hooks[0].events == std::vector<std::string>{"push", "pull_request"});
  CHECK(second["provider"]["events"] == json{"push", "pull_request"});
  arrived(*w.daemon, endpoint_id, deliver(*w.daemon, url, make_delivery(signer, 3)), "github:delivery-3");

  // The organisation too: the same endpoint and secret, a second target.
  const json org = setup(w, {id, "--org", "octo-org"});
  CHECK(org["endpoint"]["id"] == endpoint_id);
  const auto org_hooks = w.github.hooks("org:octo-org");
  REQUIRE(org_hooks.size() == 1);
  CHECK(org_hooks[0].config["url"] == url);
  CHECK(org_hooks[0].config["secret"] == secret);
  CHECK(org["provider"]["target"] == "org:octo-org");

  // Human output: the endpoint, the receive URL and GitHub's report.
  const auto human = w.cli({"setup-webhook", id, "--org", "octo-org"});
  REQUIRE_EXIT(human, 0);
  CHECK_THAT(human.out, Catch::Contains(url) && Catch::Contains("org:octo-org"));
  CHECK(w.github.hooks("org:octo-org").size() == 1);

  // Removing the repository hook keeps the endpoint active (the organisation's still delivers).
  const json removed = setup(w, {id, "--remove", "--repo", "octo-org/hello-world"});
  CHECK(removed["removed"] == true);
  CHECK(w.github.hooks("repo:octo-org/hello-world").empty());
  CHECK(removed["endpoint"]["status"] == "active");
  // The last one: the endpoint is disabled, and nothing is left to remove.
  const json last = setup(w, {id, "--remove", "--org", "octo-org"});
  CHECK(w.github.hooks("org:octo-org").empty());
  CHECK(last["endpoint"]["status"] == "disabled");
  const json nothing = setup(w, {id, "--remove", "--org", "octo-org"}, 5);
  CHECK_THAT(nothing["stderr"].get<std::string>(), Catch::Contains("nothing to remove"));

  // Set up again: enabled again on the same endpoint, one hook.
  const json back = setup(w, {id, "--repo", "octo-org/hello-world"});
  CHECK(back["endpoint"]["id"] == endpoint_id);
  CHECK(back["endpoint"]["status"] == "active");
  CHECK(w.github.hooks("repo:octo-org/hello-world").size() == 1);
}

TEST_CASE("setup-webhook github: GitHub's errors and refused options, with their exit codes", "[setup-webhook]") {
  ALUMIA_SKIP_WITHOUT_OAUTH_PEER();
  World w(true);
  const std::string id = w.connect_github();
  w.github.clear_calls();

  // Refused before any call to GitHub: no target, a bad name, an unsafe --base-url, both targets.
  CHECK_THAT(setup(w, {id}, 7)["stderr"].get<std::string>(), Catch::Contains("--repo"));
  CHECK_THAT(setup(w, {id, "--repo", "octo-org/../x"}, 7)["stderr"].get<std::string>(), Catch::Contains("OWNER/NAME"));
  for (const char* unsafe : {"http://hooks.example.com", "https://127.0.0.1", "https://10.1.2.3:8443/x",
                             "https://[::1]", "https://build.internal"})
    CHECK_THAT(setup(w, {id, "--repo", "octo-org/hello-world", "--base-url", unsafe}, 7)["stderr"].get<std::string>(),
               Catch::Contains("--base-url"));
  REQUIRE_EXIT(w.cli({"setup-webhook", id, "--repo", "octo-org/hello-world", "--org", "octo-org"}), 2);
  CHECK(w.github.calls().empty());

  // GitHub's answers.
  CHECK_THAT(setup(w, {id, "--repo", "octo-org/missing"}, 5)["stderr"].get<std::string>(),
             Catch::Contains("octo-org/missing") && Catch::Contains("admin:repo_hook"));
  w.github.script({401, R"({"message":"Bad credentials"})", {}});
  CHECK_THAT(setup(w, {id, "--repo", "octo-org/hello-world"}, 7)["stderr"].get<std::string>(),
             Catch::Contains("connect --reconnect " + id));
  w.github.script({422, R"({"message":"Validation Failed","errors":[{"message":"Hook already exists"}]})", {}});
  CHECK_THAT(setup(w, {id, "--repo", "octo-org/hello-world"}, 7)["stderr"].get<std::string>(),
             Catch::Contains("Hook already exists"));
  w.github.script({429, R"({"message":"slow down"})", {{"Retry-After", "17"}}});
  CHECK_THAT(setup(w, {id, "--repo", "octo-org/hello-world"}, 1)["stderr"].get<std::string>(),
             Catch::Contains("rate limit"));
  w.github.script({502, "bad gateway", {}});
  CHECK_THAT(setup(w, {id, "--repo", "octo-org/hello-world"}, 1)["stderr"].get<std::string>(),
             Catch::Contains("HTTP 502"));
  // No hook came of any of it.
  CHECK(w.github.hooks("repo:octo-org/hello-world").empty());
}

TEST_CASE("setup-webhook stripe: an endpoint with the whsec_ Stripe issued, kept on a re-run, --remove",
          "[setup-webhook]") {
  World w(false);
  const std::string id = w.connect_stripe();
  w.stripe.clear_calls();

  const json first = setup(w, {id});
  CHECK(first["endpointCreated"] == true);
  const std::string endpoint_id = first["endpoint"]["id"];
  const std::string url = first["receiveUrl"];
  CHECK(url == std::string(k_base_url) + "/api/v1/connectors/webhooks/stripe/" + endpoint_id);
  CHECK(first["endpoint"]["status"] == "active");
  auto endpoints = w.stripe.endpoints();
  REQUIRE(endpoints.size() == 1);
  CHECK(endpoints[0].url == url);
  CHECK(endpoints[0].enabled_events == std::vector<std::string>{"*"});
  CHECK(first["provider"]["webhookEndpointId"] == endpoints[0].id);
  const std::string whsec = endpoints[0].secret;
  for (const auto& c : w.stripe.calls()) CHECK(c.headers.at("authorization") == std::string("Bearer ") + k_stripe_key);
  CHECK(first.dump().find(whsec) == std::string::npos);
  CHECK(w.daemon->log().find(whsec) == std::string::npos);
  CHECK(w.daemon->log().find(k_stripe_key) == std::string::npos);

  Signer signer{"stripe", whsec, "", nullptr, "", endpoint_id};
  arrived(*w.daemon, endpoint_id, deliver(*w.daemon, url, make_delivery(signer, 1)), "stripe:platform:evt_1");
  CHECK(deliver(*w.daemon, url, make_delivery(signer, 2, true)).status == 401);

  // Again, with other events: the same Stripe endpoint updated, nothing created, the secret kept.
  w.stripe.clear_calls();
  const json second = setup(w, {id, "--events", "charge.succeeded,invoice.paid"});
  CHECK(second["endpoint"]["id"] == endpoint_id);
  CHECK(second["endpointCreated"] == false);
  CHECK(count_calls(w.stripe.calls(), "POST", "/v1/webhook_endpoints") == 0);
  endpoints = w.stripe.endpoints();
  REQUIRE(endpoints.size() == 1);
  CHECK(endpoints[0].secret == whsec);
  CHECK(endpoints[0].enabled_events == std::vector<std::string>{"charge.succeeded", "invoice.paid"});
  arrived(*w.daemon, endpoint_id, deliver(*w.daemon, url, make_delivery(signer, 3)), "stripe:platform:evt_3");

  // --rotate-secret cannot apply: Stripe issues the secret.
  REQUIRE_EXIT(w.cli({"setup-webhook", id, "--rotate-secret"}), 7);

  const json removed = setup(w, {id, "--remove"});
  CHECK(removed["removed"] == true);
  CHECK(w.stripe.endpoints().empty());
  CHECK(removed["endpoint"]["status"] == "disabled");
  setup(w, {id, "--remove"}, 5);

  // Set up again: a new Stripe endpoint with a new secret, which is the one that verifies now.
  const json back = setup(w, {id});
  CHECK(back["endpoint"]["id"] == endpoint_id);
  endpoints = w.stripe.endpoints();
  REQUIRE(endpoints.size() == 1);
  CHECK(endpoints[0].secret != whsec);
  Signer renewed{"stripe", endpoints[0].secret, "", nullptr, "", endpoint_id};
  arrived(*w.daemon, endpoint_id, deliver(*w.daemon, url, make_delivery(renewed, 4)), "stripe:platform:evt_4");
}

TEST_CASE("setup-webhook stripe: Stripe's errors and an unsafe base URL, with their exit codes", "[setup-webhook]") {
  World w(false);
  const std::string id = w.connect_stripe();
  w.stripe.clear_calls();

  for (const char* unsafe :
       {"http://hooks.example.com", "https://192.168.1.10", "https://shop.local", "https://user@hooks.example.com"})
    CHECK_THAT(setup(w, {id, "--base-url", unsafe}, 7)["stderr"].get<std::string>(), Catch::Contains("--base-url"));
  CHECK_THAT(setup(w, {id, "--repo", "o/r"}, 7)["stderr"].get<std::string>(), Catch::Contains("github"));
  CHECK_THAT(setup(w, {id, "--events", "Not An Event"}, 7)["stderr"].get<std::string>(),
             Catch::Contains("Stripe event type"));
  CHECK(w.stripe.calls().empty());

  w.stripe.script(
      {401,
       R"({"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****6789"}})",
       {}});
  const std::string refused = setup(w, {id}, 7)["stderr"];
  CHECK_THAT(refused, Catch::Contains("alumia-connect credentials " + id));
  CHECK(refused.find("sk_test") == std::string::npos);
  w.stripe.script(
      {403,
       R"({"error":{"type":"invalid_request_error","message":"The provided key does not have the required permissions"}})",
       {}});
  CHECK_THAT(setup(w, {id}, 7)["stderr"].get<std::string>(), Catch::Contains("Webhook Endpoints: write"));
  w.stripe.script(
      {400, R"({"error":{"type":"invalid_request_error","message":"URL must be publicly accessible."}})", {}});
  CHECK_THAT(setup(w, {id}, 7)["stderr"].get<std::string>(), Catch::Contains("URL must be publicly accessible"));
  w.stripe.script({429, R"({"error":{"type":"rate_limit_error","message":"Too many requests"}})", {}});
  setup(w, {id}, 1);
  w.stripe.script({500, R"({"error":{"type":"api_error","message":"boom"}})", {}});
  CHECK_THAT(setup(w, {id}, 1)["stderr"].get<std::string>(), Catch::Contains("HTTP 500"));
  CHECK(w.stripe.endpoints().empty());
}

// The seams between the webhook service and the relay worker (relay_target.hpp): the endpoint cache
// serves each job's target, the service wakes the worker through JobWaker exactly when a job can go
// somewhere new, and the relay builds its own POST body and signature (relay_message.hpp).
#include "process.hpp"

#include <alumia/auth/api_keys.hpp>
#include <alumia/auth/tickets.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/connections/oauth_clients.hpp>
#include <alumia/crypto/crypto.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>
#include <alumia/webhooks/endpoint_cache.hpp>
#include <alumia/webhooks/relay_message.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>

using namespace alumia;
using nlohmann::json;

namespace {

class NoNetwork final : public http::Client {
 public:
  Result<http::OutboundResponse> send(const http::OutboundRequest&) override {
    return fail(ErrorCode::service_unavailable, "no network in unit tests");
  }
};

class CountingWaker final : public JobWaker {
 public:
  void jobs_due() override { ++calls; }
  std::atomic<int> calls{0};
};

template <class T>
T must(Result<T> r) {
  INFO((r ? std::string() : r.error().message));
  REQUIRE(r);
  return std::move(*r);
}

struct Service {
  explicit Service(std::string default_relay_to = "")
      : endpoints(*hooks, *store, sealer, std::move(default_relay_to)) {}

  test::TempDir dir;
  EnvLookup env = [](std::string_view) { return std::optional<std::string>(); };
  SystemClock clock;
  SystemRandom random;
  NoNetwork net;
  std::unique_ptr<Store> store = must(open_sqlite_store({dir.path() / "store.db", true}));
  Catalog catalog = must(load_catalog(dir.path() / "connectors.d"));
  Sealer sealer{generate_key(random), random};
  KeyService keys{KeyServiceDeps{*store, clock, random, "live"}};
  TicketBook tickets{*store, clock, random};
  OAuthClients oauth_clients{*store, sealer, env};
  ConnectionService connections{ConnectionServiceDeps{*store, catalog, sealer, clock, random, net, env, oauth_clients,
                                                      tickets, "http://127.0.0.1:1"}};
  std::unique_ptr<WebhookStore> hooks =
      must(open_sqlite_webhook_store({.path = dir.path() / "store.db", .intake_log_bytes = 0}));
  EndpointCache endpoints;
  CountingWaker waker;
  WebhookService webhooks{WebhookServiceDeps{.connections = connections,
                                             .store = *store,
                                             .sealer = sealer,
                                             .hooks = *hooks,
                                             .endpoints = endpoints,
                                             .relay = waker,
                                             .clock = clock,
                                             .random = random,
                                             .http = net,
                                             .webhook_base_url = "",
                                             .control_url = "http://127.0.0.1:1"}};
  Caller owner = [this] {
    (void)must(keys.bootstrap_owner());
    return Caller{*must(store->first_user()), {}};
  }();

  CreatedEndpoint create(std::optional<std::string> relay_to) {
    CreateEndpointRequest r;
    r.provider = "github";
    r.relay_to = std::move(relay_to);
    return must(webhooks.create_endpoint(owner, std::move(r)));
  }
};

}  // namespace

TEST_CASE("endpoint cache: a job's target is the endpoint's relayTo, else the default, with its relay secret",
          "[webhooks][seams]") {
  Service s("http://127.0.0.1:9/default");
  const CreatedEndpoint own = s.create("http://127.0.0.1:9/own");
  const CreatedEndpoint plain = s.create(std::nullopt);

  const auto t1 = must(s.endpoints.relay_target(own.endpoint.id));
  REQUIRE(t1);
  CHECK(t1->url == "http://127.0.0.1:9/own");
  CHECK(t1->secret.view() == own.relay_secret.view());
  CHECK(own.relay_secret.view().starts_with("whrelay_"));
  const auto t2 = must(s.endpoints.relay_target(plain.endpoint.id));
  REQUIRE(t2);
  CHECK(t2->url == "http://127.0.0.1:9/default");

  // Deleted: no target, even though a default exists.
  REQUIRE(s.webhooks.delete_endpoint(s.owner, own.endpoint.id));
  CHECK_FALSE(must(s.endpoints.relay_target(own.endpoint.id)));
  CHECK_FALSE(must(s.endpoints.relay_target("00000000-0000-4000-8000-00000000abcd")));
}

TEST_CASE("endpoint cache: without a default, an endpoint without relayTo has no target until PATCH gives one",
          "[webhooks][seams]") {
  Service s;
  const CreatedEndpoint e = s.create(std::nullopt);
  CHECK_FALSE(must(s.endpoints.relay_target(e.endpoint.id)));
  CHECK(s.waker.calls == 0);

  // A label change wakes nobody; a new target wakes the worker (queued jobs may drain now) and the
  // cache serves it at once.
  UpdateEndpointRequest label;
  label.label = "renamed";
  (void)must(s.webhooks.update_endpoint(s.owner, e.endpoint.id, label));
  CHECK(s.waker.calls == 0);
  UpdateEndpointRequest target;
  target.relay_to.emplace("http://127.0.0.1:9/new");
  (void)must(s.webhooks.update_endpoint(s.owner, e.endpoint.id, target));
  CHECK(s.waker.calls == 1);
  const auto t = must(s.endpoints.relay_target(e.endpoint.id));
  REQUIRE(t);
  CHECK(t->url == "http://127.0.0.1:9/new");

  // Clearing it again: no target, no wake.
  UpdateEndpointRequest clear;
  clear.relay_to.emplace(std::nullopt);
  (void)must(s.webhooks.update_endpoint(s.owner, e.endpoint.id, clear));
  CHECK(s.waker.calls == 1);
  CHECK_FALSE(must(s.endpoints.relay_target(e.endpoint.id)));
}

TEST_CASE("the provider list of messages and help comes from the verifier registry", "[webhooks][seams]") {
  std::string expected;
  for (const auto name : webhooks::providers()) expected += (expected.empty() ? "" : ", ") + std::string(name);
  CHECK(webhooks::provider_list() == expected);
  const std::string with_or = webhooks::provider_list(" or ");
  CHECK(with_or.ends_with(std::string(webhooks::providers()[webhooks::providers().size() - 2]) + " or " +
                          std::string(webhooks::providers().back())));

  Service s;
  CreateEndpointRequest unknown;
  unknown.provider = "myspace";
  const auto refused = s.webhooks.create_endpoint(s.owner, std::move(unknown));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == ErrorCode::bad_request);
  CHECK(refused.error().message == "unknown provider 'myspace'; use one of " + expected);
  // Only providers whose secret we choose get one generated; the others must pass theirs.
  for (const auto name : webhooks::providers()) {
    CAPTURE(name);
    CreateEndpointRequest r;
    r.provider = std::string(name);
    if (name == "telegram") r.bot_id = "1";
    const auto created = s.webhooks.create_endpoint(s.owner, std::move(r));
    if (webhooks::daemon_generates_secret(*parse_provider(name))) {
      REQUIRE(created);
      CHECK(created->secret);
    } else if (name != "gmail") {
      REQUIRE_FALSE(created);
      CHECK(created.error().message.find(std::string(name) + " issues its own secret") != std::string::npos);
    }
  }
}

TEST_CASE("the relay's POST: its own body shape, signed over exactly the bytes sent", "[webhooks][seams]") {
  WebhookEvent e;
  e.id = "ev1";
  e.endpoint_id = "ep1";
  e.provider = Provider::github;
  e.event_key = "github:d1";
  e.event_type = "push";
  e.received_at = 1'700'000'000'123;
  e.job_state = JobState::queued;
  e.headers = R"([["X-GitHub-Event","push"],["Accept","a"],["Accept","b"]])";
  e.body = R"({"ref":"main"})";
  WebhookJob job;
  job.id = "job1";
  const RelayTarget target{"http://127.0.0.1:9/in", SecretBytes(std::string_view("whrelay_k"))};

  const http::OutboundRequest req = relay_request(e, job, target, 1'700'000'001, std::chrono::milliseconds(1234));
  CHECK(req.method == "POST");
  CHECK(req.url == "http://127.0.0.1:9/in");
  CHECK(req.content_type == "application/json");
  CHECK(req.timeout == std::chrono::milliseconds(1234));
  const json body = json::parse(req.body);
  CHECK(body == json{{"id", "ev1"},
                     {"endpointId", "ep1"},
                     {"provider", "github"},
                     {"eventKey", "github:d1"},
                     {"eventType", "push"},
                     {"receivedAt", "2023-11-14T22:13:20.123Z"},
                     {"headers", {{"Accept", "a, b"}, {"X-GitHub-Event", "push"}}},
                     {"body", R"({"ref":"main"})"},
                     {"bodyEncoding", "utf-8"},
                     {"payload", {{"ref", "main"}}}});
  std::map<std::string, std::string> headers(req.headers.begin(), req.headers.end());
  CHECK(headers["Alumia-Event-Id"] == "ev1");
  CHECK(headers["Alumia-Event-Key"] == "github:d1");
  CHECK(headers["Alumia-Job-Id"] == "job1");
  CHECK(headers["Alumia-Signature"] ==
        "t=1700000001,v1=" + encoding::hex_encode(crypto::hmac_sha256("whrelay_k", "1700000001." + req.body)));

  // A body that is not UTF-8 travels as base64, without a payload.
  e.body = std::string("\xff\xfe\x00\x01", 4);
  const json binary = json::parse(relay_body(e));
  CHECK(binary["bodyEncoding"] == "base64");
  CHECK(binary["body"] == "//4AAQ==");
  CHECK_FALSE(binary.contains("payload"));
  CHECK_FALSE(binary.contains("jobState"));
}

TEST_CASE("endpoint cache: an id that names no endpoint is answered from memory once the ids are loaded",
          "[webhooks][seams]") {
  Service s;
  const CreatedEndpoint before = s.create(std::nullopt);
  const std::string stranger = "00000000-0000-4000-8000-00000000abcd";
  // Nothing loaded yet: only the store can say.
  CHECK_FALSE(s.endpoints.cached(stranger));
  // The first lookup loads the set of endpoint ids; from then on an id outside it (an attacker's random
  // one) is "no such endpoint" without a store read, and so is every other.
  CHECK_FALSE(must(s.endpoints.get(stranger)));
  for (const char* id : {"00000000-0000-4000-8000-00000000abce", "11111111-2222-4333-8444-555555555555"}) {
    const auto answered = s.endpoints.cached(id);
    REQUIRE(answered);
    CHECK_FALSE(*answered);
  }
  // A known endpoint not yet loaded is not answered from memory (its row must be read), then is.
  CHECK_FALSE(s.endpoints.cached(before.endpoint.id));
  REQUIRE(must(s.endpoints.get(before.endpoint.id)));
  REQUIRE(s.endpoints.cached(before.endpoint.id));
  CHECK(*s.endpoints.cached(before.endpoint.id));
  // An endpoint created after the load is never taken for a stranger: the receiver finds it at once.
  const CreatedEndpoint after = s.create(std::nullopt);
  CHECK_FALSE(s.endpoints.cached(after.endpoint.id));
  const auto got = must(s.endpoints.get(after.endpoint.id));
  REQUIRE(got);
  CHECK(got->record.id == after.endpoint.id);
}

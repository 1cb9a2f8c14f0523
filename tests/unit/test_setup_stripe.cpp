// The stripe registrar (common/setup/stripe.cpp) against a fake Stripe API over loopback, through the
// production HTTP client: create (the whsec_ Stripe issues comes back to be stored, and nowhere else),
// idempotent re-runs (update the remembered endpoint; adopt or replace the one with our URL when the
// state was lost; never two endpoints for one URL), removal, every error mapping, and options refused
// before any call.
#include "fake_stripe.hpp"
#include "fakes.hpp"
#include "setup_test_util.hpp"

#include <alumia/net/http.hpp>
#include <alumia/net/http_client.hpp>
#include <alumia/setup/registrar.hpp>

#include <catch2/catch.hpp>

using namespace alumia;
using alumia::test::FakeStripe;
using nlohmann::json;
using RegistrarContext = setup::RegistrarContext;

namespace {

constexpr const char* k_key = "sk_test_51GoodKey0123456789abcdef";
constexpr const char* k_restricted = "rk_test_51Restricted0123456789";
constexpr const char* k_url = "https://hooks.example.com/api/v1/connectors/webhooks/stripe/ep_1";

struct Harness : setup::testing::RegistrarHarness<http::HttplibClient> {
  FakeStripe stripe{{k_key, k_restricted}, {k_restricted}};

  RegistrarContext ctx(json previous = nullptr, std::string secret = {}, std::string key = k_key) {
    return context("conn_s", k_url, stripe.base(), std::move(key), std::move(secret), std::move(previous));
  }
};

const setup::Registrar& registrar() { return setup::stripe_registrar(); }

std::vector<std::string> methods(const std::vector<test::FakeCall>& calls) {
  std::vector<std::string> out;
  for (const auto& c : calls) out.push_back(c.method + " " + c.path);
  return out;
}

std::multimap<std::string, std::string> form(const std::string& body) {
  std::multimap<std::string, std::string> out;
  for (auto& [k, v] : http::form_decode(body)) out.emplace(k, v);
  return out;
}

// A first registration: the endpoint's state and the secret Stripe issued.
std::pair<json, std::string> registered(Harness& h) {
  auto ctx = h.ctx();
  auto r = registrar().apply(ctx, {});
  REQUIRE(r.has_value());
  REQUIRE(r->issued_secret.has_value());
  h.stripe.clear_calls();
  return {r->state, r->issued_secret->str()};
}

Error apply_error(Harness& h, const setup::SetupOptions& options = {}, std::string key = k_key) {
  // Not even Stripe's masked echo of the key (sk_test_...), nor any signing secret.
  return setup::testing::apply_error(registrar(), h.ctx(nullptr, {}, key), options, {key, "sk_test", "whsec_"});
}

}  // namespace

TEST_CASE("stripe setup: registered in the table, secret issued by Stripe", "[setup][stripe]") {
  REQUIRE(setup::find_registrar(Provider::stripe) == &registrar());
  CHECK(registrar().provider() == Provider::stripe);
  CHECK_FALSE(registrar().generates_secret());
}

TEST_CASE("stripe setup: options are checked before any call", "[setup][stripe]") {
  Harness h;
  const auto refused = [&](const setup::SetupOptions& o, const std::string& words) {
    setup::testing::check_refused(registrar(), h.ctx(), o, words);
  };
  setup::SetupOptions o;
  o.repo = "octo-org/hello-world";
  refused(o, "github connections only");
  o = {};
  o.org = "octo-org";
  refused(o, "github connections only");
  o = {};
  o.rotate_secret = true;
  refused(o, "Stripe issues the signing secret");
  o = {};
  o.drop_pending = true;
  refused(o, "telegram");
  o = {};
  o.events = std::vector<std::string>{"charge.succeeded", "Charge Succeeded"};
  refused(o, "not a Stripe event type");
  o.events = std::vector<std::string>{"charge.succeeded", "x&url=https://evil.example"};
  refused(o, "not a Stripe event type");
  o.events = std::vector<std::string>{};
  refused(o, "at least one");
  CHECK(h.stripe.calls().empty());
  CHECK(h.stripe.endpoints().empty());
}

TEST_CASE("stripe setup: creates an endpoint and hands back the whsec_ Stripe issued", "[setup][stripe]") {
  Harness h;
  auto ctx = h.ctx();
  auto r = registrar().apply(ctx, {});
  REQUIRE(r.has_value());
  const auto calls = h.stripe.calls();
  CHECK(methods(calls) == std::vector<std::string>{"GET /v1/webhook_endpoints", "POST /v1/webhook_endpoints"});
  CHECK(calls[0].query == "limit=100");
  for (const auto& c : calls) CHECK(c.headers.at("authorization") == std::string("Bearer ") + k_key);
  CHECK(calls[1].headers.at("content-type") == "application/x-www-form-urlencoded");
  const auto f = form(calls[1].body);
  CHECK(f.count("url") == 1);
  CHECK(f.find("url")->second == k_url);
  CHECK(f.count("enabled_events[]") == 1);
  CHECK(f.find("enabled_events[]")->second == "*");
  CHECK(f.find("metadata[alumia_endpoint_url]")->second == k_url);
  CHECK_THAT(f.find("description")->second, Catch::Contains("conn_s"));

  const auto endpoints = h.stripe.endpoints();
  REQUIRE(endpoints.size() == 1);
  REQUIRE(r->issued_secret.has_value());
  CHECK(r->issued_secret->str() == endpoints[0].secret);
  CHECK(r->issued_secret->str().starts_with("whsec_"));
  CHECK(r->state == json{{"webhookEndpointId", endpoints[0].id}});
  CHECK(r->report ==
        json{{"webhookEndpointId", endpoints[0].id}, {"url", k_url}, {"enabledEvents", {"*"}}, {"status", "enabled"}});
  CHECK(r->still_registered);
  CHECK(r->report.dump().find("whsec_") == std::string::npos);
  CHECK(r->state.dump().find("whsec_") == std::string::npos);
}

TEST_CASE("stripe setup: a re-run updates the remembered endpoint and keeps the secret", "[setup][stripe]") {
  Harness h;
  const auto [state, secret] = registered(h);
  setup::SetupOptions o;
  o.events = std::vector<std::string>{"charge.succeeded", "invoice.paid"};
  auto ctx = h.ctx(state, secret);
  auto r = registrar().apply(ctx, o);
  REQUIRE(r.has_value());
  const std::string id = state["webhookEndpointId"];
  CHECK(methods(h.stripe.calls()) ==
        std::vector<std::string>{"GET /v1/webhook_endpoints/" + id, "POST /v1/webhook_endpoints/" + id});
  const auto f = form(h.stripe.calls()[1].body);
  CHECK(f.find("disabled")->second == "false");
  CHECK(f.count("enabled_events[]") == 2);
  CHECK_FALSE(r->issued_secret.has_value());
  CHECK(r->state == state);
  CHECK(r->report["enabledEvents"] == json{"charge.succeeded", "invoice.paid"});
  const auto endpoints = h.stripe.endpoints();
  REQUIRE(endpoints.size() == 1);
  CHECK(endpoints[0].secret == secret);
  CHECK(endpoints[0].enabled_events == std::vector<std::string>{"charge.succeeded", "invoice.paid"});
}

TEST_CASE("stripe setup: with the state lost, our URL's endpoint is updated when we hold its secret",
          "[setup][stripe]") {
  Harness h;
  h.stripe.set_page_size(2);
  const auto [state, secret] = registered(h);
  for (int i = 0; i < 4; ++i) h.stripe.add_endpoint("https://other.example.com/" + std::to_string(i));
  auto ctx = h.ctx(nullptr, secret);
  auto r = registrar().apply(ctx, {});
  REQUIRE(r.has_value());
  const auto calls = methods(h.stripe.calls());
  CHECK(std::count(calls.begin(), calls.end(), "GET /v1/webhook_endpoints") == 3);  // 2 + 2 + 1, by starting_after
  CHECK(calls.back() == "POST /v1/webhook_endpoints/" + state["webhookEndpointId"].get<std::string>());
  CHECK(r->state == state);
  CHECK_FALSE(r->issued_secret.has_value());
  CHECK(h.stripe.endpoints().size() == 5);
}

TEST_CASE("stripe setup: without a stored secret our URL's endpoint is replaced, never doubled", "[setup][stripe]") {
  Harness h;
  const auto foreign = h.stripe.add_endpoint(k_url);
  h.stripe.add_endpoint("https://other.example.com/x");
  auto ctx = h.ctx();
  auto r = registrar().apply(ctx, {});
  REQUIRE(r.has_value());
  CHECK(methods(h.stripe.calls()) == std::vector<std::string>{"GET /v1/webhook_endpoints",
                                                              "DELETE /v1/webhook_endpoints/" + foreign,
                                                              "POST /v1/webhook_endpoints"});
  REQUIRE(r->issued_secret.has_value());
  const auto endpoints = h.stripe.endpoints();
  REQUIRE(endpoints.size() == 2);
  const auto ours = std::find_if(endpoints.begin(), endpoints.end(), [](const auto& e) { return e.url == k_url; });
  REQUIRE(ours != endpoints.end());
  CHECK(ours->id != foreign);
  CHECK(ours->secret == r->issued_secret->str());

  // Two with our URL and a secret stored: we cannot tell which is ours, so one fresh endpoint replaces them.
  h.stripe.add_endpoint(k_url);
  h.stripe.clear_calls();
  auto ctx2 = h.ctx(nullptr, "whsec_stored");
  auto again = registrar().apply(ctx2, {});
  REQUIRE(again.has_value());
  REQUIRE(again->issued_secret.has_value());
  const auto now = h.stripe.endpoints();
  CHECK(std::count_if(now.begin(), now.end(), [](const auto& e) { return e.url == k_url; }) == 1);
}

TEST_CASE("stripe setup: a remembered endpoint gone at Stripe, or whose secret we lost, is made anew",
          "[setup][stripe]") {
  Harness h;
  SECTION("gone") {
    auto ctx = h.ctx(json{{"webhookEndpointId", "we_Gone0123"}}, "whsec_old");
    auto r = registrar().apply(ctx, {});
    REQUIRE(r.has_value());
    CHECK(methods(h.stripe.calls()) == std::vector<std::string>{"GET /v1/webhook_endpoints/we_Gone0123",
                                                                "GET /v1/webhook_endpoints",
                                                                "POST /v1/webhook_endpoints"});
    REQUIRE(r->issued_secret.has_value());
    CHECK(h.stripe.endpoints().size() == 1);
  }
  SECTION("present, but no secret stored for it") {
    const auto [state, secret] = registered(h);
    auto ctx = h.ctx(state, "");
    auto r = registrar().apply(ctx, {});
    REQUIRE(r.has_value());
    REQUIRE(r->issued_secret.has_value());
    CHECK(r->issued_secret->str() != secret);
    const auto endpoints = h.stripe.endpoints();
    REQUIRE(endpoints.size() == 1);
    CHECK(r->state["webhookEndpointId"] == endpoints[0].id);
    CHECK(r->state != state);
  }
  SECTION("a damaged id never reaches a URL") {
    auto ctx = h.ctx(json{{"webhookEndpointId", "we_x/../../v1/account"}}, "whsec_old");
    auto r = registrar().apply(ctx, {});
    REQUIRE(r.has_value());
    for (const auto& c : h.stripe.calls()) CHECK(c.path.find("account") == std::string::npos);
  }
}

TEST_CASE("stripe setup: remove deletes the endpoint", "[setup][stripe]") {
  Harness h;
  const auto [state, secret] = registered(h);
  auto ctx = h.ctx(state, secret);
  auto r = registrar().remove(ctx, {});
  REQUIRE(r.has_value());
  CHECK(methods(h.stripe.calls()) ==
        std::vector<std::string>{"DELETE /v1/webhook_endpoints/" + state["webhookEndpointId"].get<std::string>()});
  CHECK(h.stripe.endpoints().empty());
  CHECK(r->state == json::object());
  CHECK_FALSE(r->still_registered);
  CHECK(r->report["deleted"] == true);

  // Again with the same state: Stripe's 404 means already gone.
  auto ctx2 = h.ctx(state, secret);
  auto again = registrar().remove(ctx2, {});
  REQUIRE(again.has_value());
  CHECK(again->report["deleted"] == false);

  // Nothing remembered, nothing with our URL: NOT_FOUND naming the URL.
  auto ctx3 = h.ctx();
  auto none = registrar().remove(ctx3, {});
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().code == ErrorCode::not_found);
  CHECK_THAT(none.error().message, Catch::Contains(k_url));

  // Nothing remembered, but an endpoint with our URL: found by listing and deleted.
  h.stripe.add_endpoint("https://other.example.com/x");
  h.stripe.add_endpoint(k_url);
  auto ctx4 = h.ctx();
  auto found = registrar().remove(ctx4, {});
  REQUIRE(found.has_value());
  REQUIRE(h.stripe.endpoints().size() == 1);
  CHECK(h.stripe.endpoints()[0].url == "https://other.example.com/x");
}

TEST_CASE("stripe setup: Stripe's errors map to our codes and name the fix", "[setup][stripe]") {
  Harness h;
  SECTION("a refused key") {
    const auto e = apply_error(h, {}, "sk_test_51Revoked0123456789abcdef");
    CHECK(e.code == ErrorCode::validation_error);
    CHECK_THAT(e.message,
               Catch::Contains("Invalid API Key provided") && Catch::Contains("alumia-connect credentials conn_s"));
  }
  SECTION("a restricted key without Webhook Endpoints: write") {
    const auto e = apply_error(h, {}, k_restricted);
    CHECK(e.code == ErrorCode::validation_error);
    CHECK_THAT(e.message, Catch::Contains("Webhook Endpoints: write") && Catch::Contains("rak_webhook_write"));
    CHECK(e.message.find("rk_test") == std::string::npos);
  }
  SECTION("400 with Stripe's message") {
    h.stripe.script(
        {400,
         R"({"error":{"type":"invalid_request_error","message":"Invalid URL: URL must be publicly accessible.","param":"url"}})",
         {}});
    const auto e = apply_error(h);
    CHECK(e.code == ErrorCode::validation_error);
    CHECK_THAT(e.message, Catch::Contains("URL must be publicly accessible"));
  }
  SECTION("404") {
    h.stripe.script({200, R"({"object":"list","data":[],"has_more":false})", {}});
    h.stripe.script({404, R"({"error":{"type":"invalid_request_error","message":"Unrecognized request URL"}})", {}});
    const auto e = apply_error(h);
    CHECK(e.code == ErrorCode::not_found);
  }
  SECTION("429") {
    h.stripe.script(
        {429, R"({"error":{"type":"rate_limit_error","message":"Too many requests"}})", {{"Retry-After", "7"}}});
    const auto e = apply_error(h);
    CHECK(e.code == ErrorCode::too_many_requests);
    CHECK(e.retry_after_seconds == 7);
  }
  SECTION("5xx") {
    h.stripe.script({503, R"({"error":{"type":"api_error","message":"try later"}})", {}});
    const auto e = apply_error(h);
    CHECK(e.code == ErrorCode::service_unavailable);
    CHECK_THAT(e.message, Catch::Contains("HTTP 503"));
  }
  SECTION("a secret Stripe echoes is masked") {
    h.stripe.script(
        {400,
         R"({"error":{"type":"invalid_request_error","message":"secret whsec_abc123 and key sk_live_xyz are wrong"}})",
         {}});
    const auto e = apply_error(h);
    CHECK_THAT(e.message, Catch::Contains("secret *** and key *** are wrong"));
  }
  SECTION("a create answer without a secret is undone") {
    h.stripe.script({200, R"({"object":"list","data":[],"has_more":false})", {}});
    h.stripe.script({200, R"({"id":"we_NoSecret1","object":"webhook_endpoint","url":"x"})", {}});
    const auto e = apply_error(h);
    CHECK(e.code == ErrorCode::service_unavailable);
    CHECK(h.stripe.calls().back().method == "DELETE");
  }
  SECTION("Stripe unreachable") {
    http::HttplibClient http;
    test::SeededRandom random;
    RegistrarContext ctx{"conn_s", k_url, "http://127.0.0.1:1", SecretBytes(std::string(k_key)), SecretBytes(), nullptr,
                         http,     random};
    auto r = registrar().apply(ctx, {});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ErrorCode::service_unavailable);
    CHECK_THAT(r.error().message, Catch::Contains("Stripe could not be reached"));
  }
  CHECK(h.stripe.endpoints().empty());
}

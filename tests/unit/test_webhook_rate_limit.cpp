// The receiver's rate limit through dispatch(), on a fake clock (issue 13 item 3, SPEC §7): the
// endpoint's bucket is taken before verification, 429 carries Retry-After in whole seconds and the
// fixed public message, and the refusals are counted exactly while costing the store no write each.
#include "daemon_under_test.hpp"

#include <alumia/base/encoding.hpp>
#include <alumia/crypto/crypto.hpp>

#include <chrono>

using namespace alumia;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

struct Receiver {
  test::DaemonUnderTest d;
  std::string id;
  std::string secret;

  explicit Receiver(const json& create) {
    auto r = d.send("POST", "/api/v1/webhook-endpoints", create.dump());
    INFO(r.body);
    REQUIRE(r.status == 201);
    const json data = json::parse(r.body)["data"];
    id = data["endpoint"]["id"];
    secret = data["secret"];
  }
  http::Response deliver(int n, bool good = true) {
    http::Request req;
    req.method = "POST";
    req.path = req.target = "/api/v1/connectors/webhooks/github/" + id;
    req.body = json{{"n", n}}.dump();
    const std::string key = good ? secret : "wrong";
    req.headers = {{"x-hub-signature-256", "sha256=" + encoding::hex_encode(crypto::hmac_sha256(key, req.body))},
                   {"x-github-event", "push"},
                   {"x-github-delivery", "d-" + std::to_string(n)},
                   {"content-type", "application/json"}};
    req.listener = http::ListenerKind::public_;
    return daemon::dispatch(d.ctx, req);
  }
  json endpoint() {
    auto r = d.send("GET", "/api/v1/webhook-endpoints/" + id);
    REQUIRE(r.status == 200);
    return json::parse(r.body)["data"];
  }
};

std::string header(const http::Response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}

}  // namespace

TEST_CASE("receiver: over the endpoint's rate limit, 429 with Retry-After before the signature is checked",
          "[webhooks][rate]") {
  Receiver w({{"provider", "github"}, {"rateLimit", {{"perSecond", 2}, {"burst", 3}}}});
  for (int n = 0; n < 3; ++n) CHECK(w.deliver(n).status == 200);
  auto limited = w.deliver(3);
  CHECK(limited.status == 429);
  CHECK(header(limited, "Retry-After") == "1");  // 500 ms to the next token, rounded up
  CHECK(json::parse(limited.body) ==
        json{{"success", false},
             {"error",
              {{"code", "TOO_MANY_REQUESTS"},
               {"message", "too many deliveries to this webhook endpoint; retry after Retry-After seconds"}}}});
  // A wrong signature over the limit is not even verified: 429, not 401.
  CHECK(w.deliver(4, false).status == 429);
  w.d.clock.advance(499ms);
  CHECK(w.deliver(5).status == 429);
  w.d.clock.advance(1ms);
  CHECK(w.deliver(6).status == 200);
  CHECK(w.deliver(7, false).status == 429);
  w.d.clock.advance(500ms);
  CHECK(w.deliver(8, false).status == 401);  // within the limit, a wrong signature is verified and refused

  const json e = w.endpoint();
  CHECK(e["counts"]["received"] == 4);
  CHECK(e["counts"]["rateLimited"] == 4);
  CHECK(e["counts"]["verificationFailures"] == 1);
  CHECK(e["lastError"]["code"] == "UNAUTHORIZED");
  CHECK(e["rateLimit"] == json{{"perSecond", 2}, {"burst", 3}, {"default", false}});
}

TEST_CASE("receiver: a slow limit's Retry-After is the wait in whole seconds; a changed limit starts full",
          "[webhooks][rate]") {
  Receiver w({{"provider", "github"}, {"rateLimit", {{"perSecond", 1}, {"burst", 1}}}});
  CHECK(w.deliver(0).status == 200);
  CHECK(header(w.deliver(1), "Retry-After") == "1");
  auto r = w.d.send("PATCH", "/api/v1/webhook-endpoints/" + w.id, R"({"rateLimit":{"perSecond":1,"burst":2}})");
  REQUIRE(r.status == 200);
  CHECK(w.deliver(2).status == 200);
  CHECK(w.deliver(3).status == 200);
  CHECK(w.deliver(4).status == 429);
}

TEST_CASE("receiver: refusals within a second cost the store no write each, and are exact when read",
          "[webhooks][rate]") {
  Receiver w(json{{"provider", "github"}});  // the default limit: 1000/s, bursts of 2000
  CHECK(w.endpoint()["rateLimit"] == json{{"perSecond", 1000}, {"burst", 2000}, {"default", true}});
  CHECK(w.deliver(0, false).status == 401);  // the first refusal goes to the store at once
  CHECK(w.endpoint()["counts"]["verificationFailures"] == 1);
  const uint64_t before = w.d.hooks->write_transactions();
  for (int n = 1; n <= 2500; ++n) {
    const int status = w.deliver(n, false).status;
    REQUIRE((status == 401 || status == 429));
  }
  CHECK(w.d.hooks->write_transactions() == before);  // the fake clock has not moved: nothing handed over
  const json e = w.endpoint();                       // the owner's read hands over what is pending
  CHECK(e["counts"]["verificationFailures"].get<int>() + e["counts"]["rateLimited"].get<int>() == 2501);
  CHECK(e["counts"]["rateLimited"] == 501);  // the burst of 2000 after the first: verified, then 429
  CHECK(w.d.hooks->write_transactions() - before <= 2);
}

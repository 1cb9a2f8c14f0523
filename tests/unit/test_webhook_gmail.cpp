// Gmail push / Pub/Sub (PROVIDERS §6): RS256 tokens minted in the test with a fresh RSA-2048 key,
// served through a fake JwksSource; the published claim set; every row of the minted-token table;
// the legacy token; envelope decoding; CachingJwks with a scripted client and a fake clock.
#include "fakes.hpp"
#include "jwt_rs256.hpp"
#include "webhook_test_util.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

using namespace alumia;
using namespace alumia::webhooks;
using namespace alumia::test::jwt;

namespace {

const std::string k_audience = "https://example.com";
const std::string k_email = "gae-gcp@appspot.gserviceaccount.com";
const std::string k_kid = "7d680d8c70d44e947133cbd499ebc1a61c3d5abc";
const std::string k_jwks_url = "http://127.0.0.1:9/certs";
constexpr int64_t k_iat = 1550182335;
constexpr int64_t k_exp = 1550185935;

// The published claim set from Google's docs, verbatim.
const std::string k_claims =
    R"({"aud":"https://example.com","azp":"113774264463038321964","email":"gae-gcp@appspot.gserviceaccount.com","email_verified":true,"exp":1550185935,"iat":1550182335,"iss":"https://accounts.google.com","sub":"113774264463038321964"})";

const std::string k_body =
    R"({"message":{"attributes":{"key":"value"},"data":"eyJlbWFpbEFkZHJlc3MiOiAidXNlckBleGFtcGxlLmNvbSIsICJoaXN0b3J5SWQiOiAiMTIzNDU2Nzg5MCJ9","messageId":"2070443601311540","message_id":"2070443601311540","publishTime":"2021-02-26T19:13:55.749Z","publish_time":"2021-02-26T19:13:55.749Z"},"subscription":"projects/myproject/subscriptions/mysubscription","deliveryAttempt":5})";

class FakeJwks final : public JwksSource {
 public:
  nlohmann::json doc = {{"keys", nlohmann::json::array()}};
  nlohmann::json after_refresh;  // served from the first forced refresh on, when set
  int calls = 0;
  int forced = 0;
  std::string last_url;
  Result<nlohmann::json> keys(const std::string& url, bool force_refresh) override {
    ++calls;
    last_url = url;
    if (force_refresh) {
      ++forced;
      if (!after_refresh.is_null()) doc = after_refresh;
    }
    return doc;
  }
};

struct Fixture {
  Pkey key = generate_rsa();
  FakeJwks jwks;
  EndpointConfig ep;
  Fixture() {
    jwks.doc["keys"].push_back(jwk_of(key.get(), k_kid));
    ep.provider = Provider::gmail;
    ep.audience = k_audience;
    ep.service_account_email = k_email;
    ep.jwks_url = k_jwks_url;
  }
  nlohmann::json claims() const { return nlohmann::json::parse(k_claims); }
  Result<Verdict> push(const std::string& token, int64_t now = k_iat + 10, std::string target = "/push") {
    auto req = testing::post(k_body, {{"content-type", "application/json"}, {"authorization", "Bearer " + token}},
                             std::move(target));
    return testing::run(ep, req, now, &jwks);
  }
};

}  // namespace

TEST_CASE("gmail: RS256 primitive round trip", "[webhooks][gmail]") {
  Pkey key = generate_rsa();
  const std::string n = bn_param(key.get(), OSSL_PKEY_PARAM_RSA_N);
  const std::string e = bn_param(key.get(), OSSL_PKEY_PARAM_RSA_E);
  const std::string sig = rs256(key.get(), "a.b");
  CHECK(crypto::rs256_verify_jwk(n, e, "a.b", sig));
  CHECK_FALSE(crypto::rs256_verify_jwk(n, e, "a.c", sig));
  std::string flipped = sig;
  flipped[10] = static_cast<char>(flipped[10] ^ 0x01);
  CHECK_FALSE(crypto::rs256_verify_jwk(n, e, "a.b", flipped));
  CHECK_FALSE(crypto::rs256_verify_jwk(n, e, "a.b", sig.substr(1)));
  CHECK_FALSE(crypto::rs256_verify_jwk("", e, "a.b", sig));
}

TEST_CASE("gmail: published claim set with a minted token → event", "[webhooks][gmail]") {
  Fixture f;
  const std::string token =
      mint(f.key.get(), k_claims, R"({"alg":"RS256","kid":"7d680d8c70d44e947133cbd499ebc1a61c3d5abc","typ":"JWT"})");
  for (const int64_t now : {k_iat, k_exp - 1}) {
    REQUIRE_OK(f.push(token, now), v);
    CHECK(v->outcome == Outcome::event);
    CHECK(v->event_key == "gmail:pubsub:projects/myproject/subscriptions/mysubscription:2070443601311540");
    CHECK(v->status == 200);
  }
  CHECK(f.jwks.last_url == k_jwks_url);
  CHECK(f.jwks.forced == 0);
  // Posted twice: the same key, so the receiver enqueues it once.
  CHECK(f.push(token)->event_key == f.push(token)->event_key);
}

TEST_CASE("gmail: time checks with 60 s skew", "[webhooks][gmail]") {
  Fixture f;
  const std::string token = mint(f.key.get(), f.claims(), k_kid);
  CHECK(f.push(token, k_exp + 59).has_value());
  REQUIRE_UNAUTHORIZED(f.push(token, k_exp + 60));
  CHECK(f.push(token, k_iat - 60).has_value());
  REQUIRE_UNAUTHORIZED(f.push(token, k_iat - 61));
  auto no_exp = f.claims();
  no_exp.erase("exp");
  REQUIRE_UNAUTHORIZED(f.push(mint(f.key.get(), no_exp, k_kid)));
}

TEST_CASE("gmail: claim mismatches → 401", "[webhooks][gmail]") {
  Fixture f;
  auto with = [&](const char* name, nlohmann::json value) {
    auto c = f.claims();
    c[name] = std::move(value);
    return mint(f.key.get(), c, k_kid);
  };
  REQUIRE_UNAUTHORIZED(f.push(with("aud", "https://other.example")));
  REQUIRE_UNAUTHORIZED(f.push(with("iss", "https://evil.example")));
  REQUIRE_UNAUTHORIZED(f.push(with("email", "someone@evil.example")));
  REQUIRE_UNAUTHORIZED(f.push(with("email_verified", false)));
  REQUIRE_UNAUTHORIZED(f.push(with("email_verified", "true")));
  CHECK(f.push(with("iss", "accounts.google.com")).has_value());
  auto no_verified = f.claims();
  no_verified.erase("email_verified");
  REQUIRE_UNAUTHORIZED(f.push(mint(f.key.get(), no_verified, k_kid)));
}

TEST_CASE("gmail: alg none and HS256 with the public key → 401", "[webhooks][gmail]") {
  Fixture f;
  const std::string claims_b64 = encoding::base64url_encode(k_claims);
  const std::string none =
      encoding::base64url_encode(R"({"alg":"none","kid":"7d680d8c70d44e947133cbd499ebc1a61c3d5abc"})") + "." +
      claims_b64 + ".";
  REQUIRE_UNAUTHORIZED(f.push(none));
  const std::string hs_input =
      encoding::base64url_encode(R"({"alg":"HS256","kid":"7d680d8c70d44e947133cbd499ebc1a61c3d5abc","typ":"JWT"})") +
      "." + claims_b64;
  const std::string pub = f.jwks.doc["keys"][0].dump();
  for (const auto& secret : {pub, bn_param(f.key.get(), OSSL_PKEY_PARAM_RSA_N)}) {
    REQUIRE_UNAUTHORIZED(f.push(hs_input + "." + encoding::base64url_encode(crypto::hmac_sha256(secret, hs_input))));
  }
  // An RS256 token whose header lacks kid.
  REQUIRE_UNAUTHORIZED(f.push(mint(f.key.get(), k_claims, R"({"alg":"RS256","typ":"JWT"})")));
}

TEST_CASE("gmail: unknown kid refetches once, then fails closed; rotated key is found", "[webhooks][gmail]") {
  Fixture f;
  const std::string token = mint(f.key.get(), f.claims(), "rotated-kid");
  REQUIRE_UNAUTHORIZED(f.push(token));
  CHECK(f.jwks.forced == 1);
  CHECK(f.jwks.calls == 2);

  Fixture g;
  g.jwks.after_refresh = {{"keys", nlohmann::json::array({jwk_of(g.key.get(), "rotated-kid")})}};
  CHECK(g.push(mint(g.key.get(), g.claims(), "rotated-kid")).has_value());
  CHECK(g.jwks.forced == 1);
}

TEST_CASE("gmail: signature and token-shape tampering → 401", "[webhooks][gmail]") {
  Fixture f;
  const std::string token = mint(f.key.get(), f.claims(), k_kid);
  const auto dot2 = token.rfind('.');
  std::string sig = *encoding::base64url_decode(token.substr(dot2 + 1));
  sig[5] = static_cast<char>(sig[5] ^ 0x01);
  REQUIRE_UNAUTHORIZED(f.push(token.substr(0, dot2 + 1) + encoding::base64url_encode(sig)));
  // Claims swapped under the original signature.
  auto other = f.claims();
  other["email"] = "x@example.com";
  const std::string forged =
      token.substr(0, token.find('.') + 1) + encoding::base64url_encode(other.dump()) + token.substr(dot2);
  REQUIRE_UNAUTHORIZED(f.push(forged));
  REQUIRE_UNAUTHORIZED(f.push(token + "="));
  REQUIRE_UNAUTHORIZED(f.push(token + ".x"));
  REQUIRE_UNAUTHORIZED(f.push(token.substr(0, dot2)));
  // A key from somebody else under the same kid.
  Pkey stranger = generate_rsa();
  REQUIRE_UNAUTHORIZED(f.push(mint(stranger.get(), f.claims(), k_kid)));
}

TEST_CASE("gmail: Authorization missing, twice, or not Bearer → 401", "[webhooks][gmail]") {
  Fixture f;
  const std::string token = mint(f.key.get(), f.claims(), k_kid);
  REQUIRE_UNAUTHORIZED(testing::run(f.ep, testing::post(k_body, {}), k_iat, &f.jwks));
  REQUIRE_UNAUTHORIZED(testing::run(
      f.ep, testing::post(k_body, {{"authorization", "Bearer " + token}, {"authorization", "Bearer " + token}}), k_iat,
      &f.jwks));
  REQUIRE_UNAUTHORIZED(
      testing::run(f.ep, testing::post(k_body, {{"authorization", "Basic " + token}}), k_iat, &f.jwks));
  CHECK(testing::run(f.ep, testing::post(k_body, {{"authorization", "bearer " + token}}), k_iat, &f.jwks).has_value());
}

TEST_CASE("gmail: legacy token mode and jwt+token", "[webhooks][gmail]") {
  EndpointConfig legacy;
  legacy.provider = Provider::gmail;
  legacy.legacy_token = "s3cret-token";
  auto req = [](std::string target, std::multimap<std::string, std::string> query) {
    auto r = testing::post(k_body, {{"content-type", "application/json"}}, std::move(target));
    r.query = std::move(query);
    return r;
  };
  REQUIRE_OK(testing::run(legacy, req("/push?token=s3cret-token", {{"token", "s3cret-token"}}), 0), v);
  CHECK(v->event_key == "gmail:pubsub:projects/myproject/subscriptions/mysubscription:2070443601311540");
  REQUIRE_UNAUTHORIZED(testing::run(legacy, req("/push?token=wrong", {{"token", "wrong"}}), 0));
  REQUIRE_UNAUTHORIZED(testing::run(legacy, req("/push", {}), 0));
  REQUIRE_UNAUTHORIZED(
      testing::run(legacy, req("/push?token=a&token=s3cret-token", {{"token", "a"}, {"token", "s3cret-token"}}), 0));

  Fixture f;
  f.ep.legacy_token = "s3cret-token";
  const std::string token = mint(f.key.get(), f.claims(), k_kid);
  auto both = req("/push?token=s3cret-token", {{"token", "s3cret-token"}});
  both.headers.emplace_back("authorization", "Bearer " + token);
  CHECK(testing::run(f.ep, both, k_iat, &f.jwks).has_value());
  auto jwt_only = req("/push", {});
  jwt_only.headers.emplace_back("authorization", "Bearer " + token);
  REQUIRE_UNAUTHORIZED(testing::run(f.ep, jwt_only, k_iat, &f.jwks));
  REQUIRE_UNAUTHORIZED(
      testing::run(f.ep, req("/push?token=s3cret-token", {{"token", "s3cret-token"}}), k_iat, &f.jwks));
}

TEST_CASE("gmail: configuration and malformed envelopes", "[webhooks][gmail]") {
  const Verifier* v = find_verifier("gmail");
  EndpointConfig ep;
  ep.provider = Provider::gmail;
  CHECK_FALSE(v->check_config(ep).has_value());
  ep.audience = k_audience;
  CHECK_FALSE(v->check_config(ep).has_value());  // no service account email
  ep.service_account_email = k_email;
  CHECK(v->check_config(ep).has_value());
  // Unconfigured endpoint fails closed.
  REQUIRE_UNAUTHORIZED(testing::run(testing::endpoint("gmail", {}), testing::post(k_body, {}), 0));

  Fixture f;
  const std::string token = mint(f.key.get(), f.claims(), k_kid);
  auto bad = testing::run(f.ep,
                          testing::post(R"({"message":{"data":"e30="},"subscription":"projects/p/subscriptions/s"})",
                                        {{"authorization", "Bearer " + token}}),
                          k_iat, &f.jwks);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == ErrorCode::bad_request);
  auto snake =
      testing::run(f.ep,
                   testing::post(R"({"message":{"message_id":"77"},"subscription":"projects/p/subscriptions/s"})",
                                 {{"authorization", "Bearer " + token}}),
                   k_iat, &f.jwks);
  REQUIRE(snake);
  CHECK(snake->event_key == "gmail:pubsub:projects/p/subscriptions/s:77");
}

TEST_CASE("gmail: envelope data decoding, both alphabets", "[webhooks][gmail]") {
  CHECK(decode_pubsub_data("eyJlbWFpbEFkZHJlc3MiOiAidXNlckBleGFtcGxlLmNvbSIsICJoaXN0b3J5SWQiOiAiMTIzNDU2Nzg5MCJ9") ==
        std::optional<std::string>(R"({"emailAddress": "user@example.com", "historyId": "1234567890"})"));
  const std::string hello = "Hello Cloud Pub/Sub! Here is my message!";
  CHECK(decode_pubsub_data(encoding::base64_encode(hello)) == std::optional<std::string>(hello));
  CHECK(decode_pubsub_data(encoding::base64url_encode(hello)) == std::optional<std::string>(hello));
  CHECK(decode_pubsub_data(encoding::base64url_encode("\xfb\xff\xfe")) == std::optional<std::string>("\xfb\xff\xfe"));
  CHECK_FALSE(decode_pubsub_data("!!!"));
}

namespace {

http::OutboundResponse jwks_reply(const std::string& kid, const std::string& cache_control = "") {
  http::OutboundResponse r;
  r.status = 200;
  r.body = nlohmann::json{{"keys", nlohmann::json::array({{{"kid", kid}, {"kty", "RSA"}}})}}.dump();
  if (!cache_control.empty()) r.headers.emplace_back("cache-control", cache_control);
  return r;
}

}  // namespace

TEST_CASE("gmail: CachingJwks caches, honours max-age and rate-limits refreshes", "[webhooks][gmail]") {
  test::ScriptedHttp client;
  test::FakeClock clock(1'700'000'000'000);
  CachingJwks cache(client, clock, std::chrono::seconds(3600));
  const std::string certs = "https://keys.example/certs";
  client.expect("GET", certs, jwks_reply("a", "public, max-age=300, must-revalidate"))
      .expect("GET", certs, jwks_reply("b"))
      .expect("GET", certs, jwks_reply("c"));

  auto first = cache.keys("https://keys.example/certs", false);
  REQUIRE(first);
  CHECK((*first)["keys"][0]["kid"] == "a");
  CHECK(client.sent_count() == 1);
  CHECK(cache.keys("https://keys.example/certs", false).has_value());
  CHECK(client.sent_count() == 1);  // cached

  // Forced refresh within a minute of the fetch: answered from the cache.
  clock.advance(std::chrono::seconds(30));
  CHECK((*cache.keys("https://keys.example/certs", true))["keys"][0]["kid"] == "a");
  CHECK(client.sent_count() == 1);
  // After a minute: refetched.
  clock.advance(std::chrono::seconds(31));
  CHECK((*cache.keys("https://keys.example/certs", true))["keys"][0]["kid"] == "b");
  CHECK(client.sent_count() == 2);
  // Default TTL (1 h) for the reply without Cache-Control.
  clock.advance(std::chrono::seconds(3599));
  CHECK((*cache.keys("https://keys.example/certs", false))["keys"][0]["kid"] == "b");
  clock.advance(std::chrono::seconds(2));
  CHECK((*cache.keys("https://keys.example/certs", false))["keys"][0]["kid"] == "c");
  CHECK(client.sent_count() == 3);
  // Fetch failure after expiry: the stale copy is served.
  clock.advance(std::chrono::seconds(7200));
  CHECK((*cache.keys("https://keys.example/certs", false))["keys"][0]["kid"] == "c");
  // A URL never fetched: the failure comes through.
  auto none = cache.keys("https://other.example/certs", false);
  REQUIRE_FALSE(none);
  CHECK(none.error().code == ErrorCode::service_unavailable);
  http::OutboundResponse not_found;
  not_found.status = 404;
  client.expect("GET", "https://third.example/certs", not_found);
  auto bad_status = cache.keys("https://third.example/certs", false);
  REQUIRE_FALSE(bad_status);
  CHECK(bad_status.error().code == ErrorCode::service_unavailable);

  // A failure is remembered for 10 s: no outbound request per delivery during an outage (or per
  // token with a made-up kid), then one new attempt.
  const std::size_t asked = client.sent_count();
  CHECK_FALSE(cache.keys("https://third.example/certs", false));
  CHECK_FALSE(cache.keys("https://third.example/certs", true));
  CHECK(client.sent_count() == asked);
  clock.advance(std::chrono::seconds(10));
  client.expect("GET", "https://third.example/certs", jwks_reply("d"));
  auto recovered = cache.keys("https://third.example/certs", false);
  REQUIRE(recovered);
  CHECK((*recovered)["keys"][0]["kid"] == "d");
  CHECK(client.sent_count() == asked + 1);
  CHECK(client.pending() == 0);
}

TEST_CASE("gmail: a rotated kid is refused until the refetch interval has passed, then accepted", "[webhooks][gmail]") {
  // The verifier over CachingJwks, a scripted key server and a fake clock: what the daemon does when a
  // key server rotates (the functional test checks the wiring with a short interval).
  Fixture f;
  Pkey new_key = generate_rsa();
  test::ScriptedHttp server;
  test::FakeClock clock(1'700'000'000'000);
  CachingJwks cache(server, clock, std::chrono::hours(1), std::chrono::seconds(60));
  const auto set_of = [](std::vector<nlohmann::json> keys) { return nlohmann::json{{"keys", keys}}.dump(); };
  const std::string old_set = set_of({jwk_of(f.key.get(), "r1")});
  const std::string rotated_set = set_of({jwk_of(f.key.get(), "r1"), jwk_of(new_key.get(), "r2")});
  auto push = [&](EVP_PKEY* key, const std::string& kid) {
    auto req = testing::post(
        k_body, {{"content-type", "application/json"}, {"authorization", "Bearer " + mint(key, f.claims(), kid)}},
        "/push");
    return testing::run(f.ep, req, k_iat + 10, &cache);
  };

  server.expect("GET", k_jwks_url, 200, old_set);
  CHECK(push(f.key.get(), "r1").has_value());
  CHECK(server.sent_count() == 1);
  // The key server now publishes r2. Within the interval the unknown kid is refused without a fetch.
  server.expect("GET", k_jwks_url, 200, rotated_set);
  REQUIRE_UNAUTHORIZED(push(new_key.get(), "r2"));
  clock.advance(std::chrono::seconds(59));
  REQUIRE_UNAUTHORIZED(push(new_key.get(), "r2"));
  CHECK(server.sent_count() == 1);
  // Once the interval has passed: one refetch, and r2 verifies; r1 still does (still published).
  clock.advance(std::chrono::seconds(1));
  CHECK(push(new_key.get(), "r2").has_value());
  CHECK(push(f.key.get(), "r1").has_value());
  CHECK(push(new_key.get(), "r2").has_value());
  CHECK(server.sent_count() == 2);
  CHECK(server.pending() == 0);
  CHECK(server.unexpected() == 0);
}

TEST_CASE("gmail: CachingJwks fetches outside its lock; concurrent first uses share one fetch", "[webhooks][gmail]") {
  // A client that blocks until released, counting requests.
  class GateClient final : public http::Client {
   public:
    std::mutex m;
    std::condition_variable cv;
    bool open = false;
    int requests = 0;
    Result<http::OutboundResponse> send(const http::OutboundRequest&) override {
      std::unique_lock lock(m);
      ++requests;
      cv.notify_all();
      cv.wait(lock, [&] { return open; });
      return jwks_reply("slow");
    }
  } client;
  test::FakeClock clock;
  CachingJwks cache(client, clock, std::chrono::seconds(3600));
  client.open = true;
  REQUIRE(cache.keys("https://a.example/certs", false));  // cached for a.example
  {
    std::lock_guard lock(client.m);
    client.open = false;
  }
  std::vector<std::thread> waiting;
  std::atomic<int> answered{0};
  for (int i = 0; i < 3; ++i)
    waiting.emplace_back([&] {
      if (cache.keys("https://b.example/certs", false)) ++answered;
    });
  {
    std::unique_lock lock(client.m);
    REQUIRE(client.cv.wait_for(lock, std::chrono::seconds(10), [&] { return client.requests == 2; }));
  }
  // While b.example's fetch hangs, a.example is answered from the cache without waiting.
  CHECK(cache.keys("https://a.example/certs", false).has_value());
  {
    std::lock_guard lock(client.m);
    client.open = true;
  }
  client.cv.notify_all();
  for (auto& t : waiting) t.join();
  CHECK(answered == 3);
  CHECK(client.requests == 2);  // one fetch for the three first uses of b.example
}

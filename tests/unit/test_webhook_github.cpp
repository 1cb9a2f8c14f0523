// GitHub (PROVIDERS §7): both official vectors, the legacy SHA-1 that must never authenticate,
// ping handshake, tampered variants.
#include "webhook_test_util.hpp"

using namespace alumia;
using namespace alumia::webhooks;

namespace {

http::Request delivery(std::string body, std::string sig, std::string event = "push",
                       std::string id = "72d3162e-cc78-11e3-81ab-4c9367dc0958") {
  return testing::post(std::move(body), {{"x-github-event", std::move(event)},
                                         {"x-github-delivery", std::move(id)},
                                         {"x-hub-signature-256", std::move(sig)},
                                         {"user-agent", "GitHub-Hookshot/044aadd"}});
}

}  // namespace

TEST_CASE("github: official docs vector", "[webhooks][github]") {
  CHECK(testing::hex_hmac_sha256("It's a Secret to Everybody", "Hello, World!") ==
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
  auto ep = testing::endpoint("github", {"It's a Secret to Everybody"});
  REQUIRE_OK(
      testing::run(
          ep, delivery("Hello, World!", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"), 0),
      v);
  CHECK(v->outcome == Outcome::event);
  CHECK(v->event_key == "github:72d3162e-cc78-11e3-81ab-4c9367dc0958");
  CHECK(v->event_type == "push");
  CHECK(v->status == 200);
}

TEST_CASE("github: octokit vector, and the legacy SHA-1 never authenticates", "[webhooks][github]") {
  auto ep = testing::endpoint("github", {"mysecret"});
  const std::string body = R"({"foo":"bar"})";
  CHECK(testing::run(ep, delivery(body, "sha256=4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda3"), 0)
            .has_value());
  // Parsing check on the README's SHA-1 value: it is the HMAC-SHA1 of the same input...
  CHECK(encoding::hex_encode(crypto::hmac_sha1("mysecret", body)) == "d03207e4b030cf234e3447bac4d93add4c6643d8");
  // ...and it never authenticates, alone or in the SHA-256 header.
  auto legacy_only = testing::post(body, {{"x-github-event", "push"},
                                          {"x-github-delivery", "d"},
                                          {"x-hub-signature", "sha1=d03207e4b030cf234e3447bac4d93add4c6643d8"}});
  REQUIRE_UNAUTHORIZED(testing::run(ep, legacy_only, 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep, delivery(body, "sha1=d03207e4b030cf234e3447bac4d93add4c6643d8"), 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep, delivery(body, "sha256=d03207e4b030cf234e3447bac4d93add4c6643d8"), 0));
  // A valid SHA-256 next to a legacy header is fine.
  auto both = delivery(body, "sha256=4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda3");
  both.headers.emplace_back("x-hub-signature", "sha1=d03207e4b030cf234e3447bac4d93add4c6643d8");
  CHECK(testing::run(ep, both, 0).has_value());
}

TEST_CASE("github: tampered variants → 401", "[webhooks][github]") {
  auto ep = testing::endpoint("github", {"It's a Secret to Everybody"});
  const std::string hex = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
  REQUIRE_UNAUTHORIZED(testing::run(ep, delivery("Hello, World!\n", "sha256=" + hex), 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep, delivery("Hello, World!", "sha256=" + testing::flip_hex(hex, 1)), 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep, delivery("Hello, World!", hex), 0));
  REQUIRE_UNAUTHORIZED(testing::run(ep, delivery("Hello, World!", "sha256=" + hex + "00"), 0));
  REQUIRE_UNAUTHORIZED(testing::run(testing::endpoint("github", {"It's a secret to everybody"}),
                                    delivery("Hello, World!", "sha256=" + hex), 0));
  auto dup = delivery("Hello, World!", "sha256=" + hex);
  dup.headers.emplace_back("x-hub-signature-256", "sha256=" + hex);
  REQUIRE_UNAUTHORIZED(testing::run(ep, dup, 0));
  auto none = testing::post("Hello, World!", {{"x-github-event", "push"}, {"x-github-delivery", "d"}});
  REQUIRE_UNAUTHORIZED(testing::run(ep, none, 0));
}

TEST_CASE("github: ping is verified, answered 200 empty, not enqueued", "[webhooks][github]") {
  auto ep = testing::endpoint("github", {"s"});
  const std::string body = R"({"zen":"Keep it logically awesome.","hook_id":1})";
  REQUIRE_OK(testing::run(ep, delivery(body, "sha256=" + testing::hex_hmac_sha256("s", body), "ping"), 0), v);
  CHECK(v->outcome == Outcome::handshake);
  CHECK(v->status == 200);
  CHECK(v->reply_body.empty());
  CHECK(v->event_key.empty());
  REQUIRE_UNAUTHORIZED(testing::run(ep, delivery(body, "sha256=" + std::string(64, '0'), "ping"), 0));
}

TEST_CASE("github: verified delivery without a delivery id → 400", "[webhooks][github]") {
  auto ep = testing::endpoint("github", {"s"});
  const std::string body = "{}";
  auto req = testing::post(
      body, {{"x-github-event", "push"}, {"x-hub-signature-256", "sha256=" + testing::hex_hmac_sha256("s", body)}});
  auto r = testing::run(ep, req, 0);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::bad_request);
}

TEST_CASE("HMAC: RFC 4231 and RFC 2202 vectors, keys shorter and longer than the block", "[webhooks][crypto]") {
  // RFC 4231 test case 2 (short key) and 6 (131-byte key: hashed first).
  CHECK(encoding::hex_encode(crypto::hmac_sha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const std::string long_key(131, '\xaa');
  CHECK(encoding::hex_encode(crypto::hmac_sha256(long_key, "Test Using Larger Than Block-Size Key - Hash Key First")) ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  // RFC 2202 HMAC-SHA1 test cases 2 and 6 (80-byte key).
  CHECK(encoding::hex_encode(crypto::hmac_sha1("Jefe", "what do ya want for nothing?")) ==
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  CHECK(encoding::hex_encode(
            crypto::hmac_sha1(std::string(80, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First")) ==
        "aa4ae5e15272d00e95705637ce8a3b55ed402112");
  // A key of exactly one block is used as it is.
  CHECK(crypto::hmac_sha256(std::string(64, 'k'), "m") !=
        crypto::hmac_sha256(crypto::sha256(std::string(64, 'k')), "m"));
}

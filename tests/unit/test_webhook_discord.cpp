// Discord (PROVIDERS §3): RFC 8032 TEST 1 primitive, the regression PING, tampered variants, and
// requests signed in the test with the TEST 1 seed.
#include "webhook_test_util.hpp"

#include <openssl/evp.h>

#include <memory>

using namespace alumia;
using namespace alumia::webhooks;

namespace {

constexpr std::string_view k_seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
constexpr std::string_view k_public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
constexpr std::string_view k_ping =
    R"({"id":"787053080478613555","token":"ThisIsATokenFromDiscordThatIsVeryLong","type":1,"version":1})";
constexpr std::string_view k_ping_sig =
    "f0bd878adcef1f6d475c9644421905bd02b5de38e0d3ecfc6f58a711962c69ccc8dd7c9db312f9bdf08b1e1b8182e27a844da728c5e0dbb550"
    "7bf9931c1ed80b";

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};

// Signs with the TEST 1 seed, as Discord would with its private key.
std::string sign_hex(std::string_view message) {
  const std::string seed = *encoding::hex_decode(k_seed);
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed.data()), seed.size()));
  REQUIRE(key);
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1);
  unsigned char sig[64];
  std::size_t len = sizeof sig;
  REQUIRE(EVP_DigestSign(ctx.get(), sig, &len, reinterpret_cast<const unsigned char*>(message.data()),
                         message.size()) == 1);
  return encoding::hex_encode(std::string_view(reinterpret_cast<const char*>(sig), len));
}

EndpointConfig discord_endpoint() { return testing::endpoint("discord", {std::string(k_public)}); }

http::Request request(std::string body, std::string sig_hex, std::string ts) {
  return testing::post(std::move(body), {{"content-type", "application/json"},
                                         {"x-signature-ed25519", std::move(sig_hex)},
                                         {"x-signature-timestamp", std::move(ts)}});
}

http::Request signed_request(const std::string& body, const std::string& ts = "1700000000") {
  return request(body, sign_hex(ts + body), ts);
}

}  // namespace

TEST_CASE("discord: RFC 8032 TEST 1 primitive", "[webhooks][discord]") {
  const auto pub = *encoding::hex_decode(k_public);
  const auto sig = *encoding::hex_decode(
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24"
      "655141438e7a100b");
  CHECK(crypto::ed25519_verify(pub, "", sig));
  CHECK_FALSE(crypto::ed25519_verify(pub, "x", sig));
  std::string bad = sig;
  bad[0] = static_cast<char>(bad[0] ^ 1);
  CHECK_FALSE(crypto::ed25519_verify(pub, "", bad));
  CHECK_FALSE(crypto::ed25519_verify(pub.substr(0, 31), "", sig));
  CHECK_FALSE(crypto::ed25519_verify(pub, "", sig.substr(0, 63)));
  // Our signer reproduces the RFC signature (the test's signing helper is sound).
  CHECK(sign_hex("") ==
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe"
        "24655141438e7a100b");
}

TEST_CASE("discord: regression PING → 200 PONG", "[webhooks][discord]") {
  REQUIRE(k_ping.size() == 96);
  REQUIRE_OK(
      testing::run(discord_endpoint(), request(std::string(k_ping), std::string(k_ping_sig), "1700000000"), 1700000000),
      v);
  CHECK(v->outcome == Outcome::handshake);
  CHECK(v->status == 200);
  CHECK(v->reply_body == R"({"type":1})");
  CHECK(v->reply_content_type == "application/json");
  CHECK(v->event_key.empty());
  // No replay window by default: the same request verifies much later.
  CHECK(
      testing::run(discord_endpoint(), request(std::string(k_ping), std::string(k_ping_sig), "1700000000"), 1800000000)
          .has_value());
}

TEST_CASE("discord: tampered PING → 401", "[webhooks][discord]") {
  const auto ep = discord_endpoint();
  const std::string body(k_ping);
  const std::string sig(k_ping_sig);
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(body, sig, "1700000001"), 1700000000));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(body, testing::flip_hex(sig, 5), "1700000000"), 1700000000));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(body, sig.substr(0, 126), "1700000000"), 1700000000));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(body + " ", sig, "1700000000"), 1700000000));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(body, "", "1700000000"), 1700000000));
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(body, std::string(128, 'z'), "1700000000"), 1700000000));
  // Discord's deliberately invalid probe: an all-zero signature.
  REQUIRE_UNAUTHORIZED(testing::run(ep, request(body, std::string(128, '0'), "1700000000"), 1700000000));
  auto missing_ts = testing::post(body, {{"x-signature-ed25519", sig}});
  REQUIRE_UNAUTHORIZED(testing::run(ep, missing_ts, 1700000000));
  auto dup = request(body, sig, "1700000000");
  dup.headers.emplace_back("x-signature-ed25519", sig);
  REQUIRE_UNAUTHORIZED(testing::run(ep, dup, 1700000000));
  auto dup_ts = request(body, sig, "1700000000");
  dup_ts.headers.emplace_back("x-signature-timestamp", "1700000000");
  REQUIRE_UNAUTHORIZED(testing::run(ep, dup_ts, 1700000000));
  // Another application's key.
  REQUIRE_UNAUTHORIZED(
      testing::run(testing::endpoint("discord", {std::string(64, 'a')}), request(body, sig, "1700000000"), 1700000000));
}

TEST_CASE("discord: interaction event → discord:interaction:<id>, 202 no body", "[webhooks][discord]") {
  const std::string body =
      R"({"id":"1234567890","token":"tok","type":2,"application_id":"42","version":1,"data":{"name":"hi"}})";
  REQUIRE_OK(testing::run(discord_endpoint(), signed_request(body), 1700000000), v);
  CHECK(v->outcome == Outcome::event);
  CHECK(v->event_key == "discord:interaction:1234567890");
  CHECK(v->event_type == "application_command");
  CHECK(v->status == 202);
  CHECK(v->reply_body.empty());
}

TEST_CASE("discord: webhook events PING → 204, event → 204 with the body-hash key", "[webhooks][discord]") {
  const std::string ping = R"({"version":1,"application_id":"1234560123453231555","type":0})";
  REQUIRE_OK(testing::run(discord_endpoint(), signed_request(ping), 1700000000), p);
  CHECK(p->outcome == Outcome::handshake);
  CHECK(p->status == 204);
  CHECK(p->reply_body.empty());

  const std::string event =
      R"({"version":1,"application_id":"1234560123453231555","type":1,"event":{"type":"APPLICATION_AUTHORIZED","timestamp":"2024-10-18T14:42:53.064834","data":{}}})";
  REQUIRE_OK(testing::run(discord_endpoint(), signed_request(event), 1700000000), v);
  CHECK(v->outcome == Outcome::event);
  CHECK(v->event_key == "discord:event:1234560123453231555:APPLICATION_AUTHORIZED:2024-10-18T14:42:53.064834:" +
                            encoding::hex_encode(crypto::sha256(event)));
  CHECK(v->event_type == "APPLICATION_AUTHORIZED");
  CHECK(v->status == 204);
  CHECK(v->exact_reply);
}

TEST_CASE("discord: verified but malformed → 400", "[webhooks][discord]") {
  for (const std::string& body : {std::string("not json"), std::string(R"({"token":"t","type":2})"),
                                  std::string(R"({"version":1,"application_id":"1","type":1})")}) {
    auto r = testing::run(discord_endpoint(), signed_request(body), 1700000000);
    INFO(body);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::bad_request);
  }
}

TEST_CASE("discord: public key must be 32 bytes of hex", "[webhooks][discord]") {
  const Verifier* v = find_verifier("discord");
  CHECK(v->check_config(discord_endpoint()).has_value());
  CHECK_FALSE(v->check_config(testing::endpoint("discord", {std::string(k_public.substr(0, 62))})).has_value());
  CHECK_FALSE(v->check_config(testing::endpoint("discord", {std::string(64, 'x')})).has_value());
}

// One provider's webhook verifier (common/webhooks/verifiers/), built once per provider with
// FUZZ_PROVIDER set (fuzz/CMakeLists.txt: fuzz_verify_<provider>). The input is a request in the text
// form of request_text.hpp.
//
// A verifier refuses nearly every random request at its signature check, so the harness can sign: a
// signature header whose value is "@sign" is replaced by the correct signature of this request under the
// endpoint's credentials (the provider's scheme, computed here independently of the verifier), which
// lets the fuzzer reach the parsing behind the check. Published vectors (fuzz/corpus/) carry their own
// literal signatures under the vectors' secrets, which the endpoint also holds (rotation: any secret).
//
// Beyond crashes and sanitizer reports, each run checks:
// - a refusal has one of the documented statuses (400, 401, 405, 503) and a message;
// - an accepted event has a key in the provider's namespace, its first item key equal to it, a 2xx
//   status, and no reply content type without a reply body;
// - an accepted request is refused once every credential of the endpoint is replaced by another
//   (secrets, verify token, shared keys, legacy token, JWKS): acceptance that does not depend on the
//   credentials is a forgery.
#include "request_text.hpp"

#include <alumia/base/encoding.hpp>
#include <alumia/crypto/crypto.hpp>
#include <alumia/webhooks/webhooks.hpp>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#ifndef FUZZ_PROVIDER
#error "FUZZ_PROVIDER names the provider (fuzz/CMakeLists.txt)"
#endif

using namespace alumia;
using namespace alumia::webhooks;

namespace {

// The harness's clock: 1700000000 unless the request has "x-fuzz-now: <unix seconds>" (the published vectors
// carry their own time). Stripe's "@sign" signs with it.
constexpr int64_t k_default_now = 1700000000;

int64_t now_of(const http::Request& req) {
  const auto text = req.header("x-fuzz-now");
  if (!text) return k_default_now;
  int64_t now = 0;
  const auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), now);
  if (ec != std::errc{} || ptr != text->data() + text->size() || now < 0 || now > 4'000'000'000) return k_default_now;
  return now;
}
constexpr std::string_view k_sign = "@sign";

[[noreturn]] void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_verify_%s: %s: %s\n", FUZZ_PROVIDER, what, detail.c_str());
  std::abort();
}

using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

std::string sign_with(EVP_PKEY* key, const EVP_MD* md, std::string_view input) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  std::size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, data, input.size()) != 1)
    finding("harness", "cannot sign");
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, data, input.size()) != 1)
    finding("harness", "cannot sign");
  sig.resize(len);
  return sig;
}

std::string bn_param(EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) finding("harness", "no RSA parameter");
  std::string out(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  return out;
}

// The credentials of one endpoint, and the keys the harness signs with.
struct Credentials {
  EndpointConfig endpoint;
  std::string signing_secret;  // the HMAC key / token the harness signs with (secrets.front())
  Pkey ed25519{nullptr, &EVP_PKEY_free};
  Pkey rsa{nullptr, &EVP_PKEY_free};
  nlohmann::json jwks;
};

Credentials make_credentials(char variant) {
  Credentials c;
  const std::string tag(1, variant);
  c.endpoint.provider = parse_provider(FUZZ_PROVIDER).value();
  // The secrets of the published and regression vectors the unit tests check (tests/unit/test_webhook_*.cpp),
  // so that those vectors, committed under fuzz/corpus/fuzz_verify_*/vector-*, verify. Main variant only.
  const std::vector<std::string> published = {"It's a Secret to Everybody" /* GitHub docs */,
                                              "mysecret" /* octokit */,
                                              "8f742231b10e8888abcd99yyyzzz85a5" /* Slack docs */,
                                              "12345" /* twilio-python */,
                                              "webhook_secret" /* stripe-dotnet */,
                                              "whsec_test_secret",
                                              "lin_wh_test_secret",
                                              "test_app_secret",
                                              "abc-DEF_123" /* telegram */};
  if (c.endpoint.provider == Provider::discord) {
    unsigned char seed[32];
    for (int i = 0; i < 32; ++i) seed[i] = static_cast<unsigned char>(variant + i);
    c.ed25519.reset(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, sizeof seed));
    unsigned char pub[32];
    std::size_t len = sizeof pub;
    if (!c.ed25519 || EVP_PKEY_get_raw_public_key(c.ed25519.get(), pub, &len) != 1)
      finding("harness", "no ed25519 key");
    c.endpoint.secrets = {encoding::hex_encode(std::string_view(reinterpret_cast<char*>(pub), len))};
    if (variant == 'a')  // Discord's docs example key, for the published vector
      c.endpoint.secrets.push_back(
          "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");  // RFC 8032 TEST 1
  } else if (c.endpoint.provider == Provider::telegram) {
    c.signing_secret = "fuzz-Telegram_secret-" + tag;
    c.endpoint.secrets = {c.signing_secret};
    if (variant == 'a') c.endpoint.secrets.push_back("abc-DEF_123");
    c.endpoint.bot_id = "123456";
  } else {
    c.signing_secret = "fuzz-secret-" + tag;
    c.endpoint.secrets = {c.signing_secret};
    if (variant == 'a') c.endpoint.secrets.insert(c.endpoint.secrets.end(), published.begin(), published.end());
  }
  c.endpoint.verify_token = variant == 'a' ? "meatyhamhock" /* Meta's docs */ : "fuzz-verify-token-" + tag;
  c.endpoint.shared_keys = {{"fuzz-key-" + tag, "fuzz-shared-key-" + tag}};
  if (c.endpoint.provider == Provider::gmail) {
    c.endpoint.secrets.clear();
    c.endpoint.audience = "https://example.com/push";
    c.endpoint.service_account_email = "push@fuzz.iam.gserviceaccount.com";
    c.endpoint.jwks_url = "https://www.googleapis.com/oauth2/v3/certs";
    c.endpoint.legacy_token = "fuzz-legacy-token-" + tag;
    c.rsa.reset(EVP_RSA_gen(variant == 'a' ? 2048 : 1024));
    if (!c.rsa) finding("harness", "no RSA key");
    c.jwks = {{"keys",
               {{{"kty", "RSA"},
                 {"alg", "RS256"},
                 {"use", "sig"},
                 {"kid", "fuzz-kid"},
                 {"n", encoding::base64url_encode(bn_param(c.rsa.get(), OSSL_PKEY_PARAM_RSA_N))},
                 {"e", encoding::base64url_encode(bn_param(c.rsa.get(), OSSL_PKEY_PARAM_RSA_E))}}}}};
  }
  return c;
}

class FixedJwks final : public JwksSource {
 public:
  nlohmann::json doc;
  Result<nlohmann::json> keys(const std::string&, bool) override { return doc; }
};

std::string hex_hmac(std::string_view key, std::string_view data) {
  return encoding::hex_encode(crypto::hmac_sha256(key, data));
}

// The signature header value the provider would send for this request under `c`.
std::string signature_for(const http::Request& req, const std::string& header, const Credentials& c,
                          const std::string& public_url) {
  switch (c.endpoint.provider) {
    case Provider::github:
    case Provider::whatsapp:
      return "sha256=" + hex_hmac(c.signing_secret, req.body);
    case Provider::linear:
      return hex_hmac(c.signing_secret, req.body);
    case Provider::slack:
      return "v0=" +
             hex_hmac(c.signing_secret, "v0:" + req.header("x-slack-request-timestamp").value_or("") + ":" + req.body);
    case Provider::stripe: {
      const std::string t = std::to_string(now_of(req));
      return "t=" + t + ",v1=" + hex_hmac(c.signing_secret, t + "." + req.body);
    }
    case Provider::telegram:
      return c.signing_secret;
    case Provider::discord: {
      const std::string sig =
          sign_with(c.ed25519.get(), nullptr, req.header("x-signature-timestamp").value_or("") + req.body);
      return encoding::hex_encode(sig);
    }
    case Provider::twilio: {
      // The URL Twilio called, then for a form POST the sorted parameters as name+value.
      std::string text = public_url;
      const bool json_variant = public_url.find("bodySHA256=") != std::string::npos;
      if (req.method == "POST" && !json_variant) {
        auto params = http::form_decode(req.body);
        std::sort(params.begin(), params.end());
        for (const auto& [name, value] : params) text += name + value;
      }
      const bool shared = req.header("x-twilio-webhooks-signature-settings").has_value();
      const std::string key = shared ? c.endpoint.shared_keys.begin()->second : c.signing_secret;
      return encoding::base64_encode(shared ? crypto::hmac_sha256(key, text) : crypto::hmac_sha1(key, text));
    }
    case Provider::gmail: {
      if (header != "authorization") return c.endpoint.legacy_token;
      const std::string jwt_header =
          req.header("x-fuzz-jwt-header").value_or(R"({"alg":"RS256","kid":"fuzz-kid","typ":"JWT"})");
      const std::string claims = req.header("x-fuzz-claims").value_or("{}");
      const std::string input = encoding::base64url_encode(jwt_header) + "." + encoding::base64url_encode(claims);
      return "Bearer " + input + "." + encoding::base64url_encode(sign_with(c.rsa.get(), EVP_sha256(), input));
    }
  }
  return {};
}

// Applies "@sign" (headers, and the query's token= for gmail's legacy mode); true when it signed.
bool sign(http::Request& req, const Credentials& c, const std::string& public_url) {
  bool signed_any = false;
  for (auto& [name, value] : req.headers)
    if (value == k_sign || (name == "authorization" && value == "Bearer @sign")) {
      value = signature_for(req, name, c, public_url);
      signed_any = true;
    }
  for (auto& [name, value] : req.query)
    if (name == "token" && value == k_sign) {
      value = c.endpoint.legacy_token;
      signed_any = true;
    }
  return signed_any;
}

// gmail: which checks the endpoint asks for (x-fuzz-mode: jwt, legacy, both; default jwt).
void apply_gmail_mode(const http::Request& req, EndpointConfig& endpoint) {
  const std::string mode = req.header("x-fuzz-mode").value_or("jwt");
  if (mode == "legacy") {
    endpoint.audience.clear();
    endpoint.service_account_email.clear();
  } else if (mode != "both") {
    endpoint.legacy_token.clear();
  }
}

void check_outcome(const Result<Verdict>& r) {
  if (!r) {
    const int status = r.error().http_status();
    if (status != 400 && status != 401 && status != 405 && status != 503)
      finding("refusal with an undocumented status", std::to_string(status) + " " + r.error().message);
    if (r.error().message.empty()) finding("refusal without a message", std::to_string(status));
    return;
  }
  const Verdict& v = *r;
  if (v.status < 200 || v.status > 299) finding("accepted with a non-2xx status", std::to_string(v.status));
  if (v.reply_body.empty() && !v.reply_content_type.empty())
    finding("reply content type without a body", v.reply_content_type);
  if (v.outcome == Outcome::event) {
    const std::string prefix = std::string(FUZZ_PROVIDER) + ":";
    if (!v.event_key.starts_with(prefix)) finding("event key outside the provider's namespace", v.event_key);
    if (!v.item_keys.empty() && v.item_keys.front() != v.event_key)
      finding("first item key is not the event key", v.event_key);
  } else if (!v.event_key.empty()) {
    finding("a handshake or ignored request with an event key", v.event_key);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Credentials main_creds = make_credentials('a');
  static const Credentials other_creds = make_credentials('b');
  static FixedJwks main_jwks, other_jwks;
  main_jwks.doc = main_creds.jwks;
  other_jwks.doc = other_creds.jwks;

  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const http::Request original = fuzz::parse_request(text);
  // twilio: the public URL when the request names no Host (else rebuilt from Host, as the daemon does).
  const bool has_host = original.header("host").has_value();
  const std::string public_url = has_host ? std::string{} : "https://hooks.example.com" + original.target;
  const std::string signed_url = has_host ? original.header("x-forwarded-proto").value_or("https") + "://" +
                                                *original.header("host") + original.target
                                          : public_url;
  if (original.header("x-fuzz-jwks")) {
    auto doc = nlohmann::json::parse(*original.header("x-fuzz-jwks"), nullptr, false);
    if (!doc.is_discarded()) main_jwks.doc = std::move(doc);
  }

  http::Request req = original;
  EndpointConfig endpoint = main_creds.endpoint;
  if (endpoint.provider == Provider::gmail) apply_gmail_mode(req, endpoint);
  sign(req, main_creds, signed_url);
  const Result<Verdict> verdict =
      find_verifier(endpoint.provider).verify(req, {endpoint, now_of(req) * 1000, &main_jwks, public_url});
  check_outcome(verdict);
  if (std::getenv("FUZZ_VERBOSE") != nullptr)  // to see what the seeds reach: FUZZ_VERBOSE=1 fuzz_verify_x seed
    std::fprintf(
        stderr, "%s\n",
        verdict ? ("accepted: " + verdict->event_key).c_str() : ("refused: " + verdict.error().message).c_str());
  if (!verdict) return 0;

  // Forgery check: the request as verified (signed, where the harness signed, for the main credentials)
  // must be refused by the same endpoint holding other credentials.
  EndpointConfig other = other_creds.endpoint;
  if (other.provider == Provider::gmail) apply_gmail_mode(req, other);
  const Result<Verdict> replay =
      find_verifier(other.provider).verify(req, {other, now_of(req) * 1000, &other_jwks, public_url});
  if (replay) finding("accepted under credentials it was not signed with", replay->event_key);
  return 0;
}

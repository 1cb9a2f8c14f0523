#pragma once
// Helpers for the webhook functional tests: endpoint creation and requests signed the way each
// provider signs them (PROVIDERS.md), computed here with OpenSSL.
#include "process.hpp"

#include <alumia/crypto/crypto.hpp>
#include <alumia/net/http.hpp>

#include <openssl/evp.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace alumia::test::webhooks {

using nlohmann::json;
using HeaderList = std::vector<std::pair<std::string, std::string>>;

inline int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
inline int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Ed25519 with a fixed seed (Discord's app key pair).
class Ed25519 {
 public:
  Ed25519() {
    unsigned char seed[32];
    for (int i = 0; i < 32; ++i) seed[i] = static_cast<unsigned char>(i * 7 + 1);
    m_key.reset(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, sizeof seed));
    REQUIRE(m_key);
  }
  std::string public_hex() const {
    unsigned char pub[32];
    size_t n = sizeof pub;
    REQUIRE(EVP_PKEY_get_raw_public_key(m_key.get(), pub, &n) == 1);
    return encoding::hex_encode(std::string(reinterpret_cast<char*>(pub), n));
  }
  std::string sign_hex(const std::string& message) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, m_key.get()) == 1);
    unsigned char sig[64];
    size_t n = sizeof sig;
    REQUIRE(EVP_DigestSign(ctx.get(), sig, &n, reinterpret_cast<const unsigned char*>(message.data()),
                           message.size()) == 1);
    return encoding::hex_encode(std::string(reinterpret_cast<char*>(sig), n));
  }

 private:
  struct Free {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  };
  std::unique_ptr<EVP_PKEY, Free> m_key;
};

inline std::string receive_path(const std::string& provider, const std::string& id) {
  return "/api/v1/connectors/webhooks/" + provider + "/" + id;
}

// POST /api/v1/webhook-endpoints; returns data ({endpoint, secret?, relaySecret}).
inline json create_endpoint(const Daemon& d, const json& body) {
  auto r = d.api("POST", "/api/v1/webhook-endpoints", body.dump());
  INFO(r.body);
  REQUIRE(r.status == 201);
  return r.json()["data"];
}

inline json events_of(const Daemon& d, const std::string& endpoint_id) {
  auto r = d.api("GET", "/api/v1/connector-events?limit=200&endpoint=" + endpoint_id);
  INFO(r.body);
  REQUIRE(r.status == 200);
  return r.json()["data"]["items"];
}

inline json endpoint_of(const Daemon& d, const std::string& id) {
  auto r = d.api("GET", "/api/v1/webhook-endpoints/" + id);
  INFO(r.body);
  REQUIRE(r.status == 200);
  return r.json()["data"];
}

// A request as a provider would send it.
struct Delivery {
  std::string method = "POST";
  std::string query;  // appended to the path, with '?'
  HeaderList headers;
  std::string body;
};

// What the test knows about an endpoint to sign for it.
struct Signer {
  std::string provider;
  std::string secret;  // HMAC key / token
  std::string verify_token;
  const Ed25519* ed = nullptr;
  std::string url_base;  // for twilio: https://host:port
  std::string endpoint_id;
};

// A signer for `provider` (the other members stay empty).
inline Signer make_signer(std::string provider, std::string secret, std::string endpoint_id) {
  Signer s;
  s.provider = std::move(provider);
  s.secret = std::move(secret);
  s.endpoint_id = std::move(endpoint_id);
  return s;
}

// A valid event delivery with native id `n`; `bad` breaks the signature; `age` shifts the
// timestamp into the past (seconds) where the scheme has one.
inline Delivery make_delivery(const Signer& s, int n, bool bad = false, int64_t age = 0) {
  Delivery d;
  const std::string id = std::to_string(n);
  const std::string wrong = "not-the-secret";
  const std::string& key = bad ? wrong : s.secret;
  if (s.provider == "telegram") {
    d.body = json{{"update_id", 1000 + n}, {"message", {{"message_id", n}, {"text", "hi"}}}}.dump();
    d.headers = {{"X-Telegram-Bot-Api-Secret-Token", key}, {"Content-Type", "application/json"}};
  } else if (s.provider == "slack") {
    d.body = json{{"type", "event_callback"},
                  {"api_app_id", "A1"},
                  {"event_id", "Ev" + id},
                  {"event", {{"type", "message"}, {"text", "hi"}}}}
                 .dump();
    const std::string ts = std::to_string(now_unix() - age);
    d.headers = {
        {"X-Slack-Request-Timestamp", ts},
        {"X-Slack-Signature", "v0=" + encoding::hex_encode(crypto::hmac_sha256(key, "v0:" + ts + ":" + d.body))},
        {"Content-Type", "application/json"}};
  } else if (s.provider == "discord") {
    d.body = json{{"version", 1},
                  {"application_id", "app1"},
                  {"type", 1},
                  {"event",
                   {{"type", "APPLICATION_AUTHORIZED"},
                    {"timestamp", "2026-11-29T00:00:0" + std::to_string(n % 10) + "Z"},
                    {"data", {{"n", n}}}}}}
                 .dump();
    const std::string ts = std::to_string(now_unix());
    std::string sig = s.ed->sign_hex(ts + d.body);
    if (bad) sig[0] = sig[0] == '0' ? '1' : '0';
    d.headers = {{"X-Signature-Ed25519", sig}, {"X-Signature-Timestamp", ts}, {"Content-Type", "application/json"}};
  } else if (s.provider == "whatsapp") {
    d.body =
        json{{"object", "whatsapp_business_account"},
             {"entry",
              json::array(
                  {{{"id", "1"},
                    {"changes", json::array({{{"field", "messages"},
                                              {"value", {{"messages", json::array({{{"id", "wamid." + id}}})}}}}})}}})}}
            .dump();
    d.headers = {{"X-Hub-Signature-256", "sha256=" + encoding::hex_encode(crypto::hmac_sha256(key, d.body))},
                 {"Content-Type", "application/json"}};
  } else if (s.provider == "twilio") {
    std::vector<std::pair<std::string, std::string>> params{
        {"AccountSid", "AC1"}, {"MessageSid", "SM" + id}, {"Body", "hi there"}};
    d.body = http::form_encode(params);
    std::sort(params.begin(), params.end());
    std::string text = s.url_base + receive_path("twilio", s.endpoint_id);
    for (const auto& [k, v] : params) text += k + v;
    d.headers = {{"X-Twilio-Signature", encoding::base64_encode(crypto::hmac_sha1(key, text))},
                 {"Content-Type", "application/x-www-form-urlencoded"}};
  } else if (s.provider == "gmail") {
    d.query = "?token=" + (bad ? wrong : s.verify_token);
    d.body =
        json{{"message", {{"data", "e30="}, {"messageId", "m" + id}}}, {"subscription", "projects/p/subscriptions/s"}}
            .dump();
    d.headers = {{"Content-Type", "application/json"}};
  } else if (s.provider == "github") {
    d.body = json{{"ref", "refs/heads/main"}, {"n", n}}.dump();
    d.headers = {{"X-Hub-Signature-256", "sha256=" + encoding::hex_encode(crypto::hmac_sha256(key, d.body))},
                 {"X-GitHub-Event", "push"},
                 {"X-GitHub-Delivery", "delivery-" + id},
                 {"Content-Type", "application/json"}};
  } else if (s.provider == "linear") {
    d.body = json{{"type", "Issue"},
                  {"action", "create"},
                  {"data", {{"id", "issue-" + id}, {"createdAt", "2026-11-29T00:00:00.000Z"}}},
                  {"webhookTimestamp", now_ms() - age * 1000}}
                 .dump();
    d.headers = {{"Linear-Signature", encoding::hex_encode(crypto::hmac_sha256(key, d.body))},
                 {"Linear-Delivery", "ld-" + id},
                 {"Linear-Event", "Issue"},
                 {"Content-Type", "application/json"}};
  } else if (s.provider == "stripe") {
    d.body = json{{"id", "evt_" + id}, {"object", "event"}, {"type", "customer.created"}}.dump();
    const std::string t = std::to_string(now_unix() - age);
    d.headers = {
        {"Stripe-Signature", "t=" + t + ",v1=" + encoding::hex_encode(crypto::hmac_sha256(key, t + "." + d.body))},
        {"Content-Type", "application/json"}};
  } else {
    FAIL("no signer for " << s.provider);
  }
  return d;
}

inline HttpReply send(const Daemon& daemon, const Signer& s, const Delivery& d,
                      const std::string& provider_in_path = {}) {
  return http_request(
      d.method,
      daemon.url() + receive_path(provider_in_path.empty() ? s.provider : provider_in_path, s.endpoint_id) + d.query,
      d.headers, d.body);
}

}  // namespace alumia::test::webhooks

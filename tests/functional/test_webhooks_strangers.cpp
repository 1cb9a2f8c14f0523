// What a stranger on the public listener learns from the receiver (issue 10 item 4, SPEC §7): every
// refused delivery of every provider, and every refusal of the receiver itself, gets one fixed
// answer per code, with nothing provider-, host- or endpoint-specific in it. The detail is the
// owner's: the endpoint's lastError (control listener, `webhooks show`) and the log, which a
// stranger cannot fill at will.
#include "cli_helpers.hpp"
#include "jwt_rs256.hpp"
#include "process.hpp"
#include "webhook_helpers.hpp"

#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;
namespace jwt = alumia::test::jwt;

namespace {

// The contract: one body per code, whatever went wrong.
json generic(const std::string& code, const std::string& message) {
  return json{{"success", false}, {"error", {{"code", code}, {"message", message}}}};
}
const json k_unauthorized = generic("UNAUTHORIZED", "signature verification failed");
const json k_not_found = generic("NOT_FOUND", "no such webhook endpoint");
const json k_malformed = generic("BAD_REQUEST", "malformed webhook delivery");
const json k_method = generic("BAD_REQUEST", "method not allowed for this webhook endpoint");
const json k_too_large = generic("PAYLOAD_TOO_LARGE", "request body too large");
const json k_unavailable = generic("SERVICE_UNAVAILABLE", "webhook receiver temporarily unavailable; retry later");

const std::string k_unknown_id = "2b1c8f0e-9f1a-4c1e-8d5a-3f1e2d3c4b5a";
const std::string k_audience = "https://push.alumia.test/gmail";
const std::string k_email = "gmail-push@alumia-test.iam.gserviceaccount.com";

struct Endpoint {
  std::string id;
  Signer signer;
};

// The daemon with a public listener; receiver requests go there, as a stranger's would.
struct PublicDaemon {
  TempDir dir;
  Daemon d;
  std::string public_url;
  int public_port = 0;
  Ed25519 ed;  // Discord's app key pair

  PublicDaemon() : d(dir.path(), with_public(daemon_options())) {
    auto st = d.api("GET", "/api/v1/status");
    REQUIRE(st.status == 200);
    public_url = st.json()["data"]["publicUrl"];
    public_port = std::stoi(public_url.substr(public_url.rfind(':') + 1));
  }
  static Daemon::Options with_public(Daemon::Options o) {
    o.extra_args = {"--public-listen", "127.0.0.1:0"};
    return o;
  }

  Endpoint create(const std::string& provider, json body) {
    body["provider"] = provider;
    json created = create_endpoint(d, body);
    Endpoint e;
    e.id = created["endpoint"]["id"];
    e.signer.provider = provider;
    e.signer.endpoint_id = e.id;
    e.signer.url_base = public_url;
    e.signer.ed = &ed;
    if (body.contains("secret")) e.signer.secret = body["secret"];
    if (created.contains("secret")) e.signer.secret = created["secret"];
    if (body.contains("verifyToken")) e.signer.verify_token = body["verifyToken"];
    return e;
  }
  HttpReply send(const Endpoint& e, const Delivery& dl, const std::string& provider_in_path = {}) const {
    return http_request(
        dl.method,
        public_url +
            receive_path(provider_in_path.empty() ? e.signer.provider : provider_in_path, e.signer.endpoint_id) +
            dl.query,
        dl.headers, dl.body);
  }
};

struct Case {
  std::string name;
  const Endpoint* endpoint;  // whose lastError shows the detail; nullptr: no endpoint to tell
  std::function<HttpReply()> send;
  int status;
  json body;
  std::string detail_code;  // lastError.code
  std::string detail;       // a piece of lastError.message
};

void set_header(Delivery& dl, const std::string& name, const std::string& value) {
  for (auto& [n, v] : dl.headers)
    if (n == name) v = value;
}

}  // namespace

TEST_CASE("webhook receiver: a stranger gets one generic answer per code; the owner sees the detail",
          "[webhooks][strangers]") {
  PublicDaemon pd;
  Daemon& d = pd.d;
  const Ed25519& ed = pd.ed;
  const jwt::Pkey key = jwt::generate_rsa();

  const Endpoint telegram = pd.create("telegram", {{"botId", "123456"}});
  const Endpoint slack = pd.create("slack", {{"secret", "8f742231b10e8888abcd99yyyzzz85a5"}});
  const Endpoint discord = pd.create("discord", {{"secret", ed.public_hex()}});
  const Endpoint whatsapp =
      pd.create("whatsapp", {{"secret", "meta-app-secret"}, {"verifyToken", "meta-verify-token"}});
  const Endpoint twilio = pd.create("twilio", {{"secret", "12345abcdef67890twilioauthtoken1"}});
  const Endpoint gmail = pd.create("gmail", {{"verifyToken", "pubsub-shared-token"}});
  // JWT mode with key servers a stranger must learn nothing about: one that refuses (the daemon's
  // own control API answers 401 without a key) and one where nothing listens.
  const std::string refusing_jwks = d.url() + "/api/v1/status";
  const std::string dead_jwks = "http://127.0.0.1:" + std::to_string(free_port()) + "/certs";
  const Endpoint gmail_refused =
      pd.create("gmail", {{"audience", k_audience}, {"serviceAccountEmail", k_email}, {"jwksUrl", refusing_jwks}});
  const Endpoint gmail_dead =
      pd.create("gmail", {{"audience", k_audience}, {"serviceAccountEmail", k_email}, {"jwksUrl", dead_jwks}});
  const Endpoint github = pd.create("github", {{"maxBodyBytes", 1024}});
  const Endpoint linear = pd.create("linear", {{"secret", "lin_wh_signing_secret_from_linear"}});
  const Endpoint stripe = pd.create("stripe", {{"secret", "whsec_test_secret_value"}});
  const Endpoint disabled = pd.create("github", {});
  REQUIRE(d.api("PATCH", "/api/v1/webhook-endpoints/" + disabled.id, R"({"status":"disabled"})").status == 200);

  const auto bad = [&](const Endpoint& e) {
    return [&pd, &e] { return pd.send(e, make_delivery(e.signer, 1, true)); };
  };
  const auto stale = [&](const Endpoint& e) {
    return [&pd, &e] { return pd.send(e, make_delivery(e.signer, 1, false, 600)); };
  };
  const auto push_jwt = [&](const Endpoint& e) {
    return [&pd, &e, &key] {
      Delivery dl = make_delivery(e.signer, 1);
      dl.query.clear();
      dl.headers.emplace_back("Authorization", "Bearer " + jwt::mint(key.get(),
                                                                     json{{"aud", k_audience},
                                                                          {"email", k_email},
                                                                          {"email_verified", true},
                                                                          {"iat", now_unix()},
                                                                          {"exp", now_unix() + 3600},
                                                                          {"iss", "https://accounts.google.com"}},
                                                                     "made-up-kid"));
      return pd.send(e, dl);
    };
  };

  std::vector<Case> cases{
      {"telegram: wrong secret_token", &telegram, bad(telegram), 401, k_unauthorized, "UNAUTHORIZED",
       "X-Telegram-Bot-Api-Secret-Token does not match"},
      {"telegram: no secret_token header", &telegram,
       [&] {
         Delivery dl = make_delivery(telegram.signer, 1);
         dl.headers.erase(dl.headers.begin());
         return pd.send(telegram, dl);
       },
       401, k_unauthorized, "UNAUTHORIZED", "missing X-Telegram-Bot-Api-Secret-Token"},
      {"slack: bad signature", &slack, bad(slack), 401, k_unauthorized, "UNAUTHORIZED",
       "X-Slack-Signature does not match"},
      {"slack: stale timestamp", &slack, stale(slack), 401, k_unauthorized, "UNAUTHORIZED", "more than 300 s"},
      {"discord: bad signature", &discord, bad(discord), 401, k_unauthorized, "UNAUTHORIZED",
       "X-Signature-Ed25519 does not verify"},
      {"whatsapp: bad signature", &whatsapp, bad(whatsapp), 401, k_unauthorized, "UNAUTHORIZED",
       "X-Hub-Signature-256 does not match the App Secret"},
      {"whatsapp: GET handshake with a wrong verify token", &whatsapp,
       [&] {
         return http_request("GET", pd.public_url + receive_path("whatsapp", whatsapp.id) +
                                        "?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=42");
       },
       401, k_unauthorized, "UNAUTHORIZED", "hub.verify_token does not match"},
      {"whatsapp: GET handshake without hub.mode", &whatsapp,
       [&] { return http_request("GET", pd.public_url + receive_path("whatsapp", whatsapp.id) + "?hub.challenge=42"); },
       401, k_unauthorized, "UNAUTHORIZED", "hub.mode=subscribe"},
      {"twilio: bad signature", &twilio, bad(twilio), 401, k_unauthorized, "UNAUTHORIZED",
       "X-Twilio-Signature does not match"},
      {"twilio: unknown signature settings", &twilio,
       [&] {
         Delivery dl = make_delivery(twilio.signer, 1);
         dl.headers.emplace_back("X-Twilio-Webhooks-Signature-Settings", "key=k1,algorithm=ROT13");
         return pd.send(twilio, dl);
       },
       401, k_unauthorized, "UNAUTHORIZED", "unsupported Twilio signature algorithm 'ROT13'"},
      {"gmail: wrong push token", &gmail, bad(gmail), 401, k_unauthorized, "UNAUTHORIZED", "push URL token"},
      {"gmail: JWT whose key server refuses the daemon", &gmail_refused, push_jwt(gmail_refused), 503, k_unavailable,
       "SERVICE_UNAVAILABLE", "answered HTTP 401"},
      {"gmail: JWT whose key server is unreachable", &gmail_dead, push_jwt(gmail_dead), 503, k_unavailable,
       "SERVICE_UNAVAILABLE", "request to 127.0.0.1"},
      {"github: bad signature", &github, bad(github), 401, k_unauthorized, "UNAUTHORIZED",
       "X-Hub-Signature-256 does not match the webhook secret"},
      {"github: signature header twice", &github,
       [&] {
         Delivery dl = make_delivery(github.signer, 1);
         dl.headers.push_back(dl.headers.front());
         return pd.send(github, dl);
       },
       401, k_unauthorized, "UNAUTHORIZED", "sent more than once"},
      {"github: GET", &github, [&] { return http_request("GET", pd.public_url + receive_path("github", github.id)); },
       405, k_method, "BAD_REQUEST", "delivered with POST, not GET"},
      {"github: over maxBodyBytes by Content-Length", &github,
       [&] {
         RawReply raw =
             raw_exchange(pd.public_port, "POST " + receive_path("github", github.id) +
                                              " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(pd.public_port) +
                                              "\r\nContent-Type: application/json\r\nContent-Length: "
                                              "2000\r\n\r\n");
         return HttpReply{raw.status, raw.body, {}};
       },
       413, k_too_large, "PAYLOAD_TOO_LARGE", "2000 bytes exceeds maxBodyBytes 1024"},
      {"linear: bad signature", &linear, bad(linear), 401, k_unauthorized, "UNAUTHORIZED",
       "Linear-Signature does not match"},
      {"linear: stale timestamp", &linear, stale(linear), 401, k_unauthorized, "UNAUTHORIZED", "more than 60 s"},
      {"stripe: bad signature", &stripe, bad(stripe), 401, k_unauthorized, "UNAUTHORIZED",
       "no Stripe-Signature v1 matches"},
      {"stripe: stale timestamp", &stripe, stale(stripe), 401, k_unauthorized, "UNAUTHORIZED", "older than 300 s"},
      {"stripe: signed but not JSON", &stripe,
       [&] {
         Delivery dl = make_delivery(stripe.signer, 1);
         dl.body = "not json";
         const std::string t = std::to_string(now_unix());
         set_header(
             dl, "Stripe-Signature",
             "t=" + t + ",v1=" +
                 alumia::encoding::hex_encode(alumia::crypto::hmac_sha256(stripe.signer.secret, t + "." + dl.body)));
         return pd.send(stripe, dl);
       },
       400, k_malformed, "BAD_REQUEST", "stripe body is not valid JSON"},
      {"unknown endpoint", nullptr,
       [&] {
         Endpoint other = github;
         other.signer.endpoint_id = k_unknown_id;
         return pd.send(other, make_delivery(other.signer, 1));
       },
       404, k_not_found, "", ""},
      {"malformed endpoint id", nullptr,
       [&] { return http_request("POST", pd.public_url + receive_path("github", "not-a-uuid"), {}, "{}"); }, 404,
       k_not_found, "", ""},
      {"unknown provider", nullptr, [&] { return pd.send(github, make_delivery(github.signer, 1), "myspace"); }, 404,
       k_not_found, "", ""},
      {"another provider's endpoint", nullptr,
       [&] { return pd.send(github, make_delivery(github.signer, 1), "stripe"); }, 404, k_not_found, "", ""},
      {"disabled endpoint", nullptr, [&] { return pd.send(disabled, make_delivery(disabled.signer, 1)); }, 404,
       k_not_found, "", ""},
      {"unknown endpoint over the default cap", nullptr,
       [&] {
         RawReply raw =
             raw_exchange(pd.public_port, "POST " + receive_path("github", k_unknown_id) +
                                              " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(pd.public_port) +
                                              "\r\nContent-Length: 300000\r\n\r\n");
         return HttpReply{raw.status, raw.body, {}};
       },
       413, k_too_large, "", ""},
  };

  for (const Case& c : cases) {
    INFO(c.name);
    const HttpReply r = c.send();
    INFO(r.status << " " << r.body);
    CHECK(r.status == c.status);
    CHECK(r.json() == c.body);
    // Nothing of the endpoint, the provider or the daemon's hosts in what the stranger reads.
    for (const std::string& secret_ish :
         {std::string("127.0.0.1"), std::string("http"), std::string("JWKS"),
          c.endpoint ? c.endpoint->id : k_unknown_id, c.endpoint ? c.endpoint->signer.provider : std::string("github")})
      CHECK(r.body.find(secret_ish) == std::string::npos);
    if (!c.endpoint) continue;
    // The owner's view: the detail, on the control listener.
    std::string seen;
    const bool recorded = eventually(
        [&] {
          const json e = endpoint_of(d, c.endpoint->id);
          if (!e["lastError"].is_object()) return false;
          seen = e["lastError"].dump();
          return e["lastError"]["code"] == c.detail_code &&
                 e["lastError"]["message"].get<std::string>().find(c.detail) != std::string::npos &&
                 e["lastError"]["at"].is_string();
        },
        std::chrono::seconds(5));
    INFO("lastError " << seen);
    CHECK(recorded);
  }

  // Nothing was stored, and refusals of unknown endpoints touched no endpoint.
  CHECK(events_of(d, github.id).empty());
  CHECK(endpoint_of(d, disabled.id)["lastError"].is_null());

  // The owner reads it in the CLI too; the stranger's answer above never had it.
  auto shown = cli(d, {"webhooks", "show", gmail_refused.id});
  REQUIRE_EXIT(shown, 0);
  CHECK(shown.out.find("last error:") != std::string::npos);
  CHECK(shown.out.find("answered HTTP 401") != std::string::npos);
  auto shown_json = json_out(cli(d, {"--json", "webhooks", "show", gmail_dead.id}));
  CHECK(shown_json["lastError"]["code"] == "SERVICE_UNAVAILABLE");
  CHECK(shown_json["lastError"]["message"].get<std::string>().find("request to 127.0.0.1") != std::string::npos);
  stop_clean(d);
}

TEST_CASE("webhook receiver: refusals are counted, but logged at a bounded rate", "[webhooks][strangers]") {
  PublicDaemon pd;
  const Endpoint github = pd.create("github", {});
  constexpr int k_sent = 60;
  for (int i = 0; i < k_sent; ++i) {
    const HttpReply r = pd.send(github, make_delivery(github.signer, i, true));
    REQUIRE(r.status == 401);
  }
  CHECK(eventually([&] { return endpoint_of(pd.d, github.id)["counts"]["verificationFailures"] == k_sent; },
                   std::chrono::seconds(5)));
  const std::string log = pd.d.log();
  std::size_t lines = 0;
  for (std::size_t at = log.find("refused (UNAUTHORIZED)"); at != std::string::npos;
       at = log.find("refused (UNAUTHORIZED)", at + 1))
    ++lines;
  INFO(log);
  CHECK(lines >= 1);
  CHECK(lines <= 20);  // WebhookService::k_refusal_log_lines a minute
  stop_clean(pd.d);
}

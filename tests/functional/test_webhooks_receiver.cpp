// The webhook receiver against the real daemon: every provider's real signature scheme, the order
// of checks of SPEC §7, dedup and the exact replies providers expect.
#include "process.hpp"
#include "webhook_helpers.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;

namespace {

struct ProviderSetup {
  Signer signer;
  json create;
  int status;          // expected reply to a new event
  bool empty_body;     // reply carries no body (Telegram, Discord events)
  bool has_timestamp;  // a stale timestamp is refused
};

ProviderSetup setup_for(const Daemon& d, const std::string& provider, const Ed25519& ed) {
  ProviderSetup p;
  p.signer.provider = provider;
  p.signer.ed = &ed;
  p.signer.url_base = "https://127.0.0.1:" + std::to_string(d.port());
  p.create = {{"provider", provider}, {"label", provider + " test"}};
  p.status = 200;
  p.empty_body = false;
  p.has_timestamp = false;
  if (provider == "telegram") {
    p.create["botId"] = "123456";
    p.empty_body = true;
  } else if (provider == "slack") {
    p.signer.secret = "8f742231b10e8888abcd99yyyzzz85a5";
    p.has_timestamp = true;
  } else if (provider == "discord") {
    p.signer.secret = ed.public_hex();
    p.status = 204;
    p.empty_body = true;
  } else if (provider == "whatsapp") {
    p.signer.secret = "meta-app-secret";
    p.signer.verify_token = "meta-verify-token";
    p.create["verifyToken"] = p.signer.verify_token;
  } else if (provider == "twilio") {
    p.signer.secret = "12345abcdef67890twilioauthtoken1";
  } else if (provider == "gmail") {
    p.signer.verify_token = "pubsub-shared-token";
    p.create["verifyToken"] = p.signer.verify_token;
  } else if (provider == "stripe") {
    p.signer.secret = "whsec_test_secret_value";
    p.has_timestamp = true;
  } else if (provider == "linear") {
    p.signer.secret = "lin_wh_signing_secret_from_linear";  // Linear shows it in its settings
    p.has_timestamp = true;
  }
  if (!p.signer.secret.empty() && provider != "telegram") p.create["secret"] = p.signer.secret;
  return p;
}

}  // namespace

TEST_CASE("webhook receiver: every provider verifies, stores once and answers as the provider expects", "[webhooks]") {
  TempDir dir;
  Daemon d(dir.path());
  Ed25519 ed;
  for (const std::string provider :
       {"telegram", "slack", "discord", "whatsapp", "twilio", "gmail", "github", "linear", "stripe"}) {
    DYNAMIC_SECTION(provider) {
      ProviderSetup p = setup_for(d, provider, ed);
      json created = create_endpoint(d, p.create);
      const std::string id = created["endpoint"]["id"];
      p.signer.endpoint_id = id;
      CHECK(created["endpoint"]["provider"] == provider);
      CHECK(created["endpoint"]["status"] == "active");
      CHECK(created["endpoint"]["receiveUrl"] == d.url() + receive_path(provider, id));
      CHECK(created["relaySecret"].is_string());
      if (provider == "telegram" || provider == "github") {
        REQUIRE(created["secret"].is_string());
        p.signer.secret = created["secret"];
        if (provider == "telegram") {
          CHECK(p.signer.secret.size() == 64);
          CHECK(p.signer.secret.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
                std::string::npos);
        }
      } else {
        CHECK_FALSE(created.contains("secret"));
      }

      // A new event: stored with its job.
      auto first = send(d, p.signer, make_delivery(p.signer, 1));
      INFO(first.body);
      REQUIRE(first.status == p.status);
      if (p.empty_body) {
        CHECK(first.body.empty());
      } else if (provider == "twilio") {
        CHECK(first.body == "<Response></Response>");
      } else {
        CHECK(first.json()["data"]["eventId"].is_string());
      }
      json events = events_of(d, id);
      REQUIRE(events.size() == 1);
      CHECK(events[0]["provider"] == provider);
      CHECK(events[0]["eventKey"].get<std::string>().rfind(provider + ":", 0) == 0);
      CHECK(events[0]["jobState"] == "queued");  // no relay target: waits queued
      auto jobs = d.api("GET", "/api/v1/jobs?state=queued&limit=200").json()["data"]["items"];
      bool found_job = false;
      for (const auto& j : jobs) found_job = found_job || j["eventId"] == events[0]["id"];
      CHECK(found_job);

      // The same delivery again: 2xx, nothing new.
      auto again = send(d, p.signer, make_delivery(p.signer, 1));
      INFO(again.body);
      REQUIRE(again.status == p.status);
      if (p.empty_body) CHECK(again.body.empty());
      else if (provider != "twilio") CHECK(again.json()["data"]["duplicate"] == true);
      CHECK(events_of(d, id).size() == 1);

      // A bad signature: 401, counted, nothing stored.
      auto bad = send(d, p.signer, make_delivery(p.signer, 2, true));
      CHECK(bad.status == 401);
      CHECK(bad.json()["error"]["code"] == "UNAUTHORIZED");
      if (p.has_timestamp) {
        auto stale = send(d, p.signer, make_delivery(p.signer, 3, false, 600));
        INFO(stale.body);
        CHECK(stale.status == 401);
      }
      CHECK(events_of(d, id).size() == 1);

      // A second distinct event is new.
      auto second = send(d, p.signer, make_delivery(p.signer, 4));
      CHECK(second.status == p.status);
      CHECK(events_of(d, id).size() == 2);

      // Counters are committed with the next batch: poll.
      CHECK(eventually(
          [&] {
            json c = endpoint_of(d, id)["counts"];
            return c["received"] == 2 && c["duplicates"] == 1 && c["verificationFailures"] == (p.has_timestamp ? 2 : 1);
          },
          std::chrono::seconds(5)));
      CHECK(endpoint_of(d, id)["lastDeliveryAt"].is_string());

      // The wrong provider in the path, and then the endpoint deleted: NOT_FOUND.
      auto mismatch = send(d, p.signer, make_delivery(p.signer, 5), provider == "github" ? "stripe" : "github");
      CHECK(mismatch.status == 404);
      REQUIRE(d.api("DELETE", "/api/v1/webhook-endpoints/" + id).status == 200);
      auto gone = send(d, p.signer, make_delivery(p.signer, 6));
      CHECK(gone.status == 404);
      CHECK(d.api("GET", "/api/v1/webhook-endpoints/" + id).status == 404);
    }
  }
  CHECK(d.stop() == 0);
}

TEST_CASE(
    "webhook receiver: a delivery under and one over the poll thread's 64 KiB are each stored once, repeats answered",
    "[webhooks]") {
  TempDir dir;
  Daemon d(dir.path());
  json created = create_endpoint(d, {{"provider", "github"}, {"maxBodyBytes", 1024 * 1024}});
  Signer s;
  s.provider = "github";
  s.secret = created["secret"];
  s.endpoint_id = created["endpoint"]["id"];
  for (const std::size_t pad : {std::size_t{100}, std::size_t{100 * 1024}}) {  // under and over 64 KiB
    CAPTURE(pad);
    Delivery dl = make_delivery(s, static_cast<int>(pad));
    dl.body = json{{"ref", "refs/heads/main"}, {"pad", std::string(pad, 'x')}}.dump();
    dl.headers[0].second = "sha256=" + alumia::encoding::hex_encode(alumia::crypto::hmac_sha256(s.secret, dl.body));
    auto first = send(d, s, dl);
    REQUIRE(first.status == 200);
    CHECK_FALSE(first.json()["data"].contains("duplicate"));
    auto again = send(d, s, dl);
    REQUIRE(again.status == 200);
    CHECK(again.json()["data"]["duplicate"].get<bool>());
    CHECK(again.json()["data"]["eventId"] == first.json()["data"]["eventId"]);
  }
  CHECK(eventually([&] { return endpoint_of(d, s.endpoint_id)["counts"]["received"] == 2; }, std::chrono::seconds(5)));
  CHECK(d.stop() == 0);
}

TEST_CASE("webhook receiver: transport checks, unknown endpoints and body caps", "[webhooks]") {
  TempDir dir;
  Daemon d(dir.path());
  json created = create_endpoint(d, {{"provider", "github"}, {"maxBodyBytes", 1024}});
  Signer s;
  s.provider = "github";
  s.secret = created["secret"];
  s.endpoint_id = created["endpoint"]["id"];
  CHECK(created["endpoint"]["maxBodyBytes"] == 1024);

  SECTION("oversize body → 413 before verification") {
    Delivery big = make_delivery(s, 1);
    big.body = json{{"pad", std::string(2000, 'x')}}.dump();
    auto r = send(d, s, big);
    CHECK(r.status == 413);
    CHECK(r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE");
    CHECK(
        eventually([&] { return endpoint_of(d, s.endpoint_id)["counts"]["rejected"] == 1; }, std::chrono::seconds(5)));
  }
  SECTION("the endpoint's maxBodyBytes is judged from Content-Length, before the body is read") {
    // Headers only: were the daemon to read the 2000-byte body first, this would wait for it.
    const std::string head_only = "POST " + receive_path("github", s.endpoint_id) +
                                  " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(d.port()) +
                                  "\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n";
    auto r = raw_exchange(d.port(), head_only);
    CHECK(r.status == 413);
    CHECK(r.body.find("PAYLOAD_TOO_LARGE") != std::string::npos);
    // The sender learns the code; the limit and the reason are the owner's (lastError).
    CHECK(r.body.find("1024") == std::string::npos);
    CHECK(
        eventually([&] { return endpoint_of(d, s.endpoint_id)["counts"]["rejected"] == 1; }, std::chrono::seconds(5)));
    CHECK(endpoint_of(d, s.endpoint_id)["lastError"]["message"].get<std::string>().find("exceeds maxBodyBytes 1024") !=
          std::string::npos);
    // An unknown endpoint gets the default cap (256 KiB), also before its body.
    auto unknown = raw_exchange(d.port(), "POST " + receive_path("github", "2b1c8f0e-9f1a-4c1e-8d5a-3f1e2d3c4b5a") +
                                              " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(d.port()) +
                                              "\r\nContent-Length: 300000\r\n\r\n");
    CHECK(unknown.status == 413);
    CHECK(unknown.body.find("PAYLOAD_TOO_LARGE") != std::string::npos);
    // Above the route cap (25 MiB) the transport refuses it from the Content-Length alone.
  }
  SECTION("no Content-Length (chunked) → 411") {
    Delivery dl = make_delivery(s, 1);
    auto r = http_request("POST", d.url() + receive_path("github", s.endpoint_id), dl.headers, dl.body, true);
    CHECK(r.status == 411);
  }
  SECTION("unknown endpoint, malformed id, unknown provider → 404") {
    Signer other = s;
    other.endpoint_id = "2b1c8f0e-9f1a-4c1e-8d5a-3f1e2d3c4b5a";
    CHECK(send(d, other, make_delivery(other, 1)).status == 404);
    other.endpoint_id = "not-a-uuid";
    CHECK(send(d, other, make_delivery(other, 1)).status == 404);
    CHECK(send(d, s, make_delivery(s, 1), "myspace").status == 404);
  }
  SECTION("a missing signature header is a verification failure") {
    Delivery dl = make_delivery(s, 1);
    dl.headers.erase(dl.headers.begin());
    CHECK(send(d, s, dl).status == 401);
  }
  SECTION("the event view drops signature headers and keeps the body") {
    auto r = send(d, s, make_delivery(s, 7));
    REQUIRE(r.status == 200);
    const std::string event_id = r.json()["data"]["eventId"];
    auto ev = d.api("GET", "/api/v1/connector-events/" + event_id);
    REQUIRE(ev.status == 200);
    json e = ev.json()["data"];
    CHECK(e["eventKey"] == "github:delivery-7");
    CHECK(e["eventType"] == "push");
    CHECK(e["body"] == make_delivery(s, 7).body);
    CHECK(e["headers"].contains("x-github-delivery"));
    CHECK_FALSE(e["headers"].contains("x-hub-signature-256"));
    CHECK(d.api("GET", "/api/v1/connector-events/2b1c8f0e-9f1a-4c1e-8d5a-3f1e2d3c4b5a").status == 404);
  }
  CHECK(d.stop() == 0);
}

TEST_CASE("webhook receiver: handshakes are verified and answered, never stored", "[webhooks]") {
  TempDir dir;
  Daemon d(dir.path());
  Ed25519 ed;

  SECTION("Slack url_verification") {
    json c = create_endpoint(d, {{"provider", "slack"}, {"secret", "slack-signing-secret"}});
    const std::string id = c["endpoint"]["id"];
    const std::string body =
        R"({"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"})";
    const std::string ts = std::to_string(now_unix());
    auto sign = [&](const std::string& key) {
      return "v0=" + alumia::encoding::hex_encode(alumia::crypto::hmac_sha256(key, "v0:" + ts + ":" + body));
    };
    auto r =
        http_request("POST", d.url() + receive_path("slack", id),
                     {{"X-Slack-Request-Timestamp", ts}, {"X-Slack-Signature", sign("slack-signing-secret")}}, body);
    REQUIRE(r.status == 200);
    CHECK(r.json()["challenge"] == "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
    auto forged = http_request("POST", d.url() + receive_path("slack", id),
                               {{"X-Slack-Request-Timestamp", ts}, {"X-Slack-Signature", sign("wrong")}}, body);
    CHECK(forged.status == 401);
    CHECK(events_of(d, id).empty());
  }
  SECTION("Discord PINGs") {
    json c = create_endpoint(d, {{"provider", "discord"}, {"secret", ed.public_hex()}});
    const std::string id = c["endpoint"]["id"];
    const std::string ts = std::to_string(now_unix());
    const std::string ping = R"({"id":"1","application_id":"app1","type":1,"token":"tok","version":1})";
    auto r = http_request("POST", d.url() + receive_path("discord", id),
                          {{"X-Signature-Ed25519", ed.sign_hex(ts + ping)}, {"X-Signature-Timestamp", ts}}, ping);
    REQUIRE(r.status == 200);
    CHECK(r.json() == json{{"type", 1}});
    const std::string event_ping = R"({"version":1,"application_id":"app1","type":0})";
    auto r2 = http_request("POST", d.url() + receive_path("discord", id),
                           {{"X-Signature-Ed25519", ed.sign_hex(ts + event_ping)}, {"X-Signature-Timestamp", ts}},
                           event_ping);
    CHECK(r2.status == 204);
    CHECK(r2.body.empty());
    auto forged =
        http_request("POST", d.url() + receive_path("discord", id),
                     {{"X-Signature-Ed25519", ed.sign_hex(ts + ping + " ")}, {"X-Signature-Timestamp", ts}}, ping);
    CHECK(forged.status == 401);
    CHECK(events_of(d, id).empty());
  }
  SECTION("Meta GET subscription handshake") {
    json c = create_endpoint(d, {{"provider", "whatsapp"}, {"secret", "app-secret"}, {"verifyToken", "vt-123"}});
    const std::string id = c["endpoint"]["id"];
    auto r = http_request("GET", d.url() + receive_path("whatsapp", id) +
                                     "?hub.mode=subscribe&hub.verify_token=vt-123&hub.challenge=1158201444");
    REQUIRE(r.status == 200);
    CHECK(r.body == "1158201444");
    auto wrong = http_request("GET", d.url() + receive_path("whatsapp", id) +
                                         "?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1158201444");
    CHECK(wrong.status == 401);
    CHECK(events_of(d, id).empty());
  }
  CHECK(d.stop() == 0);
}

TEST_CASE("webhook endpoints: validation, scopes and secret rotation", "[webhooks]") {
  TempDir dir;
  Daemon d(dir.path());

  SECTION("create validates provider, secrets and URLs") {
    CHECK(d.api("POST", "/api/v1/webhook-endpoints", R"({"provider":"myspace"})").status == 400);
    CHECK(d.api("POST", "/api/v1/webhook-endpoints", R"({})").status == 400);
    auto no_secret = d.api("POST", "/api/v1/webhook-endpoints", R"({"provider":"stripe"})");
    CHECK(no_secret.status == 400);
    CHECK(no_secret.json()["error"]["message"].get<std::string>().find("secret") != std::string::npos);
    CHECK(d.api("POST", "/api/v1/webhook-endpoints", R"({"provider":"discord","secret":"abcd"})").status == 422);
    CHECK(d.api("POST", "/api/v1/webhook-endpoints", R"({"provider":"github","relayTo":"ftp://x"})").status == 422);
    CHECK(d.api("POST", "/api/v1/webhook-endpoints", R"({"provider":"github","maxBodyBytes":999999999})").status ==
          422);
    CHECK(d.api("POST", "/api/v1/webhook-endpoints", R"({"provider":"gmail"})").status == 422);
    CHECK(d.api("GET", "/api/v1/webhook-endpoints/not-a-uuid").status == 400);
  }
  SECTION("list is paginated") {
    for (int i = 0; i < 3; ++i) create_endpoint(d, {{"provider", "github"}, {"label", "g" + std::to_string(i)}});
    auto page1 = d.api("GET", "/api/v1/webhook-endpoints?limit=2").json()["data"];
    CHECK(page1["items"].size() == 2);
    CHECK(page1["hasMore"] == true);
    auto page2 = d.api("GET", "/api/v1/webhook-endpoints?limit=2&cursor=" + page1["nextCursor"].get<std::string>())
                     .json()["data"];
    CHECK(page2["items"].size() == 1);
    CHECK(page2["hasMore"] == false);
    CHECK(page2["nextCursor"].is_null());
  }
  SECTION("a key without the webhooks scope is refused") {
    auto k = d.api("POST", "/api/v1/api-keys", R"({"name":"conn only","scopes":["connections"]})");
    REQUIRE(k.status == 201);
    const std::string key = k.json()["data"]["key"];
    auto r = d.api("GET", "/api/v1/webhook-endpoints", "", key);
    CHECK(r.status == 403);
    CHECK(d.api("GET", "/api/v1/connector-events", "", key).status == 403);
    CHECK(d.api("GET", "/api/v1/jobs", "", key).status == 403);
  }
  SECTION("rotate-secret: the old secret verifies during the grace period, then only the new one") {
    json c = create_endpoint(d, {{"provider", "github"}});
    Signer s;
    s.provider = "github";
    s.secret = c["secret"];
    s.endpoint_id = c["endpoint"]["id"];
    auto rot = d.api("POST", "/api/v1/webhook-endpoints/" + s.endpoint_id + "/rotate-secret", "{}");
    INFO(rot.body);
    REQUIRE(rot.status == 200);
    const std::string fresh = rot.json()["data"]["secret"];
    CHECK(fresh != s.secret);
    CHECK(rot.json()["data"]["previousSecretExpiresAt"].is_string());
    CHECK(send(d, s, make_delivery(s, 1)).status == 200);  // old, in grace
    Signer n = s;
    n.secret = fresh;
    CHECK(send(d, n, make_delivery(n, 2)).status == 200);
    // No grace: the old one stops at once.
    auto rot2 = d.api("POST", "/api/v1/webhook-endpoints/" + s.endpoint_id + "/rotate-secret", R"({"graceSeconds":0})");
    REQUIRE(rot2.status == 200);
    CHECK(send(d, n, make_delivery(n, 3)).status == 401);
    Signer n2 = s;
    n2.secret = rot2.json()["data"]["secret"];
    CHECK(send(d, n2, make_delivery(n2, 4)).status == 200);
    // Provider-issued secrets must be given.
    json st = create_endpoint(d, {{"provider", "stripe"}, {"secret", "whsec_a"}});
    CHECK(d.api("POST", "/api/v1/webhook-endpoints/" + st["endpoint"]["id"].get<std::string>() + "/rotate-secret", "{}")
              .status == 400);
  }
  CHECK(d.stop() == 0);
}

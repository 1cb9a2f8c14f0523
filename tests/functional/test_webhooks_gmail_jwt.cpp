// Gmail push (Cloud Pub/Sub) in JWT mode against the real daemon (PROVIDERS §6, SPEC §7): the test
// serves its own JWKS on 127.0.0.1:0, creates gmail endpoints whose jwksUrl points at it, and posts
// Pub/Sub push envelopes with RS256 OIDC tokens it signs itself. It checks the claim checks end to
// end, dedup on the messageId, that the daemon caches the key set (fetch counts seen by the JWKS
// server), the refetch on an unknown kid after a key rotation (CachingJwks refetches at most once a
// minute per URL — 2 s here through the daemon's test hook ALUMIA_JWKS_MIN_REFRESH_SECONDS — so
// the rotated kid is refused right after the last fetch, then accepted; the interval itself is tested
// on a fake clock in unit test_webhook_gmail),
// and that a JWKS outage refuses deliveries it cannot verify (503: Pub/Sub redelivers) without
// losing cached keys. The sender reads one fixed message per code; the reason is the owner's.
#include "jwt_rs256.hpp"
#include "process.hpp"
#include "webhook_helpers.hpp"

#include <httplib.h>
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;
namespace jwt = alumia::test::jwt;

namespace {

const std::string k_audience = "https://push.alumia.test/gmail";
const std::string k_email = "gmail-push@alumia-test.iam.gserviceaccount.com";
const std::string k_subscription = "projects/alumia-test/subscriptions/gmail-push";

// A JWKS document per path ("/main/certs", ...) on 127.0.0.1:0, counting the fetches of each path.
class JwksServer {
 public:
  JwksServer() {
    m_server.Get(R"(/[a-z]+/certs)", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(m_mutex);
      ++m_fetches[req.path];
      auto it = m_docs.find(req.path);
      if (it == m_docs.end()) {
        res.status = 404;
        return;
      }
      res.status = 200;
      // What Google sends for its certs.
      res.set_header("Cache-Control", "public, max-age=3600, must-revalidate, no-transform");
      res.set_content(it->second.dump(), "application/json; charset=UTF-8");
    });
    m_port = m_server.bind_to_any_port("127.0.0.1");
    REQUIRE(m_port > 0);
    m_thread = std::thread([this] { m_server.listen_after_bind(); });
    REQUIRE(eventually([&] { return m_server.is_running(); }, std::chrono::seconds(5)));
  }
  ~JwksServer() { stop(); }
  JwksServer(const JwksServer&) = delete;
  JwksServer& operator=(const JwksServer&) = delete;

  void stop() {
    m_server.stop();
    if (m_thread.joinable()) m_thread.join();
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(m_port) + path; }
  void serve(const std::string& path, json doc) {
    std::lock_guard lock(m_mutex);
    m_docs[path] = std::move(doc);
  }
  int fetches(const std::string& path) {
    std::lock_guard lock(m_mutex);
    auto it = m_fetches.find(path);
    return it == m_fetches.end() ? 0 : it->second;
  }

 private:
  httplib::Server m_server;
  std::thread m_thread;
  int m_port = 0;
  std::mutex m_mutex;
  std::map<std::string, json> m_docs;
  std::map<std::string, int> m_fetches;
};

json key_set(const std::vector<json>& keys) {
  json doc{{"keys", json::array()}};
  for (const auto& k : keys) doc["keys"].push_back(k);
  return doc;
}

// The claims of a Pub/Sub push token (the shape of Google's published example), valid for an hour.
json claims(int64_t iat = now_unix()) {
  return {{"aud", k_audience},
          {"azp", "113774264463038321964"},
          {"email", k_email},
          {"email_verified", true},
          {"exp", iat + 3600},
          {"iat", iat},
          {"iss", "https://accounts.google.com"},
          {"sub", "113774264463038321964"}};
}

json with(json c, const char* name, json value) {
  c[name] = std::move(value);
  return c;
}

// The default (wrapped) push envelope; message.data is standard base64 as Pub/Sub sends it.
std::string envelope(const std::string& message_id) {
  const std::string data = json{{"emailAddress", "user@example.com"}, {"historyId", "1234567" + message_id}}.dump();
  return json{{"message",
               {{"attributes", {{"origin", "alumia-functional-test"}}},
                {"data", alumia::encoding::base64_encode(data)},
                {"messageId", message_id},
                {"message_id", message_id},
                {"publishTime", "2021-02-26T19:13:55.749Z"},
                {"publish_time", "2021-02-26T19:13:55.749Z"}}},
              {"subscription", k_subscription}}
      .dump();
}

HttpReply push(const Daemon& d, const std::string& endpoint_id, const std::string& body,
               const std::optional<std::string>& token) {
  HeaderList headers{{"Content-Type", "application/json"},
                     {"User-Agent", "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"}};
  if (token) headers.emplace_back("Authorization", "Bearer " + *token);
  return http_request("POST", d.url() + receive_path("gmail", endpoint_id), headers, body);
}

std::string error_code(const HttpReply& r) {
  const json j = r.json();
  return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
}

json create_gmail_endpoint(const Daemon& d, const std::string& jwks_url, const std::string& label) {
  return create_endpoint(d, {{"provider", "gmail"},
                             {"label", label},
                             {"audience", k_audience},
                             {"serviceAccountEmail", k_email},
                             {"jwksUrl", jwks_url}});
}

}  // namespace

// The daemon's minimum JWKS refetch interval in this test (production: 60 s): long enough for the one
// request right after the fetch to fall inside it, short enough that nothing waits long for it.
constexpr int k_min_refresh_s = 2;

TEST_CASE("gmail push, JWT mode: tokens checked against a served JWKS, keys cached, rotation, outage",
          "[webhooks][gmail]") {
  const jwt::Pkey key = jwt::generate_rsa();       // kid k1 on /main/certs
  const jwt::Pkey old_key = jwt::generate_rsa();   // kid r1 on /rot/certs, before and after the rotation
  const jwt::Pkey new_key = jwt::generate_rsa();   // kid r2 on /rot/certs, after the rotation only
  const jwt::Pkey stranger = jwt::generate_rsa();  // in no key set

  JwksServer jwks;
  jwks.serve("/main/certs", key_set({jwt::jwk_of(key.get(), "k1")}));
  jwks.serve("/rot/certs", key_set({jwt::jwk_of(old_key.get(), "r1")}));
  // "/down/certs" is never served: its endpoint is first used once the server is gone.

  TempDir dir;
  Daemon::Options options;
  options.env = {{"ALUMIA_JWKS_MIN_REFRESH_SECONDS", std::to_string(k_min_refresh_s)}};
  Daemon d(dir.path(), options);

  // Configuration checks at creation (SPEC §7: jwksUrl is https, or http on a loopback host).
  {
    auto no_email =
        d.api("POST", "/api/v1/webhook-endpoints",
              json{{"provider", "gmail"}, {"audience", k_audience}, {"jwksUrl", jwks.url("/main/certs")}}.dump());
    INFO(no_email.body);
    CHECK(no_email.status == 422);
    auto public_http = d.api("POST", "/api/v1/webhook-endpoints",
                             json{{"provider", "gmail"},
                                  {"audience", k_audience},
                                  {"serviceAccountEmail", k_email},
                                  {"jwksUrl", "http://keys.example.com/certs"}}
                                 .dump());
    INFO(public_http.body);
    CHECK(public_http.status == 422);
  }

  const json main_created = create_gmail_endpoint(d, jwks.url("/main/certs"), "gmail main");
  const json rot_created = create_gmail_endpoint(d, jwks.url("/rot/certs"), "gmail rotation");
  const json down_created = create_gmail_endpoint(d, jwks.url("/down/certs"), "gmail outage");
  const std::string main_id = main_created["endpoint"]["id"];
  const std::string rot_id = rot_created["endpoint"]["id"];
  const std::string down_id = down_created["endpoint"]["id"];
  CHECK(main_created["endpoint"]["provider"] == "gmail");
  CHECK(main_created["endpoint"]["status"] == "active");
  CHECK_FALSE(main_created.contains("secret"));  // JWT mode has no shared secret
  // Creating endpoints fetches nothing; keys are fetched on the first delivery.
  CHECK(jwks.fetches("/main/certs") == 0);
  CHECK(jwks.fetches("/rot/certs") == 0);

  // --- Rotation, part 1. The rotation endpoint's keys are fetched first so that the wait the
  // refetch rate limit imposes runs while the other checks execute.
  {
    auto first = push(d, rot_id, envelope("r-1"), jwt::mint(old_key.get(), claims(), "r1"));
    INFO(first.body);
    REQUIRE(first.status == 200);
    CHECK(jwks.fetches("/rot/certs") == 1);
  }
  jwks.serve("/rot/certs", key_set({jwt::jwk_of(old_key.get(), "r1"), jwt::jwk_of(new_key.get(), "r2")}));
  const auto rotated_at = std::chrono::steady_clock::now();
  const std::string rotated_token = jwt::mint(new_key.get(), claims(), "r2");
  {
    // Unknown kid right after the fetch: the refetch is rate-limited (one per interval per URL), so
    // the daemon fails closed without asking the key server again.
    auto early = push(d, rot_id, envelope("r-2"), rotated_token);
    INFO(early.body);
    CHECK(early.status == 401);
    CHECK(error_code(early) == "UNAUTHORIZED");
    CHECK(jwks.fetches("/rot/certs") == 1);
  }

  // --- The main endpoint: every claim check, dedup, and one fetch for all of it.
  const std::string body = envelope("1001");
  std::string event_id;
  {
    const std::string token = jwt::mint(key.get(), claims(), "k1");
    auto ok = push(d, main_id, body, token);
    INFO(ok.body);
    REQUIRE(ok.status == 200);
    event_id = ok.json()["data"]["eventId"];
    CHECK(jwks.fetches("/main/certs") == 1);

    const json events = events_of(d, main_id);
    REQUIRE(events.size() == 1);
    CHECK(events[0]["id"] == event_id);
    CHECK(events[0]["provider"] == "gmail");
    // PROVIDERS §6: gmail:pubsub:<subscription>:<messageId>.
    CHECK(events[0]["eventKey"] == "gmail:pubsub:" + k_subscription + ":1001");
    CHECK(events[0]["eventType"] == "gmail.notification");
    CHECK(events[0]["jobState"] == "queued");

    // The single view keeps the raw body and drops the Authorization header (SPEC §7).
    auto one = d.api("GET", "/api/v1/connector-events/" + event_id);
    REQUIRE(one.status == 200);
    const json ev = one.json()["data"];
    CHECK(ev["body"] == body);
    CHECK_FALSE(ev["headers"].contains("authorization"));
    CHECK(one.body.find(token) == std::string::npos);

    // The same delivery again, and a redelivery with a fresh token: duplicates.
    auto again = push(d, main_id, body, token);
    INFO(again.body);
    CHECK(again.status == 200);
    CHECK(again.json()["data"]["duplicate"] == true);
    CHECK(again.json()["data"]["eventId"] == event_id);
    auto redelivered = push(d, main_id, body, jwt::mint(key.get(), claims(now_unix() + 1), "k1"));
    CHECK(redelivered.status == 200);
    CHECK(redelivered.json()["data"]["duplicate"] == true);
  }

  int refused = 0;
  auto expect_401 = [&](const std::string& what, const std::string& message_id,
                        const std::optional<std::string>& token) {
    auto r = push(d, main_id, envelope(message_id), token);
    INFO(what << ": " << r.status << " " << r.body);
    CHECK(r.status == 401);
    CHECK(error_code(r) == "UNAUTHORIZED");
    // One answer for every reason (whether the kid is known included); the reason is the owner's.
    CHECK(r.json()["error"]["message"] == "signature verification failed");
    ++refused;
  };
  const int64_t now = now_unix();
  expect_401("wrong audience", "2001", jwt::mint(key.get(), with(claims(), "aud", "https://other.example/push"), "k1"));
  {
    json expired = claims(now - 7200);  // exp = now - 3600, far beyond the 60 s skew
    expect_401("expired", "2002", jwt::mint(key.get(), expired, "k1"));
  }
  expect_401("issued in the future", "2003", jwt::mint(key.get(), claims(now + 600), "k1"));
  expect_401("wrong issuer", "2004", jwt::mint(key.get(), with(claims(), "iss", "https://evil.example"), "k1"));
  expect_401("email not verified", "2005", jwt::mint(key.get(), with(claims(), "email_verified", false), "k1"));
  expect_401("email_verified as a string", "2006",
             jwt::mint(key.get(), with(claims(), "email_verified", "true"), "k1"));
  expect_401("wrong email", "2007", jwt::mint(key.get(), with(claims(), "email", "someone@evil.example"), "k1"));
  expect_401("a stranger's key under the known kid", "2008", jwt::mint(stranger.get(), claims(), "k1"));
  expect_401("a stranger's key under an unknown kid", "2009", jwt::mint(stranger.get(), claims(), "k9"));
  expect_401("no Authorization header", "2010", std::nullopt);
  // Nothing stored for the refused deliveries, and the key set was fetched once for all of them
  // (the unknown kid's refetch falls inside the one-minute rate limit).
  CHECK(events_of(d, main_id).size() == 1);
  CHECK(jwks.fetches("/main/certs") == 1);
  CHECK(eventually(
      [&] {
        const json c = endpoint_of(d, main_id)["counts"];
        return c["received"] == 1 && c["duplicates"] == 2 && c["verificationFailures"] == refused;
      },
      std::chrono::seconds(5)));

  // --- Rotation, part 2: the new kid is accepted once the refetch is allowed again. Poll (each
  // refused attempt is what Pub/Sub's retries would do); bounded.
  {
    int attempts = 0;
    int last_status = 0;
    std::string last_body;
    const bool accepted = eventually(
        [&] {
          auto r = push(d, rot_id, envelope("r-2"), rotated_token);
          ++attempts;
          last_status = r.status;
          last_body = r.body;
          return r.status != 401;  // anything but the rate-limited 401 ends the poll
        },
        std::chrono::seconds(k_min_refresh_s + 30), std::chrono::milliseconds(100));
    const auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - rotated_at);
    INFO("attempts " << attempts << ", waited " << waited.count() << " ms, last " << last_status << " " << last_body);
    REQUIRE(accepted);
    REQUIRE(last_status == 200);
    // Not right away: the daemon counts whole seconds, so the refetch may come as early as 1 s after the
    // fetch (which came just before rotated_at).
    CHECK(waited.count() >= 500);
    // One refetch for all those attempts.
    CHECK(jwks.fetches("/rot/certs") == 2);
    // The old key stays valid while it is still published.
    auto old_kid = push(d, rot_id, envelope("r-3"), jwt::mint(old_key.get(), claims(), "r1"));
    CHECK(old_kid.status == 200);
    CHECK(jwks.fetches("/rot/certs") == 2);
    const json events = events_of(d, rot_id);
    CHECK(events.size() == 3);
    INFO("JWKS fetches: /main/certs " << jwks.fetches("/main/certs") << ", /rot/certs " << jwks.fetches("/rot/certs")
                                      << "; rotated kid accepted after " << waited.count() << " s and " << attempts
                                      << " attempts");
  }

  // --- The key server goes away.
  jwks.stop();
  {
    // Never fetched: the daemon cannot verify, so it refuses (503, Pub/Sub retries) and stores nothing.
    auto down = push(d, down_id, envelope("3001"), jwt::mint(key.get(), claims(), "k1"));
    INFO(down.body);
    CHECK(down.status == 503);
    CHECK(error_code(down) == "SERVICE_UNAVAILABLE");
    // Neither the key server's URL nor what went wrong reaches the sender; the owner reads it.
    CHECK(down.json()["error"]["message"] == "webhook receiver temporarily unavailable; retry later");
    CHECK(down.body.find("127.0.0.1") == std::string::npos);
    CHECK(events_of(d, down_id).empty());
    CHECK(eventually(
        [&] {
          const json c = endpoint_of(d, down_id)["counts"];
          return c["rejected"] == 1 && c["received"] == 0 && c["verificationFailures"] == 0;
        },
        std::chrono::seconds(5)));
    CHECK(endpoint_of(d, down_id)["lastError"]["message"].get<std::string>().find("request to 127.0.0.1") !=
          std::string::npos);

    // Cached keys keep verifying during the outage.
    auto cached = push(d, main_id, envelope("3002"), jwt::mint(key.get(), claims(), "k1"));
    INFO(cached.body);
    CHECK(cached.status == 200);
    // An unknown kid during the outage: the refetch fails, the stale copy lacks the kid → 401.
    auto unknown = push(d, main_id, envelope("3003"), jwt::mint(stranger.get(), claims(), "k9"));
    CHECK(unknown.status == 401);
    CHECK(events_of(d, main_id).size() == 2);
  }

  CHECK(d.stop() == 0);
}

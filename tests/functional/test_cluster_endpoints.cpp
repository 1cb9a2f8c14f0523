// Two daemons on one PostgreSQL store (issue 17 item 2, SPEC §12): an endpoint created, its secret
// rotated, or disabled on daemon A is seen by daemon B within a second (EndpointWatch: LISTEN/NOTIFY into
// B's EndpointCache); and a daemon whose database goes away answers 503 in the envelope and recovers
// without a restart once it is back.
#include "postgres.hpp"
#include "process.hpp"
#include "webhook_helpers.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <memory>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;

namespace {

constexpr auto k_within_a_second = std::chrono::seconds(1);

// Two daemons on the database `uri` sharing A's master key (docs/SCALE-OUT.md: the same master.key in
// every data directory); B's owner key is issued by B into its own key file.
struct TwoDaemons {
  TempDir home_a, home_b;
  std::unique_ptr<Daemon> a, b;

  explicit TwoDaemons(const std::string& uri, const std::vector<std::string>& expected_errors = {}) {
    Daemon::Options opts;
    opts.env["ALUMIA_STORE"] = uri;
    opts.expected_errors = expected_errors;
    a = std::make_unique<Daemon>(home_a.path(), opts);
    std::filesystem::copy_file(home_a.path() / "master.key", home_b.path() / "master.key");
    b = std::make_unique<Daemon>(home_b.path(), opts);
  }
};

int status_of(const Daemon& d, const Signer& s, int n) { return send(d, s, make_delivery(s, n)).status; }

}  // namespace

TEST_CASE("cluster endpoints: created, rotated and disabled on one daemon, seen by the other within a second",
          "[cluster][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  auto& server = shared_postgres();
  TwoDaemons two(server.uri(server.fresh_database()));
  Daemon& a = *two.a;
  Daemon& b = *two.b;

  // B has read its set of endpoint ids (an unknown id is answered from it, without a store read).
  Signer stranger = make_signer("github", "x", "6f1c2b0e-8d4a-4c3e-9b7a-2d5e8f1a0c3b");
  CHECK(status_of(b, stranger, 1) == 404);

  // Created on A: B receives it (its id set learnt the new id from the notification).
  json c = create_endpoint(a, {{"provider", "github"}});
  Signer old_secret = make_signer("github", c["secret"], c["endpoint"]["id"]);
  int n = 0;
  CHECK(eventually([&] { return status_of(b, old_secret, ++n) == 200; }, k_within_a_second));
  CHECK(status_of(b, old_secret, ++n) == 200);  // now cached on B with the first secret

  // Rotated on A with a grace of 2 s: the new secret verifies on B within a second, the old one during
  // the grace, and not after it.
  auto rotated =
      a.api("POST", "/api/v1/webhook-endpoints/" + old_secret.endpoint_id + "/rotate-secret", R"({"graceSeconds":2})");
  const auto rotated_at = std::chrono::steady_clock::now();
  INFO(rotated.body);
  REQUIRE(rotated.status == 200);
  Signer new_secret = old_secret;
  new_secret.secret = rotated.json()["data"]["secret"];
  CHECK(eventually([&] { return status_of(b, new_secret, ++n) == 200; }, k_within_a_second));
  if (std::chrono::steady_clock::now() - rotated_at < std::chrono::milliseconds(1500))
    CHECK(status_of(b, old_secret, ++n) == 200);  // still in its grace (when the machine keeps up)
  CHECK(eventually([&] { return status_of(b, old_secret, ++n) == 401; }, std::chrono::seconds(5)));
  CHECK(status_of(b, new_secret, ++n) == 200);

  // A rotation without grace: the old secret stops on B within a second.
  auto again =
      a.api("POST", "/api/v1/webhook-endpoints/" + old_secret.endpoint_id + "/rotate-secret", R"({"graceSeconds":0})");
  REQUIRE(again.status == 200);
  CHECK(eventually([&] { return status_of(b, new_secret, ++n) == 401; }, k_within_a_second));
  Signer newest = old_secret;
  newest.secret = again.json()["data"]["secret"];
  CHECK(status_of(b, newest, ++n) == 200);

  // Disabled on A: refused on B within a second (NOT_FOUND, as on the daemon that disabled it).
  auto disabled = a.api("PATCH", "/api/v1/webhook-endpoints/" + old_secret.endpoint_id, R"({"status":"disabled"})");
  INFO(disabled.body);
  REQUIRE(disabled.status == 200);
  CHECK(eventually([&] { return status_of(b, newest, ++n) == 404; }, k_within_a_second));
  // Enabled again on B, then deleted on B: A follows both.
  REQUIRE(b.api("PATCH", "/api/v1/webhook-endpoints/" + old_secret.endpoint_id, R"({"status":"active"})").status ==
          200);
  CHECK(eventually([&] { return status_of(a, newest, ++n) == 200; }, k_within_a_second));
  REQUIRE(b.api("DELETE", "/api/v1/webhook-endpoints/" + old_secret.endpoint_id).status == 200);
  CHECK(eventually([&] { return status_of(a, newest, ++n) == 404; }, k_within_a_second));

  CHECK(a.stop() == 0);
  CHECK(b.stop() == 0);
}

TEST_CASE("cluster endpoints: a daemon that loses its database answers 503 and recovers without a restart",
          "[cluster][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  PostgresServer server;  // its own: this test stops and starts it
  // The receiver logs each ingest the lost store refused; nothing else may log an error.
  TwoDaemons two(server.uri(server.fresh_database()),
                 {"ingest failed: the PostgreSQL store is", "ingest failed: cannot reach PostgreSQL"});
  Daemon& a = *two.a;
  Daemon& b = *two.b;
  json c = create_endpoint(a, {{"provider", "github"}});
  Signer s = make_signer("github", c["secret"], c["endpoint"]["id"]);
  int n = 0;
  REQUIRE(eventually([&] { return status_of(b, s, ++n) == 200; }, std::chrono::seconds(5)));

  server.stop();
  for (Daemon* d : {&a, &b}) {
    auto listed = d->api("GET", "/api/v1/webhook-endpoints");
    INFO(listed.body);
    CHECK(listed.status == 503);
    CHECK(listed.json()["error"]["code"] == "SERVICE_UNAVAILABLE");
    auto delivery = send(*d, s, make_delivery(s, ++n));
    INFO(delivery.body);
    CHECK(delivery.status == 503);
    CHECK(delivery.json()["error"]["code"] == "SERVICE_UNAVAILABLE");
  }

  // Once the server is back, the first call of each kind succeeds: a pooled connection the restart
  // dropped, and the writer's, are replaced on their first failure and the call runs again.
  server.start();
  for (Daemon* d : {&b, &a}) {
    auto delivery = send(*d, s, make_delivery(s, ++n));
    INFO(delivery.body);
    CHECK(delivery.status == 200);
    auto listed = d->api("GET", "/api/v1/webhook-endpoints");
    INFO(listed.body);
    CHECK(listed.status == 200);
  }
  // Changes made after the outage still reach the other daemon (the watch listens again).
  auto disabled = a.api("PATCH", "/api/v1/webhook-endpoints/" + s.endpoint_id, R"({"status":"disabled"})");
  REQUIRE(disabled.status == 200);
  CHECK(eventually([&] { return status_of(b, s, ++n) == 404; }, std::chrono::seconds(2)));

  CHECK(a.stop() == 0);
  CHECK(b.stop() == 0);
}

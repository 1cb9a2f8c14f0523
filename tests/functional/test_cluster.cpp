// The cluster test (issue 17 item 3, docs/SCALE-OUT.md): three real daemons on one PostgreSQL database
// behind the round-robin test balancer (tests/support/cluster.hpp). Each case checks one guarantee that
// must hold across daemons, with the requests spread over all three by the balancer.
#include "cluster.hpp"
#include "postgres.hpp"
#include "process.hpp"
#include "webhook_helpers.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;

namespace {

// A delivery sent to the balancer (its public origin) instead of one daemon.
HttpReply send_via(const Cluster& c, const Signer& s, const Delivery& d) {
  return http_request(d.method, c.balancer.url() + receive_path(s.provider, s.endpoint_id) + d.query, d.headers,
                      d.body);
}

}  // namespace

TEST_CASE("cluster: signed deliveries with repeats spread over three daemons are each stored once", "[cluster][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  Cluster c(3, {});
  json created = create_endpoint(c[0], {{"provider", "github"}});
  const Signer s = make_signer("github", created["secret"], created["endpoint"]["id"]);

  // 20 events, each sent three times at once from three threads, so that the copies of one event reach
  // different daemons in the same moment (round robin) and race on the dedup key.
  constexpr int k_events = 20;
  constexpr int k_copies = 3;
  std::mutex m;
  std::vector<std::pair<int, HttpReply>> replies;
  for (int n = 1; n <= k_events; ++n) {
    std::vector<std::thread> senders;
    for (int copy = 0; copy < k_copies; ++copy)
      senders.emplace_back([&, n] {
        auto r = send_via(c, s, make_delivery(s, n));
        std::lock_guard lock(m);
        replies.emplace_back(n, std::move(r));
      });
    for (auto& t : senders) t.join();
  }

  // Every copy answered 200; of each event's copies exactly one is new, the others name its event id.
  std::map<int, std::set<std::string>> ids;
  std::map<int, int> fresh;
  for (const auto& [n, r] : replies) {
    INFO(r.body);
    REQUIRE(r.status == 200);
    const json data = r.json()["data"];
    ids[n].insert(data["eventId"].get<std::string>());
    if (!data.value("duplicate", false)) ++fresh[n];
  }
  for (int n = 1; n <= k_events; ++n) {
    INFO("event " << n);
    CHECK(ids[n].size() == 1);
    CHECK(fresh[n] == 1);
  }

  // All three daemons served deliveries.
  const auto answered = c.balancer.answered();
  REQUIRE(answered.size() == 3);
  for (std::size_t i = 0; i < answered.size(); ++i) {
    INFO("daemon " << i);
    CHECK(answered[i] >= k_events * k_copies / 3 - 1);
  }

  // Each daemon sees the same 20 events and the same counters: received 20, duplicates 40.
  for (std::size_t i = 0; i < c.size(); ++i) {
    INFO("daemon " << i);
    const json events = events_of(c[i], s.endpoint_id);
    CHECK(events.size() == k_events);
    std::set<std::string> stored;
    for (const auto& e : events) stored.insert(e["id"].get<std::string>());
    CHECK(stored.size() == k_events);
    for (int n = 1; n <= k_events; ++n) CHECK(stored.count(*ids[n].begin()) == 1);
    const json counts = endpoint_of(c[i], s.endpoint_id)["counts"];
    CHECK(counts["received"] == k_events);
    CHECK(counts["duplicates"] == k_events * (k_copies - 1));
  }
}

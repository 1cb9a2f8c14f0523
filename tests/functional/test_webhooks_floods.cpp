// Floods at the receiver (issue 13 item 3, SPEC §7): each endpoint has a token-bucket rate limit,
// answered 429 with Retry-After and the fixed public message; a flood at one endpoint does not hold up
// deliveries to another; refused requests (over the limit, bad signatures) cost no store write each:
// the store's write transactions (GET /status) stay bounded by time, not by the number of requests,
// and the counts are exact when the owner reads them.
#include "cli_helpers.hpp"
#include "process.hpp"
#include "webhook_helpers.hpp"

#include <httplib.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;
using steady = std::chrono::steady_clock;

namespace {

struct PublicDaemon {
  TempDir dir;
  Daemon d;
  std::string public_url;

  PublicDaemon() : d(dir.path(), options()) {
    auto st = d.api("GET", "/api/v1/status");
    REQUIRE(st.status == 200);
    public_url = st.json()["data"]["publicUrl"];
  }
  static Daemon::Options options() {
    Daemon::Options o;
    o.extra_args = {"--public-listen", "127.0.0.1:0"};
    return o;
  }
  uint64_t write_transactions() const {
    auto st = d.api("GET", "/api/v1/status");
    REQUIRE(st.status == 200);
    return st.json()["data"]["store"]["writeTransactions"].get<uint64_t>();
  }
  json endpoint(const std::string& id) const { return endpoint_of(d, id); }
};

Signer github_signer(const json& created) {
  Signer s;
  s.provider = "github";
  s.endpoint_id = created["endpoint"]["id"];
  s.secret = created["secret"];
  return s;
}

// What a flood saw: answers by status, and the Retry-After of each 429.
struct FloodResult {
  std::atomic<int> ok{0}, limited{0}, unauthorized{0}, other{0};
  std::atomic<int> bad_retry_after{0}, bad_body{0};
};

// `threads` keep-alive connections sending deliveries for `endpoint` (distinct ids from `first`) until
// `stop`, or `count` requests in all when count > 0.
void flood(const std::string& public_url, const Signer& s, bool bad_signature, int threads, int first,
           std::atomic<bool>& stop, FloodResult& r, int count = 0) {
  std::atomic<int> next{first};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      httplib::Client cli(public_url);
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);
      cli.set_read_timeout(30);
      while (!stop.load()) {
        const int n = next.fetch_add(1);
        if (count > 0 && n >= first + count) break;
        const Delivery dl = make_delivery(s, n, bad_signature);
        httplib::Headers h;
        for (const auto& [k, v] : dl.headers) h.emplace(k, v);
        auto res = cli.Post(receive_path("github", s.endpoint_id), h, dl.body, "application/json");
        if (!res) {
          ++r.other;
          continue;
        }
        if (res->status == 200) ++r.ok;
        else if (res->status == 401) ++r.unauthorized;
        else if (res->status == 429) {
          ++r.limited;
          const std::string ra = res->get_header_value("Retry-After");
          if (ra.empty() || ra.find_first_not_of("0123456789") != std::string::npos || std::stoi(ra) < 1)
            ++r.bad_retry_after;
          const json body = json::parse(res->body, nullptr, false);
          if (body != json{{"success", false},
                           {"error",
                            {{"code", "TOO_MANY_REQUESTS"},
                             {"message",
                              "too many deliveries to this webhook endpoint; retry after Retry-After "
                              "seconds"}}}})
            ++r.bad_body;
        } else {
          ++r.other;
        }
      }
    });
  for (auto& t : pool) t.join();
}

// `n` signed deliveries to `s`, one after another on one connection: each one's latency in ms.
std::vector<double> deliver(const std::string& public_url, const Signer& s, int first, int n, int& failures) {
  httplib::Client cli(public_url);
  cli.set_keep_alive(true);
  cli.set_tcp_nodelay(true);
  cli.set_read_timeout(30);
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    const Delivery dl = make_delivery(s, first + i);
    httplib::Headers h;
    for (const auto& [k, v] : dl.headers) h.emplace(k, v);
    const auto t0 = steady::now();
    auto res = cli.Post(receive_path("github", s.endpoint_id), h, dl.body, "application/json");
    ms.push_back(std::chrono::duration<double, std::milli>(steady::now() - t0).count());
    if (!res || res->status != 200) ++failures;
  }
  return ms;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

TEST_CASE("a flood over an endpoint's rate limit gets 429 with Retry-After; another endpoint's deliveries go on",
          "[functional][webhooks][floods]") {
  PublicDaemon p;
  // A: its own small limit, set by the CLI; B: the daemon's default.
  const auto made = cli(p.d, {"--json", "webhooks", "create", "--provider", "github", "--rate-limit", "50/s", "--burst",
                              "100", "--label", "flooded"});
  INFO(made.err);
  REQUIRE(made.exit_code == 0);
  const json a_created = json_out(made);
  CHECK(a_created["endpoint"]["rateLimit"] == json{{"perSecond", 50}, {"burst", 100}, {"default", false}});
  const Signer a = github_signer(a_created);
  const json b_created = create_endpoint(p.d, {{"provider", "github"}});
  CHECK(b_created["endpoint"]["rateLimit"] == json{{"perSecond", 1000}, {"burst", 2000}, {"default", true}});
  const Signer b = github_signer(b_created);

  int baseline_failures = 0;
  const auto baseline = deliver(p.public_url, b, 0, 100, baseline_failures);
  REQUIRE(baseline_failures == 0);

  // A is flooded with valid deliveries from 4 connections while B gets 300 more, one after another.
  std::atomic<bool> stop{false};
  FloodResult r;
  const auto started = steady::now();
  std::thread flooder([&] { flood(p.public_url, a, false, 4, 0, stop, r); });
  REQUIRE(eventually([&] { return r.limited.load() > 0; }, std::chrono::seconds(20), std::chrono::milliseconds(1)));
  int during_failures = 0;
  const auto during = deliver(p.public_url, b, 1000, 300, during_failures);
  stop = true;
  flooder.join();
  const double seconds = std::chrono::duration<double>(steady::now() - started).count();

  INFO("A: " << r.ok << " accepted, " << r.limited << " limited in " << seconds << " s; B median " << median(baseline)
             << " ms alone, " << median(during) << " ms during the flood");
  CHECK(during_failures == 0);
  CHECK(r.other == 0);
  CHECK(r.bad_retry_after == 0);
  CHECK(r.bad_body == 0);
  CHECK(r.limited > r.ok);
  // The bucket: the burst, then 50 a second (and a little for the rounding of the clock).
  CHECK(r.ok >= 100);
  CHECK(r.ok <= 100 + 50 * (seconds + 1));
  // B is not held up by the flood next door: no worse than a loaded machine makes any request.
  CHECK(median(during) <= std::max(10 * median(baseline), 100.0));

  // The owner's counts are exact as soon as it reads them, though refusals are written at most once a second.
  const json ea = p.endpoint(a.endpoint_id);
  CHECK(ea["counts"]["received"] == r.ok.load());
  CHECK(ea["counts"]["rateLimited"] == r.limited.load());
  CHECK(ea["counts"]["verificationFailures"] == 0);
  CHECK(ea["lastError"]["code"] == "TOO_MANY_REQUESTS");
  CHECK(ea["lastError"]["message"].get<std::string>().find("rate limit of 50/s (burst 100)") != std::string::npos);
  CHECK(p.endpoint(b.endpoint_id)["counts"]["received"] == 400);
  CHECK(p.endpoint(b.endpoint_id)["counts"]["rateLimited"] == 0);

  const auto shown = cli(p.d, {"webhooks", "show", a.endpoint_id});
  REQUIRE(shown.exit_code == 0);
  CHECK(shown.out.find("50/s, burst 100") != std::string::npos);
  CHECK(shown.out.find(std::to_string(r.limited.load())) != std::string::npos);

  // Back to the default, then a new limit through the API: burst defaults to twice the rate.
  const auto reset = cli(p.d, {"--json", "webhooks", "update", a.endpoint_id, "--default-rate-limit"});
  REQUIRE(reset.exit_code == 0);
  CHECK(json_out(reset)["rateLimit"] == json{{"perSecond", 1000}, {"burst", 2000}, {"default", true}});
  auto patched = p.d.api("PATCH", "/api/v1/webhook-endpoints/" + a.endpoint_id, R"({"rateLimit":{"perSecond":7}})");
  REQUIRE(patched.status == 200);
  CHECK(patched.json()["data"]["rateLimit"] == json{{"perSecond", 7}, {"burst", 14}, {"default", false}});
  // Bad values change nothing.
  for (const char* body : {R"({"rateLimit":{"perSecond":0}})", R"({"rateLimit":{"perSecond":5,"burst":2000000}})"}) {
    auto bad = p.d.api("PATCH", "/api/v1/webhook-endpoints/" + a.endpoint_id, body);
    CHECK(bad.status == 422);
  }
  for (const char* body : {R"({"rateLimit":5})", R"({"rateLimit":{"burst":5}})", R"({"rateLimit":{"perSecond":"5"}})",
                           R"({"rateLimit":{"perSecond":5,"extra":1}})"}) {
    auto bad = p.d.api("PATCH", "/api/v1/webhook-endpoints/" + a.endpoint_id, body);
    CHECK(bad.status == 400);
  }
  CHECK(p.endpoint(a.endpoint_id)["rateLimit"] == json{{"perSecond", 7}, {"burst", 14}, {"default", false}});
  CHECK(cli(p.d, {"webhooks", "update", a.endpoint_id, "--rate-limit", "fast"}).exit_code == 2);
  CHECK(cli(p.d, {"webhooks", "update", a.endpoint_id, "--burst", "5"}).exit_code == 2);  // needs --rate-limit
}

TEST_CASE("a flood of bad signatures costs no store write per request, and the counts are right after",
          "[functional][webhooks][floods]") {
  PublicDaemon p;
  const Signer s = github_signer(create_endpoint(p.d, {{"provider", "github"}}));
  const Signer other = github_signer(create_endpoint(p.d, {{"provider", "github"}}));
  const uint64_t before = p.write_transactions();
  const auto started = steady::now();
  std::atomic<bool> stop{false};
  FloodResult r;
  constexpr int k_requests = 1500;  // under the default burst (2000): every one is verified, and fails
  flood(p.public_url, s, true, 4, 0, stop, r, k_requests);
  const double seconds = std::chrono::duration<double>(steady::now() - started).count();
  const uint64_t grown = p.write_transactions() - before;
  INFO(k_requests << " bad signatures in " << seconds << " s: " << grown << " write transactions");
  CHECK(r.unauthorized == k_requests);
  // At most one hand-over a second for the endpoint (and one for the first refusal), besides what an
  // idle daemon writes (the relay worker's claim, about once a second); one write per request, or one
  // per writer batch of them (every 20 ms), would be far more.
  CHECK(grown <= static_cast<uint64_t>(2 * seconds) + 4);

  const json e = p.endpoint(s.endpoint_id);
  CHECK(e["counts"]["verificationFailures"] == k_requests);
  CHECK(e["counts"]["received"] == 0);
  CHECK(e["lastError"]["code"] == "UNAUTHORIZED");
  // The other endpoint still verifies and stores at once.
  int failures = 0;
  deliver(p.public_url, other, 0, 20, failures);
  CHECK(failures == 0);
  CHECK(p.endpoint(other.endpoint_id)["counts"]["received"] == 20);
  CHECK(p.endpoint(s.endpoint_id)["counts"]["verificationFailures"] == k_requests);
}

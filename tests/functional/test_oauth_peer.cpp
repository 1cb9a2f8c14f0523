// OAuth end to end against a real authorization server (oidc-provider on 127.0.0.1), driven by
// the real CLI with $BROWSER pointing at a scripted browser.
#include <catch2/catch.hpp>

#include "http_proxy.hpp"
#include "oauth_peer.hpp"
#include "process.hpp"
#include "skip.hpp"

#include <alumia/net/http.hpp>

#include <latch>
#include <thread>
#include <vector>

using namespace alumia::test;
using nlohmann::json;

namespace {

struct PeerSetup {
  TempDir dir;
  OAuthPeer peer;
  std::filesystem::path browser;
  std::unique_ptr<Daemon> daemon;

  explicit PeerSetup(EnvOverrides peer_env = {}, EnvOverrides daemon_env = {},
                     std::vector<std::pair<std::string, json>> connectors = {{"peer", json::object()}},
                     std::vector<std::string> daemon_args = {})
      : peer(std::move(peer_env)) {
    for (const auto& [slug, extra] : connectors) write_peer_connector(dir.path(), slug, peer.issuer(), extra);
    browser = write_browser_wrapper(dir.path());
    Daemon::Options o;
    o.env = std::move(daemon_env);
    o.extra_args = std::move(daemon_args);
    for (const auto& [slug, extra] : connectors) {
      std::string up = slug;
      for (auto& ch : up) ch = ch == '-' ? '_' : char(std::toupper(static_cast<unsigned char>(ch)));
      o.env.emplace("ALUMIA_" + up + "_CLIENT_ID", "alumia-test");
      o.env.emplace("ALUMIA_" + up + "_CLIENT_SECRET", "test-only-secret");
    }
    daemon = std::make_unique<Daemon>(dir.path(), o);
  }
  ~PeerSetup() {
    if (daemon) CHECK(daemon->stop() == 0);
  }
  EnvOverrides browser_env() const { return alumia::test::browser_env(browser); }
  ProcessResult connect(std::vector<std::string> args) const {
    std::vector<std::string> a{"connect"};
    a.insert(a.end(), args.begin(), args.end());
    return daemon->cli(a, browser_env());
  }
  json connection(const std::string& id) const {
    return daemon->api("GET", "/api/v1/connections/" + id).json()["data"];
  }
  std::string only_connection_id(const std::string& slug = "peer") const {
    auto list = daemon->api("GET", "/api/v1/connections?connector=" + slug).json();
    REQUIRE(list["data"]["items"].size() == 1);
    return list["data"]["items"][0]["id"];
  }
  std::string token(const std::string& id) const {
    auto r = daemon->api("POST", "/api/v1/connections/" + id + "/token", "{}");
    REQUIRE(r.status == 200);
    return r.json()["data"]["accessToken"];
  }
  std::filesystem::path jar() const { return dir.path() / "jar.json"; }
  // Starts a flow through the ticketed oauthUrl as the test browser would (its cookie goes into the
  // wrapper's jar, and into `cookie` for hand-made callbacks) and returns the provider authorize URL.
  std::string authorize_url(const std::string& id) {
    auto r = daemon->api("POST", "/api/v1/connections/" + id + "/oauth-url", "{}");
    REQUIRE(r.status == 200);
    const std::string oauth_url = r.json()["data"]["oauthUrl"];
    auto hop = http_request("GET", oauth_url);
    REQUIRE(hop.status == 302);
    set_cookie.clear();
    cookie.clear();
    if (auto sc = hop.headers.find("Set-Cookie"); sc != hop.headers.end()) {
      set_cookie = sc->second;
      cookie = set_cookie.substr(0, set_cookie.find(';'));
      jar_add_cookie(jar(), oauth_url, set_cookie);
    }
    return hop.headers.find("Location")->second;
  }
  std::string set_cookie;  // of the last authorize_url()
  std::string cookie;      // its name=value
};

// Runs the fake browser with a jar of its own (another browser profile) and returns its hop log.
std::string other_browser(const std::filesystem::path& jar, const std::string& url) {
  const auto log = jar.parent_path() / (jar.stem().string() + ".log");
  auto b = run(
      {"/usr/bin/node", fake_browser_script().string(), "--wait", "--jar", jar.string(), "--log", log.string(), url});
  REQUIRE(b.exit_code == 0);
  return read_file(log);
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

std::string query_value(const std::string& url, const std::string& name) {
  const auto q = url.find('?');
  for (const auto& [k, v] : alumia::http::form_decode(url.substr(q + 1)))
    if (k == name) return v;
  return {};
}

}  // namespace

TEST_CASE("OAuth connect succeeds against the real peer and the token works", "[oauth-peer]") {
  ALUMIA_SKIP_WITHOUT_OAUTH_PEER();
  PeerSetup s;
  auto r = s.connect({"peer", "--timeout", "60"});
  INFO(r.out << r.err << s.daemon->log());
  REQUIRE(r.exit_code == 0);
  const std::string id = s.only_connection_id();
  auto c = s.connection(id);
  CHECK(c["status"] == "active");
  CHECK(c["accountLabel"] == "alice@peer.test");
  CHECK(c["expiresAt"].is_string());
  const std::string at = s.token(id);
  CHECK(s.peer.introspect(at)["active"] == true);
  // Tokens never in plaintext on disk or in the log.
  for (const char* f : {"store.db", "store.db-wal", "store.db-shm"}) {
    const auto p = s.dir.path() / f;
    if (std::filesystem::exists(p)) CHECK(read_file(p).find(at) == std::string::npos);
  }
  CHECK(s.daemon->log().find(at) == std::string::npos);

  SECTION("revocation makes the token inactive at the provider") {
    auto del = s.daemon->api("DELETE", "/api/v1/connections/" + id);
    REQUIRE(del.status == 200);
    CHECK(del.json()["data"]["deleted"] == true);
    CHECK(del.json()["data"]["providerRevocation"]["ok"] == true);
    CHECK(s.peer.introspect(at)["active"] == false);
    for (const char* f : {"store.db", "store.db-wal"}) {
      const auto p = s.dir.path() / f;
      if (std::filesystem::exists(p)) CHECK(read_file(p).find(at) == std::string::npos);
    }
  }
  SECTION("reconnect keeps the id and issues a new grant") {
    auto again = s.connect({"--reconnect", id, "--timeout", "60"});
    INFO(again.out << again.err);
    REQUIRE(again.exit_code == 0);
    CHECK(s.connection(id)["status"] == "active");
    const std::string at2 = s.token(id);
    CHECK(at2 != at);
    CHECK(s.peer.introspect(at2)["active"] == true);
  }
  SECTION("a replayed state changes nothing") {
    const std::string auth = s.authorize_url(id);
    const std::string state = query_value(auth, "state");
    REQUIRE(state.size() >= 22);
    CHECK(query_value(auth, "code_challenge_method") == "S256");
    CHECK(query_value(auth, "redirect_uri") == s.daemon->url() + "/api/v1/connections/oauth/callback");
    // The browser completes the flow once…
    auto b = run({s.browser.string(), "--wait", auth});
    REQUIRE(b.exit_code == 0);
    const auto before = s.connection(id);
    // …and a replay of the callback with the same state is refused without a token request.
    auto replay = http_request("GET", s.daemon->url() + "/api/v1/connections/oauth/callback?code=x&state=" + state +
                                          "&iss=" + alumia::http::url_encode(s.peer.issuer()));
    REQUIRE(replay.status == 303);
    // The Location is relative to the callback (a redirect base may have a path prefix).
    const std::string location = replay.headers.find("Location")->second;
    CHECK(location.rfind("result?", 0) == 0);
    auto page = http_request("GET", s.daemon->url() + "/api/v1/connections/oauth/" + location);
    CHECK(page.status == 400);
    CHECK(page.body.find("not valid any more") != std::string::npos);
    CHECK(page.headers.find("Cache-Control")->second == "no-store");
    CHECK(page.headers.find("Referrer-Policy")->second == "no-referrer");
    CHECK(page.headers.find("Content-Security-Policy")->second.find("default-src 'none'") != std::string::npos);
    CHECK(s.connection(id)["updatedAt"] == before["updatedAt"]);
    CHECK(s.connection(id)["status"] == "active");
  }
  SECTION("a callback from the wrong issuer is refused before any token request") {
    const std::string auth = s.authorize_url(id);
    const std::string state = query_value(auth, "state");
    auto cb = http_request("GET",
                           s.daemon->url() + "/api/v1/connections/oauth/callback?code=x&state=" + state +
                               "&iss=" + alumia::http::url_encode("http://127.0.0.1:1"),
                           {{"Cookie", s.cookie}});
    REQUIRE(cb.status == 303);
    auto c2 = s.connection(id);
    CHECK(c2["status"] == "error");
    CHECK(c2["error"]["code"] == "invalid_issuer");
  }
  SECTION("50 bogus callbacks do not disturb a pending flow, and are logged at a bounded rate") {
    const std::string auth = s.authorize_url(id);
    const std::size_t lines_before = count_of(s.daemon->log(), "unknown or already used state");
    for (int i = 0; i < 50; ++i)
      CHECK(http_request("GET",
                         s.daemon->url() + "/api/v1/connections/oauth/callback?code=x&state=bogus" + std::to_string(i))
                .status == 303);
    auto b = run({s.browser.string(), "--wait", auth});
    REQUIRE(b.exit_code == 0);
    CHECK(s.connection(id)["status"] == "active");
    // Not one line per callback: the limiter allows one per 10 s (two, should the burst straddle two).
    CHECK(count_of(s.daemon->log(), "unknown or already used state") - lines_before <= 2);
  }
}

TEST_CASE("OAuth consent denied reports the provider's reason", "[oauth-peer]") {
  ALUMIA_SKIP_WITHOUT_OAUTH_PEER();
  PeerSetup s({}, {}, {{"peer", json{{"extraAuthorizeParams", {{"login_hint", "deny"}}}}}});
  auto r = s.connect({"peer", "--timeout", "60"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("access_denied") != std::string::npos);
  auto c = s.connection(s.only_connection_id());
  CHECK(c["status"] == "error");
  CHECK(c["error"]["code"] == "access_denied");
}

TEST_CASE("OAuth state expires", "[oauth-peer]") {
  ALUMIA_SKIP_WITHOUT_OAUTH_PEER();
  // The expiry itself is tested on a fake clock (unit test_oauth_binding); here only that the daemon
  // takes ALUMIA_OAUTH_FLOW_TTL_MS: a 1 ms flow has expired by the time the browser comes back.
  PeerSetup s({}, {{"ALUMIA_OAUTH_FLOW_TTL_MS", "1"}});
  auto start = s.daemon->cli({"connect", "peer", "--no-wait", "--json"});
  REQUIRE(start.exit_code == 0);
  const std::string id = json::parse(start.out)["connection"]["id"];
  const std::string auth = s.authorize_url(id);
  const auto started = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] { return std::chrono::steady_clock::now() - started > std::chrono::milliseconds(2); }));
  auto b = run({s.browser.string(), "--wait", auth});
  REQUIRE(b.exit_code == 0);
  auto c = s.connection(id);
  CHECK(c["status"] == "pending");  // the expired callback changed nothing but the flow is spent
  CHECK(c["error"].is_null());
}

TEST_CASE("PKCE is enforced by the peer: a connector without it fails", "[oauth-peer]") {
  ALUMIA_SKIP_WITHOUT_OAUTH_PEER();
  PeerSetup s({}, {}, {{"nopkce", json{{"pkce", false}}}});
  auto r = s.connect({"nopkce", "--timeout", "60"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  auto c = s.connection(s.only_connection_id("nopkce"));
  CHECK(c["status"] == "error");
}

TEST_CASE("Refresh before expiry rotates the refresh token without reuse", "[oauth-peer]") {
  ALUMIA_SKIP_WITHOUT_OAUTH_PEER();
  PeerSetup s({{"PEER_AT_TTL", "4"}}, {{"ALUMIA_REFRESH_INTERVAL_MS", "100"}});
  auto r = s.connect({"peer", "--timeout", "60"});
  REQUIRE(r.exit_code == 0);
  const std::string id = s.only_connection_id();
  const std::string at1 = s.token(id);
  // Two background refreshes, each at half the 4-second life; a reused rotated RT would kill the grant.
  std::string first_refresh;
  REQUIRE(eventually(
      [&] {
        auto c = s.connection(id);
        if (!c["lastRefreshedAt"].is_string()) return false;
        if (first_refresh.empty()) first_refresh = c["lastRefreshedAt"];
        return c["lastRefreshedAt"] != first_refresh;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(100)));
  auto c = s.connection(id);
  CHECK(c["status"] == "active");
  const std::string at2 = s.token(id);
  CHECK(at2 != at1);
  CHECK(s.peer.introspect(at2)["active"] == true);
  // GET /metrics counts the refreshes by outcome (at least the two waited for, none failed).
  const auto metrics = s.daemon->api("GET", "/metrics");
  REQUIRE(metrics.status == 200);
  const std::string refreshed = "\nalumia_oauth_refresh_total{outcome=\"refreshed\"} ";
  const auto at = metrics.body.find(refreshed);
  REQUIRE(at != std::string::npos);
  CHECK(std::stoi(metrics.body.substr(at + refreshed.size())) >= 2);
  CHECK(metrics.body.find("alumia_oauth_refresh_total{outcome=\"failed\"}") == std::string::npos);
}

namespace {

struct TokenRead {
  int status = 0;
  std::string access_token;
  std::string body;  // for the failure message
};

// `n` token reads released together (SPEC §6's burst), each on its own connection to the daemon.
// cpp-httplib 0.11 listens with a backlog of 5, so some of 20 simultaneous connects can fail at the
// transport (status -1) before the daemon sees them: those are sent again, a few times at most.
std::vector<TokenRead> read_tokens_at_once(const Daemon& daemon, const std::string& id, int n) {
  const std::string key = daemon.key();
  std::vector<TokenRead> reads(static_cast<std::size_t>(n));
  std::latch go(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      go.arrive_and_wait();
      auto r = daemon.api("POST", "/api/v1/connections/" + id + "/token", "{}", key);
      for (int retry = 0; r.status == -1 && retry < 5; ++retry)
        r = daemon.api("POST", "/api/v1/connections/" + id + "/token", "{}", key);
      auto& out = reads[static_cast<std::size_t>(i)];
      out.status = r.status;
      out.body = r.body;
      if (r.status == 200) out.access_token = r.json()["data"]["accessToken"];
    });
  for (auto& t : threads) t.join();
  return reads;
}

}  // namespace

TEST_CASE("Concurrent token reads share one refresh, and a fresh token is not refreshed", "[oauth-peer]") {
  ALUMIA_SKIP_WITHOUT_OAUTH_PEER();
  // 8-second tokens are inside the refresh margin after 4 s (half their life). The background worker
  // is kept out of the way (one pass an hour) so that every refresh here is a token read's.
  PeerSetup s({{"PEER_AT_TTL", "8"}}, {{"ALUMIA_REFRESH_INTERVAL_MS", "3600000"}});
  auto r = s.connect({"peer", "--timeout", "60"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto connected = std::chrono::steady_clock::now();
  const std::string id = s.only_connection_id();
  REQUIRE(s.peer.grants("authorization_code") == 1);

  // A token just issued: 20 reads at once, no refresh at all (the earlier rule refreshed on every
  // read of a token that expires within a minute: 20 refreshes).
  const auto fresh = read_tokens_at_once(*s.daemon, id, 20);
  for (const auto& t : fresh) {
    INFO(t.body);
    CHECK(t.status == 200);
    CHECK(t.access_token == fresh.front().access_token);
  }
  CHECK(s.peer.grants("refresh_token") == 0);

  // Inside the margin: 20 reads at once, one refresh at the authorization server, one new token for all.
  REQUIRE(eventually([&] { return std::chrono::steady_clock::now() - connected > std::chrono::milliseconds(4200); }));
  const auto due = read_tokens_at_once(*s.daemon, id, 20);
  for (const auto& t : due) {
    INFO(t.body);
    CHECK(t.status == 200);
    CHECK(t.access_token == due.front().access_token);
  }
  CHECK(due.front().access_token != fresh.front().access_token);
  CHECK(s.peer.grants("refresh_token") == 1);
  CHECK(s.peer.introspect(due.front().access_token)["active"] == true);
}

TEST_CASE("Redeeming the ticket binds the flow to that browser with a short-lived HttpOnly cookie", "[oauth-peer]") {
  ALUMIA_SKIP_WITHOUT_OAUTH_PEER();
  PeerSetup s;
  auto start = s.daemon->cli({"connect", "peer", "--no-wait", "--json"});
  REQUIRE(start.exit_code == 0);
  const std::string id = json::parse(start.out)["connection"]["id"];
  const std::string auth = s.authorize_url(id);
  INFO(s.set_cookie);
  REQUIRE_FALSE(s.set_cookie.empty());
  CHECK(s.set_cookie.rfind("alumia-oauth-" + id + "=", 0) == 0);
  CHECK(s.cookie.size() >= std::string("alumia-oauth-" + id + "=").size() + 43);  // 256 bits, base64url
  CHECK(s.set_cookie.find("; HttpOnly") != std::string::npos);
  CHECK(s.set_cookie.find("; SameSite=Lax") != std::string::npos);
  CHECK(s.set_cookie.find("; Path=/api/v1/connections/oauth/callback") != std::string::npos);
  CHECK(s.set_cookie.find("; Max-Age=600") != std::string::npos);
  CHECK(s.set_cookie.find("Secure") == std::string::npos);  // plain-http loopback origin
  // The nonce is neither the state nor anything the provider sees.
  CHECK(auth.find(s.cookie.substr(s.cookie.find('=') + 1)) == std::string::npos);
  CHECK(s.daemon->log().find(s.cookie.substr(s.cookie.find('=') + 1)) == std::string::npos);
  // The browser holding it completes the flow, and the callback clears it.
  auto b = run({s.browser.string(), "--wait", auth});
  REQUIRE(b.exit_code == 0);
  CHECK(s.connection(id)["status"] == "active");
  CHECK(read_file(s.jar()).find("alumia-oauth-" + id) == std::string::npos);
}

TEST_CASE("A provider link finished in another browser is refused; the browser that started it still can",
          "[oauth-peer]") {
  ALUMIA_SKIP_WITHOUT_OAUTH_PEER();
  PeerSetup s;
  auto r = s.connect({"peer", "--timeout", "60"});
  INFO(r.out << r.err << s.daemon->log());
  REQUIRE(r.exit_code == 0);
  const std::string id = s.only_connection_id();
  const auto before = s.connection(id);
  REQUIRE(before["accountLabel"] == "alice@peer.test");
  // The owner redeems a reconnect ticket in their browser and sends the provider's link to a colleague,
  // who signs in with their own account (bob) in their own browser.
  const std::string auth = s.authorize_url(id);
  const std::string log = other_browser(s.dir.path() / "colleague-jar.json", auth + "&login_hint=bob");
  INFO(log);
  CHECK(log.find("done status=403") != std::string::npos);
  CHECK(log.find("/api/v1/connections/oauth/result?refused=other-browser") != std::string::npos);
  auto page = http_request("GET", s.daemon->url() + "/api/v1/connections/oauth/result?refused=other-browser");
  CHECK(page.status == 403);
  CHECK(page.body.find("another browser") != std::string::npos);
  CHECK(page.headers.find("Content-Security-Policy")->second.find("default-src 'none'") != std::string::npos);
  // Nothing changed: not bound to bob, still alice's grant.
  auto after = s.connection(id);
  CHECK(after["accountLabel"] == "alice@peer.test");
  CHECK(after["status"] == "active");
  CHECK(after["updatedAt"] == before["updatedAt"]);
  CHECK(s.daemon->log().find("bob@peer.test") == std::string::npos);
  CHECK(s.daemon->log().find("did not start") != std::string::npos);
  // A hand-made callback with a wrong cookie is refused the same way.
  const std::string state = query_value(auth, "state");
  auto forged = http_request("GET", s.daemon->url() + "/api/v1/connections/oauth/callback?code=x&state=" + state,
                             {{"Cookie", "alumia-oauth-" + id + "=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}});
  CHECK(forged.status == 303);
  CHECK(forged.headers.find("Location")->second == "result?refused=other-browser");
  CHECK(s.connection(id)["updatedAt"] == before["updatedAt"]);
  // The flow is still there for the browser that started it.
  auto b = run({s.browser.string(), "--wait", auth});
  REQUIRE(b.exit_code == 0);
  auto done = s.connection(id);
  CHECK(done["status"] == "active");
  CHECK(done["accountLabel"] == "alice@peer.test");
  CHECK(done["updatedAt"] != before["updatedAt"]);
}

TEST_CASE("A new ticket for a connection voids its earlier ones", "[oauth-peer]") {
  ALUMIA_SKIP_WITHOUT_OAUTH_PEER();
  PeerSetup s;
  auto start = s.daemon->cli({"connect", "peer", "--no-wait", "--json"});
  REQUIRE(start.exit_code == 0);
  const json started = json::parse(start.out);
  const std::string id = started["connection"]["id"];
  const std::string first = started["oauthUrl"];
  auto again = s.daemon->api("POST", "/api/v1/connections/" + id + "/oauth-url", "{}");
  REQUIRE(again.status == 200);
  const std::string second = again.json()["data"]["oauthUrl"];
  REQUIRE(second != first);
  auto old = http_request("GET", first);
  CHECK(old.status == 401);
  CHECK(old.json()["error"]["code"] == "UNAUTHORIZED");
  CHECK(old.headers.count("Set-Cookie") == 0);
  CHECK(http_request("GET", second).status == 302);
  // POST /connections for the same pending connection mints a ticket too, voiding the second.
  auto third = s.daemon->api("POST", "/api/v1/connections", R"({"connectorSlug":"peer"})");
  REQUIRE(third.status == 201);
  REQUIRE(third.json()["data"]["connection"]["id"] == id);
  const std::string fourth =
      s.daemon->api("POST", "/api/v1/connections/" + id + "/oauth-url", "{}").json()["data"]["oauthUrl"];
  CHECK(http_request("GET", std::string(third.json()["data"]["oauthUrl"])).status == 401);
  CHECK(http_request("GET", fourth).status == 302);
}

TEST_CASE("A redirect base on another origin: the ticket is redeemed there, and the flow completes end to end",
          "[oauth-peer]") {
  ALUMIA_SKIP_WITHOUT_OAUTH_PEER();
  // The public origin (a proxy named localhost, another host than the control listener's 127.0.0.1, so
  // cookies are not shared) forwards to the daemon's public listener, like a TLS proxy would.
  HttpProxy proxy("127.0.0.1", "localhost");
  PeerSetup s({}, {{"ALUMIA_OAUTH_REDIRECT_BASE", proxy.url()}}, {{"peer", json::object()}},
              {"--public-listen", "127.0.0.1:0"});
  const json state = json::parse(read_file(s.dir.path() / "daemon.json"));
  REQUIRE(state["publicUrl"].is_string());
  const std::string public_url = state["publicUrl"];
  proxy.set_upstream(public_url);

  auto start = s.daemon->cli({"connect", "peer", "--no-wait", "--json"});
  REQUIRE(start.exit_code == 0);
  const json started = json::parse(start.out);
  const std::string id = started["connection"]["id"];
  const std::string url = started["oauthUrl"];
  CHECK(url.rfind(proxy.url() + "/api/v1/connections/" + id + "/oauth?ticket=", 0) == 0);

  // On the public listener the start route takes a ticket only: never a key, and the control API is absent.
  auto keyed = http_request("GET", public_url + "/api/v1/connections/" + id + "/oauth",
                            {{"Authorization", "Bearer " + s.daemon->key()}});
  CHECK(keyed.status == 401);
  CHECK(keyed.headers.count("Location") == 0);
  auto no_ticket = http_request("GET", public_url + "/api/v1/connections/" + id + "/oauth");
  CHECK(no_ticket.status == 401);
  auto api = http_request("GET", public_url + "/api/v1/connections", {{"Authorization", "Bearer " + s.daemon->key()}});
  CHECK(api.status == 404);
  auto mint = http_request("POST", public_url + "/api/v1/connections/" + id + "/oauth-url",
                           {{"Authorization", "Bearer " + s.daemon->key()}}, "{}");
  CHECK(mint.status == 404);

  // The whole flow through the public origin: CLI → browser → proxy → peer → proxy callback.
  auto r = s.connect({"--reconnect", id, "--timeout", "60"});
  INFO(r.out << r.err << s.daemon->log() << read_file(s.dir.path() / "browser.log"));
  REQUIRE(r.exit_code == 0);
  auto c = s.connection(id);
  CHECK(c["status"] == "active");
  CHECK(c["accountLabel"] == "alice@peer.test");
  CHECK(read_file(s.dir.path() / "browser.log").find("GET " + proxy.url() + "/api/v1/connections/oauth/callback") !=
        std::string::npos);
}

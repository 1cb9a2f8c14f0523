// OAuth starts through the route table without sockets: a ticket acts with the scopes of the key that
// minted it (SPEC §2), a newer ticket voids the older ones, the flow is bound to the browser that
// received its cookie, and refused callbacks keep nothing in memory and log at a bounded rate.
#include "routes.hpp"

#include <alumia/auth/api_keys.hpp>
#include <alumia/auth/tickets.hpp>
#include <alumia/base/clock.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/config/config.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/connections/oauth_clients.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/oauth/oauth.hpp>
#include <alumia/setup/setup_service.hpp>
#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>
#include <alumia/webhooks/webhook_service.hpp>

#include "fakes.hpp"
#include "process.hpp"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <catch2/catch.hpp>

#include <memory>
#include <sstream>
#include <string>

namespace {

using namespace alumia;
using nlohmann::json;

// Captures what the daemon logs while it lives; restores the default logger after.
class CapturedLog {
 public:
  CapturedLog() : m_previous(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(m_text);
    sink->set_pattern("%l %v");
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("captured", sink));
  }
  ~CapturedLog() { spdlog::set_default_logger(m_previous); }
  std::size_t lines_with(const std::string& needle) const {
    std::istringstream in(m_text.str());
    std::size_t n = 0;
    for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
    return n;
  }
  std::string text() const { return m_text.str(); }

 private:
  std::ostringstream m_text;
  std::shared_ptr<spdlog::logger> m_previous;
};

// The daemon's pieces over a temp store: the owner, and a GitHub connection (OAuth client from "env").
struct Fixture {
  test::TempDir dir;
  std::unique_ptr<Store> store;
  Catalog catalog;
  SystemRandom random;
  test::FakeClock clock;
  test::ScriptedHttp net;  // no script: no network
  Sealer sealer{generate_key(random), random};
  EnvLookup env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "ALUMIA_GITHUB_CLIENT_ID") return "Iv1.unit";
    if (name == "ALUMIA_GITHUB_CLIENT_SECRET") return "unit-secret";
    return std::nullopt;
  };
  std::unique_ptr<KeyService> keys;
  std::unique_ptr<TicketBook> tickets;
  std::unique_ptr<AdminSessions> admin_sessions;
  std::unique_ptr<OAuthClients> oauth_clients;
  std::unique_ptr<ConnectionService> connections;
  std::unique_ptr<oauth::FlowService> flows;
  std::unique_ptr<WebhookStore> hooks;
  std::unique_ptr<EndpointCache> endpoints;
  struct NoRelay final : JobWaker {
    void jobs_due() override {}  // no relay worker here
  } relay;
  std::unique_ptr<WebhookService> webhooks;
  std::unique_ptr<setup::SetupService> setup;
  std::unique_ptr<Settings> settings;
  std::unique_ptr<daemon::DaemonContext> ctx;
  Caller owner;
  std::string connection_id;

  explicit Fixture(const std::string& redirect_base = "http://127.0.0.1:7465") {
    auto s = open_sqlite_store({dir.path() / "store.db", true});
    REQUIRE(s);
    store = std::move(*s);
    auto c = load_catalog(dir.path() / "connectors.d");
    REQUIRE(c);
    catalog = std::move(*c);
    keys = std::make_unique<KeyService>(KeyServiceDeps{*store, clock, random, "live"});
    tickets = std::make_unique<TicketBook>(*store, clock, random);
    admin_sessions = std::make_unique<AdminSessions>(clock, random, AdminSessions::Options{});
    oauth_clients = std::make_unique<OAuthClients>(*store, sealer, env);
    connections = std::make_unique<ConnectionService>(ConnectionServiceDeps{
        *store, catalog, sealer, clock, random, net, env, *oauth_clients, *tickets, "http://127.0.0.1:7465"});
    flows = std::make_unique<oauth::FlowService>(oauth::FlowServiceDeps{*store, catalog, sealer, clock, random, net,
                                                                        *oauth_clients, *connections, redirect_base});
    connections->set_oauth_base(flows->redirect_base());
    auto h = open_sqlite_webhook_store({.path = dir.path() / "store.db", .intake_log_bytes = 0});
    REQUIRE(h);
    hooks = std::move(*h);
    endpoints = std::make_unique<EndpointCache>(*hooks, *store, sealer, "");
    webhooks = std::make_unique<WebhookService>(WebhookServiceDeps{.connections = *connections,
                                                                   .store = *store,
                                                                   .sealer = sealer,
                                                                   .hooks = *hooks,
                                                                   .endpoints = *endpoints,
                                                                   .relay = relay,
                                                                   .clock = clock,
                                                                   .random = random,
                                                                   .http = net,
                                                                   .webhook_base_url = "",
                                                                   .control_url = "http://127.0.0.1:7465"});
    setup = std::make_unique<setup::SetupService>(setup::SetupServiceDeps{.connections = *connections,
                                                                          .oauth = *flows,
                                                                          .webhooks = *webhooks,
                                                                          .catalog = catalog,
                                                                          .env = env,
                                                                          .http = net,
                                                                          .random = random});
    auto resolved = Settings::resolve({}, env, dir.path() / "config.json");
    REQUIRE(resolved);
    settings = std::make_unique<Settings>(std::move(*resolved));
    ctx = std::make_unique<daemon::DaemonContext>(daemon::DaemonContext{.keys = *keys,
                                                                        .tickets = *tickets,
                                                                        .oauth_clients = *oauth_clients,
                                                                        .connections = *connections,
                                                                        .store = *store,
                                                                        .catalog = catalog,
                                                                        .settings = *settings,
                                                                        .clock = clock,
                                                                        .random = random,
                                                                        .info = {},
                                                                        .oauth = *flows,
                                                                        .control_hosts = {},
                                                                        .public_hosts = {},
                                                                        .webhooks = *webhooks,
                                                                        .setup = *setup,
                                                                        .admin_sessions = *admin_sessions});
    auto key = keys->bootstrap_owner();
    REQUIRE(key);
    REQUIRE(key->has_value());
    auto who = keys->authenticate("Bearer " + **key);
    REQUIRE(who);
    owner = *who;
    auto started = connections->start(owner, StartConnection{"github", ""});
    REQUIRE(started);
    connection_id = started->connection.id;
  }

  // A caller of the owner holding a key with just these scopes.
  Caller with_scopes(unsigned scopes) const {
    Caller c = owner;
    c.key.scopes = scopes;
    return c;
  }

  http::Response get(const std::string& target, http::Headers headers = {},
                     http::ListenerKind listener = http::ListenerKind::control) {
    http::Request req;
    req.method = "GET";
    req.target = target;
    const auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos)
      for (auto& [k, v] : http::form_decode(target.substr(q + 1))) req.query.emplace(k, v);
    req.headers = std::move(headers);
    req.listener = listener;
    return daemon::dispatch(*ctx, req);
  }

  static std::string header(const http::Response& r, const std::string& name) {
    return http::header_value(r.headers, name).value_or("");
  }
  static std::string query_value(const std::string& url, const std::string& name) {
    for (const auto& [k, v] : http::form_decode(url.substr(url.find('?') + 1)))
      if (k == name) return v;
    return {};
  }
  std::string path_of(const std::string& url) const { return url.substr(url.find("/api/")); }
  std::string connection_status() {
    auto c = store->find_connection(connection_id);
    REQUIRE(c);
    REQUIRE(c->has_value());
    return std::string(to_string((*c)->status));
  }
};

}  // namespace

TEST_CASE("a ticket carries the scopes of the key that minted it; starting a flow needs 'connections'",
          "[oauth][binding]") {
  Fixture f;
  auto conn = f.connections->get(f.owner, f.connection_id);
  REQUIRE(conn);
  const unsigned webhooks = static_cast<unsigned>(Scope::webhooks);
  const unsigned tokens = static_cast<unsigned>(Scope::tokens);
  const unsigned connections = static_cast<unsigned>(Scope::connections);

  SECTION("at the TicketBook") {
    const std::string t = f.tickets->issue(conn->id, conn->user_id, webhooks | tokens).value();
    auto grant = f.tickets->redeem(t, f.connection_id).value();
    REQUIRE(grant);
    CHECK(grant->user_id == f.owner.user.id);
    CHECK(grant->scopes == (webhooks | tokens));
    CHECK_FALSE(f.tickets->redeem(t, f.connection_id).value());  // single use
  }
  SECTION("a webhooks-only or tokens-only key's ticket is FORBIDDEN and starts nothing") {
    for (unsigned scopes : {webhooks, tokens, webhooks | tokens}) {
      const std::string url = f.connections->oauth_url(f.with_scopes(scopes), *conn).value();
      auto r = f.get(f.path_of(url));
      CHECK(r.status == 403);
      CHECK(r.body.find("FORBIDDEN") != std::string::npos);
      CHECK(r.body.find("'connections' scope") != std::string::npos);
      CHECK(Fixture::header(r, "Set-Cookie").empty());
      CHECK(Fixture::header(r, "Location").empty());
      CHECK(f.get(f.path_of(url)).status == 401);  // spent all the same
    }
  }
  SECTION("a ticket of a key with 'connections' starts the flow") {
    const std::string url = f.connections->oauth_url(f.with_scopes(connections), *conn).value();
    auto r = f.get(f.path_of(url));
    CHECK(r.status == 302);
    CHECK(Fixture::header(r, "Location").rfind("https://github.com/login/oauth/authorize?", 0) == 0);
    CHECK(Fixture::header(r, "Set-Cookie").rfind("alumia-oauth-" + f.connection_id + "=", 0) == 0);
  }
}

TEST_CASE("a new ticket for a connection voids the earlier ones, not those of other connections", "[oauth][binding]") {
  Fixture f;
  auto conn = f.connections->get(f.owner, f.connection_id);
  REQUIRE(conn);
  auto other = f.connections->start(f.owner, StartConnection{"github", "other"});
  REQUIRE(other);
  const std::string first = f.tickets->issue(conn->id, conn->user_id, k_all_scopes).value();
  const std::string elsewhere = f.tickets->issue(other->connection.id, other->connection.user_id, k_all_scopes).value();
  const std::string second = f.tickets->issue(conn->id, conn->user_id, k_all_scopes).value();
  CHECK_FALSE(f.tickets->redeem(first, f.connection_id).value());
  CHECK(f.tickets->redeem(elsewhere, other->connection.id).value());
  CHECK(f.tickets->redeem(second, f.connection_id).value());
}

TEST_CASE("the oauthUrl points at the redirect base, and the cookie follows its scheme and path", "[oauth][binding]") {
  SECTION("default: the control listener, plain http") {
    Fixture f;
    auto conn = f.connections->get(f.owner, f.connection_id);
    REQUIRE(conn);
    CHECK(f.connections->oauth_url(f.owner, *conn)
              .value()
              .rfind("http://127.0.0.1:7465/api/v1/connections/" + f.connection_id + "/oauth?ticket=", 0) == 0);
    auto started = f.flows->begin(*conn, false);
    REQUIRE(started);
    CHECK(started->set_cookie.find("; Path=/api/v1/connections/oauth/callback;") != std::string::npos);
    CHECK(started->set_cookie.find("Secure") == std::string::npos);
  }
  SECTION("an https public origin with a path prefix") {
    Fixture f("https://connect.example.com/alumia/");
    auto conn = f.connections->get(f.owner, f.connection_id);
    REQUIRE(conn);
    CHECK(f.connections->oauth_url(f.owner, *conn)
              .value()
              .rfind("https://connect.example.com/alumia/api/v1/connections/" + f.connection_id + "/oauth?ticket=",
                     0) == 0);
    auto started = f.flows->begin(*conn, false);
    REQUIRE(started);
    CHECK(started->set_cookie.find("; Max-Age=600; Path=/alumia/api/v1/connections/oauth/callback; HttpOnly; "
                                   "SameSite=Lax; Secure") != std::string::npos);
    CHECK(Fixture::query_value(started->authorize_url, "redirect_uri") ==
          "https://connect.example.com/alumia/api/v1/connections/oauth/callback");
  }
}

TEST_CASE("on the public listener the start route takes the ticket, never a key", "[oauth][binding]") {
  Fixture f;
  auto conn = f.connections->get(f.owner, f.connection_id);
  REQUIRE(conn);
  const std::string path = "/api/v1/connections/" + f.connection_id + "/oauth";
  // The owner's own key (all scopes) is refused there…
  const std::string owner_key_header = "Bearer " + [&] {
    auto k = f.keys->issue_key(f.owner.user.id, "unit", k_all_scopes);
    REQUIRE(k);
    return *k;
  }();
  auto with_key = f.get(path, {{"authorization", owner_key_header}}, http::ListenerKind::public_);
  CHECK(with_key.status == 401);
  CHECK(Fixture::header(with_key, "Location").empty());
  // …while the same key works on the control listener, and a ticket works on the public one.
  // (a key-started flow is bound too: its 302 carries the cookie for the client that follows it)
  auto keyed_start = f.get(path, {{"authorization", owner_key_header}});
  CHECK(keyed_start.status == 302);
  CHECK(Fixture::header(keyed_start, "Set-Cookie").rfind("alumia-oauth-" + f.connection_id + "=", 0) == 0);
  const std::string url = f.connections->oauth_url(f.owner, *conn).value();
  CHECK(f.get(f.path_of(url), {}, http::ListenerKind::public_).status == 302);
}

TEST_CASE("the callback needs the cookie of the browser that started the flow", "[oauth][binding]") {
  Fixture f;
  CapturedLog log;
  auto conn = f.connections->get(f.owner, f.connection_id);
  REQUIRE(conn);
  auto start = f.get(f.path_of(f.connections->oauth_url(f.owner, *conn).value()));
  REQUIRE(start.status == 302);
  const std::string set_cookie = Fixture::header(start, "Set-Cookie");
  const std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
  const std::string state = Fixture::query_value(Fixture::header(start, "Location"), "state");
  const std::string callback = "/api/v1/connections/oauth/callback?code=c&state=" + state;

  for (const http::Headers& wrong :
       {http::Headers{}, http::Headers{{"cookie", "alumia-oauth-" + f.connection_id + "=not-the-nonce"}},
        http::Headers{{"cookie", "other=1; " + cookie.substr(cookie.find('='))}}}) {
    auto r = f.get(callback, wrong);
    CHECK(r.status == 303);
    CHECK(Fixture::header(r, "Location") == "result?refused=other-browser");
    CHECK(Fixture::header(r, "Set-Cookie").empty());
  }
  CHECK(f.net.sent_count() == 0);  // no token request
  CHECK(f.connection_status() == "pending");
  CHECK(f.flows->results_held() == 0);
  CHECK(log.lines_with("did not start the flow") == 1);

  // Among other cookies (and a second Cookie header), the right one completes the flow: it is consumed,
  // its outcome remembered, and the cookie cleared.
  auto r = f.get(callback, {{"cookie", "a=b; " + cookie + "; c=d"}});
  CHECK(r.status == 303);
  CHECK(Fixture::header(r, "Location").rfind("result?id=", 0) == 0);
  CHECK(Fixture::header(r, "Set-Cookie").rfind("alumia-oauth-" + f.connection_id + "=; Max-Age=0;", 0) == 0);
  CHECK(f.net.sent_count() == 1);  // the exchange was attempted (and fails here: no network)
  CHECK(f.flows->results_held() == 1);
  CHECK(f.connection_status() == "error");
  auto page = f.get("/api/v1/connections/oauth/" + Fixture::header(r, "Location"));  // relative to the callback
  CHECK(page.status == 400);
  auto replay = f.get(callback, {{"cookie", cookie}});
  CHECK(Fixture::header(replay, "Location") == "result?refused=unknown-state");
}

TEST_CASE("10,000 bogus callbacks keep nothing in memory and log a bounded number of lines", "[oauth][binding]") {
  Fixture f;
  CapturedLog log;
  auto conn = f.connections->get(f.owner, f.connection_id);
  REQUIRE(conn);
  auto start = f.get(f.path_of(f.connections->oauth_url(f.owner, *conn).value()));
  REQUIRE(start.status == 302);
  const std::string state = Fixture::query_value(Fixture::header(start, "Location"), "state");
  const std::size_t held = f.flows->results_held();

  for (int i = 0; i < 10'000; ++i) {
    auto r = f.get("/api/v1/connections/oauth/callback?code=x&state=bogus" + std::to_string(i));
    REQUIRE(Fixture::header(r, "Location") == "result?refused=unknown-state");
    // A live state from another browser is refused too, and costs nothing either.
    auto other = f.get("/api/v1/connections/oauth/callback?code=x&state=" + state);
    REQUIRE(Fixture::header(other, "Location") == "result?refused=other-browser");
  }
  CHECK(f.flows->results_held() == held);
  CHECK(log.lines_with("unknown or already used state") == 1);
  CHECK(log.lines_with("did not start the flow") == 1);
  CHECK(f.net.sent_count() == 0);
  CHECK(f.connection_status() == "pending");

  // The next window's line says how many were left out.
  f.clock.advance(std::chrono::seconds(10));
  f.get("/api/v1/connections/oauth/callback?code=x&state=bogus");
  CHECK(log.lines_with("unknown or already used state") == 2);
  CHECK(log.lines_with("(9999 more like it since the last such line)") == 1);

  // The fixed pages need no memory either.
  auto page = f.get("/api/v1/connections/oauth/result?refused=unknown-state");
  CHECK(page.status == 400);
  CHECK(page.body.find("not valid any more") != std::string::npos);
  auto other = f.get("/api/v1/connections/oauth/result?refused=other-browser");
  CHECK(other.status == 403);
  CHECK(other.body.find("started in another browser") != std::string::npos);
  CHECK(f.get("/api/v1/connections/oauth/result?refused=nonsense").status == 404);
}

TEST_CASE("a flow expires after its life (10 minutes) on the clock: a late callback spends it and changes nothing",
          "[oauth][binding]") {
  // On the fake clock: the functional test only checks that ALUMIA_OAUTH_FLOW_TTL_MS reaches the daemon.
  for (const bool late : {false, true}) {
    INFO((late ? "one millisecond late" : "one millisecond early"));
    Fixture f;
    auto conn = f.connections->get(f.owner, f.connection_id);
    REQUIRE(conn);
    auto start = f.get(f.path_of(f.connections->oauth_url(f.owner, *conn).value()));
    REQUIRE(start.status == 302);
    const std::string set_cookie = Fixture::header(start, "Set-Cookie");
    const std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
    const std::string state = Fixture::query_value(Fixture::header(start, "Location"), "state");
    f.clock.advance(std::chrono::minutes(10) + std::chrono::milliseconds(late ? 1 : -1));
    auto r = f.get("/api/v1/connections/oauth/callback?code=c&state=" + state, {{"cookie", cookie}});
    CHECK(r.status == 303);
    const std::string location = Fixture::header(r, "Location");
    CHECK(location.rfind("result?id=", 0) == 0);  // the flow is consumed either way
    if (late) {
      CHECK(f.net.sent_count() == 0);  // no token request
      CHECK(f.connection_status() == "pending");
      auto page = f.get("/api/v1/connections/oauth/" + location);
      CHECK(page.body.find("expired") != std::string::npos);
    } else {
      CHECK(f.net.sent_count() == 1);  // the exchange was attempted (and fails here: no network)
      CHECK(f.connection_status() == "error");
    }
    auto replay = f.get("/api/v1/connections/oauth/callback?code=c&state=" + state, {{"cookie", cookie}});
    CHECK(Fixture::header(replay, "Location") == "result?refused=unknown-state");
  }
}

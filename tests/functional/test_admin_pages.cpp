// The admin pages (SPEC §9) over HTTP against the real daemon and CLI: the login link of `admin open`
// exchanged once for the session cookie (its flags), the pages behind it, escaping of what senders
// control, the retry and replay forms with their CSRF token and same-origin rule, logout, and the
// expiry of links and sessions. The same pages in a real browser: test_admin_pages_browser.cpp.
#include "cli_helpers.hpp"
#include "fake_telegram.hpp"
#include "http_sink.hpp"
#include "oauth_peer.hpp"
#include "process.hpp"
#include "webhook_helpers.hpp"

#include <alumia/base/encoding.hpp>
#include <alumia/crypto/crypto.hpp>

#include <catch2/catch.hpp>

#include <regex>

using namespace alumia;
using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string header_of(const HttpReply& r, const std::string& name) {
  const auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

// `admin open --no-browser`: the link it prints on stdout.
std::string login_link(const Daemon& d, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"admin", "open", "--no-browser"};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto r = cli(d, args);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::string link = r.out.substr(0, r.out.find('\n'));
  REQUIRE(link.starts_with(d.url() + "/admin/login?token="));
  return link;
}

HttpReply page(const Daemon& d, const std::string& path, const std::string& cookie) {
  return http_request("GET", d.url() + path, {{"Cookie", cookie}});
}

std::string http_encode(const std::string& v) { return alumia::http::url_encode(v); }

std::string csrf_of(const std::string& html) {
  std::smatch m;
  REQUIRE(std::regex_search(html, m, std::regex("name=\"csrf\" value=\"([^\"]+)\"")));
  return m[1];
}

HttpReply post_form(const Daemon& d, const std::string& path, const std::string& cookie, const std::string& body,
                    Headers extra = {}) {
  Headers h{{"Cookie", cookie}, {"Content-Type", "application/x-www-form-urlencoded"}};
  h.insert(h.end(), extra.begin(), extra.end());
  return http_request("POST", d.url() + path, h, body);
}

std::string job_state(const Daemon& d, const std::string& job_id) {
  const json jobs = d.api("GET", "/api/v1/jobs?limit=200").json()["data"]["items"];
  for (const auto& j : jobs)
    if (j["id"] == job_id) return j["state"];
  return "";
}

// The signer of a GitHub endpoint as POST /api/v1/webhook-endpoints answered its creation.
Signer github(const json& created) {
  return make_signer("github", created["secret"].get<std::string>(), created["endpoint"]["id"].get<std::string>());
}

}  // namespace

TEST_CASE("admin pages: login link, session cookie, pages, escaping, CSRF and same-origin forms, logout",
          "[admin][pages]") {
  HttpSink sink = HttpSink::ok_and_fail();
  TempDir dir;
  Daemon d(dir.path(), daemon_options({{"ALUMIA_RELAY_BACKOFF_MS", "50,50"}}));

  const json created =
      create_endpoint(d, {{"provider", "github"}, {"label", "<b>lab</b>"}, {"relayTo", sink.url("/fail")}});
  const Signer gh = github(created);
  // A delivery whose body and headers try to inject markup: the pages show them as text.
  Delivery evil;
  evil.body = json{{"ref", "</pre><script>alert(1)</script>"}, {"n", 1}}.dump();
  evil.headers = {{"X-Hub-Signature-256", "sha256=" + encoding::hex_encode(crypto::hmac_sha256(gh.secret, evil.body))},
                  {"X-GitHub-Event", "push"},
                  {"X-GitHub-Delivery", "delivery-evil"},
                  {"X-Evil", "<img src=x onerror=alert(2)>"},
                  {"Content-Type", "application/json"}};
  REQUIRE(send(d, gh, evil).status == 200);
  // Dead after three failed attempts.
  std::string job_id;
  REQUIRE(eventually(
      [&] {
        const auto jobs = d.api("GET", "/api/v1/jobs?state=dead").json()["data"]["items"];
        if (jobs.empty()) return false;
        job_id = jobs[0]["id"];
        return true;
      },
      std::chrono::seconds(20)));
  const std::string event_id = d.api("GET", "/api/v1/connector-events").json()["data"]["items"][0]["id"];

  // Without a session: a page that says how to log in, nothing of the data.
  const auto anonymous = http_request("GET", d.url() + "/admin/connector-events");
  CHECK(anonymous.status == 401);
  CHECK(anonymous.body.find("alumia-connect admin open") != std::string::npos);
  CHECK(anonymous.body.find(gh.endpoint_id) == std::string::npos);

  // The link: once, for a cookie with the right flags, then 303 to the clean URL.
  const std::string link = login_link(d);
  const auto first = http_request("GET", link);
  REQUIRE(first.status == 303);
  CHECK(header_of(first, "Location") == "/admin/connector-events");
  const std::string set_cookie = header_of(first, "Set-Cookie");
  INFO(set_cookie);
  CHECK(set_cookie.starts_with("alumia-admin-" + std::to_string(d.port()) + "="));
  CHECK(set_cookie.find("; HttpOnly") != std::string::npos);
  CHECK(set_cookie.find("; SameSite=Strict") != std::string::npos);
  CHECK(set_cookie.find("; Path=/admin") != std::string::npos);
  CHECK(set_cookie.find("; Max-Age=3600") != std::string::npos);
  const std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
  const auto again = http_request("GET", link);
  CHECK(again.status == 403);
  CHECK(again.body.find("already used or has expired") != std::string::npos);
  CHECK(header_of(again, "Set-Cookie").empty());
  CHECK(http_request("GET", d.url() + "/admin/login?token=made-up").status == 403);

  // The events page: counts, the dead job with its Retry form, strict headers, nothing unescaped.
  const auto events = page(d, "/admin/connector-events", cookie);
  REQUIRE(events.status == 200);
  CHECK(header_of(events, "Content-Type").starts_with("text/html"));
  const std::string csp = header_of(events, "Content-Security-Policy");
  CHECK(csp.find("default-src 'none'") != std::string::npos);
  CHECK(csp.find("script-src 'none'") != std::string::npos);  // this page runs no script
  CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
  CHECK(header_of(events, "Cache-Control") == "no-store");
  CHECK(events.body.find("data-endpoint=\"" + gh.endpoint_id + "\"") != std::string::npos);
  CHECK(events.body.find("data-count=\"received\">1<") != std::string::npos);
  CHECK(events.body.find("data-retry=\"" + job_id + "\"") != std::string::npos);
  CHECK(events.body.find("&lt;b&gt;lab&lt;/b&gt;") != std::string::npos);
  CHECK(events.body.find("<b>lab</b>") == std::string::npos);
  CHECK(events.body.find("src=\"http") == std::string::npos);  // no external assets
  const std::string csrf = csrf_of(events.body);

  // The event's page: headers and body as text.
  const auto ev = page(d, "/admin/connector-events/" + event_id, cookie);
  REQUIRE(ev.status == 200);
  CHECK(ev.body.find("&lt;img src=x onerror=alert(2)&gt;") != std::string::npos);
  CHECK(ev.body.find("&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(ev.body.find("<script>alert") == std::string::npos);
  CHECK(ev.body.find("<img") == std::string::npos);
  CHECK(page(d, "/admin/connector-events/00000000-0000-4000-8000-000000000000", cookie).status == 404);
  CHECK(page(d, "/admin/connector-events?state=stuck", cookie).status == 400);

  // The retry form: refused without the token, with another token, from another origin, or cross-site.
  const std::string retry = "/admin/jobs/" + job_id + "/retry";
  const std::string origin = d.url();
  CHECK(post_form(d, retry, cookie, "back=%2Fadmin%2Fconnector-events", {{"Origin", origin}}).status == 403);
  CHECK(post_form(d, retry, cookie, "csrf=" + std::string(csrf.size(), 'A'), {{"Origin", origin}}).status == 403);
  CHECK(post_form(d, retry, cookie, "csrf=" + csrf, {{"Origin", "http://evil.example"}}).status == 403);
  CHECK(post_form(d, retry, cookie, "csrf=" + csrf, {{"Origin", origin}, {"Sec-Fetch-Site", "cross-site"}}).status ==
        403);
  CHECK(post_form(d, retry, "", "csrf=" + csrf, {{"Origin", origin}}).status == 401);  // no session
  CHECK(job_state(d, job_id) == "dead");                                               // nothing changed

  // Accepted: the target now answers 2xx, the job goes through, and the page says so.
  REQUIRE(
      d.api("PATCH", "/api/v1/webhook-endpoints/" + gh.endpoint_id, json{{"relayTo", sink.url("/ok")}}.dump()).status ==
      200);
  const auto retried =
      post_form(d, retry, cookie, "csrf=" + csrf + "&back=%2Fadmin%2Fconnector-events", {{"Origin", origin}});
  REQUIRE(retried.status == 303);
  CHECK(header_of(retried, "Location").starts_with("/admin/connector-events?note="));
  REQUIRE(eventually([&] { return job_state(d, job_id) == "succeeded"; }, std::chrono::seconds(20)));
  CHECK(page(d, "/admin/connector-events", cookie).body.find("data-jobs=\"succeeded\">1<") != std::string::npos);
  // A `back` elsewhere is not followed.
  const auto replayed = post_form(d, "/admin/connector-events/" + event_id + "/replay", cookie,
                                  "csrf=" + csrf + "&back=%2F%2Fevil.example%2Fx", {{"Origin", origin}});
  REQUIRE(replayed.status == 303);
  CHECK(header_of(replayed, "Location").starts_with("/admin/connector-events?note="));
  REQUIRE(eventually([&] { return d.api("GET", "/api/v1/jobs?state=succeeded").json()["data"]["items"].size() == 2; }));

  // The connectors page runs only its own script, by hash.
  const auto connectors = page(d, "/admin/connectors", cookie);
  REQUIRE(connectors.status == 200);
  CHECK(header_of(connectors, "Content-Security-Policy").find("script-src 'sha256-") != std::string::npos);
  CHECK(connectors.body.find("data-connector=\"github\"") != std::string::npos);
  CHECK(page(d, "/admin/connectors/status", cookie).json()["connections"].is_array());

  // Minting a link needs `admin`.
  const json hooks_key =
      d.api("POST", "/api/v1/api-keys", json{{"name", "hooks"}, {"scopes", {"webhooks"}}}.dump()).json()["data"];
  CHECK(d.api("POST", "/api/v1/admin/login-links", "{}", hooks_key["key"].get<std::string>()).status == 403);
  CHECK(d.api("POST", "/api/v1/admin/login-links", R"({"page":"elsewhere"})").status == 400);

  // Logout: the cookie is cleared and the session is gone.
  const auto out = post_form(d, "/admin/logout", cookie, "csrf=" + csrf, {{"Origin", origin}});
  REQUIRE(out.status == 303);
  CHECK(header_of(out, "Set-Cookie").find("Max-Age=0") != std::string::npos);
  CHECK(page(d, "/admin/connector-events", cookie).status == 401);
}

TEST_CASE("admin pages: a login link and a session expire", "[admin][pages]") {
  TempDir dir;
  Daemon d(dir.path(),
           daemon_options({{"ALUMIA_ADMIN_LOGIN_LINK_SECONDS", "1"}, {"ALUMIA_ADMIN_SESSION_SECONDS", "1"}}));
  const auto now = [] { return std::chrono::steady_clock::now(); };

  // Each wait counts from a moment the link or session surely existed by (the CLI's return, the answer
  // that set the cookie): counted from before, a slow CLI start left the link still valid.
  const std::string late = login_link(d);
  const auto minted = now();
  REQUIRE(eventually([&] { return now() - minted > std::chrono::milliseconds(1200); }, std::chrono::seconds(5)));
  CHECK(http_request("GET", late).status == 403);

  const std::string link = login_link(d, {"--connectors"});
  const auto r = http_request("GET", link);
  const auto logged_in = now();
  REQUIRE(r.status == 303);
  CHECK(header_of(r, "Location") == "/admin/connectors");
  const std::string cookie = header_of(r, "Set-Cookie").substr(0, header_of(r, "Set-Cookie").find(';'));
  CHECK(page(d, "/admin/connectors", cookie).status == 200);
  REQUIRE(eventually([&] { return now() - logged_in > std::chrono::milliseconds(1200); }, std::chrono::seconds(5)));
  CHECK(page(d, "/admin/connectors", cookie).status == 401);
}

TEST_CASE("admin pages: `admin open` opens the link with $BROWSER, which lands logged in", "[admin][pages]") {
  TempDir dir;
  Daemon d(dir.path(), daemon_options());
  const auto wrapper = write_browser_wrapper(dir.path());
  const auto r =
      d.cli({"admin", "open", "--connectors"}, browser_env(wrapper, cli_env()), {}, std::chrono::seconds(30));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.empty());  // the link went to the browser, not the terminal
  CHECK(r.err.find("Opened the admin pages (connectors)") != std::string::npos);
  // The fake browser followed the link, kept the cookie and loaded the page behind it.
  const auto log = dir.path() / "browser.log";
  REQUIRE(eventually([&] { return read_file(log).find("fake-browser: done") != std::string::npos; },
                     std::chrono::seconds(20)));
  const std::string text = read_file(log);
  INFO(text);
  CHECK(text.find("done status=200 url=" + d.url() + "/admin/connectors") != std::string::npos);
  CHECK(text.find("token=***") != std::string::npos);  // the link's token is not written to the log
}

TEST_CASE("admin pages: the API-key form takes secrets as password inputs and never echoes them", "[admin][pages]") {
  const std::string good = "123456789:AAEgoodtokengoodtokengoodtoken_-0123";
  const std::string bad = "987654321:AAEwrongtokenwrongtokenwrongtok_-9876";
  FakeTelegram telegram({good});
  TempDir dir;
  Daemon d(dir.path(), daemon_options({{"ALUMIA_TELEGRAM_API_BASE", telegram.base()}}));
  const auto r = http_request("GET", login_link(d));
  REQUIRE(r.status == 303);
  const std::string cookie = header_of(r, "Set-Cookie").substr(0, header_of(r, "Set-Cookie").find(';'));
  const auto before = page(d, "/admin/connectors", cookie);
  REQUIRE(before.status == 200);
  CHECK(before.body.find("data-credentials=\"telegram\"") != std::string::npos);
  CHECK(before.body.find("name=\"field.bot_token\" type=\"password\"") != std::string::npos);
  const std::string csrf = csrf_of(before.body);
  const std::string path = "/admin/connectors/telegram/credentials";
  const Headers same{{"Origin", d.url()}};

  // Refused by the provider: a page that says why, without the value.
  const auto refused =
      post_form(d, path, cookie, "csrf=" + csrf + "&label=default&field.bot_token=" + http_encode(bad), same);
  CHECK(refused.status == 422);
  CHECK(refused.body.find(bad) == std::string::npos);
  // Without the token: nothing reaches the provider.
  CHECK(post_form(d, path, cookie, "label=default&field.bot_token=" + http_encode(good), same).status == 403);
  CHECK(telegram.seen() == std::vector<std::string>{bad});

  const auto saved =
      post_form(d, path, cookie, "csrf=" + csrf + "&label=default&field.bot_token=" + http_encode(good), same);
  REQUIRE(saved.status == 303);
  CHECK(header_of(saved, "Location").starts_with("/admin/connectors?note="));
  const auto after = page(d, "/admin/connectors", cookie);
  CHECK(after.body.find(good) == std::string::npos);
  CHECK(after.body.find("data-state=\"connected\">Connected<") != std::string::npos);
  CHECK(page(d, "/admin/connectors/status", cookie).json()["connections"][0]["status"] == "active");
}

// The admin pages in a real headless browser (issue 14 item 7): Debian's chromium driven by
// playwright-core (tests/browser/, installed by its install.sh with a committed lockfile; no browser
// download). This side sets up the daemon, the OAuth test peer (with its login form) and a relay
// target, makes a dead job, mints the login link with `admin open --no-browser`, and runs
// tests/browser/admin-pages.mjs, which does the browser steps and prints one "ok:" line per step.
#include "cli_helpers.hpp"
#include "http_sink.hpp"
#include "oauth_peer.hpp"
#include "process.hpp"
#include "webhook_helpers.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace alumia::test;
using namespace alumia::test::webhooks;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const fs::path k_browser_dir = fs::path(ALUMIA_SOURCE_DIR) / "tests/browser";
const fs::path k_chromium = "/usr/bin/chromium";

}  // namespace

TEST_CASE("admin pages in a browser: login link, counts, retry, cross-site POST, Connect without a reload",
          "[admin][pages][browser]") {
  if (!fs::exists(k_chromium) || !fs::exists(k_browser_dir / "node_modules/playwright-core"))
    ALUMIA_SKIP_UNLESS_REQUIRED("ALUMIA_REQUIRE_BROWSER",
                                "chromium or playwright-core is missing: run scripts/install-deps.sh and "
                                "tests/browser/install.sh");
  ALUMIA_SKIP_WITHOUT_OAUTH_PEER();

  HttpSink sink = HttpSink::ok_and_fail();
  TempDir dir;
  OAuthPeer peer(EnvOverrides{{"PEER_MODE", "ui"}});
  write_peer_connector(dir.path(), "peer", peer.issuer());
  Daemon d(dir.path(), daemon_options({{"ALUMIA_RELAY_BACKOFF_MS", "50,50"},
                                       {"ALUMIA_PEER_CLIENT_ID", "alumia-test"},
                                       {"ALUMIA_PEER_CLIENT_SECRET", "test-only-secret"}}));

  // Two deliveries relayed to a failing target: dead after three attempts.
  const json created =
      create_endpoint(d, {{"provider", "github"}, {"label", "browser"}, {"relayTo", sink.url("/fail")}});
  Signer gh;
  gh.provider = "github";
  gh.secret = created["secret"].get<std::string>();
  gh.endpoint_id = created["endpoint"]["id"].get<std::string>();
  REQUIRE(send(d, gh, make_delivery(gh, 1)).status == 200);
  REQUIRE(send(d, gh, make_delivery(gh, 2)).status == 200);
  json dead;
  REQUIRE(eventually(
      [&] {
        dead = d.api("GET", "/api/v1/jobs?state=dead").json()["data"]["items"];
        return dead.size() == 2;
      },
      std::chrono::seconds(20)));
  // The target answers 2xx from now on: a retry goes through (the jobs stay dead until retried).
  REQUIRE(
      d.api("PATCH", "/api/v1/webhook-endpoints/" + gh.endpoint_id, json{{"relayTo", sink.url("/ok")}}.dump()).status ==
      200);

  const auto open = cli(d, {"admin", "open", "--no-browser"});
  INFO(open.err);
  REQUIRE(open.exit_code == 0);
  const std::string link = open.out.substr(0, open.out.find('\n'));

  const json cfg{{"chromium", k_chromium.string()}, {"control", d.url()},     {"loginLink", link},
                 {"endpointId", gh.endpoint_id},    {"received", 2},          {"eventId", dead[0]["eventId"]},
                 {"deadJobId", dead[0]["id"]},      {"connectorSlug", "peer"}};
  Process browser({"/usr/bin/node", (k_browser_dir / "admin-pages.mjs").string()},
                  {{"ALUMIA_BROWSER_TEST", cfg.dump()}, {"HOME", dir.path().string()}});
  const auto code = browser.wait(std::chrono::seconds(150));
  INFO("stdout:\n" << browser.out() << "\nstderr:\n" << browser.err() << "\npeer:\n" << peer.log());
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(browser.out().find("ok: Connect in a new tab") != std::string::npos);

  // What the browser did, seen through the API: the job delivered, the connection active.
  const json jobs = d.api("GET", "/api/v1/jobs?event=" + dead[0]["eventId"].get<std::string>()).json()["data"]["items"];
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0]["state"] == "succeeded");
  const json conns = d.api("GET", "/api/v1/connections?connector=peer").json()["data"]["items"];
  REQUIRE(conns.size() == 1);
  CHECK(conns[0]["status"] == "active");
}

// The secrets audit (issue 16 item 4): after a full OAuth connection against the real authorization
// server (tests/support/oauth-peer), an API-key connection, API keys made and used, and webhook
// endpoints created and delivered to, with the daemon at debug log level, none of the secret values
// the test knows (API keys, the OAuth client secret, the access token, the bot
// token, the webhook and relay secrets, the master key) appears in the store, its WAL, SHM or intake
// file, the daemon's log, /proc/PID/cmdline or environ of the daemon, or those of the browser opener
// the CLI started.
#include "cli_helpers.hpp"
#include "fake_telegram.hpp"
#include "oauth_peer.hpp"
#include "postgres.hpp"
#include "process.hpp"
#include "skip.hpp"
#include "webhook_helpers.hpp"

#include <alumia/base/encoding.hpp>

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace {

namespace fs = std::filesystem;
using alumia::test::Daemon;
using alumia::test::TempDir;
using nlohmann::json;
namespace wh = alumia::test::webhooks;

const std::string k_bot_token = "123456789:AAHaudit_secret_bot_token_0123456789";
const std::string k_client_secret = "test-only-secret";  // the peer's secret for client alumia-test

// A $BROWSER that records its own /proc/self/cmdline and environ, then runs the test browser.
fs::path write_recording_opener(const fs::path& dir, const fs::path& browser) {
  const fs::path opener = dir / "opener.sh";
  std::ofstream(opener) << "#!/bin/sh\ncat /proc/$$/cmdline > '" << (dir / "opener.cmdline").string()
                        << "'\ncat /proc/$$/environ > '" << (dir / "opener.environ").string() << "'\nexec '"
                        << browser.string() << "' \"$@\"\n";
  fs::permissions(opener, fs::perms::owner_all);
  return opener;
}

}  // namespace

TEST_CASE("no known secret in the store, WAL, SHM, intake, logs or /proc of the daemon and the opener",
          "[secrets][audit][oauth-peer]") {
  ALUMIA_SKIP_WITHOUT_OAUTH_PEER();
  alumia::test::OAuthPeer peer;
  alumia::test::FakeTelegram telegram({k_bot_token});
  TempDir dir;
  const fs::path home = dir.path() / "home";
  alumia::test::write_peer_connector(home, "peer", peer.issuer());
  const fs::path opener = write_recording_opener(dir.path(), alumia::test::write_browser_wrapper(dir.path()));
  auto options = alumia::test::daemon_options({{"ALUMIA_TELEGRAM_API_BASE", telegram.base()}});
  options.extra_args = {"--log-level", "debug"};
  Daemon d(home, options);

  std::vector<std::pair<std::string, std::string>> secrets;  // what, value
  secrets.push_back({"the owner's API key", d.key()});

  // API keys: made and used.
  const json made =
      alumia::test::json_out(alumia::test::cli(d, {"--json", "keys", "create", "--scope", "connections"}));
  secrets.push_back({"a created API key", made["key"]});
  REQUIRE(d.api("GET", "/api/v1/connections", {}, made["key"].get<std::string>()).status == 200);

  // OAuth: the client set through the API (sealed), then a full connection through the CLI and the browser.
  auto client = d.api("POST", "/api/v1/oauth-clients/peer",
                      json{{"clientId", "alumia-test"}, {"clientSecret", k_client_secret}}.dump());
  INFO(client.body);
  REQUIRE(client.status / 100 == 2);
  secrets.push_back({"the OAuth client secret", k_client_secret});
  auto connected = d.cli({"connect", "peer", "--timeout", "60"}, alumia::test::browser_env(opener));
  INFO(connected.out << connected.err);
  REQUIRE(connected.exit_code == 0);
  auto list = d.api("GET", "/api/v1/connections?connector=peer").json();
  REQUIRE(list["data"]["items"].size() == 1);
  const std::string id = list["data"]["items"][0]["id"];
  auto token = d.api("POST", "/api/v1/connections/" + id + "/token", "{}");
  REQUIRE(token.status == 200);
  const std::string access_token = token.json()["data"]["accessToken"];
  REQUIRE(peer.introspect(access_token)["active"] == true);
  secrets.push_back({"the access token", access_token});
  // An API-key connection (the bot token checked against the fake Telegram).
  REQUIRE_EXIT(alumia::test::cli(d, {"connect", "telegram", "--from-stdin"}, json{{"bot_token", k_bot_token}}.dump()),
               0);
  secrets.push_back({"the bot token", k_bot_token});

  // Webhooks: a generated secret and a given one, each with its relay secret, and deliveries.
  const json gh = wh::create_endpoint(d, {{"provider", "github"}});
  const json st = wh::create_endpoint(d, {{"provider", "stripe"}, {"secret", "whsec_audit_0123456789abcdef"}});
  secrets.push_back({"a generated webhook secret", gh["secret"]});
  secrets.push_back({"a given webhook secret", "whsec_audit_0123456789abcdef"});
  secrets.push_back({"a relay secret", gh["relaySecret"]});
  secrets.push_back({"another relay secret", st["relaySecret"]});
  const wh::Signer gs = wh::make_signer("github", gh["secret"], gh["endpoint"]["id"]);
  const wh::Signer ss = wh::make_signer("stripe", "whsec_audit_0123456789abcdef", st["endpoint"]["id"]);
  REQUIRE(wh::send(d, gs, wh::make_delivery(gs, 1)).status / 100 == 2);
  REQUIRE(wh::send(d, ss, wh::make_delivery(ss, 1)).status / 100 == 2);

  // The master key, as kept in its file (base64) and raw.
  std::string master_b64 = alumia::test::read_file(home / "master.key");
  while (!master_b64.empty() && (master_b64.back() == '\n' || master_b64.back() == '\r')) master_b64.pop_back();
  secrets.push_back({"the master key (base64)", master_b64});
  auto master_raw = alumia::encoding::base64_decode(master_b64);
  REQUIRE(master_raw);
  secrets.push_back({"the master key (raw)", std::string(master_raw->begin(), master_raw->end())});

  // Where they must not be. The daemon keeps running: its WAL and SHM are as they are in use.
  // On PostgreSQL (the suite's PostgreSQL pass): the database's files and the server's WAL.
  std::vector<std::pair<std::string, std::string>> places = alumia::test::store_files_at_rest(home);  // name, content
  REQUIRE(places.size() >= 3);
  places.push_back({"the daemon's log", d.log()});
  const std::string proc = "/proc/" + std::to_string(d.process().pid());
  const std::string cmdline = alumia::test::read_file(proc + "/cmdline");
  const std::string environ_text = alumia::test::read_file(proc + "/environ");
  if (cmdline.empty()) {
    WARN("the daemon's /proc/PID/cmdline and environ are not readable (it is not dumpable; run as root to read them)");
  } else {
    CHECK(cmdline.find(std::string("--log-level\0debug", 17)) != std::string::npos);  // at debug level
    places.push_back({"the daemon's cmdline", cmdline});
    places.push_back({"the daemon's environ", environ_text});
  }
  places.push_back({"the opener's cmdline", alumia::test::read_file(dir.path() / "opener.cmdline")});
  places.push_back({"the opener's environ", alumia::test::read_file(dir.path() / "opener.environ")});
  REQUIRE_FALSE(places.back().second.empty());

  for (const auto& [what, value] : secrets) {
    REQUIRE(value.size() >= 16);
    for (const auto& [where, content] : places) {
      INFO(what << " in " << where);
      CHECK(content.find(value) == std::string::npos);
    }
  }
  d.stop();
  // After a clean stop too (the WAL checkpointed into the store).
  for (const auto& [f, content] : alumia::test::store_files_at_rest(home)) {
    for (const auto& [what, value] : secrets) {
      INFO(what << " in " << f << " after the stop");
      CHECK(content.find(value) == std::string::npos);
    }
  }
}

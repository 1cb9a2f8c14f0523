// The foundation through the real CLI against the real daemon (SPEC §10): commands, --json output,
// and the exact exit codes 0/2/3/5/6/7.
#include "cli_helpers.hpp"
#include "fake_telegram.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <regex>

namespace {

namespace fs = std::filesystem;
using alumia::test::cli;
using alumia::test::cli_env;
using alumia::test::Daemon;
using alumia::test::daemon_options;
using alumia::test::FakeTelegram;
using alumia::test::free_port;
using alumia::test::json_out;
using alumia::test::ProcessResult;
using alumia::test::stop_clean;
using alumia::test::TempDir;
using nlohmann::json;

const std::string k_token = "123456789:AAEclitokenclitokenclitoken_-0123456";
const std::string k_token2 = "123456789:AAEsecondsecondsecondsecond_-987654";

}  // namespace

TEST_CASE("cli: connectors, config show, daemon status, --json", "[foundation-cli]") {
  TempDir home;
  Daemon d(home.path(), daemon_options());

  auto list = cli(d, {"connectors", "list"});
  REQUIRE_EXIT(list, 0);
  for (const char* slug : {"github", "telegram", "stripe", "slack"}) CHECK(list.out.find(slug) != std::string::npos);
  auto list_json = json_out(cli(d, {"--json", "connectors", "list"}));
  REQUIRE(list_json["items"].is_array());
  CHECK(list_json["items"].size() >= 12);

  auto show = cli(d, {"connectors", "show", "telegram"});
  REQUIRE_EXIT(show, 0);
  CHECK(show.out.find("bot_token") != std::string::npos);
  CHECK(show.out.find("telegram.send_message") != std::string::npos);
  auto show_json = json_out(cli(d, {"connectors", "show", "telegram", "--json"}));
  CHECK(show_json["slug"] == "telegram");
  CHECK(show_json["authType"] == "api_key");
  REQUIRE_EXIT(cli(d, {"connectors", "show", "no-such-connector"}), 5);

  auto cfg = cli(d, {"config", "show"});
  REQUIRE_EXIT(cfg, 0);
  CHECK(cfg.out.find("listen") != std::string::npos);
  CHECK(cfg.out.find((home.path() / "store.db").string()) != std::string::npos);
  auto cfg_json = json_out(cli(d, {"--json", "config", "show"}));
  CHECK(cfg_json["paths"]["store"] == (home.path() / "store.db").string());
  CHECK(cfg_json["paths"]["keyFile"] == (home.path() / "key").string());
  CHECK(cfg_json["daemon"]["url"] == d.url());
  REQUIRE(cfg_json["settings"].is_array());

  auto status = cli(d, {"daemon", "status"});
  REQUIRE_EXIT(status, 0);
  CHECK(status.out.find("running") != std::string::npos);
  CHECK(status.out.find(d.url()) != std::string::npos);
  CHECK(status.err.find("file") != std::string::npos);  // the file keyring is said out loud
  auto status_json = json_out(cli(d, {"--json", "daemon", "status"}));
  CHECK(status_json["url"] == d.url());
  CHECK(status_json["pid"] == d.process().pid());
  CHECK(status_json["keyring"]["backend"] == "file");

  stop_clean(d);
}

TEST_CASE("cli: connect telegram, credentials, connections list/show/revoke", "[foundation-cli]") {
  FakeTelegram telegram({k_token, k_token2});
  TempDir home;
  Daemon d(home.path(), daemon_options({{"ALUMIA_TELEGRAM_API_BASE", telegram.base()}}));

  // --from-stdin with JSON.
  auto connect = cli(d, {"connect", "telegram", "--from-stdin"}, json{{"bot_token", k_token}}.dump());
  REQUIRE_EXIT(connect, 0);
  CHECK(connect.out.find("@alumia_bot") != std::string::npos);
  CHECK(connect.out.find(k_token) == std::string::npos);
  CHECK(connect.err.find(k_token) == std::string::npos);
  std::smatch m;
  const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
  REQUIRE(std::regex_search(connect.out, m, uuid));
  const std::string id = m.str();

  // --field: works, with a warning on stderr about the secret on the command line.
  auto field = cli(d, {"--json", "connect", "telegram", "--label", "second", "--field", "bot_token=" + k_token2});
  REQUIRE_EXIT(field, 0);
  CHECK(field.err.find("warning") != std::string::npos);
  CHECK(field.err.find("--field bot_token") != std::string::npos);
  CHECK(field.err.find(k_token2) == std::string::npos);
  auto second = json_out(field);
  const json second_conn = second.contains("connection") ? second["connection"] : second;
  CHECK(second_conn["status"] == "active");
  CHECK(second_conn["label"] == "second");
  const std::string id2 = second_conn["id"];
  CHECK(field.out.find(k_token2) == std::string::npos);

  // A token the provider rejects: VALIDATION_ERROR → 7. A malformed one: 7 too.
  auto rejected = cli(d, {"connect", "telegram", "--label", "third", "--from-stdin"},
                      R"({"bot_token":"555555555:AAErejectedrejectedrejected_-0000000"})");
  REQUIRE_EXIT(rejected, 7);
  CHECK(rejected.err.find("Unauthorized") != std::string::npos);
  REQUIRE_EXIT(cli(d, {"connect", "telegram", "--label", "fourth", "--from-stdin"}, R"({"bot_token":"nope"})"), 7);

  // credentials ID: re-submit.
  auto creds = cli(d, {"credentials", id, "--from-stdin"}, json{{"bot_token", k_token2}}.dump());
  REQUIRE_EXIT(creds, 0);
  CHECK(creds.out.find(id) != std::string::npos);

  // list / show, human and JSON.
  auto ls = cli(d, {"connections", "list"});
  REQUIRE_EXIT(ls, 0);
  CHECK(ls.out.find(id) != std::string::npos);
  CHECK(ls.out.find(id2) != std::string::npos);
  CHECK(ls.out.find("@alumia_bot") != std::string::npos);
  auto ls_json = json_out(cli(d, {"connections", "list", "--json", "--status", "active"}));
  CHECK(ls_json["items"].size() == 2);
  CHECK(ls_json.contains("hasMore"));
  auto pending = json_out(cli(d, {"connections", "list", "--json", "--status", "pending"}));
  CHECK(pending["items"].size() == 2);  // the rejected ones stay pending
  auto show = cli(d, {"connections", "show", id});
  REQUIRE_EXIT(show, 0);
  CHECK(show.out.find("@alumia_bot") != std::string::npos);
  CHECK(show.out.find(k_token) == std::string::npos);
  CHECK(show.out.find(k_token2) == std::string::npos);
  auto show_json = json_out(cli(d, {"connections", "show", id, "--json"}));
  CHECK(show_json["id"] == id);
  CHECK(show_json["accountLabel"] == "@alumia_bot");

  // Exit codes: 5 not found, 7 malformed id, 2 usage, 6 conflict.
  REQUIRE_EXIT(cli(d, {"connections", "show", "00000000-0000-4000-8000-000000000000"}), 5);
  REQUIRE_EXIT(cli(d, {"connections", "show", "not-a-uuid"}), 7);
  REQUIRE_EXIT(cli(d, {"connections", "revoke", id}), 2);  // no terminal, no --yes
  REQUIRE_EXIT(cli(d, {"connections", "frobnicate"}), 2);
  REQUIRE_EXIT(cli(d, {"connections", "show"}), 2);
  REQUIRE_EXIT(cli(d, {"connect", "telegram", "--field", "bot_token"}), 2);
  REQUIRE_EXIT(cli(d, {"connect", "telegram", "--field", "nosuch=1"}), 2);
  REQUIRE_EXIT(cli(d, {"connect", "telegram", "--from-stdin"}, "not json"), 2);
  REQUIRE_EXIT(cli(d, {"connect", "telegram"}), 2);  // no terminal: missing fields are a usage error
  REQUIRE_EXIT(cli(d, {"no-such-command"}), 2);
  REQUIRE_EXIT(cli(d, {"connect", "github"}), 7);  // OAuth client not configured: BAD_REQUEST

  auto revoke = cli(d, {"connections", "revoke", id, "--yes"});
  REQUIRE_EXIT(revoke, 0);
  CHECK(revoke.out.find(id) != std::string::npos);
  REQUIRE_EXIT(cli(d, {"connections", "revoke", id, "--yes"}), 6);
  REQUIRE_EXIT(cli(d, {"connections", "show", id}), 5);
  auto revoke_json = json_out(cli(d, {"--json", "connections", "revoke", id2, "--yes"}));
  CHECK(revoke_json["deleted"] == true);

  // No token anywhere on disk or in the log.
  for (const char* f : {"store.db", "store.db-wal", "store.db-shm"}) {
    const fs::path p = home.path() / f;
    if (!fs::exists(p)) continue;
    const std::string bytes = alumia::test::read_file(p);
    CHECK(bytes.find(k_token.substr(10)) == std::string::npos);
    CHECK(bytes.find(k_token2.substr(10)) == std::string::npos);
  }
  CHECK(d.log().find(k_token.substr(10)) == std::string::npos);
  CHECK(d.log().find(k_token2.substr(10)) == std::string::npos);
  stop_clean(d);
}

TEST_CASE("cli: keys list/create/revoke", "[foundation-cli]") {
  TempDir home;
  Daemon d(home.path(), daemon_options());

  auto created = cli(d, {"keys", "create", "--name", "ci", "--scope", "connections", "--scope", "tokens"});
  REQUIRE_EXIT(created, 0);
  const std::string first_line = created.out.substr(0, created.out.find('\n'));
  REQUIRE(std::regex_match(first_line, std::regex("^alm_live_[0-9a-f]{48}$")));
  const std::string plain = first_line;

  auto created_json = json_out(cli(d, {"--json", "keys", "create", "--name", "other"}));
  REQUIRE(created_json["key"].is_string());
  const std::string other_id = created_json["apiKey"]["id"];
  CHECK(created_json["apiKey"]["scopes"] == json::array({"connections"}));

  auto list = cli(d, {"keys", "list"});
  REQUIRE_EXIT(list, 0);
  CHECK(list.out.find("ci") != std::string::npos);
  CHECK(list.out.find(plain.substr(0, 13)) != std::string::npos);
  CHECK(list.out.find(plain.substr(13)) == std::string::npos);
  auto list_json = json_out(cli(d, {"keys", "list", "--json"}));
  CHECK(list_json["items"].size() == 3);
  CHECK(list_json.dump().find(plain.substr(13)) == std::string::npos);

  // The created key works for the CLI through ALUMIA_API_KEY.
  auto env = cli_env();
  env["ALUMIA_API_KEY"] = plain;
  auto with_key = d.cli({"--json", "connections", "list"}, env, "", std::chrono::seconds(30));
  REQUIRE_EXIT(with_key, 0);

  REQUIRE_EXIT(cli(d, {"keys", "revoke", other_id}), 0);
  REQUIRE_EXIT(cli(d, {"keys", "revoke", other_id}), 6);
  REQUIRE_EXIT(cli(d, {"keys", "revoke", "00000000-0000-4000-8000-000000000000"}), 5);
  REQUIRE_EXIT(cli(d, {"keys", "create", "--scope", "root"}), 2);
  // A revoked or unknown key: 4.
  env["ALUMIA_API_KEY"] = created_json["key"].get<std::string>();
  REQUIRE_EXIT(d.cli({"connections", "list"}, env, "", std::chrono::seconds(30)), 4);
  env["ALUMIA_API_KEY"] = "alm_live_" + std::string(48, '0');
  REQUIRE_EXIT(d.cli({"connections", "list"}, env, "", std::chrono::seconds(30)), 4);
  stop_clean(d);
}

TEST_CASE("cli: exit 3 when no daemon answers, with how to start it", "[foundation-cli]") {
  TempDir home;
  alumia::test::EnvOverrides env = cli_env();
  env["ALUMIA_HOME"] = home.path().string();
  env["NO_COLOR"] = "1";
  env["ALUMIA_API_KEY"] = std::nullopt;
  const int port = free_port();

  auto via_flag =
      alumia::test::run({ALUMIA_CLI_BIN, "--daemon", "http://127.0.0.1:" + std::to_string(port), "connections", "list"},
                        env, "", std::chrono::seconds(30));
  REQUIRE_EXIT(via_flag, 3);
  CHECK(via_flag.err.find("alumia-connect daemon start") != std::string::npos);

  // A stale state file from a daemon that is gone.
  {
    std::ofstream f(home.path() / "daemon.json");
    f << json{{"url", "http://127.0.0.1:" + std::to_string(port)}, {"pid", 999999}, {"version", "0"}}.dump();
  }
  auto stale = alumia::test::run({ALUMIA_CLI_BIN, "connections", "list"}, env, "", std::chrono::seconds(30));
  REQUIRE_EXIT(stale, 3);
  CHECK(stale.err.find("daemon start") != std::string::npos);
  auto status = alumia::test::run({ALUMIA_CLI_BIN, "daemon", "status"}, env, "", std::chrono::seconds(30));
  REQUIRE_EXIT(status, 3);
  CHECK(status.err.find("daemon start") != std::string::npos);
  // Usage errors win over an absent daemon.
  REQUIRE_EXIT(alumia::test::run({ALUMIA_CLI_BIN, "connections", "bogus"}, env, "", std::chrono::seconds(30)), 2);
  REQUIRE_EXIT(alumia::test::run({ALUMIA_CLI_BIN}, env, "", std::chrono::seconds(30)), 2);
}

// `doctor`, `config show` from the daemon, and daemon control (`daemon start` finding the daemon on PATH,
// `daemon install-service`) through the real binaries (SPEC §10, §12).
#include "cli_helpers.hpp"
#include "http_sink.hpp"
#include "webhook_helpers.hpp"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

using namespace alumia::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const json* find_check(const json& report, const std::string& name) {
  for (const auto& c : report["checks"])
    if (c["check"] == name) return &c;
  return nullptr;
}

void write_executable(const fs::path& file, const std::string& text) {
  std::ofstream(file) << text;
  fs::permissions(file, fs::perms::owner_all);
}

}  // namespace

TEST_CASE("doctor: every check of a healthy daemon, the file keyring said loudly, --json", "[doctor]") {
  TempDir home;
  Daemon d(home.path(), daemon_options());

  auto human = cli(d, {"doctor", "--no-probe"});
  REQUIRE_EXIT(human, 0);
  for (const char* name :
       {"daemon", "api key", "store", "keyring", "base url", "oauth clients", "connections", "endpoints", "jobs"})
    CHECK(human.out.find(name) != std::string::npos);
  CHECK(human.out.find("THE MASTER KEY IS IN A FILE") != std::string::npos);
  CHECK(human.out.find("fix: ") != std::string::npos);
  CHECK(human.out.find('\x1b') == std::string::npos);  // NO_COLOR

  const json report = json_out(cli(d, {"--json", "doctor", "--no-probe"}));
  CHECK(report["ok"] == true);
  CHECK(report["failures"] == 0);
  const json* daemon = find_check(report, "daemon");
  REQUIRE(daemon != nullptr);
  CHECK((*daemon)["status"] == "ok");
  CHECK((*daemon)["message"].get<std::string>().find(d.url()) != std::string::npos);
  const json* key = find_check(report, "api key");
  REQUIRE(key != nullptr);
  CHECK((*key)["message"].get<std::string>().find("admin") != std::string::npos);
  const json* store = find_check(report, "store");
  REQUIRE(store != nullptr);
  CHECK((*store)["status"] == "ok");
  // The store it names: the SQLite file, or the PostgreSQL database of the suite's PostgreSQL pass.
  const auto pg_db = alumia::test::postgres_database_of(home.path());
  CHECK((*store)["message"].get<std::string>().find(pg_db ? "/" + *pg_db + "?host="
                                                          : (home.path() / "store.db").string()) != std::string::npos);
  // File sizes only for the file it has: a PostgreSQL store's size and WAL are the server's.
  CHECK(((*store)["message"].get<std::string>().find(", WAL ") != std::string::npos) == !pg_db.has_value());
  const json* keyring = find_check(report, "keyring");
  REQUIRE(keyring != nullptr);
  CHECK((*keyring)["status"] == "warn");
  CHECK((*keyring)["fix"].get<std::string>().find("secret-service") != std::string::npos);
  const json* base = find_check(report, "base url");
  REQUIRE(base != nullptr);
  CHECK((*base)["status"] == "warn");  // no webhook base URL set
  CHECK((*base)["fix"].get<std::string>().find("webhookBaseUrl") != std::string::npos);
  for (const char* ok : {"oauth clients", "connections", "endpoints", "jobs"}) {
    INFO(ok);
    const json* c = find_check(report, ok);
    REQUIRE(c != nullptr);
    CHECK((*c)["status"] == "ok");
    CHECK((*c)["fix"].is_null());
  }
  stop_clean(d);
}

TEST_CASE("doctor: a disabled endpoint warns, with its fix", "[doctor]") {
  TempDir home;
  Daemon d(home.path(), daemon_options());
  const json created = json_out(
      cli(d, {"--json", "webhooks", "create", "--provider", "github", "--relay-to", "http://127.0.0.1:9/hook"}));
  const std::string id = created["endpoint"]["id"];
  REQUIRE_EXIT(cli(d, {"webhooks", "update", id, "--disable"}), 0);

  json report = json_out(cli(d, {"--json", "doctor", "--no-probe"}));
  const json* endpoints = find_check(report, "endpoints");
  REQUIRE(endpoints != nullptr);
  CHECK((*endpoints)["status"] == "warn");
  CHECK((*endpoints)["message"].get<std::string>().find(id) != std::string::npos);
  CHECK((*endpoints)["fix"] == "alumia-connect webhooks update " + id + " --enable");
  CHECK(report["ok"] == true);  // warnings alone do not fail
  stop_clean(d);
}

// [sqlite-only]: the store's file mode; a PostgreSQL store has no file here.
TEST_CASE("doctor: a store readable by others fails with exit 1 and its fix", "[doctor][sqlite-only]") {
  TempDir home;
  Daemon d(home.path(), daemon_options());
  const fs::path db = home.path() / "store.db";
  fs::permissions(db, fs::perms::group_read | fs::perms::others_read, fs::perm_options::add);
  auto failed = cli(d, {"--json", "doctor", "--no-probe"});
  CHECK(failed.exit_code == 1);
  const json report = json_out(failed);
  CHECK(report["ok"] == false);
  CHECK(report["failures"] == 1);
  const json* store = find_check(report, "store");
  REQUIRE(store != nullptr);
  CHECK((*store)["status"] == "fail");
  CHECK((*store)["fix"] == "chmod 600 " + db.string());
  CHECK(failed.err.find("1 of") != std::string::npos);
  fs::permissions(db, fs::perms::group_read | fs::perms::others_read, fs::perm_options::remove);
  REQUIRE_EXIT(cli(d, {"doctor", "--no-probe"}), 0);
  stop_clean(d);
}

TEST_CASE("doctor: a dead relay job and a forged delivery are warnings naming their fix", "[doctor]") {
  HttpSink sink = HttpSink::ok_and_fail();
  TempDir home;
  // Two retries 50 ms apart: a job whose target keeps failing is dead after three attempts.
  Daemon d(home.path(), daemon_options({{"ALUMIA_RELAY_BACKOFF_MS", "50,50"}}));
  const json created = webhooks::create_endpoint(d, {{"provider", "github"}, {"relayTo", sink.url("/fail")}});
  webhooks::Signer signer;
  signer.provider = "github";
  signer.secret = created["secret"].get<std::string>();
  signer.endpoint_id = created["endpoint"]["id"].get<std::string>();
  REQUIRE(webhooks::send(d, signer, webhooks::make_delivery(signer, 1)).status == 200);
  REQUIRE(webhooks::send(d, signer, webhooks::make_delivery(signer, 2, /*bad=*/true)).status == 401);

  json report;
  REQUIRE(eventually([&] {
    report = json_out(cli(d, {"--json", "doctor", "--no-probe"}));
    const json* jobs = find_check(report, "jobs");
    return jobs != nullptr && (*jobs)["status"] == "warn" &&
           (*jobs)["message"].get<std::string>().find("1 dead") != std::string::npos;
  }));
  CHECK((*find_check(report, "jobs"))["fix"].get<std::string>().find("alumia-connect jobs retry --state dead") !=
        std::string::npos);
  const json* verification = find_check(report, "verification");
  REQUIRE(verification != nullptr);
  CHECK((*verification)["status"] == "warn");
  CHECK((*verification)["message"].get<std::string>().find(signer.endpoint_id) != std::string::npos);
  CHECK((*verification)["fix"].get<std::string>().find("rotate-secret " + signer.endpoint_id) != std::string::npos);
  CHECK(report["ok"] == true);
  stop_clean(d);
}

TEST_CASE("doctor: a key without the admin scope says what it could not check", "[doctor]") {
  TempDir home;
  Daemon d(home.path(), daemon_options());
  const json narrow =
      d.api("POST", "/api/v1/api-keys", json{{"name", "narrow"}, {"scopes", {"connections"}}}.dump()).json();
  auto env = cli_env();
  env["ALUMIA_API_KEY"] = narrow["data"]["key"].get<std::string>();
  auto r = d.cli({"--json", "doctor", "--no-probe"}, env);
  const json report = json_out(r);
  CHECK(r.exit_code == 0);
  const json* endpoints = find_check(report, "endpoints");
  REQUIRE(endpoints != nullptr);
  CHECK((*endpoints)["status"] == "warn");
  CHECK((*endpoints)["message"].get<std::string>().find("admin scope") != std::string::npos);
  CHECK((*endpoints)["fix"].get<std::string>().find("`alumia-connect keys create --scope admin`") != std::string::npos);
  const json* key = find_check(report, "api key");
  REQUIRE(key != nullptr);
  CHECK((*key)["message"].get<std::string>().find("narrow") != std::string::npos);
  stop_clean(d);
}

TEST_CASE("doctor: the base URL is judged and probed (<base>/healthz) from this machine", "[doctor]") {
  for (const bool listening : {true, false}) {
    INFO("the base URL's port has the public listener: " << listening);
    TempDir home;
    const int public_port = free_port();
    const int base_port = listening ? public_port : free_port();
    const std::string base = "http://127.0.0.1:" + std::to_string(base_port);
    Daemon::Options o = daemon_options({{"CONNECTOR_WEBHOOK_BASE_URL", base}});
    o.extra_args = {"--public-listen", "127.0.0.1:" + std::to_string(public_port), "--allow-insecure-base-url"};
    Daemon d(home.path(), o);
    const json report = json_out(cli(d, {"--json", "doctor", "--probe-timeout", "3"}));
    const json* c = find_check(report, "base url");
    REQUIRE(c != nullptr);
    CHECK((*c)["status"] == "warn");  // loopback http breaks the public base URL rule
    const std::string message = (*c)["message"];
    CHECK(message.find(base + " breaks the public base URL rule") != std::string::npos);
    if (listening) CHECK(message.find("reachable: " + base + "/healthz answered 200") != std::string::npos);
    else CHECK(message.find("not reachable from this machine: " + base + "/healthz") != std::string::npos);
    const json quiet = json_out(cli(d, {"--json", "doctor", "--no-probe"}));
    CHECK((*find_check(quiet, "base url"))["message"].get<std::string>().find("not probed") != std::string::npos);
    stop_clean(d);
  }
}

TEST_CASE("doctor: a connection whose authorization failed needs a reconnect: a fail naming `connect --reconnect`",
          "[doctor]") {
  TempDir home;
  Daemon d(home.path(), daemon_options({{"ALUMIA_GITHUB_CLIENT_ID", "Iv1.testclientid"},
                                        {"ALUMIA_GITHUB_CLIENT_SECRET", "test-secret"}}));
  const json started = json_out(cli(d, {"--json", "connect", "github", "--no-wait"}));
  const std::string id = started["connection"]["id"];
  // The browser's first hop (the ticketed URL) binds the flow to its cookie and names the state; the
  // provider then sends the browser back with an error, as when the user denies the consent.
  const auto hop = http_request("GET", started["oauthUrl"].get<std::string>());
  REQUIRE(hop.status == 302);
  const std::string location = hop.headers.find("Location")->second;
  const auto at = location.find("state=");
  REQUIRE(at != std::string::npos);
  const std::string state = location.substr(at + 6, location.find('&', at) - at - 6);
  const std::string set_cookie = hop.headers.find("Set-Cookie")->second;
  const auto callback =
      http_request("GET", d.url() + "/api/v1/connections/oauth/callback?error=access_denied&state=" + state,
                   {{"Cookie", set_cookie.substr(0, set_cookie.find(';'))}});
  REQUIRE(callback.status == 303);
  REQUIRE(d.api("GET", "/api/v1/connections/" + id).json()["data"]["status"] == "error");

  auto failed = cli(d, {"--json", "doctor", "--no-probe"});
  CHECK(failed.exit_code == 1);
  const json report = json_out(failed);
  CHECK(report["ok"] == false);
  CHECK(report["failures"] == 1);
  const json* connections = find_check(report, "connections");
  REQUIRE(connections != nullptr);
  CHECK((*connections)["status"] == "fail");
  CHECK((*connections)["message"] == "1 need a reconnect: " + id + " (github, error)");
  CHECK((*connections)["fix"] == "alumia-connect connect github --reconnect " + id);
  CHECK((*find_check(report, "oauth clients"))["status"] == "ok");  // github has its client
  CHECK(failed.err.find("doctor: 1 of") != std::string::npos);
  auto human = cli(d, {"doctor", "--no-probe"});
  CHECK(human.exit_code == 1);
  CHECK(human.out.find("fix: alumia-connect connect github --reconnect " + id + "\n") != std::string::npos);
  // The fix is a command the CLI takes: it starts the authorization again.
  const json again = json_out(cli(d, {"--json", "connect", "github", "--reconnect", id, "--no-wait"}));
  CHECK(again["connection"]["id"] == id);
  CHECK(again["oauthUrl"].get<std::string>().find("/api/v1/connections/" + id + "/oauth?ticket=") != std::string::npos);
  stop_clean(d);
}

TEST_CASE("doctor: connections of an OAuth connector without a configured client fail, naming `oauth-client set`",
          "[doctor]") {
  TempDir home;
  Daemon d(home.path(), daemon_options());
  REQUIRE_EXIT(cli(d, {"oauth-client", "set", "github", "--client-id", "Iv1.stored"}, "stored-secret"), 0);
  const std::string id = json_out(cli(d, {"--json", "connect", "github", "--no-wait"}))["connection"]["id"];
  json report = json_out(cli(d, {"--json", "doctor", "--no-probe"}));
  REQUIRE(find_check(report, "oauth clients") != nullptr);
  CHECK((*find_check(report, "oauth clients"))["status"] == "ok");
  CHECK((*find_check(report, "oauth clients"))["message"].get<std::string>().find("configured: github") !=
        std::string::npos);

  REQUIRE_EXIT(cli(d, {"oauth-client", "unset", "github"}), 0);
  auto failed = cli(d, {"--json", "doctor", "--no-probe"});
  CHECK(failed.exit_code == 1);
  report = json_out(failed);
  CHECK(report["failures"] == 1);
  const json* clients = find_check(report, "oauth clients");
  REQUIRE(clients != nullptr);
  CHECK((*clients)["status"] == "fail");
  const std::string message = (*clients)["message"];
  CHECK(message.find("connections of github have no OAuth client") != std::string::npos);
  const std::string fix = (*clients)["fix"];
  CHECK(fix.starts_with("printf %s \"$SECRET\" | alumia-connect oauth-client set github --client-id ID"));
  CHECK(fix.find("ALUMIA_GITHUB_CLIENT_ID and ALUMIA_GITHUB_CLIENT_SECRET") != std::string::npos);
  // A connector nobody uses is listed without failing: only github is needed here.
  CHECK(message.find("without a client") != std::string::npos);
  CHECK(d.api("GET", "/api/v1/connections/" + id).json()["data"]["status"] == "pending");
  CHECK((*find_check(report, "connections"))["status"] == "ok");  // pending, not broken

  // The fix, done as it says, clears the fail.
  REQUIRE_EXIT(cli(d, {"oauth-client", "set", "github", "--client-id", "Iv1.again"}, "again-secret"), 0);
  report = json_out(cli(d, {"--json", "doctor", "--no-probe"}));
  CHECK(report["failures"] == 0);
  CHECK((*find_check(report, "oauth clients"))["status"] == "ok");
  stop_clean(d);
}

TEST_CASE("doctor: no daemon is a fail naming `daemon start`, exit 3", "[doctor]") {
  TempDir home;
  auto env = cli_env();
  env["ALUMIA_HOME"] = home.path().string();
  env["ALUMIA_DAEMON"] = "http://127.0.0.1:" + std::to_string(free_port());
  env["NO_COLOR"] = "1";
  auto r = run({ALUMIA_CLI_BIN, "doctor"}, env, "", std::chrono::seconds(30));
  INFO(r.out << r.err);
  CHECK(r.exit_code == 3);
  CHECK(r.out.find("fail") != std::string::npos);
  CHECK(r.out.find("fix: alumia-connect daemon start") != std::string::npos);
}

TEST_CASE("config show: the running daemon's effective values and sources; secrets as (set)", "[doctor]") {
  TempDir home;
  Daemon d(home.path(), daemon_options({{"ALUMIA_WEBHOOK_RATE_LIMIT", "123"}, {"ALUMIA_METRICS_TOKEN", "tok-sekrit"}}));
  const json shown = json_out(cli(d, {"--json", "config", "show"}));
  CHECK(shown["settingsFrom"] == "daemon");
  bool rate = false, token = false;
  for (const auto& s : shown["settings"]) {
    if (s["name"] == "webhook-rate-limit") {
      rate = true;
      CHECK(s["value"] == "123");  // the daemon's environment, not the CLI's
      CHECK(s["source"] == "env");
    }
    if (s["name"] == "metrics-token") {
      token = true;
      CHECK(s["value"] == "(set)");
    }
  }
  CHECK(rate);
  CHECK(token);
  auto human = cli(d, {"config", "show"});
  REQUIRE_EXIT(human, 0);
  CHECK(human.out.find("running daemon") != std::string::npos);
  CHECK(human.out.find("tok-sekrit") == std::string::npos);
  const HttpReply direct = d.api("GET", "/api/v1/admin/config");
  CHECK(direct.status == 200);
  CHECK(direct.body.find("tok-sekrit") == std::string::npos);
  stop_clean(d);

  const json offline = json_out(cli(d, {"--json", "config", "show"}));
  CHECK(offline["settingsFrom"] == "cli");
  for (const auto& s : offline["settings"])
    if (s["name"] == "webhook-rate-limit") CHECK(s["source"] == "default");
}

TEST_CASE("daemon start: finds alumia-connectd on PATH when it is not next to the CLI", "[doctor]") {
  TempDir home;
  TempDir bin;
  const fs::path cli_copy = bin.path() / "alumia-connect";
  fs::copy_file(ALUMIA_CLI_BIN, cli_copy);
  auto env = cli_env();
  env["ALUMIA_HOME"] = home.path().string();
  env["ALUMIA_API_KEY"] = std::nullopt;
  env["PATH"] = "/nonexistent";
  auto missing = run({cli_copy.string(), "daemon", "start", "--listen", "127.0.0.1:0"}, env);
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("next to this program") != std::string::npos);
  CHECK(missing.err.find("PATH") != std::string::npos);

  env["PATH"] = fs::path(ALUMIA_DAEMON_BIN).parent_path().string();
  env["ALUMIA_KEYRING"] = "file";  // the daemon inherits the environment
  auto started = run({cli_copy.string(), "--json", "daemon", "start", "--listen", "127.0.0.1:0"}, env, "",
                     std::chrono::seconds(30));
  REQUIRE_EXIT(started, 0);
  const json j = json_out(started);
  CHECK(j["pid"].get<int>() > 0);
  auto stopped = run({cli_copy.string(), "daemon", "stop"}, env, "", std::chrono::seconds(30));
  REQUIRE_EXIT(stopped, 0);
}

TEST_CASE("daemon install-service: writes the hardened user unit; enables it when systemctl --user answers",
          "[doctor]") {
  TempDir home;
  TempDir fake;
  const fs::path log = fake.path() / "systemctl.log";
  write_executable(fake.path() / "systemctl",
                   "#!/bin/sh\necho \"$*\" >> '" + log.string() +
                       "'\nif [ \"$2\" = show-environment ] && [ -n \"$FAKE_SYSTEMCTL_DOWN\" ]; then\n"
                       "  echo 'Failed to connect to bus: No medium found' >&2; exit 1\nfi\nexit 0\n");
  auto env = cli_env();
  env["ALUMIA_HOME"] = (home.path() / "data").string();
  env["HOME"] = home.path().string();
  env["XDG_CONFIG_HOME"] = (home.path() / "config").string();
  env["PATH"] = fake.path().string() + ":/usr/bin:/bin";
  env["NO_COLOR"] = "1";
  const fs::path unit = home.path() / "config/systemd/user/alumia-connectd.service";

  SECTION("systemctl --user does not answer: the unit is written and the next step printed") {
    env["FAKE_SYSTEMCTL_DOWN"] = "1";
    auto r = run({ALUMIA_CLI_BIN, "daemon", "install-service"}, env);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("does not answer") != std::string::npos);
    CHECK(r.err.find("systemctl --user daemon-reload && systemctl --user enable --now alumia-connectd.service") !=
          std::string::npos);
    const std::string text = read_file(unit);
    // The temp dirs hold a space: quoted, as systemd unquotes them.
    const std::string data = (home.path() / "data").string();
    REQUIRE(data.find(' ') != std::string::npos);
    CHECK(text.find("ExecStart=" + std::string(ALUMIA_DAEMON_BIN) + " --data-dir \"" + data + "\"\n") !=
          std::string::npos);
    CHECK(text.find("ReadWritePaths=\"-" + data + "\"\n") != std::string::npos);
    for (const char* directive : {"NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "LimitCORE=0",
                                  "MemoryDenyWriteExecute=yes", "UMask=0077", "WantedBy=default.target"})
      CHECK(text.find(directive) != std::string::npos);
    CHECK(read_file(log).find("enable") == std::string::npos);
  }
  SECTION("systemctl --user answers: daemon-reload, then enable --now") {
    auto r = run({ALUMIA_CLI_BIN, "--json", "daemon", "install-service"}, env);
    const json j = json_out(r);
    CHECK(r.exit_code == 0);
    CHECK(j["enabled"] == true);
    CHECK(j["started"] == true);
    CHECK(j["unitFile"] == unit.string());
    const std::string calls = read_file(log);
    CHECK(calls.find("--user daemon-reload\n") != std::string::npos);
    CHECK(calls.find("--user enable --now alumia-connectd.service\n") != std::string::npos);
    CHECK(fs::exists(unit));
  }
  SECTION("--print writes nothing") {
    auto r = run({ALUMIA_CLI_BIN, "daemon", "install-service", "--print"}, env);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("[Service]") != std::string::npos);
    CHECK_FALSE(fs::exists(unit));
  }
}

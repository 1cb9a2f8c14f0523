// The generated zsh and fish completion scripts (completions/, issue 15 items 6 and (ii) of round 16),
// loaded in the real shells and asked to complete: subcommands, flags, and the ids and slugs that come
// from the running daemon through the hidden `__complete`. zsh runs interactively on a pty of its own
// (tests/support/complete-zsh.zsh: compinit, the line typed, then Tab); fish answers `complete -C`.
// bash is driven the same way in test_cli_manners.cpp. scripts/install-deps.sh installs both shells; a
// machine without one skips its case (CTest says "Skipped").
#include "cli_helpers.hpp"
#include "skip.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

using namespace alumia::test;
using nlohmann::json;

namespace {

// The first column of each line (`value<TAB>description`), sorted.
std::vector<std::string> values_of(const std::string& out) {
  std::vector<std::string> values;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) values.push_back(line.substr(0, line.find('\t')));
  std::sort(values.begin(), values.end());
  return values;
}

std::string description_of(const std::string& out, const std::string& value) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with(value + "\t")) return line.substr(value.size() + 1);
  return "";
}

bool has(const std::vector<std::string>& values, const std::string& v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

// A daemon with one endpoint and one (pending) connection, and the CLI's environment for the shells:
// alumia-connect on PATH, pointed at that daemon.
struct Fixture {
  TempDir dir;
  Daemon daemon{dir.path(), daemon_options({{"ALUMIA_GITHUB_CLIENT_ID", "Iv1.testclientid"},
                                            {"ALUMIA_GITHUB_CLIENT_SECRET", "test-secret"}})};
  std::string endpoint;
  std::string connection;
  EnvOverrides env = cli_env();

  Fixture() {
    endpoint = json_out(
        cli(daemon, {"--json", "webhooks", "create", "--provider", "github", "--label", "ci"}))["endpoint"]["id"];
    connection = json_out(cli(daemon, {"--json", "connect", "github", "--no-wait"}))["connection"]["id"];
    env["ALUMIA_HOME"] = daemon.home().string();
    env["ALUMIA_API_KEY"] = std::nullopt;
    env["PATH"] = std::filesystem::path(ALUMIA_CLI_BIN).parent_path().string() + ":/usr/bin:/bin";
    env["HOME"] = dir.path().string();  // fish writes its history and universal variables there
    env["XDG_CONFIG_HOME"] = (dir.path() / "config").string();
    env["XDG_DATA_HOME"] = (dir.path() / "data").string();
  }
};

const std::string k_scripts = std::string(ALUMIA_SOURCE_DIR) + "/completions";

}  // namespace

TEST_CASE("completion: the zsh script in a real interactive zsh", "[completions]") {
  if (::access("/usr/bin/zsh", X_OK) != 0) ALUMIA_SKIP("zsh is not installed (scripts/install-deps.sh installs it)");
  Fixture f;
  const auto complete = [&](const std::string& line) {
    auto r =
        run({"/usr/bin/zsh", "-f", std::string(ALUMIA_SOURCE_DIR) + "/tests/support/complete-zsh.zsh", k_scripts, line},
            f.env, "", std::chrono::seconds(60));
    INFO(line << "\nstdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    return r.out;
  };

  const auto top = complete("alumia-connect ");
  for (const char* group : {"connectors", "webhooks", "events", "daemon", "doctor", "keys", "config", "admin"})
    CHECK(has(values_of(top), group));
  CHECK_FALSE(has(values_of(top), "__complete"));  // hidden
  CHECK(description_of(top, "doctor").starts_with("Check the daemon"));

  const auto sub = complete("alumia-connect webhooks ");
  CHECK(values_of(sub) == std::vector<std::string>{"create", "delete", "list", "rotate-secret", "show", "update"});
  CHECK(has(values_of(complete("alumia-connect daemon ")), "install-service"));

  const auto flags = complete("alumia-connect keys create --");
  CHECK(has(values_of(flags), "--scope"));
  CHECK(has(values_of(flags), "--name"));
  CHECK(has(values_of(flags), "--json"));  // the global flags are offered after a command too
  CHECK(has(values_of(complete("alumia-connect doctor --")), "--no-probe"));

  // From the daemon: endpoint ids (positional and option value), connection ids, connector slugs.
  const auto shown = complete("alumia-connect webhooks show ");
  CHECK(values_of(shown) == std::vector<std::string>{f.endpoint});
  CHECK(description_of(shown, f.endpoint).find("github ci active") != std::string::npos);
  CHECK(values_of(complete("alumia-connect events list --endpoint ")) == std::vector<std::string>{f.endpoint});
  CHECK(values_of(complete("alumia-connect token ")) == std::vector<std::string>{f.connection});
  CHECK(values_of(complete("alumia-connect connect tele")) == std::vector<std::string>{"telegram"});

  stop_clean(f.daemon);
  // The daemon down: nothing offered, no error text, and still within the bound.
  CHECK(values_of(complete("alumia-connect webhooks show ")).empty());
}

TEST_CASE("completion: the fish script in a real fish", "[completions]") {
  if (::access("/usr/bin/fish", X_OK) != 0) ALUMIA_SKIP("fish is not installed (scripts/install-deps.sh installs it)");
  Fixture f;
  const std::string script = k_scripts + "/alumia-connect.fish";
  const auto complete = [&](const std::string& line) {
    auto r = run({"/usr/bin/fish", "--no-config", "-c", "source $argv[1]; complete -C $argv[2]", script, line}, f.env,
                 "", std::chrono::seconds(60));
    INFO(line << "\nstdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.empty());
    return r.out;
  };

  const auto top = complete("alumia-connect ");
  for (const char* group : {"connectors", "webhooks", "events", "daemon", "doctor", "keys", "config", "admin"})
    CHECK(has(values_of(top), group));
  CHECK_FALSE(has(values_of(top), "__complete"));
  CHECK(description_of(top, "doctor").starts_with("Check the daemon"));
  CHECK(values_of(complete("alumia-connect webhooks ")) ==
        std::vector<std::string>{"create", "delete", "list", "rotate-secret", "show", "update"});
  // Past a value-taking global option and its value, the path is still found.
  CHECK(has(values_of(complete("alumia-connect --data-dir /tmp daemon ")), "install-service"));

  const auto flags = complete("alumia-connect keys create --");
  CHECK(has(values_of(flags), "--scope"));
  CHECK(has(values_of(flags), "--json"));
  const auto create = complete("alumia-connect webhooks create --");
  CHECK(description_of(create, "--connection").find("connection") != std::string::npos);  // described once

  const auto shown = complete("alumia-connect webhooks show ");
  CHECK(values_of(shown) == std::vector<std::string>{f.endpoint});
  CHECK(description_of(shown, f.endpoint) == "github ci active");
  CHECK(values_of(complete("alumia-connect events tail --endpoint ")) == std::vector<std::string>{f.endpoint});
  CHECK(values_of(complete("alumia-connect credentials ")) == std::vector<std::string>{f.connection});
  CHECK(has(values_of(complete("alumia-connect connect ")), "telegram"));
  CHECK(values_of(complete("alumia-connect connect --reconnect ")) == std::vector<std::string>{f.connection});

  stop_clean(f.daemon);
  CHECK(values_of(complete("alumia-connect webhooks show ")).empty());
}

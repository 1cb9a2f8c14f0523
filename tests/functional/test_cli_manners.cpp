// The CLI in its surroundings (issue 15 items 3 and 6): what `connect` says on a headless machine (the
// environment set per case), colour, spinner and table width on a real pty (`script`), NO_COLOR and
// --json, and shell completion of ids and slugs from the running daemon.
#include "cli_helpers.hpp"
#include "webhook_helpers.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>

using namespace alumia::test;
using nlohmann::json;

namespace {

// A daemon with a GitHub OAuth client, so that `connect github` gets an authorization URL (no
// provider is contacted before the browser would be).
Daemon::Options with_github_client(EnvOverrides extra = {}) {
  EnvOverrides env{{"ALUMIA_GITHUB_CLIENT_ID", "Iv1.testclientid"}, {"ALUMIA_GITHUB_CLIENT_SECRET", "test-secret"}};
  for (auto& [k, v] : extra) env[k] = v;
  return daemon_options(env);
}

// The CLI's environment for one case: no display, no browser, no SSH unless the case sets them.
EnvOverrides headless(EnvOverrides extra) {
  EnvOverrides env = cli_env();
  for (const char* name : {"DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "container"})
    env[name] = std::nullopt;
  env["USER"] = "alice";
  for (auto& [k, v] : extra) env[k] = v;
  return env;
}

ProcessResult connect_once(const Daemon& d, const EnvOverrides& env, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"connect", "github", "--timeout", "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  return d.cli(args, env, "", std::chrono::seconds(30));
}

std::string host_name() {
  char name[256] = {};
  REQUIRE(::gethostname(name, sizeof name - 1) == 0);
  return name;
}

// `command` on a pseudo-terminal (util-linux `script`): stdout and stderr both reach the pty, and the
// transcript is what a terminal would have shown. `env` is the CLI's.
ProcessResult on_pty(const Daemon& d, const std::string& command, EnvOverrides env) {
  env["ALUMIA_HOME"] = d.home().string();
  env["ALUMIA_API_KEY"] = std::nullopt;
  return run({"/usr/bin/script", "-qefc", command, "/dev/null"}, env, "", std::chrono::seconds(30));
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::size_t code_points(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xc0) != 0x80) ++n;
  return n;
}

}  // namespace

TEST_CASE("connect says where it runs and how the callback comes back, before it waits", "[cli-manners]") {
  TempDir dir;
  Daemon d(dir.path(), with_github_client());
  const std::string port = std::to_string(d.port());
  const std::string forward = "ssh -L " + port + ":127.0.0.1:" + port + " ";

  SECTION("an SSH session without a browser: the URL to open elsewhere and the exact ssh -L command") {
    auto r = connect_once(d, headless({{"SSH_CONNECTION", "203.0.113.7 50122 198.51.100.2 22"}, {"DISPLAY", ":0"}}));
    INFO(r.err);
    REQUIRE_EXIT(r, 8);  // nobody authorizes: the wait ends at --timeout
    CHECK(r.err.find("No browser will be opened here: an SSH session (to 198.51.100.2), no $BROWSER") !=
          std::string::npos);
    CHECK(r.err.find("Open this URL in a browser on your own machine to authorize github:\n  " + d.url() +
                     "/api/v1/connections/") != std::string::npos);
    CHECK(r.err.find(forward + "alice@198.51.100.2\n") != std::string::npos);
    // Said before the wait, and the wait is announced (never silent).
    CHECK(r.err.find("ssh -L") < r.err.find("Waiting up to 1 s for the authorization"));
    CHECK(r.err.find("timed out after 1 s") != std::string::npos);
  }
  SECTION("no display and no SSH: the forward names this host") {
    auto r = connect_once(d, headless({}));
    INFO(r.err);
    REQUIRE_EXIT(r, 8);
    CHECK(r.err.find("no display (DISPLAY and WAYLAND_DISPLAY are unset), no $BROWSER") != std::string::npos);
    CHECK(r.err.find(forward + "alice@" + host_name() + "\n") != std::string::npos);
  }
  SECTION("inside a container: what the forward needs") {
    auto r = connect_once(d, headless({{"container", "podman"}}));
    INFO(r.err);
    REQUIRE_EXIT(r, 8);
    CHECK(r.err.find("inside a container (podman)") != std::string::npos);
    CHECK(r.err.find("publishes port " + port) != std::string::npos);
  }
  SECTION("a display and $BROWSER: it says it opens the browser, and no forward is offered") {
    auto r = connect_once(d, headless({{"DISPLAY", ":0"}, {"BROWSER", "/bin/true"}}));
    INFO(r.err);
    REQUIRE_EXIT(r, 8);
    CHECK(r.err.find("Opening the authorization page for github in your browser (/bin/true).") != std::string::npos);
    CHECK(r.err.find("ssh -L") == std::string::npos);
  }
  SECTION("--no-browser on a desktop: the URL, no forward") {
    auto r = connect_once(d, headless({{"DISPLAY", ":0"}}), {"--no-browser"});
    INFO(r.err);
    REQUIRE_EXIT(r, 8);
    CHECK(r.err.find("Not opening a browser (--no-browser).") != std::string::npos);
    CHECK(r.err.find("Open this URL in a browser to authorize github") != std::string::npos);
    CHECK(r.err.find("ssh -L") == std::string::npos);
  }
  SECTION("with --json the messages stay on stderr and stdout stays empty") {
    auto r = connect_once(d, headless({}), {"--json"});
    REQUIRE_EXIT(r, 8);
    CHECK(r.out.empty());
    CHECK(r.err.find("ssh -L") != std::string::npos);
  }
  stop_clean(d);
}

TEST_CASE("connect: the redirect base on another origin needs no forward", "[cli-manners]") {
  TempDir dir;
  Daemon d(dir.path(), with_github_client({{"ALUMIA_OAUTH_REDIRECT_BASE", "https://auth.example.com"}}));
  auto r = connect_once(d, headless({{"SSH_CONNECTION", "203.0.113.7 50122 198.51.100.2 22"}}));
  INFO(r.err);
  REQUIRE_EXIT(r, 8);
  CHECK(r.err.find("https://auth.example.com/api/v1/connections/") != std::string::npos);
  CHECK(r.err.find("The provider sends the browser back to https://auth.example.com (the daemon's OAuth redirect "
                   "base), which reaches the daemon from anywhere: no port forwarding is needed.") !=
        std::string::npos);
  CHECK(r.err.find("ssh -L") == std::string::npos);
  stop_clean(d);
}

TEST_CASE("on a terminal: colour and the spinner, never with NO_COLOR or --json; tables fit its width",
          "[cli-manners]") {
  TempDir dir;
  Daemon d(dir.path(), with_github_client());
  const std::string label(90, 'L');
  REQUIRE(d.api("POST", "/api/v1/webhook-endpoints", json{{"provider", "github"}, {"label", label}}.dump()).status ==
          201);
  const std::string cli = shell_quote(ALUMIA_CLI_BIN);
  EnvOverrides env = cli_env();
  env["NO_COLOR"] = std::nullopt;
  env["COLUMNS"] = "100";

  auto coloured = on_pty(d, cli + " webhooks list", env);
  INFO(coloured.out << coloured.err);
  REQUIRE(coloured.exit_code == 0);
  CHECK(coloured.out.find("\x1b[32mactive") != std::string::npos);
  // Each line fits 100 columns: the label is cut, the id (first column) is whole.
  std::istringstream lines(coloured.out);
  std::string line;
  bool cut = false;
  while (std::getline(lines, line)) {
    std::string plain;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '\x1b') {
        while (i < line.size() && line[i] != 'm') ++i;
        continue;
      }
      if (line[i] != '\r') plain += line[i];
    }
    CHECK(code_points(plain) <= 100);
    cut = cut || plain.find("LLLL\u2026") != std::string::npos;
  }
  CHECK(cut);
  CHECK(coloured.out.find(label) == std::string::npos);

  // Piped, the same table is whole (no cut) and plain.
  auto piped = d.cli({"webhooks", "list"}, cli_env());
  CHECK(piped.out.find(label) != std::string::npos);
  CHECK(piped.out.find('\x1b') == std::string::npos);

  env["NO_COLOR"] = "1";
  auto plain = on_pty(d, cli + " webhooks list", env);
  REQUIRE(plain.exit_code == 0);
  CHECK(plain.out.find('\x1b') == std::string::npos);
  CHECK(plain.out.find("active") != std::string::npos);
  env["NO_COLOR"] = std::nullopt;
  auto as_json = on_pty(d, cli + " webhooks list --json", env);
  REQUIRE(as_json.exit_code == 0);
  CHECK(as_json.out.find('\x1b') == std::string::npos);
  CHECK(as_json.out.find(label) != std::string::npos);  // --json is never cut

  // The spinner (with the elapsed time) is drawn on a terminal, and not with NO_COLOR or --json.
  for (const char* name : {"DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"})
    env[name] = std::nullopt;
  const std::string connect = cli + " connect github --timeout 2";
  auto spinning = on_pty(d, connect, env);
  INFO(spinning.out);
  CHECK(spinning.exit_code == 8);
  CHECK(spinning.out.find("Waiting for the authorization in the browser... (0 s)") != std::string::npos);
  CHECK(spinning.out.find("Waiting up to 2 s") != std::string::npos);
  env["NO_COLOR"] = "1";
  auto no_color = on_pty(d, connect, env);
  CHECK(no_color.exit_code == 8);
  CHECK(no_color.out.find("Waiting up to 2 s") != std::string::npos);
  CHECK(no_color.out.find("in the browser... (") == std::string::npos);
  env["NO_COLOR"] = std::nullopt;
  auto json_mode = on_pty(d, connect + " --json", env);
  CHECK(json_mode.exit_code == 8);
  CHECK(json_mode.out.find("in the browser... (") == std::string::npos);
  stop_clean(d);
}

TEST_CASE("completion: ids and slugs from the running daemon, silent and quick when it is down", "[cli-manners]") {
  TempDir dir;
  Daemon d(dir.path(), with_github_client());
  auto created = d.api("POST", "/api/v1/webhook-endpoints", R"({"provider":"github","label":"ci"})");
  REQUIRE(created.status == 201);
  const std::string endpoint = created.json()["data"]["endpoint"]["id"];
  auto pending = d.cli({"connect", "github", "--no-wait", "--json"}, cli_env());
  REQUIRE_EXIT(pending, 0);
  const std::string connection = json::parse(pending.out)["connection"]["id"];

  auto endpoints = d.cli({"__complete", "endpoints"}, cli_env());
  REQUIRE_EXIT(endpoints, 0);
  CHECK(endpoints.out == endpoint + "\tgithub ci active\n");
  auto connections = d.cli({"__complete", "connections"}, cli_env());
  CHECK(connections.out.find(connection + "\tgithub") == 0);
  auto connectors = d.cli({"__complete", "connectors"}, cli_env());
  CHECK(("\n" + connectors.out).find("\ngithub\t") != std::string::npos);
  CHECK(("\n" + connectors.out).find("\ntelegram\t") != std::string::npos);

  // The generated bash script, sourced in a real bash, completes the ids through __complete.
  const std::string bin_dir = std::filesystem::path(ALUMIA_CLI_BIN).parent_path().string();
  const std::string script = std::string(ALUMIA_SOURCE_DIR) + "/completions/alumia-connect.bash";
  EnvOverrides env = cli_env();
  env["ALUMIA_HOME"] = d.home().string();
  env["ALUMIA_API_KEY"] = std::nullopt;
  env["PATH"] = bin_dir + ":/usr/bin:/bin";
  const auto complete_bash = [&](const std::string& words, int cword) {
    return run({"/bin/bash", "-c",
                "source " + shell_quote(script) + "; COMP_WORDS=(" + words + "); COMP_CWORD=" + std::to_string(cword) +
                    "; _alumia_connect; printf '%s\\n' \"${COMPREPLY[@]}\""},
               env, "", std::chrono::seconds(30));
  };
  auto shown = complete_bash("alumia-connect webhooks show ''", 3);
  INFO(shown.err);
  CHECK(shown.out == endpoint + "\n");
  auto by_option = complete_bash("alumia-connect events tail --endpoint " + endpoint.substr(0, 4), 4);
  CHECK(by_option.out == endpoint + "\n");
  auto token = complete_bash("alumia-connect token ''", 2);
  CHECK(token.out == connection + "\n");
  auto slug = complete_bash("alumia-connect connect tele", 2);
  CHECK(slug.out == "telegram\n");

  stop_clean(d);
  const auto start = std::chrono::steady_clock::now();
  auto down = d.cli({"__complete", "endpoints"}, cli_env());
  CHECK(down.exit_code == 0);
  CHECK(down.out.empty());
  CHECK(down.err.empty());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  auto down_bash = complete_bash("alumia-connect webhooks show ''", 3);
  CHECK(down_bash.exit_code == 0);
  CHECK(down_bash.out == "\n");  // printf of an empty COMPREPLY
}

namespace {

// Every visible command without subcommands, from the bash script the CLI generates from build_app():
// its table of each group's subcommands.
std::set<std::string> leaf_commands() {
  auto r = run({ALUMIA_CLI_BIN, "completion", "bash"});
  REQUIRE(r.exit_code == 0);
  std::map<std::string, std::vector<std::string>> groups;
  const std::regex row(R"(^    '([a-z -]*)'\) echo '([a-z_ -]*)' ;;$)");
  std::istringstream in(r.out);
  std::string line;
  bool commands = false;
  while (std::getline(in, line)) {
    if (line.starts_with("_alumia_connect_commands()")) commands = true;
    else if (line == "}") commands = false;
    std::smatch m;
    if (commands && std::regex_match(line, m, row)) {
      std::istringstream words(m[2].str());
      for (std::string w; words >> w;) groups[m[1].str()].push_back(w);
    }
  }
  std::set<std::string> leaves;
  std::function<void(const std::string&)> walk = [&](const std::string& path) {
    if (!groups.contains(path)) {
      leaves.insert(path);
      return;
    }
    for (const auto& w : groups[path]) walk(path.empty() ? w : path + " " + w);
  };
  walk("");
  return leaves;
}

bool json_or_ndjson(const std::string& out) {
  if (!json::parse(out, nullptr, false).is_discarded()) return true;
  std::istringstream in(out);
  std::string line;
  bool any = false;
  while (std::getline(in, line)) {
    if (json::parse(line, nullptr, false).is_discarded()) return false;
    any = true;
  }
  return any;
}

// What the sweep knows of the daemon: an endpoint with one event and its job, a pending connection.
struct Sweep {
  TempDir dir;
  Daemon d{dir.path(), daemon_options({{"ALUMIA_GITHUB_CLIENT_ID", "Iv1.testclientid"},
                                       {"ALUMIA_GITHUB_CLIENT_SECRET", "test-secret"},
                                       {"ALUMIA_RELAY_BACKOFF_MS", "50"}})};
  std::string endpoint, event, connection;

  Sweep() {
    const json created = webhooks::create_endpoint(d, {{"provider", "github"}, {"relayTo", "http://127.0.0.1:9/x"}});
    webhooks::Signer signer;
    signer.provider = "github";
    signer.secret = created["secret"].get<std::string>();
    signer.endpoint_id = endpoint = created["endpoint"]["id"].get<std::string>();
    REQUIRE(webhooks::send(d, signer, webhooks::make_delivery(signer, 1)).status == 200);
    const json events = d.api("GET", "/api/v1/connector-events").json()["data"]["items"];
    REQUIRE(events.size() == 1);
    event = events[0]["id"];
    connection = json_out(cli(d, {"--json", "connect", "github", "--no-wait"}))["connection"]["id"];
  }
  std::string fresh_endpoint() {
    return webhooks::create_endpoint(d, {{"provider", "github"}})["endpoint"]["id"].get<std::string>();
  }
  std::string fresh_connection() {
    return json_out(cli(d, {"--json", "connect", "github", "--no-wait", "--label",
                            "sweep-" + std::to_string(++made)}))["connection"]["id"];
  }
  int made = 0;
  std::string fresh_key() {
    return d.api("POST", "/api/v1/api-keys", R"({"name":"sweep"})").json()["data"]["apiKey"]["id"];
  }
};

// One invocation of each command for the sweep: its arguments (made fresh for each run where the
// command uses its target up), stdin, and whether it succeeds here.
struct Invocation {
  using Args = std::function<std::vector<std::string>(Sweep&)>;
  Invocation(Args a, std::string in = "", bool ok = true)  // NOLINT: rows are written as braced lists
      : args(std::move(a)), stdin_data(std::move(in)), succeeds(ok) {}
  Args args;  // empty: the command runs elsewhere (the row says where)
  std::string stdin_data;
  bool succeeds;
};

std::map<std::string, Invocation> invocations() {
  using A = std::vector<std::string>;
  const auto fixed = [](A a) { return [a](Sweep&) { return a; }; };
  return {
      {"connectors list", {fixed({})}},
      {"connectors show", {fixed({"github"})}},
      {"connections list", {fixed({})}},
      {"connections show", {[](Sweep& s) { return A{s.connection}; }}},
      {"connections revoke", {[](Sweep& s) {
         return A{s.fresh_connection(), "--yes"};
       }}},
      {"connect", {fixed({"github", "--no-wait"})}},
      // An OAuth connection takes no credentials and has no token while pending: both refused.
      {"credentials",
       {[](Sweep& s) {
          return A{s.connection, "--from-stdin"};
        },
        "{}", false}},
      {"token", {[](Sweep& s) { return A{s.connection}; }, "", false}},
      {"webhooks list", {fixed({})}},
      {"webhooks create", {fixed({"--provider", "github", "--label", "sweep"})}},
      {"webhooks show", {[](Sweep& s) { return A{s.endpoint}; }}},
      {"webhooks update", {[](Sweep& s) {
         return A{s.endpoint, "--label", "swept"};
       }}},
      {"webhooks delete", {[](Sweep& s) {
         return A{s.fresh_endpoint(), "--yes"};
       }}},
      {"webhooks rotate-secret", {[](Sweep& s) { return A{s.fresh_endpoint()}; }}},
      {"setup-webhook", {[](Sweep& s) { return A{s.connection}; }, "", false}},  // github: not active yet
      {"events list", {fixed({})}},
      {"events show", {[](Sweep& s) { return A{s.event}; }}},
      {"events replay", {[](Sweep& s) { return A{s.event}; }}},
      {"events tail", {fixed({"-n", "5"})}},
      {"events prune", {fixed({"--older-than", "30d", "--dry-run"})}},
      {"jobs list", {fixed({})}},
      {"jobs retry", {fixed({"--state", "dead"})}},
      // Streams until Ctrl-C: test_listen.cpp drives it, with --json as NDJSON.
      {"listen", {nullptr}},
      {"admin events", {fixed({})}},
      {"admin open", {fixed({"--no-browser"})}},
      {"keys list", {fixed({})}},
      {"keys create", {fixed({"--name", "sweep", "--scope", "connections"})}},
      {"keys revoke", {[](Sweep& s) { return A{s.fresh_key()}; }}},
      {"keys rotate-master", {fixed({"--dry-run"})}},
      {"config show", {fixed({})}},
      {"oauth-client set", {fixed({"notion", "--client-id", "sweep-id"}), "sweep-secret"}},
      {"oauth-client unset", {fixed({"notion"})}},
      {"daemon status", {fixed({})}},
      {"daemon start", {fixed({})}},  // already running: says so
      // Stops the daemon the sweep runs against: test_doctor.cpp drives it (with --json) after `start`.
      {"daemon stop", {nullptr}},
      {"daemon logs", {fixed({}), "", false}},  // the daemon was not started by `daemon start`: no log
      {"daemon install-service", {fixed({"--print"})}},
      {"doctor", {fixed({"--no-probe"})}},
  };
}

// What the CLI may send a terminal: colour (SGR) and the spinner's erase-line; anything else stays.
std::string strip_terminal(const std::string& s) {
  return std::regex_replace(s, std::regex("\x1b\\[[0-9;]*m|\r\x1b\\[K"), "");
}

}  // namespace

TEST_CASE("every command: --json is JSON, colour only on a terminal and never with NO_COLOR, errors name a next step",
          "[cli-manners]") {
  const auto leaves = leaf_commands();
  const auto table = invocations();
  REQUIRE(leaves.size() > 30);
  // A new command cannot skip the sweep: it needs a row here (or a reason it runs elsewhere).
  for (const auto& leaf : leaves) {
    INFO("command without a row in invocations(): " << leaf);
    CHECK(table.contains(leaf));
  }
  for (const auto& [path, inv] : table) {
    INFO("row for a command that does not exist: " << path);
    CHECK(leaves.contains(path));
  }

  Sweep s;
  EnvOverrides env = cli_env();
  env["HOME"] = s.dir.path().string();
  const std::string cli_bin = shell_quote(ALUMIA_CLI_BIN);
  std::map<std::string, std::vector<std::string>> used;  // the first invocation of each, for the second sweep
  for (const auto& [path, inv] : table) {
    if (!inv.args) continue;
    std::vector<std::string> words;
    for (std::istringstream in(path); !in.eof();) {
      std::string w;
      in >> w;
      words.push_back(w);
    }
    const auto invocation = [&] {
      auto a = words;
      for (auto& x : inv.args(s)) a.push_back(x);
      return a;
    };
    INFO("alumia-connect " << path);
    {
      auto a = invocation();
      used[path] = a;
      a.insert(a.begin(), "--json");
      auto r = s.d.cli(a, env, inv.stdin_data, std::chrono::seconds(30));
      INFO("--json: exit " << r.exit_code << "\nstdout: " << r.out << "\nstderr: " << r.err);
      CHECK((r.exit_code == 0) == inv.succeeds);
      if (r.exit_code == 0) CHECK(json_or_ndjson(r.out));
      else CHECK(r.out.empty());
      CHECK(r.out.find('\x1b') == std::string::npos);
      CHECK(r.err.find('\x1b') == std::string::npos);
      if (r.exit_code != 0) {
        // The error names what to do next: a command to run, or the --help to read.
        CHECK(r.err.find("alumia-connect: error: ") != std::string::npos);
        CHECK(r.err.find("alumia-connect ", r.err.find("error: ")) != std::string::npos);
      }
    }
    {
      // Piped (not a terminal), without NO_COLOR: plain.
      auto piped_env = env;
      piped_env["NO_COLOR"] = std::nullopt;
      auto r = s.d.cli(invocation(), piped_env, inv.stdin_data, std::chrono::seconds(30));
      INFO("piped: exit " << r.exit_code << "\nstdout: " << r.out << "\nstderr: " << r.err);
      CHECK((r.exit_code == 0) == inv.succeeds);
      CHECK(r.out.find('\x1b') == std::string::npos);
      CHECK(r.err.find('\x1b') == std::string::npos);
    }
    if (inv.stdin_data.empty()) {
      // On a terminal with NO_COLOR: no escape sequence at all (no colour, no spinner); without it,
      // colour and the spinner may be drawn, and nothing else.
      const auto command = [&] {  // made for each run: a command may use its target up
        std::string c = cli_bin;
        for (const auto& w : invocation()) c += " " + shell_quote(w);
        return c + " </dev/null";
      };
      auto tty_env = env;
      tty_env["COLUMNS"] = "100";
      tty_env["NO_COLOR"] = "1";
      auto plain = on_pty(s.d, command(), tty_env);
      INFO("pty, NO_COLOR: exit " << plain.exit_code << "\n" << plain.out);
      CHECK((plain.exit_code == 0) == inv.succeeds);
      CHECK(plain.out.find('\x1b') == std::string::npos);
      tty_env["NO_COLOR"] = std::nullopt;
      auto coloured = on_pty(s.d, command(), tty_env);
      INFO("pty: exit " << coloured.exit_code << "\n" << coloured.out);
      CHECK((coloured.exit_code == 0) == inv.succeeds);
      CHECK(strip_terminal(coloured.out).find('\x1b') == std::string::npos);
    }
  }
  stop_clean(s.d);

  // With the daemon down, every command that needs it fails the same way: exit 3, naming `daemon start`.
  for (const auto& [path, inv] : table) {
    if (!inv.args || path.starts_with("daemon ") || path == "config show" || path == "doctor") continue;
    auto r = s.d.cli(used[path], env, inv.stdin_data, std::chrono::seconds(30));
    INFO("daemon down: alumia-connect " << path << "\nexit " << r.exit_code << "\nstderr: " << r.err);
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("alumia-connect daemon start") != std::string::npos);
  }
}

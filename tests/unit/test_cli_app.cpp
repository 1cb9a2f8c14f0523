// build_app(): each command's flags parse; usage errors give exit 2; globals work after the command.
#include "test_cli_support.hpp"

#include "credentials_util.hpp"
#include "event_tail.hpp"

#include <catch2/catch.hpp>

using alumia::cli::testing::CliHarness;

TEST_CASE("every command parses its flags", "[cli]") {
  struct Case {
    std::vector<std::string> args;
  };
  const std::vector<std::vector<std::string>> ok{
      {"connectors", "list"},
      {"connectors", "show", "github"},
      {"connections", "list", "--connector", "github", "--status", "active", "--limit", "10", "--all"},
      {"connections", "show", "1b4e28ba-2fa1-4d3b-a3f5-8f1c2d3e4f50"},
      {"connections", "revoke", "abc", "--yes"},
      {"connect", "github", "--label", "work", "--select-account", "--no-browser", "--no-wait", "--timeout", "5",
       "--reconnect", "abc"},
      {"connect", "telegram", "--field", "bot_token=1:x", "--field", "a=b=c", "--from-stdin"},
      {"credentials", "abc", "--field", "k=v", "--from-stdin"},
      {"token", "abc"},
      {"webhooks", "list", "--limit", "5"},
      {"webhooks", "create", "--provider", "stripe", "--connection", "abc", "--label", "billing", "--relay-to",
       "https://example.com/hook", "--max-body-bytes", "1048576", "--secret-from-stdin"},
      {"webhooks", "create", "--provider", "gmail", "--audience", "https://example.com/push", "--jwks-url",
       "https://example.com/jwks", "--service-account-email", "push@example.iam.gserviceaccount.com",
       "--verify-token-from-stdin"},
      {"webhooks", "create", "--provider", "telegram", "--bot-id", "123"},
      {"webhooks", "show", "abc"},
      {"webhooks", "update", "abc", "--disable", "--label", "", "--relay-to", "https://example.com/",
       "--max-body-bytes", "64"},
      {"webhooks", "update", "abc", "--enable", "--clear-relay-to"},
      {"webhooks", "delete", "abc", "--yes"},
      {"webhooks", "rotate-secret", "abc", "--secret-from-stdin", "--grace-seconds", "0"},
      {"events", "list", "--endpoint", "abc", "--status", "dead", "--since", "15m", "--limit", "5"},
      {"events", "show", "abc"},
      {"events", "replay", "abc"},
      {"events", "tail", "--endpoint", "abc", "-n", "5", "--follow"},
      {"events", "tail", "-f", "--json"},
      {"jobs", "list", "--state", "dead", "--limit", "5"},
      {"jobs", "retry", "abc"},
      {"jobs", "retry", "--state", "dead", "--since", "2026-11-29T03:25:19Z"},
      {"keys", "list"},
      {"keys", "create", "--name", "ci", "--scope", "tokens", "--scope", "connections"},
      {"keys", "revoke", "abc"},
      {"config", "show"},
      {"daemon", "status"},
      {"daemon", "start", "--listen", "127.0.0.1:0", "--timeout", "20"},
      {"daemon", "stop", "--timeout", "3"},
      {"daemon", "logs", "-n", "5"},
      {"completion", "bash"},
      {"completion", "zsh"},
      {"completion", "fish"},
      {"--json", "--daemon", "http://127.0.0.1:9", "--data-dir", "/tmp/x y", "--quiet", "--no-color", "token", "abc"},
      {"token", "abc", "--json", "--quiet"},  // globals after the command (fallthrough)
  };
  for (const auto& args : ok) {
    CliHarness h;
    INFO(args.front() << " " << (args.size() > 1 ? args[1] : ""));
    CHECK(h.parse_exit(args) == -1);
    CHECK(static_cast<bool>(h.ctx.action));
  }
}

TEST_CASE("parsed values reach the options", "[cli]") {
  CliHarness h;
  h.parse({"connect", "github", "--timeout", "7", "--field", "a=1", "--field", "b=2", "--json"});
  auto* connect = h.sub("connect");
  CHECK(connect->get_option("--timeout")->as<int>() == 7);
  CHECK(connect->get_option("--field")->as<std::vector<std::string>>() == std::vector<std::string>{"a=1", "b=2"});
  CHECK(connect->get_option("SLUG")->as<std::string>() == "github");
  CHECK(h.ctx.global.json);

  CliHarness g;
  g.parse({"--data-dir", "/tmp/a b", "connections", "list", "--limit", "3", "--daemon", "http://127.0.0.1:1"});
  CHECK(g.ctx.global.data_dir == "/tmp/a b");
  CHECK(g.ctx.global.daemon_url == "http://127.0.0.1:1");
  CHECK(g.sub("connections list")->get_option("--limit")->as<int>() == 3);
}

TEST_CASE("usage errors exit 2; help and version exit 0", "[cli]") {
  const std::vector<std::vector<std::string>> bad{
      {},
      {"connectors"},
      {"connectors", "show"},
      {"connections", "list", "--status", "bogus"},
      {"connections", "list", "--limit", "0"},
      {"connections", "list", "--limit", "201"},
      {"connect", "github", "--timeout", "abc"},
      {"keys", "create", "--scope", "root"},
      {"nope"},
      {"token"},
      {"token", "a", "b"},
      {"completion", "tcsh"},
      {"webhooks", "create"},
      {"webhooks", "create", "--provider", "stripe", "--secret", "whsec_x"},  // secrets never as argv values
      {"webhooks", "create", "--provider", "github", "--max-body-bytes", "0"},
      {"webhooks", "show"},
      {"webhooks", "update", "abc", "--disable", "--enable"},
      {"webhooks", "update", "abc", "--relay-to", "https://example.com/", "--clear-relay-to"},
      {"webhooks", "update", "abc", "--max-body-bytes", "26214401"},
      {"webhooks", "rotate-secret", "abc", "--grace-seconds", "-1"},
      {"events", "list", "--status", "bogus"},
      {"events", "tail", "-n", "0"},
      {"jobs", "list", "--state", "bogus"},
      {"jobs", "retry", "--since", "1h"},
      {"jobs", "retry", "--state", "queued"},
  };
  for (const auto& args : bad) {
    CliHarness h;
    INFO((args.empty() ? std::string("(none)") : args.front()));
    CHECK(h.parse_exit(args) == 2);
    CHECK(h.err.str().find("alumia-connect: error:") != std::string::npos);
  }
  CliHarness help;
  CHECK(help.parse_exit({"connect", "--help"}) == 0);
  CHECK(help.out.str().find("--select-account") != std::string::npos);
  CliHarness version;
  CHECK(version.parse_exit({"--version"}) == 0);
  CHECK(version.out.str().find(ALUMIA_VERSION) != std::string::npos);
}

TEST_CASE("connect needs a SLUG or --reconnect, checked before the daemon is contacted", "[cli]") {
  CliHarness h(alumia::cli::testing::Env{{"ALUMIA_HOME", "/nonexistent/alumia"}});
  h.parse({"--daemon", "http://127.0.0.1:1", "connect"});
  CHECK(h.ctx.run() == 2);
  CHECK(h.err.str().find("SLUG is required") != std::string::npos);
}

TEST_CASE("--field parsing", "[cli]") {
  using alumia::cli::parse_field;
  using alumia::cli::parse_fields;
  auto kv = parse_field("bot_token=123:abc=def");
  REQUIRE(kv);
  CHECK(kv->first == "bot_token");
  CHECK(kv->second == "123:abc=def");
  auto empty_value = parse_field("k=");
  REQUIRE(empty_value);
  CHECK(empty_value->second.empty());
  CHECK(parse_field("novalue").error().exit_code == 2);
  CHECK(parse_field("=v").error().exit_code == 2);
  CHECK(parse_field("a b=c").error().exit_code == 2);
  // The message never echoes the value (it may be a secret).
  CHECK(parse_field("=supersecret").error().message.find("supersecret") == std::string::npos);
  auto many = parse_fields({"a=1", "b=2"});
  REQUIRE(many);
  CHECK(many->size() == 2);
  CHECK(parse_fields({"a=1", "a=2"}).error().exit_code == 2);

  auto js = alumia::cli::parse_values_json(R"({"api_key":"x","n":5})");
  REQUIRE(js);
  CHECK(js->at("api_key") == "x");
  CHECK(js->at("n") == "5");
  auto wrapped = alumia::cli::parse_values_json(R"({"values":{"k":"v"}})");
  REQUIRE(wrapped);
  CHECK(wrapped->at("k") == "v");
  CHECK(alumia::cli::parse_values_json("[1]").error().exit_code == 2);
  CHECK(alumia::cli::parse_values_json(R"({"k":{"x":1}})").error().exit_code == 2);
}

TEST_CASE("missing required credential fields without a TTY are a usage error", "[cli]") {
  CliHarness h;  // TerminalInfo{}: no TTY
  const nlohmann::json connector = nlohmann::json::parse(R"({
    "slug": "telegram", "authType": "api_key",
    "credentialFields": [{"key": "bot_token", "label": "Bot token", "required": true, "secret": true}]})");
  auto r = alumia::cli::collect_credentials(h.ctx, connector, {{}, false});
  REQUIRE_FALSE(r);
  CHECK(r.error().exit_code == 2);
  CHECK(r.error().message.find("bot_token") != std::string::npos);

  auto given = alumia::cli::collect_credentials(h.ctx, connector, {{"bot_token=1:abc"}, false});
  REQUIRE(given);
  CHECK(given->at("bot_token") == "1:abc");
  CHECK(h.err.str().find("warning: --field bot_token") != std::string::npos);
  CHECK(h.err.str().find("1:abc") == std::string::npos);

  CliHarness s;
  s.in.str(R"({"bot_token":"9:zz"})");
  auto from_stdin = alumia::cli::collect_credentials(s.ctx, connector, {{}, true});
  REQUIRE(from_stdin);
  CHECK(from_stdin->at("bot_token") == "9:zz");
  CHECK(s.err.str().empty());

  CliHarness u;
  CHECK(alumia::cli::collect_credentials(u.ctx, connector, {{"other=1"}, false}).error().exit_code == 2);
}

TEST_CASE("the browser gets a minimal environment and argv", "[cli]") {
  const std::map<std::string, std::string> vars{{"DISPLAY", ":0"},
                                                {"PATH", "/usr/bin"},
                                                {"HOME", "/home/u"},
                                                {"ALUMIA_API_KEY", "alm_live_secret"},
                                                {"ALUMIA_GITHUB_CLIENT_SECRET", "s3cret"},
                                                {"FAKE_BROWSER_LOG", "/tmp/log"},
                                                {"LD_PRELOAD", "/evil.so"}};
  const alumia::EnvLookup env = [&vars](std::string_view k) -> std::optional<std::string> {
    auto it = vars.find(std::string(k));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  const auto e = alumia::cli::browser_environment(env);
  CHECK(e == std::vector<std::string>{"DISPLAY=:0", "HOME=/home/u", "PATH=/usr/bin", "FAKE_BROWSER_LOG=/tmp/log"});
  for (const auto& kv : e) {
    CHECK(kv.find("secret") == std::string::npos);
    CHECK(kv.find("LD_PRELOAD") == std::string::npos);
  }
}

TEST_CASE("no display: headless or SSH without $BROWSER", "[cli]") {
  using Vars = std::map<std::string, std::string>;
  const auto check = [](Vars vars) {
    return alumia::cli::no_display([vars](std::string_view k) -> std::optional<std::string> {
      auto it = vars.find(std::string(k));
      if (it == vars.end()) return std::nullopt;
      return it->second;
    });
  };
  CHECK(check({}));
  CHECK_FALSE(check({{"DISPLAY", ":0"}}));
  CHECK_FALSE(check({{"WAYLAND_DISPLAY", "wayland-0"}}));
  CHECK(check({{"DISPLAY", ":0"}, {"SSH_CONNECTION", "1.2.3.4 5 6.7.8.9 22"}}));
  CHECK_FALSE(check({{"BROWSER", "/usr/bin/true"}}));
  CHECK_FALSE(check({{"BROWSER", "w3m"}, {"SSH_CONNECTION", "x"}}));
}

TEST_CASE("find_in_path resolves names without a shell", "[cli]") {
  CHECK(alumia::cli::find_in_path("sh", "/nonexistent:/bin:/usr/bin").has_value());
  CHECK_FALSE(alumia::cli::find_in_path("definitely-not-a-program-xyz", "/bin:/usr/bin").has_value());
  CHECK_FALSE(alumia::cli::find_in_path("", "/bin").has_value());
}

TEST_CASE("webhook, event and job usage errors are found before the daemon is contacted", "[cli]") {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"webhooks", "update", "abc"}, "nothing to change"},
      {{"webhooks", "create", "--provider", "stripe", "--secret-from-stdin"}, "--secret-from-stdin"},
      {{"webhooks", "rotate-secret", "abc", "--secret-from-stdin"}, "rotate-secret abc --secret-from-stdin"},
      {{"webhooks", "delete", "abc"}, "--yes"},
      {{"jobs", "retry"}, "--state"},
      {{"jobs", "retry", "abc", "--state", "dead"}, "--state"},
  };
  for (const auto& [args, message] : cases) {
    CliHarness h(alumia::cli::testing::Env{{"ALUMIA_HOME", "/nonexistent/alumia"}});
    INFO(args[0] << " " << args[1]);
    std::vector<std::string> argv{"--daemon", "http://127.0.0.1:1"};
    argv.insert(argv.end(), args.begin(), args.end());
    h.parse(argv);
    CHECK(h.ctx.run() == 2);
    CHECK(h.err.str().find(message) != std::string::npos);
  }
}

TEST_CASE("read_secret: one line of stdin without a terminal, never echoed in errors", "[cli]") {
  CliHarness h;
  h.in.str("whsec_first\r\nsecond\n");
  auto first = alumia::cli::read_secret(h.ctx, "stripe signing secret", "printf %s \"$S\" | x");
  REQUIRE(first);
  CHECK(*first == "whsec_first");
  auto second = alumia::cli::read_secret(h.ctx, "verify token", "printf %s \"$S\" | x");
  REQUIRE(second);
  CHECK(*second == "second");
  auto none = alumia::cli::read_secret(h.ctx, "verify token", "printf %s \"$TOKEN\" | x");
  REQUIRE_FALSE(none);
  CHECK(none.error().exit_code == 2);
  CHECK(none.error().message.find("no verify token on stdin") != std::string::npos);
  CHECK(h.err.str().empty());
}

TEST_CASE("events tail: new events of each newest-first window, oldest first, each once", "[cli]") {
  using nlohmann::json;
  const auto ev = [](const char* id) { return json{{"id", id}}; };
  const auto ids = [](const std::vector<json>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e["id"].get<std::string>());
    return out;
  };
  alumia::cli::EventTail tail;
  CHECK(ids(tail.advance({ev("c"), ev("b"), ev("a")})) == std::vector<std::string>{"a", "b", "c"});
  CHECK(tail.seen("b"));
  CHECK(ids(tail.advance({ev("e"), ev("d"), ev("c"), ev("b")})) == std::vector<std::string>{"d", "e"});
  // A commit that lands behind a newer, already printed event is still printed.
  CHECK(ids(tail.advance({ev("e"), ev("x"), ev("d")})) == std::vector<std::string>{"x"});
  CHECK_FALSE(tail.seen("a"));  // out of the window: older than anything a later window can hold
  CHECK(ids(tail.advance({ev("e"), ev("e"), ev("x")})).empty());
  CHECK(ids(tail.advance({})).empty());
}

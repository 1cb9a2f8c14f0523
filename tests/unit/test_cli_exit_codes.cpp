// Exit codes: the envelope's code through the shared table (SPEC §10), daemon URL rules, and the
// unreachable path.
#include "test_cli_support.hpp"

#include <catch2/catch.hpp>

using namespace alumia::cli;
using alumia::cli::testing::CliHarness;

TEST_CASE("error envelopes map to the SPEC exit codes", "[cli]") {
  CHECK(exit_code_for_error(401, "UNAUTHORIZED") == 4);
  CHECK(exit_code_for_error(403, "FORBIDDEN") == 4);
  CHECK(exit_code_for_error(404, "NOT_FOUND") == 5);
  CHECK(exit_code_for_error(409, "CONFLICT") == 6);
  CHECK(exit_code_for_error(400, "BAD_REQUEST") == 7);
  CHECK(exit_code_for_error(405, "BAD_REQUEST") == 7);
  CHECK(exit_code_for_error(422, "VALIDATION_ERROR") == 7);
  CHECK(exit_code_for_error(413, "PAYLOAD_TOO_LARGE") == 7);
  CHECK(exit_code_for_error(411, "LENGTH_REQUIRED") == 7);
  CHECK(exit_code_for_error(429, "TOO_MANY_REQUESTS") == 1);
  CHECK(exit_code_for_error(503, "SERVICE_UNAVAILABLE") == 1);
  CHECK(exit_code_for_error(500, "INTERNAL") == 1);
  // Unknown codes fall back to the HTTP status.
  CHECK(exit_code_for_error(405, "") == 7);
  CHECK(exit_code_for_error(404, "SOMETHING_NEW") == 5);
  CHECK(exit_code_for_error(418, "") == 1);
}

TEST_CASE("envelopes are parsed without throwing", "[cli]") {
  auto ok = parse_envelope(200, R"({"success":true,"data":{"a":1}})", "d");
  REQUIRE(ok);
  CHECK((*ok)["a"] == 1);
  auto err =
      parse_envelope(404, R"({"success":false,"error":{"code":"NOT_FOUND","message":"no such connection"}})", "d");
  REQUIRE_FALSE(err);
  CHECK(err.error().exit_code == 5);
  CHECK(err.error().message == "no such connection");
  auto html = parse_envelope(502, "<html>bad gateway</html>", "d");
  REQUIRE_FALSE(html);
  CHECK(html.error().exit_code == 1);
  CHECK(parse_envelope(405, "", "d").error().exit_code == 7);
}

TEST_CASE("envelope warnings are collected, terminal-safe, beside the data", "[cli]") {
  std::vector<std::string> warnings;
  auto ok = parse_envelope(
      200, R"({"success":true,"data":{"a":1},"warnings":["base URL \u001b[31m unsafe", 7, "two"]})", "d", &warnings);
  REQUIRE(ok);
  CHECK((*ok) == json{{"a", 1}});  // the data alone: warnings never reach --json output
  CHECK(warnings == std::vector<std::string>{"base URL \\x1b[31m unsafe", "two"});
  warnings.clear();
  REQUIRE(parse_envelope(200, R"({"success":true,"data":null,"warnings":"not a list"})", "d", &warnings));
  CHECK(warnings.empty());
  REQUIRE(parse_envelope(200, R"({"success":true,"data":{}})", "d", &warnings));
  CHECK(warnings.empty());
}

TEST_CASE("daemon URLs must be http on loopback", "[cli]") {
  auto u = parse_daemon_url("http://127.0.0.1:7465");
  REQUIRE(u);
  CHECK(u->port == 7465);
  CHECK(u->host_port() == "127.0.0.1:7465");
  auto v6 = parse_daemon_url("http://[::1]:8000/");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->host_port() == "[::1]:8000");
  CHECK(parse_daemon_url("http://localhost:1"));
  for (const char* bad : {"https://127.0.0.1:7465", "http://example.com:7465", "http://10.0.0.1:7465",
                          "http://127.0.0.1", "http://127.0.0.1:0", "http://127.0.0.1:99999", "127.0.0.1:7465",
                          "http://user@127.0.0.1:1", "http://127.0.0.1:7465/api", "http://127.evil.com:1"}) {
    INFO(bad);
    auto r = parse_daemon_url(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().exit_code == 2);
  }
}

TEST_CASE("an unreachable daemon gives exit 3 and says how to start it", "[cli]") {
  // Port 1 on loopback: nothing of ours listens there.
  CliHarness h(
      alumia::cli::testing::Env{{"ALUMIA_HOME", "/nonexistent/alumia test"}, {"ALUMIA_API_KEY", "alm_live_0"}});
  h.parse({"--daemon", "http://127.0.0.1:1", "connections", "list"});
  CHECK(h.ctx.run() == 3);
  CHECK(h.err.str() ==
        "alumia-connect: error: cannot reach alumia-connectd at 127.0.0.1:1 \u2014 start it with `alumia-connect "
        "daemon start` or `systemctl --user start alumia-connectd`\n");
  CHECK(h.out.str().empty());
}

TEST_CASE("the daemon URL comes from flag, env, state file, default", "[cli]") {
  CliHarness def(alumia::cli::testing::Env{{"ALUMIA_HOME", "/nonexistent/alumia"}});
  auto d = def.ctx.daemon_location();
  REQUIRE(d);
  CHECK(d->url.url() == "http://127.0.0.1:7465");
  CHECK(d->source == "default");

  CliHarness env(
      alumia::cli::testing::Env{{"ALUMIA_HOME", "/nonexistent/alumia"}, {"ALUMIA_DAEMON", "http://127.0.0.1:9000"}});
  auto e = env.ctx.daemon_location();
  REQUIRE(e);
  CHECK(e->url.port == 9000);
  CHECK(e->source == "env");

  CliHarness flag(
      alumia::cli::testing::Env{{"ALUMIA_HOME", "/nonexistent/alumia"}, {"ALUMIA_DAEMON", "http://127.0.0.1:9000"}});
  flag.parse({"--daemon", "http://127.0.0.1:9001", "config", "show"});
  auto f = flag.ctx.daemon_location();
  REQUIRE(f);
  CHECK(f->url.port == 9001);
  CHECK(f->source == "flag");
}

TEST_CASE("revoke without a TTY needs --yes", "[cli]") {
  CliHarness h(alumia::cli::testing::Env{{"ALUMIA_HOME", "/nonexistent/alumia"}});
  h.parse({"connections", "revoke", "abc"});
  CHECK(h.ctx.run() == 2);
  CHECK(h.err.str().find("--yes") != std::string::npos);
}

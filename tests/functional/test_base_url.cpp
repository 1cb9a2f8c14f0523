// The public base URL, enforced (SPEC §8, issue 12 item 1): an unsafe webhook base URL from the
// environment or config.json stops the real daemon at start, naming the setting, its source and the
// rule; --allow-insecure-base-url (flag or env) lets it start with a loud warning, and every
// webhook-endpoint reply that hands out a receiveUrl built on it carries the warning, which the real
// CLI prints on stderr (with --json too, stdout keeping the data alone).
#include "cli_helpers.hpp"
#include "process.hpp"
#include "skip.hpp"

#include <signal.h>
#include <catch2/catch.hpp>

#include <fstream>

using namespace alumia::test;
using nlohmann::json;

namespace {

namespace fs = std::filesystem;

// Starts the daemon on `home` with `env` and expects it to exit on its own; bounded.
ProcessResult start_expecting_exit(const fs::path& home, EnvOverrides env, std::vector<std::string> extra = {}) {
  for (auto& [k, v] : daemon_options().env) env.emplace(k, v);
  env["ALUMIA_HOME"] = home.string();
  env.emplace("CONNECTOR_WEBHOOK_BASE_URL", std::nullopt);
  env.emplace("ALUMIA_ALLOW_INSECURE_BASE_URL", std::nullopt);
  std::vector<std::string> argv{ALUMIA_DAEMON_BIN, "--listen", "127.0.0.1:0", "--keyring", "file"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run(argv, env, "", std::chrono::seconds(30));
}

void write_config(const fs::path& home, const json& config) {
  std::ofstream f(home / "config.json", std::ios::trunc);
  f << config.dump();
}

struct Unsafe {
  const char* url;
  const char* rule;  // what the message must say
};

const std::vector<Unsafe> k_unsafe = {
    {"https://127.1", "host 127.1 is the IPv4 address 127.0.0.1, a loopback address"},
    {"https://[::ffff:10.0.0.1]", "is an IPv4-mapped address (::ffff:0:0/96) of 10.0.0.1"},
    {"http://example.com", "base URL must be https, not http"},
    {"https://foo.internal", "host foo.internal is a local name (under .internal)"},
    {"https://2130706433/hooks", "is the IPv4 address 127.0.0.1, a loopback address"},
    {"https://hooks.example.com/?x=1", "must not have a query"},
};

std::string receive_path(const std::string& provider, const std::string& id) {
  return "/api/v1/connectors/webhooks/" + provider + "/" + id;
}

}  // namespace

TEST_CASE("base url: an unsafe base URL in the environment stops the daemon, naming setting, source and rule",
          "[base-url]") {
  for (const Unsafe& u : k_unsafe) {
    INFO(u.url);
    TempDir home;
    auto r = start_expecting_exit(home.path(), {{"CONNECTOR_WEBHOOK_BASE_URL", u.url}});
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("alumia-connectd: error: setting webhook-base-url from CONNECTOR_WEBHOOK_BASE_URL (env): ") !=
          std::string::npos);
    CHECK(r.err.find(u.rule) != std::string::npos);
    CHECK(r.err.find("--allow-insecure-base-url") != std::string::npos);
    CHECK(r.out.empty());
    CHECK_FALSE(fs::exists(home.path() / "daemon.json"));
    CHECK_FALSE(fs::exists(home.path() / "store.db"));  // refused before anything was made
  }
}

TEST_CASE("base url: an unsafe base URL in config.json stops the daemon, naming the file", "[base-url]") {
  for (const Unsafe& u : {k_unsafe[0], k_unsafe[1], k_unsafe[3]}) {
    INFO(u.url);
    TempDir home;
    write_config(home.path(), {{"webhookBaseUrl", u.url}});
    auto r = start_expecting_exit(home.path(), {});
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("setting webhook-base-url from webhookBaseUrl in " + (home.path() / "config.json").string() +
                     " (config): ") != std::string::npos);
    CHECK(r.err.find(u.rule) != std::string::npos);
  }
  // The environment wins over the file: a safe one there, and the file's unsafe one is never used.
  TempDir home;
  write_config(home.path(), {{"webhookBaseUrl", "https://127.1"}});
  Daemon d(home.path(), daemon_options({{"CONNECTOR_WEBHOOK_BASE_URL", "https://hooks.example.com/alumia/"}}));
  auto created = cli(d, {"--json", "webhooks", "create", "--provider", "github"});
  REQUIRE_EXIT(created, 0);
  const json j = json_out(created);
  const std::string id = j["endpoint"]["id"];
  // Normalised: the trailing '/' of the setting is not doubled.
  CHECK(j["endpoint"]["receiveUrl"] == "https://hooks.example.com/alumia" + receive_path("github", id));
  CHECK(created.err.find("warning") == std::string::npos);
  stop_clean(d);
}

TEST_CASE("base url: even with --allow-insecure-base-url, a base that is no http(s) prefix is refused", "[base-url]") {
  TempDir home;
  auto r = start_expecting_exit(home.path(), {{"CONNECTOR_WEBHOOK_BASE_URL", "ftp://files.example.com"}},
                                {"--allow-insecure-base-url"});
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("must be an http(s) URL without userinfo, query or fragment, even with --allow-insecure-base-url "
                   "(development mode is on through --allow-insecure-base-url (flag))") != std::string::npos);
}

TEST_CASE("base url: --allow-insecure-base-url starts with a warning, and each receiveUrl reply repeats it",
          "[base-url]") {
  const int port = free_port();  // a base URL nothing answers on: only its text matters here
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  TempDir home;
  SECTION("the flag") {
    Daemon d(home.path(), [&] {
      auto o = daemon_options({{"CONNECTOR_WEBHOOK_BASE_URL", base + "/"}});
      o.extra_args.push_back("--allow-insecure-base-url");
      return o;
    }());
    CHECK(d.log().find("warning INSECURE: receiveUrls are built on the webhook base URL " + base +
                       " (setting webhook-base-url from CONNECTOR_WEBHOOK_BASE_URL (env)), which breaks the public "
                       "base URL rule: base URL must be https, not http") != std::string::npos);
    CHECK(d.log().find("allowed only by --allow-insecure-base-url (flag)") != std::string::npos);

    auto created = cli(d, {"webhooks", "create", "--provider", "github", "--label", "dev"});
    REQUIRE_EXIT(created, 0);
    const std::string warning_line = "alumia-connect: warning: receiveUrls are built on the webhook base URL " + base;
    CHECK(created.err.find(warning_line) != std::string::npos);
    CHECK(created.out.find("warning") == std::string::npos);
    CHECK(created.out.find(base + "/api/v1/connectors/webhooks/github/") != std::string::npos);

    auto created_json = cli(d, {"--json", "webhooks", "create", "--provider", "github"});
    REQUIRE_EXIT(created_json, 0);
    const json j = json_out(created_json);  // stdout is the data alone
    const std::string id = j["endpoint"]["id"];
    CHECK(j["endpoint"]["receiveUrl"] == base + receive_path("github", id));
    CHECK(created_json.err.find(warning_line) != std::string::npos);

    auto shown = cli(d, {"--json", "webhooks", "show", id});
    REQUIRE_EXIT(shown, 0);
    CHECK(json_out(shown)["receiveUrl"] == base + receive_path("github", id));
    CHECK(shown.err.find(warning_line) != std::string::npos);
    CHECK(shown.err.find("must be https, not http") != std::string::npos);

    auto listed = cli(d, {"webhooks", "list"});
    REQUIRE_EXIT(listed, 0);
    CHECK(listed.err.find(warning_line) != std::string::npos);

    // The envelope itself: the warnings next to data, on the API too.
    auto api = d.api("GET", "/api/v1/webhook-endpoints/" + id);
    REQUIRE(api.status == 200);
    REQUIRE(api.json()["warnings"].is_array());
    CHECK(api.json()["warnings"].size() == 1);
    // Replies without a receiveUrl carry none.
    auto status = d.api("GET", "/api/v1/status");
    CHECK_FALSE(status.json().contains("warnings"));
    stop_clean(d);
  }
  SECTION("the environment variable") {
    Daemon d(home.path(), daemon_options({{"CONNECTOR_WEBHOOK_BASE_URL", "https://svc.internal"},
                                          {"ALUMIA_ALLOW_INSECURE_BASE_URL", "true"}}));
    CHECK(d.log().find("allowed only by ALUMIA_ALLOW_INSECURE_BASE_URL (env)") != std::string::npos);
    CHECK(d.log().find("host svc.internal is a local name (under .internal)") != std::string::npos);
    auto created = cli(d, {"webhooks", "create", "--provider", "github"});
    REQUIRE_EXIT(created, 0);
    CHECK(created.err.find("alumia-connect: warning: receiveUrls are built on the webhook base URL "
                           "https://svc.internal") != std::string::npos);
    stop_clean(d);
  }
}

TEST_CASE("base url: without one, receiveUrls use the control listener and carry no warning", "[base-url]") {
  TempDir home;
  Daemon d(home.path(), daemon_options({{"CONNECTOR_WEBHOOK_BASE_URL", std::nullopt}}));
  auto created = cli(d, {"--json", "webhooks", "create", "--provider", "github"});
  REQUIRE_EXIT(created, 0);
  const json j = json_out(created);
  CHECK(j["endpoint"]["receiveUrl"] == d.url() + receive_path("github", j["endpoint"]["id"]));
  CHECK(created.err.find("warning") == std::string::npos);
  auto api = d.api("GET", "/api/v1/webhook-endpoints");
  CHECK_FALSE(api.json().contains("warnings"));
  stop_clean(d);
}

TEST_CASE("base url: an IPv6 base URL is a Host name of the public listener, in brackets", "[base-url]") {
  TempDir home;
  auto o = daemon_options({{"CONNECTOR_WEBHOOK_BASE_URL", "https://[2606:4700:4700:0:0:0:0:1111]/"}});
  o.extra_args = {"--public-listen", "127.0.0.1:0"};
  Daemon d(home.path(), o);
  const json state = json::parse(read_file(home.path() / "daemon.json"));
  const std::string public_url = state["publicUrl"];
  // Providers send the Host of the receiveUrl: the normal form of the base URL's host.
  auto ok = http_request("GET", public_url + "/healthz", {{"Host", "[2606:4700:4700::1111]"}});
  CHECK(ok.status == 200);
  auto other = http_request("GET", public_url + "/healthz", {{"Host", "[2606:4700:4700::1112]"}});
  CHECK(other.status == 403);
  auto created = cli(d, {"--json", "webhooks", "create", "--provider", "github"});
  REQUIRE_EXIT(created, 0);
  const json j = json_out(created);
  CHECK(j["endpoint"]["receiveUrl"] == "https://[2606:4700:4700::1111]" + receive_path("github", j["endpoint"]["id"]));
  stop_clean(d);
}

TEST_CASE("base url: the control listener takes any spelling of ::1", "[base-url]") {
  TempDir home;
  EnvOverrides env = daemon_options().env;
  env["ALUMIA_HOME"] = home.path().string();
  Process p({ALUMIA_DAEMON_BIN, "--listen", "[0:0:0:0:0:0:0:1]:0", "--keyring", "file"}, env);
  std::string url;
  const bool up = eventually([&] {
    if (!p.running()) return true;
    auto j = json::parse(read_file(home.path() / "daemon.json"), nullptr, false);
    if (j.is_discarded() || !j.contains("url")) return false;
    url = j["url"];
    return true;
  });
  INFO(p.err());
  REQUIRE(up);
  if (!p.running() && p.err().find("cannot start the control listener") != std::string::npos)
    ALUMIA_SKIP("no IPv6 loopback here: " << p.err());
  REQUIRE(p.running());
  CHECK(url.rfind("http://[::1]:", 0) == 0);
  p.signal(SIGTERM);
  CHECK(p.wait(std::chrono::seconds(20)) == 0);
}

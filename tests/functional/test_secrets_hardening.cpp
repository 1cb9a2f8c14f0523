// The daemon's own hardening (issue 16 item 4): it refuses a data directory or key files that group
// or others can read, naming the chmod that fixes it; it is not dumpable and has no core size (a
// crash or a ptrace-capable peer gets no copy of the keys in its memory); a wrong API key is held a
// moment and, repeated, rate limited per client (auth_failures.hpp).
#include "cli_helpers.hpp"
#include "postgres.hpp"
#include "process.hpp"
#include "skip.hpp"

#include <alumia/base/strings.hpp>

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace {

namespace fs = std::filesystem;
using alumia::test::Daemon;
using alumia::test::daemon_options;
using alumia::test::EnvOverrides;
using alumia::test::ProcessResult;
using alumia::test::TempDir;
using Clock = std::chrono::steady_clock;

constexpr uid_t k_nobody = 65534;

EnvOverrides home_env(const fs::path& home) {
  EnvOverrides env = alumia::test::cli_env();
  for (const char* name : {"HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "ALUMIA_API_KEY", "ALUMIA_LISTEN"})
    env[name] = std::nullopt;
  env["ALUMIA_HOME"] = home.string();
  return env;
}

ProcessResult start_expecting_exit(const fs::path& home) {
  return alumia::test::run({ALUMIA_DAEMON_BIN, "--listen", "127.0.0.1:0", "--keyring", "file"}, home_env(home), "",
                           std::chrono::seconds(30));
}

// "Max core file size  0  0  bytes" in /proc/PID/limits.
bool core_size_zero(int pid) {
  std::ifstream limits("/proc/" + std::to_string(pid) + "/limits");
  for (std::string line; std::getline(limits, line);) {
    if (!line.starts_with("Max core file size")) continue;
    std::istringstream words(line.substr(std::string_view("Max core file size").size()));
    std::string soft, hard;
    words >> soft >> hard;
    return soft == "0" && hard == "0";
  }
  return false;
}

uid_t proc_owner(int pid) {
  struct stat st {};
  REQUIRE(::stat(("/proc/" + std::to_string(pid) + "/environ").c_str(), &st) == 0);
  return st.st_uid;
}

}  // namespace

TEST_CASE("the daemon refuses a data dir or key files others can read, with the chmod", "[secrets][hardening]") {
  TempDir dir;
  const fs::path home = dir.path() / "home";
  {
    Daemon d(home, daemon_options());  // creates the store, the key file and the master key
    alumia::test::stop_clean(d);
  }
  const auto refused_with = [&](const fs::path& path, mode_t mode, const std::string& fix) {
    struct stat before {};
    REQUIRE(::stat(path.c_str(), &before) == 0);
    REQUIRE(::chmod(path.c_str(), mode) == 0);
    auto r = start_expecting_exit(home);
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(fix) != std::string::npos);
    CHECK(r.err.find(path.string()) != std::string::npos);
    CHECK_FALSE(fs::exists(home / "daemon.json"));
    REQUIRE(::chmod(path.c_str(), before.st_mode & 07777) == 0);
  };
  SECTION("data dir readable by group") { refused_with(home, 0750, "chmod 700 '" + home.string() + "'"); }
  SECTION("data dir readable by others") { refused_with(home, 0705, "chmod 700 '" + home.string() + "'"); }
  SECTION("master.key readable by group") {
    refused_with(home / "master.key", 0640, "chmod 600 '" + (home / "master.key").string() + "'");
  }
  SECTION("the owner's key file readable by others") {
    refused_with(home / "key", 0604, "chmod 600 '" + (home / "key").string() + "'");
  }
  if (!alumia::test::testing_on_postgres())  // a PostgreSQL store has no file here
    SECTION("store.db readable by others") {
      refused_with(home / "store.db", 0644, "chmod 600 '" + (home / "store.db").string() + "'");
    }
  // With the modes put back it starts again.
  Daemon again(home, daemon_options());
  alumia::test::stop_clean(again);
}

TEST_CASE("the daemon has no core size and is not dumpable", "[secrets][hardening]") {
  if (::geteuid() != 0) {
    // Not root: a process that is not dumpable has its /proc files owned by root, not by us.
    TempDir dir;
    Daemon d(dir.path() / "home", daemon_options());
    CHECK(core_size_zero(d.process().pid()));
    CHECK(proc_owner(d.process().pid()) == 0);
    alumia::test::stop_clean(d);
    return;
  }
  // Root reads every /proc file, so run the daemon as nobody (setpriv): a dumpable process's /proc
  // files are owned by its uid, a process that is not dumpable has them owned by root.
  TempDir dir;
  REQUIRE(::chmod(dir.path().c_str(), 0711) == 0);
  const fs::path home = dir.path() / "home";
  fs::create_directory(home);
  REQUIRE(::chown(home.c_str(), k_nobody, k_nobody) == 0);
  REQUIRE(::chmod(home.c_str(), 0700) == 0);
  // In the suite's PostgreSQL pass nobody must reach the server's socket: its directory searchable
  // (0711, not listable) while this daemon runs.
  struct SocketDirOpen {
    fs::path dir;
    explicit SocketDirOpen(fs::path d) : dir(std::move(d)) {
      if (!dir.empty()) fs::permissions(dir, fs::perms::group_exec | fs::perms::others_exec, fs::perm_options::add);
    }
    ~SocketDirOpen() {
      std::error_code ec;
      if (!dir.empty())
        fs::permissions(dir, fs::perms::group_exec | fs::perms::others_exec, fs::perm_options::remove, ec);
    }
  } socket_dir_open(alumia::test::testing_on_postgres() ? alumia::test::shared_postgres().socket_dir() : fs::path());
  alumia::test::Process p({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ALUMIA_DAEMON_BIN,
                           "--listen", "127.0.0.1:0", "--keyring", "file"},
                          home_env(home));
  const bool started = alumia::test::eventually([&] { return fs::exists(home / "daemon.json"); });
  if (!started && !p.running()) ALUMIA_SKIP("the daemon cannot run as nobody here (setpriv or the build dir)");
  REQUIRE(started);
  CHECK(core_size_zero(p.pid()));
  CHECK(proc_owner(p.pid()) == 0);
  p.signal(SIGTERM);
  CHECK(p.wait(std::chrono::seconds(20)) == 0);
}

TEST_CASE("wrong API keys are held and then rate limited per client", "[secrets][hardening][auth-failures]") {
  TempDir dir;
  auto options = daemon_options({{"ALUMIA_AUTH_FAILURE_BURST", "3"},
                                 {"ALUMIA_AUTH_FAILURE_PER_MINUTE", "60"},
                                 {"ALUMIA_AUTH_FAILURE_DELAY_MS", "200"}});
  Daemon d(dir.path() / "home", options);
  const std::string wrong = "alm_live_" + std::string(48, '0');
  for (int i = 0; i < 3; ++i) {
    const auto start = Clock::now();
    auto r = d.api("GET", "/api/v1/connections", {}, wrong);
    INFO(r.body);
    CHECK(r.status == 401);
    CHECK(Clock::now() - start >= std::chrono::milliseconds(200));  // held
  }
  // Out of allowance: every request presenting a key is refused unseen, the right key too.
  auto limited = d.api("GET", "/api/v1/connections", {}, wrong);
  INFO(limited.body);
  CHECK(limited.status == 429);
  CHECK(limited.json()["error"]["code"] == "TOO_MANY_REQUESTS");
  bool retry_after = false;
  for (const auto& [name, value] : limited.headers)
    if (alumia::iequals(name, "retry-after")) retry_after = std::stoi(value) >= 1;
  CHECK(retry_after);
  CHECK(d.api("GET", "/api/v1/connections").status == 429);
  // No key at all is no guess: it is answered as before.
  auto bare = alumia::test::http_request("GET", d.url() + "/api/v1/connections");
  CHECK(bare.status == 401);
  // The CLI says what happened and what to do.
  auto cli = alumia::test::cli(d, {"connections", "list"});
  CHECK(cli.exit_code != 0);
  CHECK(cli.err.find("too many failed authentications") != std::string::npos);
  // The allowance refills (one a second here): the right key works again.
  CHECK(alumia::test::eventually([&] { return d.api("GET", "/api/v1/connections").status == 200; },
                                 std::chrono::seconds(10), std::chrono::milliseconds(200)));
  alumia::test::stop_clean(d);
}

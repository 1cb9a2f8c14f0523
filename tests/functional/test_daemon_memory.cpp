// What the daemon keeps mapped once it has started (issue 13 item 5, idle RSS <= 12 MB; the figures are
// bench/idle_rss.sh's). Libraries linked for a moment's use cost resident memory for the process's whole
// life just by being mapped (relocations, constructors, fault-around), so the Secret Service client
// (libsecret, and through it GLib, GObject and GIO) is loaded only when a Secret Service call is made,
// and the daemon makes those calls in a short-lived child (daemon/keyring_helper.hpp): with
// --keyring file, and with the Secret Service too, the daemon never maps it. The [secret-service]
// case runs under tests/support/with-keyring.sh (a throwaway keyring).
#include "process.hpp"
#include "skip.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

using alumia::test::Daemon;
using alumia::test::TempDir;

bool has_env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

std::vector<std::string> mapped_files(int pid) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::vector<std::string> out;
  for (std::string line; std::getline(maps, line);)
    if (const auto slash = line.find('/'); slash != std::string::npos) out.push_back(line.substr(slash));
  return out;
}

void check_no_glib(Daemon& d) {
  REQUIRE(d.api("GET", "/api/v1/status").status == 200);  // started, master key read, listeners serving
  const auto files = mapped_files(d.process().pid());
  // The daemon is not dumpable (PR_SET_DUMPABLE 0), so only root (CAP_SYS_PTRACE) reads its maps.
  if (files.empty()) ALUMIA_SKIP("cannot read the daemon's /proc/PID/maps (it is not dumpable; run as root)");
  for (const auto& f : files) {
    INFO(f);
    CHECK(f.find("libsecret-1") == std::string::npos);
    CHECK(f.find("libglib-2.0") == std::string::npos);
    CHECK(f.find("libgio-2.0") == std::string::npos);
    CHECK(f.find("libgobject-2.0") == std::string::npos);
  }
}

}  // namespace

TEST_CASE("a daemon with --keyring file never maps libsecret or GLib", "[memory]") {
  TempDir dir;
  Daemon d(dir.path() / "home");  // --keyring file
  check_no_glib(d);
  CHECK(d.stop() == 0);
}

TEST_CASE("with the Secret Service the daemon reads its master key in a helper and never maps libsecret",
          "[memory][secret-service]") {
  if (!has_env("ALUMIA_KEYRING_SESSION")) ALUMIA_SKIP("not inside tests/support/with-keyring.sh");
  TempDir dir;
  const auto home = dir.path() / "home";
  Daemon::Options options;
  options.with_keyring_file = false;
  options.extra_args = {"--keyring", "secret-service"};
  {
    Daemon d(home, options);  // creates the key in the Secret Service
    CHECK(d.log().find("master key: secret-service") != std::string::npos);
    REQUIRE(d.api("POST", "/api/v1/webhook-endpoints", R"({"provider":"github","label":"sealed"})").status / 100 == 2);
    check_no_glib(d);
    CHECK(d.stop() == 0);
  }
  Daemon again(home, options);  // reads it back: the data key unwraps with it
  CHECK(again.log().find("master key: secret-service") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(home / "master.key"));
  const auto listed = again.api("GET", "/api/v1/webhook-endpoints");
  CHECK(listed.status == 200);
  CHECK(listed.body.find("sealed") != std::string::npos);
  check_no_glib(again);
  CHECK(again.stop() == 0);
}

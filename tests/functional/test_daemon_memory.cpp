// What the daemon keeps mapped once it has started (issue 13 item 5, idle RSS <= 12 MB; the figures are
// bench/idle_rss.sh's). Libraries linked for a moment's use cost resident memory for the process's whole
// life just by being mapped (relocations, constructors, fault-around), so the Secret Service client
// (libsecret, and through it GLib, GObject and GIO, ~2.2 MB) is loaded only when a Secret Service call
// is made: with --keyring file it must never be mapped.
#include "process.hpp"
#include "skip.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <vector>

namespace {

using alumia::test::Daemon;
using alumia::test::TempDir;

std::vector<std::string> mapped_files(int pid) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::vector<std::string> out;
  for (std::string line; std::getline(maps, line);)
    if (const auto slash = line.find('/'); slash != std::string::npos) out.push_back(line.substr(slash));
  return out;
}

}  // namespace

TEST_CASE("a daemon with --keyring file never maps libsecret or GLib", "[memory]") {
  TempDir dir;
  Daemon d(dir.path() / "home");                          // --keyring file
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
  CHECK(d.stop() == 0);
}

// The systemd user unit `daemon install-service` writes (SPEC §12): the packaged unit with ExecStart
// and ReadWritePaths filled in, each path one word as systemd reads it back.
#include "app.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace {

std::string line_of(const std::string& unit, const std::string& key) {
  const auto at = unit.find("\n" + key + "=");
  REQUIRE(at != std::string::npos);
  const auto end = unit.find('\n', at + 1);
  return unit.substr(at + 1, end - at - 1);
}

}  // namespace

TEST_CASE("service unit: ExecStart and ReadWritePaths from the resolved paths; hardening kept", "[cli][unit-file]") {
  alumia::Paths xdg{.flat = false,
                    .data_dir = "/home/u/.local/share/alumia-connect",
                    .config_dir = "/home/u/.config/alumia-connect",
                    .runtime_dir = "/run/user/1000/alumia-connect"};
  auto unit = alumia::cli::systemd_user_unit("/usr/bin/alumia-connectd", xdg, "");
  REQUIRE(unit);
  CHECK(line_of(*unit, "ExecStart") == "ExecStart=/usr/bin/alumia-connectd");
  // Each may be missing (-); the runtime directory's parent, since $XDG_RUNTIME_DIR is made anew at login.
  CHECK(line_of(*unit, "ReadWritePaths") ==
        "ReadWritePaths=-/home/u/.local/share/alumia-connect -/home/u/.config/alumia-connect -/run/user/1000");
  for (const char* directive : {"NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "UMask=0077",
                                "LimitCORE=0", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                                "MemoryDenyWriteExecute=yes", "KillSignal=SIGTERM", "WantedBy=default.target"})
    CHECK(unit->find(std::string("\n") + directive + "\n") != std::string::npos);
  CHECK(unit->find("Type=simple") != std::string::npos);  // the daemon in the foreground

  // Without XDG_RUNTIME_DIR the state file is in the data directory: nothing above it is made writable.
  alumia::Paths no_runtime = xdg;
  no_runtime.runtime_dir = xdg.data_dir;
  auto plain = alumia::cli::systemd_user_unit("/usr/bin/alumia-connectd", no_runtime, "");
  REQUIRE(plain);
  CHECK(line_of(*plain, "ReadWritePaths") ==
        "ReadWritePaths=-/home/u/.local/share/alumia-connect -/home/u/.config/alumia-connect");
}

TEST_CASE("service unit: flat paths pass --data-dir; spaces, quotes, % and $ are written as systemd reads them",
          "[cli][unit-file]") {
  alumia::Paths flat{.flat = true, .data_dir = "/srv/a b/100%$HOME\"x", .config_dir = {}, .runtime_dir = {}};
  flat.config_dir = flat.data_dir;
  flat.runtime_dir = flat.data_dir;
  auto unit = alumia::cli::systemd_user_unit("/opt/my apps/alumia-connectd", flat, "");
  REQUIRE(unit);
  CHECK(line_of(*unit, "ExecStart") ==
        R"(ExecStart="/opt/my apps/alumia-connectd" --data-dir "/srv/a b/100%%$$HOME\"x")");
  CHECK(line_of(*unit, "ReadWritePaths") == R"(ReadWritePaths="-/srv/a b/100%%$HOME\"x")");  // once, no $ expansion

  alumia::Paths control = flat;
  control.data_dir = "/srv/a\nb";
  control.config_dir = control.runtime_dir = control.data_dir;
  auto refused = alumia::cli::systemd_user_unit("/usr/bin/alumia-connectd", control, "");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("control character") != std::string::npos);
}

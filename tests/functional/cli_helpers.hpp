#pragma once
// Helpers for tests that drive the real CLI against the real daemon: a clean environment, --json
// parsing, exact exit codes, and a clean daemon shutdown.
#include "process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace alumia::test {

// The daemon's environment: nothing from the developer's shell that would change it.
inline Daemon::Options daemon_options(EnvOverrides extra = {}) {
  Daemon::Options o;
  o.env = {{"ALUMIA_GITHUB_CLIENT_ID", std::nullopt},
           {"ALUMIA_GITHUB_CLIENT_SECRET", std::nullopt},
           {"ALUMIA_API_KEY", std::nullopt},
           {"ALUMIA_LISTEN", std::nullopt},
           {"ALUMIA_DAEMON", std::nullopt}};
  for (auto& [k, v] : extra) o.env[k] = v;
  return o;
}

// The CLI's environment: nothing from the developer's shell that would change where it looks.
inline EnvOverrides cli_env() {
  return {{"ALUMIA_DAEMON", std::nullopt},   {"ALUMIA_LISTEN", std::nullopt}, {"BROWSER", std::nullopt},
          {"XDG_CONFIG_HOME", std::nullopt}, {"XDG_DATA_HOME", std::nullopt}, {"XDG_RUNTIME_DIR", std::nullopt}};
}

inline ProcessResult cli(const Daemon& d, std::vector<std::string> args, const std::string& stdin_data = {}) {
  return d.cli(std::move(args), cli_env(), stdin_data, std::chrono::seconds(30));
}

inline nlohmann::json json_out(const ProcessResult& r) {
  INFO("exit " << r.exit_code << "\nstdout: " << r.out << "\nstderr: " << r.err);
  const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

// A loopback port nothing listens on (bound, read back, closed).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// SIGTERM; the daemon must exit 0 without logging an error.
inline void stop_clean(Daemon& d) {
  const int code = d.stop();
  INFO(d.log());
  CHECK(code == 0);
  CHECK(d.log().find(" error ") == std::string::npos);
}

}  // namespace alumia::test

// Runs `res` once and requires its exit code, showing the output on failure.
#define REQUIRE_EXIT(res, code)                                                                       \
  do {                                                                                                \
    const ::alumia::test::ProcessResult& r_exit_ = (res);                                             \
    INFO("exit " << r_exit_.exit_code << "\nstdout: " << r_exit_.out << "\nstderr: " << r_exit_.err); \
    REQUIRE(r_exit_.exit_code == (code));                                                             \
  } while (0)

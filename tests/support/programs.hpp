#pragma once
// Programs a deployment test runs as children (nginx, haproxy, openssl from their Debian packages), and
// the check that a child's port is taken. A missing program fails the test, naming its package: a
// deployment test that silently passes would prove nothing.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

namespace alumia::test {

// A program on PATH, or where Debian puts it (/usr/sbin is not on a normal user's PATH); "" if none.
inline std::string find_program(const std::string& name) {
  std::vector<std::filesystem::path> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    for (std::string d; std::getline(ss, d, ':');)
      if (!d.empty()) dirs.emplace_back(d);
  }
  dirs.emplace_back("/usr/sbin");
  dirs.emplace_back("/usr/local/sbin");
  for (const auto& d : dirs)
    if (::access((d / name).c_str(), X_OK) == 0) return (d / name).string();
  return {};
}

// find_program(), or the test fails saying which Debian package to install.
inline std::string require_program(const std::string& name, const std::string& package) {
  const std::string p = find_program(name);
  if (p.empty())
    FAIL(name << " is not installed (looked on PATH, /usr/sbin, /usr/local/sbin): this test needs the Debian "
                 "package "
              << package << "; run scripts/install-deps.sh as root, or apt-get install " << package);
  return p;
}

// Whether something accepts TCP connections on 127.0.0.1:`port`.
inline bool port_accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace alumia::test

// The master key read in a child process, so that the daemon never maps libsecret: keyring_helper.hpp.
#include "keyring_helper.hpp"

#include <alumia/base/clock.hpp>
#include <alumia/base/secret.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace alumia::daemon {
namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_text(std::string& out, const std::string& s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out += s;
}

// Reads the frame back; every read is bounds-checked.
struct Reader {
  std::string_view in;
  bool ok = true;
  uint8_t byte() {
    if (in.empty()) return ok = false, 0;
    const auto b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    return b;
  }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(byte()) << (8 * i);
    return v;
  }
  std::string_view bytes(std::size_t n) {
    if (in.size() < n) return ok = false, std::string_view{};
    auto out = in.substr(0, n);
    in.remove_prefix(n);
    return out;
  }
  std::string text() { return std::string(bytes(u32())); }
};

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::unexpected<Error> helper_failed(const std::string& why) {
  return fail(ErrorCode::service_unavailable, "the keyring helper (alumia-connectd --keyring-helper) " + why);
}

// Reads everything the child writes until EOF or the deadline.
Result<std::string> read_until_eof(int fd, std::chrono::steady_clock::time_point deadline) {
  constexpr std::size_t k_max = 8192;  // a key, its location and a warning; reserved: never reallocated
  std::string out;
  out.reserve(k_max);
  char buf[4096];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      wipe_string(out);
      return helper_failed("did not answer in time");
    }
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      wipe_string(out);
      return helper_failed(std::string("could not be read: ") + std::strerror(errno));
    }
    if (r == 0) continue;  // the deadline check above ends it
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() + static_cast<std::size_t>(n) > k_max) {
      wipe_string(out);
      ::explicit_bzero(buf, sizeof buf);
      return helper_failed("wrote more than a key");
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::explicit_bzero(buf, sizeof buf);
  return out;
}

Result<MasterKey> parse_frame(std::string_view frame) {
  Reader r{frame};
  const uint8_t tag = r.byte();
  if (tag == 'E') {
    const auto code = static_cast<ErrorCode>(r.u32());
    std::string message = r.text();
    if (r.ok) return fail(code, std::move(message));
  } else if (tag == 'K') {
    MasterKey mk;
    const uint8_t backend = r.byte();
    mk.created = r.byte() != 0;
    const auto key = r.bytes(k_master_key_size);
    mk.location = r.text();
    mk.fallback_warning = r.text();
    if (r.ok && r.in.empty() && backend <= 1) {
      mk.backend = backend == 1 ? KeyringMode::secret_service : KeyringMode::file;
      mk.key = SecretBytes(reinterpret_cast<const unsigned char*>(key.data()), key.size());
      return mk;
    }
  }
  return helper_failed("answered something that is not a key");
}

}  // namespace

Result<MasterKey> open_master_key_isolated(KeyringMode mode, const std::filesystem::path& data_dir, Random& random,
                                           const MasterKeyOptions& options) {
  if (mode == KeyringMode::file || !SecretServiceStore::session_bus_configured())
    return open_master_key(mode, data_dir, random, options);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return helper_failed(std::string("cannot start: pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);  // dup2 clears O_CLOEXEC on stdout
  const std::string self = "/proc/self/exe";
  const std::string dir = data_dir.string();
  std::vector<std::string> args = {
      self,         std::string("--keyring-helper=") + (options.create_if_missing ? "create" : "open"),
      "--keyring",  std::string(format_keyring_mode(mode)),
      "--data-dir", dir};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {  // no /proc (a bare chroot): the key is still read, at the cost of the memory
    ::close(fds[0]);
    spdlog::warn(
        "cannot start the keyring helper /proc/self/exe ({}); reading the master key in-process, "
        "which keeps libsecret and GLib mapped",
        std::strerror(rc));
    return open_master_key(mode, data_dir, random, options);
  }
  // Up to three bounded keyring calls (probe, lookup, store), each with its cancel grace, and the start.
  const auto deadline = std::chrono::steady_clock::now() + 3 * (options.timeout + std::chrono::milliseconds(250)) +
                        std::chrono::seconds(5);
  auto frame = read_until_eof(fds[0], deadline);
  ::close(fds[0]);
  if (!frame) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!frame) return std::unexpected(frame.error());
  const bool said_nothing = frame->empty();
  auto mk = parse_frame(*frame);
  wipe_string(*frame);
  if (!mk && said_nothing && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    return helper_failed("exited with status " +
                         std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)));
  return mk;  // without `store`: the daemon never rotates the master key (the CLI does, in-process)
}

int keyring_helper_main(KeyringMode mode, const std::filesystem::path& data_dir, bool create_if_missing) {
  // Only for the daemon's pipe: the raw key is never written to a terminal or a file by mistake (the
  // same user could read it from the keyring anyway; this is no access control).
  struct stat out {};
  if (::fstat(STDOUT_FILENO, &out) != 0 || !S_ISFIFO(out.st_mode)) {
    std::fprintf(stderr,
                 "alumia-connectd: error: --keyring-helper is internal: it writes the master key to the "
                 "daemon's pipe\n");
    return 2;
  }
  SystemRandom random;
  MasterKeyOptions options;
  options.create_if_missing = create_if_missing;
  auto mk = open_master_key(mode, data_dir, random, options);
  std::string frame;
  if (mk) {
    frame.push_back('K');
    frame.push_back(static_cast<char>(mk->backend == KeyringMode::secret_service ? 1 : 0));
    frame.push_back(static_cast<char>(mk->created ? 1 : 0));
    frame.append(reinterpret_cast<const char*>(mk->key.data()), mk->key.size());
    put_text(frame, mk->location);
    put_text(frame, mk->fallback_warning);
  } else {
    frame.push_back('E');
    put_u32(frame, static_cast<uint32_t>(mk.error().code));
    put_text(frame, mk.error().message);
  }
  const bool written = write_all(STDOUT_FILENO, frame);
  wipe_string(frame);
  // _exit: no GLib teardown (its GDBus thread may still be winding down); nothing is buffered.
  ::_exit(written ? 0 : 1);
}

}  // namespace alumia::daemon

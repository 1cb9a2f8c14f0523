// The master key read in a child process, so that the daemon never maps libsecret: keyring_helper.hpp.
#include "keyring_helper.hpp"

#include <alumia/base/clock.hpp>
#include <alumia/base/secret.hpp>
#include <alumia/base/try.hpp>

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

namespace {

// Runs `/proc/self/exe --keyring-helper=OP --keyring MODE --data-dir DIR [--master-key-file F]
// [--master-key-name N]`, writes `input` (the key
// for `save`, else nothing) to its stdin pipe and reads its answer from its stdout pipe. nullopt:
// the child could not be started (no /proc).
Result<std::optional<std::string>> run_helper(std::string_view op, KeyringMode mode, const MasterKeyPlace& place,
                                              std::string_view input, std::chrono::steady_clock::time_point deadline) {
  int out[2];
  int in[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return helper_failed(std::string("cannot start: pipe: ") + std::strerror(errno));
  if (::pipe2(in, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return helper_failed(std::string("cannot start: pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);  // dup2 clears O_CLOEXEC on stdout
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  const std::string self = "/proc/self/exe";
  std::vector<std::string> args = {self,         "--keyring-helper=" + std::string(op),
                                   "--keyring",  std::string(format_keyring_mode(mode)),
                                   "--data-dir", place.data_dir.string()};
  if (!place.key_file.empty()) args.insert(args.end(), {"--master-key-file", place.key_file.string()});
  if (!place.name.empty()) args.insert(args.end(), {"--master-key-name", place.name});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(in[0]);
  if (rc != 0) {
    ::close(out[0]);
    ::close(in[1]);
    return std::optional<std::string>{};
  }
  // A key is far below the pipe's capacity: this write never blocks on the child.
  const bool sent = write_all(in[1], input);
  ::close(in[1]);
  auto frame = sent ? read_until_eof(out[0], deadline) : helper_failed("did not take the key");
  ::close(out[0]);
  if (!frame) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!frame) return std::unexpected(frame.error());
  if (frame->empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    return helper_failed("exited with status " +
                         std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)));
  return std::optional<std::string>(std::move(*frame));
}

// The answer of save and erase: 'O', or the 'E' frame.
Status parse_status_frame(std::string_view frame) {
  if (frame == "O") return {};
  Reader r{frame};
  if (r.byte() == 'E') {
    const auto code = static_cast<ErrorCode>(r.u32());
    std::string message = r.text();
    if (r.ok) return fail(code, std::move(message));
  }
  return helper_failed("answered something that is not a status");
}

void put_error(std::string& frame, const Error& e) {
  frame.push_back('E');
  put_u32(frame, static_cast<uint32_t>(e.code));
  put_text(frame, e.message);
}

}  // namespace

Result<MasterKey> open_master_key_isolated(KeyringMode mode, const MasterKeyPlace& place, Random& random,
                                           const MasterKeyOptions& options) {
  if (mode == KeyringMode::file || !SecretServiceStore::session_bus_configured())
    return open_master_key(mode, place, random, options);
  // Up to three bounded keyring calls (probe, lookup, store), each with its cancel grace, and the start.
  const auto deadline = std::chrono::steady_clock::now() + 3 * (options.timeout + std::chrono::milliseconds(250)) +
                        std::chrono::seconds(5);
  auto frame = TRY(run_helper(options.create_if_missing ? "create" : "open", mode, place, {}, deadline));
  if (!frame) {  // no /proc (a bare chroot): the key is still read, at the cost of the memory
    spdlog::warn(
        "cannot start the keyring helper /proc/self/exe; reading the master key in-process, "
        "which keeps libsecret and GLib mapped");
    return open_master_key(mode, place, random, options);
  }
  auto mk = parse_frame(*frame);
  wipe_string(*frame);
  return mk;  // without `store`: the rotation saves through save_master_key_isolated()
}

Status save_master_key_isolated(KeyringMode backend, const MasterKeyPlace& place, const SecretBytes& key) {
  if (backend == KeyringMode::file) return FileKeyStore(place.file()).save(key);
  if (backend != KeyringMode::secret_service) return fail(ErrorCode::internal, "save the master key to which backend?");
  if (!SecretServiceStore::session_bus_configured())
    return fail(ErrorCode::service_unavailable,
                "no Secret Service: DBUS_SESSION_BUS_ADDRESS is not set in the daemon's environment; start the "
                "daemon in a desktop session (or keep the file backend)");
  const auto deadline = std::chrono::steady_clock::now() + 2 * (k_keyring_timeout + std::chrono::milliseconds(250)) +
                        std::chrono::seconds(5);
  std::string input(reinterpret_cast<const char*>(key.data()), key.size());
  auto frame = run_helper("save", backend, place, input, deadline);
  wipe_string(input);
  if (!frame) return std::unexpected(frame.error());
  if (!*frame) return helper_failed("cannot start (no /proc/self/exe)");
  return parse_status_frame(**frame);
}

Status erase_master_key_isolated(KeyringMode backend, const MasterKeyPlace& place) {
  if (backend == KeyringMode::file) {
    std::error_code ec;
    std::filesystem::remove(place.file(), ec);
    if (ec) return fail(ErrorCode::internal, "cannot remove " + place.file().string() + ": " + ec.message());
    return {};
  }
  if (!SecretServiceStore::session_bus_configured())
    return fail(ErrorCode::service_unavailable, "no Secret Service: DBUS_SESSION_BUS_ADDRESS is not set");
  const auto deadline = std::chrono::steady_clock::now() + 2 * (k_keyring_timeout + std::chrono::milliseconds(250)) +
                        std::chrono::seconds(5);
  auto frame = TRY(run_helper("erase", backend, place, {}, deadline));
  if (!frame) return helper_failed("cannot start (no /proc/self/exe)");
  return parse_status_frame(*frame);
}

int keyring_helper_main(std::string_view op, KeyringMode mode, const MasterKeyPlace& place) {
  // Only for the daemon's pipe: the raw key is never written to a terminal or a file by mistake (the
  // same user could read it from the keyring anyway; this is no access control).
  struct stat out {};
  if (::fstat(STDOUT_FILENO, &out) != 0 || !S_ISFIFO(out.st_mode)) {
    std::fprintf(stderr,
                 "alumia-connectd: error: --keyring-helper is internal: it writes the master key to the "
                 "daemon's pipe\n");
    return 2;
  }
  std::string frame;
  if (op == "save" || op == "erase") {  // rotate-master, into or out of the Secret Service
    SecretServiceStore store(place.store_id());
    Status st;
    if (op == "save") {
      auto key = read_until_eof(STDIN_FILENO, std::chrono::steady_clock::now() + std::chrono::seconds(5));
      if (key && key->size() == k_master_key_size) {
        st = store.save(SecretBytes(std::string_view(*key)));
      } else {
        st = fail(ErrorCode::bad_request, "the keyring helper was not given a master key");
      }
      if (key) wipe_string(*key);
    } else {
      st = store.erase();
    }
    if (st) frame = "O";
    else put_error(frame, st.error());
  } else {
    SystemRandom random;
    MasterKeyOptions options;
    options.create_if_missing = op == "create";
    auto mk = open_master_key(mode, place, random, options);
    if (mk) {
      frame.push_back('K');
      frame.push_back(static_cast<char>(mk->backend == KeyringMode::secret_service ? 1 : 0));
      frame.push_back(static_cast<char>(mk->created ? 1 : 0));
      frame.append(reinterpret_cast<const char*>(mk->key.data()), mk->key.size());
      put_text(frame, mk->location);
      put_text(frame, mk->fallback_warning);
    } else {
      put_error(frame, mk.error());
    }
  }
  const bool written = write_all(STDOUT_FILENO, frame);
  wipe_string(frame);
  // _exit: no GLib teardown (its GDBus thread may still be winding down); nothing is buffered.
  ::_exit(written ? 0 : 1);
}

}  // namespace alumia::daemon

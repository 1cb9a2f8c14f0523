#pragma once
// Files that hold secrets (master key file, API key file): created 0600 at open() time, written to a
// temporary file in the same directory, fsync'd and renamed into place; read back only if they are
// regular files owned by us with no group/other permission bits (Bitcoin Core's cookie model).
//
// Every other file and directory the daemon uses is opened or checked here too (issue 10, item 2):
// never through a symbolic link at its name (O_NOFOLLOW / lstat), owned by the effective uid, not
// writable by group or others, and not readable by them either when it holds secrets. A refusal
// names the path and the command that fixes it.
#include <alumia/base/error.hpp>

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

namespace alumia {

// An owned file descriptor, closed on destruction.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : m_fd(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& o) noexcept : m_fd(std::exchange(o.m_fd, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      m_fd = std::exchange(o.m_fd, -1);
    }
    return *this;
  }
  ~UniqueFd() { reset(); }

  int get() const { return m_fd; }
  explicit operator bool() const { return m_fd >= 0; }
  int release() { return std::exchange(m_fd, -1); }
  // Closes now and reports the close() error, which for NFS and friends can be a write error.
  int close_checked();

 private:
  void reset();
  int m_fd;
};

// Who besides the owner may touch a file or directory the daemon uses.
enum class Privacy {
  no_foreign_writes,  // configuration, state, lock file, directories: group/others may read, never write
  secret,             // store.db (+ -wal, -shm, -intake), key, master.key: group/others get no access at all
};

// Checks a file that may exist without following a symbolic link at its name (lstat): it must be a
// regular file owned by the effective uid, with the mode `privacy` asks for. Returns false when it
// does not exist. A refusal is ErrorCode::forbidden naming the path, what is wrong, and the
// `chmod`/`chown`/`rm` command that fixes it.
Result<bool> check_owned_file(const std::filesystem::path& path, Privacy privacy);

// The same for a directory the daemon keeps files in (a symbolic link to such a directory is
// followed). Directories must be owned by the effective uid and not writable by group or others.
Result<bool> check_owned_dir(const std::filesystem::path& dir);

// Checks every directory above `dir` (like OpenSSH's StrictModes): each must be owned by root or the
// effective uid and not writable by group or others unless it is sticky (like /tmp), because whoever
// can write to a parent can move `dir` away and put their own in its place. A symbolic link on the
// way must be owned by root or the effective uid, and the directories it leads through are checked.
Status check_parent_dirs(const std::filesystem::path& dir);

// Opens `path` with O_NOFOLLOW|O_CLOEXEC|O_NOCTTY added to `flags` (a symbolic link at the name is
// refused), then checks with fstat what check_owned_file checks. With O_CREAT a file created by this
// call gets exactly `create_mode`, whatever the umask. ErrorCode::not_found when it does not exist.
Result<UniqueFd> open_owned_file(const std::filesystem::path& path, int flags, Privacy privacy,
                                 mode_t create_mode = 0600);

// Reads a whole small file through open_owned_file (config.json, connectors.d/*.json, daemon.json).
Result<std::string> read_owned_file(const std::filesystem::path& path, Privacy privacy, std::size_t max_bytes);

// `s` quoted for a POSIX shell, for the commands error messages suggest.
std::string shell_quote(std::string_view s);

// Larger files are refused by read_private_file: secrets are small, and a huge file is a mistake.
inline constexpr std::size_t k_max_private_file_size = 1024 * 1024;

// Writes `contents` to `path` atomically, replacing any existing file: temp file in the same
// directory (O_CREAT|O_EXCL|O_NOFOLLOW, 0600), write, fsync, rename, fsync the directory.
Status write_file_atomic_0600(const std::filesystem::path& path, std::string_view contents);

// Same, but never replaces an existing file: fails with ErrorCode::conflict if `path` exists
// (renameat2 RENAME_NOREPLACE, or link() where the filesystem lacks it). For first-use creation
// where two processes may race.
Status create_file_atomic_0600(const std::filesystem::path& path, std::string_view contents);

// Reads a file that must be private: opened with O_NOFOLLOW (a symlink is refused), must be a
// regular file owned by the effective uid with no group/other bits. A missing file gives
// ErrorCode::not_found; a refused one gives ErrorCode::forbidden with the reason and the fix.
// The caller owns the returned secret and should wipe_string() it.
Result<std::string> read_private_file(const std::filesystem::path& path);

// Creates `dir` and missing parents with mode 0700 (existing directories are left as they are).
Status ensure_private_dir(const std::filesystem::path& dir);

}  // namespace alumia

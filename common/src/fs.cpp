#include <alumia/fs.hpp>
#include <alumia/secret.hpp>

#include <cerrno>
#include <cstdio>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace alumia {
namespace {

namespace fs = std::filesystem;

// How many temp names to try before giving up (each collision is a leftover of a crash).
constexpr int k_temp_attempts = 64;

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
  // Closes now and reports the close() error, which for NFS and friends can be a write error.
  int close_checked() {
    int rc = ::close(std::exchange(m_fd, -1));
    return rc;
  }

 private:
  void reset() {
    if (m_fd >= 0) ::close(std::exchange(m_fd, -1));
  }
  int m_fd;
};

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

std::unexpected<Error> fail_errno(std::string_view what, const fs::path& p, int err) {
  return fail(ErrorCode::internal, std::string(what) + " " + quoted(p) + ": " + errno_text(err));
}

// Removes the temp file unless released (after a successful rename).
class TempFileGuard {
 public:
  explicit TempFileGuard(fs::path p) : m_path(std::move(p)) {}
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  ~TempFileGuard() {
    if (!m_path.empty()) ::unlink(m_path.c_str());
  }
  void release() { m_path.clear(); }

 private:
  fs::path m_path;
};

fs::path parent_dir(const fs::path& path) {
  fs::path dir = path.parent_path();
  return dir.empty() ? fs::path(".") : dir;
}

Status write_all(int fd, std::string_view data, const fs::path& shown) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("cannot write", shown, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Status fsync_dir(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return fail_errno("cannot open directory", dir, errno);
  if (::fsync(fd.get()) != 0 && errno != EINVAL) return fail_errno("cannot fsync directory", dir, errno);
  return {};
}

// Creates, fills and fsyncs a 0600 temp file next to `path`; returns its name.
Result<fs::path> write_temp_0600(const fs::path& path, std::string_view contents) {
  const fs::path dir = parent_dir(path);
  const std::string base = "." + path.filename().string() + ".tmp." + std::to_string(::getpid()) + ".";
  for (int attempt = 0; attempt < k_temp_attempts; ++attempt) {
    fs::path tmp = dir / (base + std::to_string(attempt));
    UniqueFd fd(::open(tmp.c_str(), O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0600));
    if (!fd) {
      if (errno == EEXIST) continue;
      return fail_errno("cannot create", tmp, errno);
    }
    TempFileGuard guard(tmp);
    // The umask can only take bits away; make sure the owner can still read it back.
    if (::fchmod(fd.get(), 0600) != 0) return fail_errno("cannot chmod", tmp, errno);
    if (auto st = write_all(fd.get(), contents, tmp); !st) return std::unexpected(st.error());
    if (::fsync(fd.get()) != 0) return fail_errno("cannot fsync", tmp, errno);
    if (fd.close_checked() != 0) return fail_errno("cannot close", tmp, errno);
    guard.release();
    return tmp;
  }
  return fail(ErrorCode::internal, "cannot create a temporary file next to " + quoted(path) +
                                       ": too many leftover temporary files in " + quoted(dir));
}

}  // namespace

Status write_file_atomic_0600(const fs::path& path, std::string_view contents) {
  auto tmp = write_temp_0600(path, contents);
  if (!tmp) return std::unexpected(tmp.error());
  TempFileGuard guard(*tmp);
  if (::rename(tmp->c_str(), path.c_str()) != 0) return fail_errno("cannot rename into place", path, errno);
  guard.release();
  return fsync_dir(parent_dir(path));
}

Status create_file_atomic_0600(const fs::path& path, std::string_view contents) {
  auto tmp = write_temp_0600(path, contents);
  if (!tmp) return std::unexpected(tmp.error());
  TempFileGuard guard(*tmp);
  if (::renameat2(AT_FDCWD, tmp->c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    const int err = errno;
    if (err == EEXIST) return fail(ErrorCode::conflict, quoted(path) + " already exists");
    if (err != EINVAL && err != ENOSYS) return fail_errno("cannot rename into place", path, err);
    // The filesystem has no RENAME_NOREPLACE: link() also refuses to replace an existing name.
    if (::link(tmp->c_str(), path.c_str()) != 0) {
      if (errno == EEXIST) return fail(ErrorCode::conflict, quoted(path) + " already exists");
      return fail_errno("cannot link into place", path, errno);
    }
    // guard unlinks the temp name; the content lives on under `path`.
  } else {
    guard.release();
  }
  return fsync_dir(parent_dir(path));
}

Result<std::string> read_private_file(const fs::path& path) {
  // O_NONBLOCK: a FIFO planted at this name must not block us; it is refused below.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    const int err = errno;
    if (err == ENOENT) return fail(ErrorCode::not_found, quoted(path) + " does not exist");
    if (err == ELOOP)
      return fail(ErrorCode::forbidden,
                  "refusing to read " + quoted(path) + ": it is a symbolic link; replace it with a regular file");
    return fail_errno("cannot open", path, err);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode))
    return fail(ErrorCode::forbidden, "refusing to read " + quoted(path) + ": not a regular file");
  if (st.st_uid != ::geteuid())
    return fail(ErrorCode::forbidden, "refusing to read " + quoted(path) + ": it is owned by uid " +
                                          std::to_string(st.st_uid) + ", not by you (uid " +
                                          std::to_string(::geteuid()) + ")");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(ErrorCode::forbidden, "refusing to read " + quoted(path) + ": its mode is " + mode +
                                          " and a secret must be private to you; run: chmod 600 " + quoted(path));
  }
  if (static_cast<std::uintmax_t>(st.st_size) > k_max_private_file_size)
    return fail(ErrorCode::forbidden, "refusing to read " + quoted(path) + ": larger than " +
                                          std::to_string(k_max_private_file_size) + " bytes");

  std::string out;
  out.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      wipe_string(out);
      return fail_errno("cannot read", path, err);
    }
    if (n == 0) break;  // shrank under us; return what is there
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return out;
}

Status ensure_private_dir(const fs::path& dir) {
  fs::path prefix;
  for (const auto& part : dir) {
    prefix /= part;
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST)
      return fail_errno("cannot create directory", prefix, errno);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return fail_errno("cannot stat", dir, errno);
  if (!S_ISDIR(st.st_mode)) return fail(ErrorCode::internal, quoted(dir) + " exists and is not a directory");
  return {};
}

}  // namespace alumia

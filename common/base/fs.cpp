#include <alumia/base/fs.hpp>
#include <alumia/base/secret.hpp>
#include <alumia/base/try.hpp>

#include <cerrno>
#include <cstdio>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace alumia {
namespace {

namespace fs = std::filesystem;

// How many temp names to try before giving up (each collision is a leftover of a crash).
constexpr int k_temp_attempts = 64;

std::string quoted(const fs::path& p) { return std::string("'").append(p.string()).append("'"); }

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
  const std::string base =
      std::string(".").append(path.filename().string()) + ".tmp." + std::to_string(::getpid()) + ".";
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
    TRY(write_all(fd.get(), contents, tmp));
    if (::fsync(fd.get()) != 0) return fail_errno("cannot fsync", tmp, errno);
    if (fd.close_checked() != 0) return fail_errno("cannot close", tmp, errno);
    guard.release();
    return tmp;
  }
  return fail(ErrorCode::internal, "cannot create a temporary file next to " + quoted(path) +
                                       ": too many leftover temporary files in " + quoted(dir));
}

// ---- owner and mode checks ----

constexpr int k_max_links = 40;  // like the kernel's SYMLOOP_MAX

enum class Kind { file, dir };

std::string user_name(uid_t uid) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr && pw.pw_name != nullptr)
    return pw.pw_name;
  return std::to_string(uid);
}

std::string who(uid_t uid) {
  const std::string name = user_name(uid);
  return "uid " + std::to_string(uid) + (name == std::to_string(uid) ? std::string() : " (" + name + ")");
}

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

std::unexpected<Error> refuse(std::string_view verb, const fs::path& p, const std::string& why) {
  return fail(ErrorCode::forbidden, "refusing to " + std::string(verb) + " " + quoted(p) + ": " + why);
}

// The rules for a file or directory of the daemon's own, on a stat that did not follow a link at
// the name (files) or did (directories).
Status check_stat(const fs::path& p, const struct stat& st, Kind kind, Privacy privacy, std::string_view verb) {
  const std::string q = shell_quote(p.string());
  if (S_ISLNK(st.st_mode))
    return refuse(verb, p, "it is a symbolic link; replace it with a regular file (rm " + q + ")");
  if (kind == Kind::file && !S_ISREG(st.st_mode))
    return refuse(verb, p, "not a regular file; remove it (rm -r " + q + ")");
  if (kind == Kind::dir && !S_ISDIR(st.st_mode)) return refuse(verb, p, "not a directory; remove it (rm " + q + ")");
  const uid_t me = ::geteuid();
  if (st.st_uid != me) {
    const std::string fix =
        kind == Kind::dir ? "chown -R " + user_name(me) + " " + q : "chown " + user_name(me) + " " + q;
    return refuse(verb, p,
                  "it is owned by " + who(st.st_uid) + ", not by you (uid " + std::to_string(me) +
                      "), so they can change what it holds; if you created it run: " + fix + ", else remove it");
  }
  if (kind == Kind::dir && (st.st_mode & 022) != 0)
    return refuse(
        verb, p,
        "its mode is " + mode_text(st.st_mode) + ", so group or others can put files in it; run: chmod 700 " + q);
  if (kind == Kind::file && privacy == Privacy::secret && (st.st_mode & 077) != 0)
    return refuse(verb, p,
                  "its mode is " + mode_text(st.st_mode) + " and a secret must be private to you; run: chmod 600 " + q);
  if (kind == Kind::file && (st.st_mode & 022) != 0)
    return refuse(verb, p,
                  "its mode is " + mode_text(st.st_mode) + ", so group or others can change it; run: chmod go-w " + q);
  return {};
}

// A directory above one of the daemon's: owned by root or us, and not writable by group or others
// unless sticky (there they cannot rename what they do not own).
Status check_parent_stat(const fs::path& p, const struct stat& st, const fs::path& below) {
  const uid_t me = ::geteuid();
  const std::string q = shell_quote(p.string());
  if (st.st_uid != 0 && st.st_uid != me)
    return fail(ErrorCode::forbidden, "refusing to use " + quoted(below) + ": the directory " + quoted(p) +
                                          " above it is owned by " + who(st.st_uid) +
                                          ", who could replace what is in it; choose a directory that only root and "
                                          "you can change (ALUMIA_HOME or --data-dir), or run: chown " +
                                          user_name(me) + " " + q);
  if ((st.st_mode & 022) != 0 && (st.st_mode & S_ISVTX) == 0)
    return fail(ErrorCode::forbidden, "refusing to use " + quoted(below) + ": the directory " + quoted(p) +
                                          " above it has mode " + mode_text(st.st_mode) +
                                          ", so group or others could replace what is in it; run: chmod go-w " + q);
  return {};
}

// Walks `dir` from the root: every directory above its last component must pass check_parent_stat;
// a symbolic link on the way (the last component too) must be owned by root or us, and the path it
// leads to is walked the same way. Missing components end the walk: they will be created 0700.
Status walk_parents(const fs::path& dir, int& links) {
  fs::path cur = dir.root_path();
  std::vector<fs::path> parts;
  for (const auto& part : dir.relative_path())
    if (!part.empty()) parts.push_back(part);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    if (parts[i] == ".") continue;
    if (parts[i] == "..") {
      cur = cur.parent_path();  // `cur` holds no symbolic link: this is what the kernel does
      continue;
    }
    struct stat cst {};
    if (::lstat(cur.c_str(), &cst) != 0) return fail_errno("cannot stat", cur, errno);
    TRY(check_parent_stat(cur, cst, dir));
    const fs::path next = cur / parts[i];
    struct stat st {};
    if (::lstat(next.c_str(), &st) != 0) {
      if (errno == ENOENT) return {};
      return fail_errno("cannot stat", next, errno);
    }
    if (S_ISLNK(st.st_mode)) {
      const uid_t me = ::geteuid();
      if (st.st_uid != 0 && st.st_uid != me)
        return fail(ErrorCode::forbidden, "refusing to use " + quoted(dir) + ": the symbolic link " + quoted(next) +
                                              " on its way is owned by " + who(st.st_uid) +
                                              ", who could point it elsewhere; use the directory it points to instead");
      if (--links < 0) return fail(ErrorCode::internal, "too many symbolic links in " + quoted(dir));
      std::error_code ec;
      const fs::path target = fs::canonical(next, ec);
      if (ec) {
        if (ec == std::errc::no_such_file_or_directory) return {};
        return fail(ErrorCode::internal, "cannot resolve " + quoted(next) + ": " + ec.message());
      }
      // The target and everything above it; the target itself is checked as an ancestor unless it
      // is the directory in question.
      TRY(walk_parents(target, links));
      if (!last) {
        struct stat tst {};
        if (::stat(target.c_str(), &tst) != 0) return fail_errno("cannot stat", target, errno);
        TRY(check_parent_stat(target, tst, dir));
      }
      cur = target;
      continue;
    }
    if (!last && !S_ISDIR(st.st_mode))
      return fail(ErrorCode::forbidden, "refusing to use " + quoted(dir) + ": " + quoted(next) + " is not a directory");
    cur = next;
  }
  return {};
}

// open() with O_NOFOLLOW, then the owner and mode rules on what was opened (fstat).
Result<UniqueFd> open_checked(const fs::path& path, int flags, Privacy privacy, mode_t create_mode,
                              std::string_view verb) {
  // O_NONBLOCK: a FIFO planted at this name must not block us; it is refused below.
  const int base = (flags & ~O_CREAT & ~O_EXCL) | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  bool created = false;
  UniqueFd fd(::open(path.c_str(), base));
  if (!fd && errno == ENOENT && (flags & O_CREAT) != 0) {
    // Create it ourselves so that we know it is new and can set its mode exactly.
    fd = UniqueFd(::open(path.c_str(), base | O_CREAT | O_EXCL, create_mode));
    if (!fd && errno == EEXIST) fd = UniqueFd(::open(path.c_str(), base));  // raced: check what is there
    else created = static_cast<bool>(fd);
  }
  if (!fd) {
    const int err = errno;
    if (err == ENOENT) return fail(ErrorCode::not_found, quoted(path) + " does not exist");
    if (err == ELOOP)
      return refuse(verb, path,
                    "it is a symbolic link; replace it with a regular file (rm " + shell_quote(path.string()) + ")");
    return fail_errno("cannot open", path, err);
  }
  if (created && ::fchmod(fd.get(), create_mode) != 0) return fail_errno("cannot chmod", path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("cannot stat", path, errno);
  TRY(check_stat(path, st, Kind::file, privacy, verb));
  const int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl < 0 || ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) != 0)
    return fail_errno("cannot set flags of", path, errno);
  return fd;
}

}  // namespace

int UniqueFd::close_checked() { return ::close(std::exchange(m_fd, -1)); }

void UniqueFd::reset() {
  if (m_fd >= 0) ::close(std::exchange(m_fd, -1));
}

Status write_file_atomic_0600(const fs::path& path, std::string_view contents) {
  auto tmp = TRY(write_temp_0600(path, contents));
  TempFileGuard guard(tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail_errno("cannot rename into place", path, errno);
  guard.release();
  return fsync_dir(parent_dir(path));
}

Status create_file_atomic_0600(const fs::path& path, std::string_view contents) {
  auto tmp = TRY(write_temp_0600(path, contents));
  TempFileGuard guard(tmp);
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    const int err = errno;
    if (err == EEXIST) return fail(ErrorCode::conflict, quoted(path) + " already exists");
    if (err != EINVAL && err != ENOSYS) return fail_errno("cannot rename into place", path, err);
    // The filesystem has no RENAME_NOREPLACE: link() also refuses to replace an existing name.
    if (::link(tmp.c_str(), path.c_str()) != 0) {
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
  auto fd = TRY(open_checked(path, O_RDONLY, Privacy::secret, 0600, "read"));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("cannot stat", path, errno);
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

Result<bool> check_owned_file(const fs::path& path, Privacy privacy) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    return fail_errno("cannot stat", path, errno);
  }
  TRY(check_stat(path, st, Kind::file, privacy, "use"));
  return true;
}

Result<bool> check_owned_dir(const fs::path& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    return fail_errno("cannot stat", dir, errno);
  }
  TRY(check_stat(dir, st, Kind::dir, Privacy::no_foreign_writes, "use"));
  return true;
}

Status check_parent_dirs(const fs::path& dir) {
  int links = k_max_links;
  return walk_parents(fs::absolute(dir), links);
}

Result<UniqueFd> open_owned_file(const fs::path& path, int flags, Privacy privacy, mode_t create_mode) {
  return open_checked(path, flags, privacy, create_mode, "use");
}

Result<std::string> read_owned_file(const fs::path& path, Privacy privacy, std::size_t max_bytes) {
  auto fd = TRY(open_checked(path, O_RDONLY, privacy, 0600, "read"));
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("cannot read", path, errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_bytes)
      return fail(ErrorCode::validation_error,
                  quoted(path) + " is larger than " + std::to_string(max_bytes) + " bytes; is it the right file?");
  }
  return out;
}

std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
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

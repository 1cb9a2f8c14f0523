#pragma once
// Files that hold secrets (master key file, API key file): created 0600 at open() time, written to a
// temporary file in the same directory, fsync'd and renamed into place; read back only if they are
// regular files owned by us with no group/other permission bits (Bitcoin Core's cookie model).
#include <alumia/error.hpp>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace alumia {

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

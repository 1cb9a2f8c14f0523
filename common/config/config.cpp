// Where files live (SPEC §1) and the daemon's checks of them; the settings are in settings.cpp.
#include <alumia/base/fs.hpp>
#include <alumia/base/try.hpp>
#include <alumia/config/config.hpp>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace alumia {
namespace fs = std::filesystem;

EnvLookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

HomeLookup passwd_home() {
  return []() -> std::optional<std::string> {
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* found = nullptr;
    if (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr || pw.pw_dir == nullptr)
      return std::nullopt;
    const fs::path dir = pw.pw_dir;
    struct stat st {};
    if (!dir.is_absolute() || ::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid())
      return std::nullopt;
    return dir.string();
  };
}

Result<Paths> resolve_paths(const std::optional<std::string>& data_dir_flag, const EnvLookup& env,
                            const HomeLookup& home) {
  Paths p;
  std::optional<std::string> flat = data_dir_flag;
  if (!flat) flat = env("ALUMIA_HOME");
  if (flat) {
    p.flat = true;
    p.data_dir = p.config_dir = p.runtime_dir = fs::absolute(*flat);
    return p;
  }
  auto absolute_env = [&](std::string_view name) -> std::optional<fs::path> {
    auto v = env(name);
    if (!v || !fs::path(*v).is_absolute()) return std::nullopt;
    return fs::path(*v);
  };
  auto data_home = absolute_env("XDG_DATA_HOME");
  auto config_home = absolute_env("XDG_CONFIG_HOME");
  if (!data_home || !config_home) {
    std::optional<fs::path> home_dir = absolute_env("HOME");
    if (!home_dir)
      if (auto h = home()) home_dir = fs::path(*h);
    if (!home_dir)
      return fail(ErrorCode::bad_request,
                  "cannot tell where to keep the store and the key file: HOME is not set to an absolute path and "
                  "the user's passwd entry names no home directory of theirs; set ALUMIA_HOME=DIR or pass "
                  "--data-dir DIR (a directory only you can write), or set HOME");
    if (!data_home) data_home = *home_dir / ".local/share";
    if (!config_home) config_home = *home_dir / ".config";
  }
  p.data_dir = *data_home / "alumia-connect";
  p.config_dir = *config_home / "alumia-connect";
  if (auto rt = absolute_env("XDG_RUNTIME_DIR")) p.runtime_dir = *rt / "alumia-connect";
  else p.runtime_dir = p.data_dir;
  return p;
}

Status ensure_dirs(const Paths& paths) {
  for (const auto& d : {paths.data_dir, paths.config_dir, paths.runtime_dir}) TRY(ensure_private_dir(d));
  return {};
}

namespace {

// The directories that hold the store and the key files give group and others no access at all
// (issue 16 item 4): not even a listing. The daemon creates them 0700; one made by hand with a
// looser mode is refused with the chmod that fixes it. Called after check_owned_dir (no link, ours).
Status check_private_dir(const fs::path& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || (st.st_mode & 077) == 0) return {};
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return fail(ErrorCode::forbidden, "refusing to use '" + dir.string() + "': its mode is " + mode +
                                        ", so group or others can see into the directory that holds the store and "
                                        "the key files, which must be private to you; run: chmod 700 " +
                                        shell_quote(dir.string()));
}

}  // namespace

Status prepare_daemon_paths(const Paths& paths) {
  std::vector<std::string> problems;
  auto note = [&problems](const auto& r) {
    if (!r) problems.push_back(r.error().message);
  };
  // Above the directories first: a directory another user can replace makes its contents moot.
  std::vector<fs::path> dirs;
  for (const auto& d : {paths.data_dir, paths.config_dir, paths.runtime_dir})
    if (std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);
  for (const auto& d : dirs) note(check_parent_dirs(d));
  if (!problems.empty()) return fail(ErrorCode::forbidden, problems.front());
  TRY(ensure_dirs(paths));
  for (const auto& d : dirs) note(check_owned_dir(d));
  note(check_owned_dir(paths.connectors_d()));
  if (!problems.empty()) return fail(ErrorCode::forbidden, problems.front());
  for (const auto& d : {paths.data_dir, paths.config_dir}) note(check_private_dir(d));
  if (!problems.empty()) return fail(ErrorCode::forbidden, problems.front());

  for (const auto& f : {paths.config_json(), paths.state_file(), paths.lock_file(), paths.data_dir / "daemon.log"})
    note(check_owned_file(f, Privacy::no_foreign_writes));
  std::error_code ec;
  if (fs::is_directory(paths.connectors_d(), ec)) {
    for (const auto& e : fs::directory_iterator(paths.connectors_d(), ec))
      if (e.path().extension() == ".json") note(check_owned_file(e.path(), Privacy::no_foreign_writes));
  }
  const std::string db = paths.store_db().string();
  for (const auto& f : {fs::path(db), fs::path(db + "-wal"), fs::path(db + "-shm"), fs::path(db + "-intake"),
                        paths.key_file(), paths.master_key_file()})
    note(check_owned_file(f, Privacy::secret));
  if (problems.empty()) return {};
  std::string message = problems.front();
  for (std::size_t i = 1; i < problems.size(); ++i) message += "\n" + problems[i];
  return fail(ErrorCode::forbidden, message);
}

}  // namespace alumia

// Planted files (issue 10, item 2): where files live when HOME is missing, and the owner, mode and
// symbolic-link checks on every directory and file the daemon reads or writes.
#include "process.hpp"
#include "skip.hpp"

#include <alumia/base/fs.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/config/config.hpp>
#include <alumia/store/intake_log.hpp>
#include <alumia/store/store.hpp>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>

namespace {

namespace fs = std::filesystem;
using alumia::ErrorCode;
using alumia::Paths;
using alumia::Privacy;
using alumia::test::TempDir;

constexpr uid_t k_nobody = 65534;

alumia::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

const alumia::HomeLookup k_no_passwd_home = [] { return std::optional<std::string>(); };

void write(const fs::path& p, const std::string& text, mode_t mode = 0600) {
  {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << text;
  }
  REQUIRE(::chmod(p.c_str(), mode) == 0);
}

Paths flat(const fs::path& dir) {
  auto p = alumia::resolve_paths(dir.string(), env_of({}), k_no_passwd_home);
  REQUIRE(p);
  return *p;
}

// A data dir as the daemon leaves it: 0700, its files present and private.
fs::path make_home(const TempDir& t) {
  const fs::path home = t.path() / "home";
  REQUIRE(alumia::ensure_private_dir(home / "connectors.d"));
  write(home / "config.json", "{}", 0644);
  write(home / "connectors.d" / "mine.json", R"({"slug":"github"})", 0644);
  for (const char* f : {"store.db", "store.db-wal", "store.db-shm", "store.db-intake", "key", "master.key"})
    write(home / f, "x", 0600);
  write(home / "daemon.json", "{}", 0600);
  write(home / "store.lock", "", 0600);
  return home;
}

std::string refusal(const Paths& p) {
  auto st = alumia::prepare_daemon_paths(p);
  REQUIRE_FALSE(st);
  CHECK(st.error().code == ErrorCode::forbidden);
  return st.error().message;
}

bool skip_unless_root() {
  if (::geteuid() == 0) return false;
  ++alumia::test::skipped_count();
  WARN("skipped: only root can give a file to another uid (CI runs as root)");
  SUCCEED();
  return true;
}

}  // namespace

TEST_CASE("resolve_paths: no usable home is an error naming ALUMIA_HOME and --data-dir", "[planted]") {
  for (const std::string home : {"", "relative/home", "."}) {
    CAPTURE(home);
    auto p = alumia::resolve_paths(std::nullopt, env_of({{"HOME", home}}), k_no_passwd_home);
    REQUIRE_FALSE(p);
    CHECK(p.error().code == ErrorCode::bad_request);
    CHECK(p.error().message.find("ALUMIA_HOME") != std::string::npos);
    CHECK(p.error().message.find("--data-dir") != std::string::npos);
  }
  SECTION("one XDG variable alone still needs a home") {
    auto p = alumia::resolve_paths(std::nullopt, env_of({{"XDG_DATA_HOME", "/srv/data"}}), k_no_passwd_home);
    CHECK_FALSE(p);
  }
}

TEST_CASE("resolve_paths: HOME, then the passwd home, then XDG; never /tmp", "[planted]") {
  SECTION("HOME") {
    auto p = alumia::resolve_paths(std::nullopt, env_of({{"HOME", "/home/u"}}), k_no_passwd_home);
    REQUIRE(p);
    CHECK(p->data_dir == "/home/u/.local/share/alumia-connect");
    CHECK(p->config_dir == "/home/u/.config/alumia-connect");
    CHECK(p->runtime_dir == p->data_dir);
    CHECK_FALSE(p->flat);
  }
  SECTION("the passwd entry's home when HOME is unset or relative") {
    for (const std::string home : {"", "rel"}) {
      auto p = alumia::resolve_paths(std::nullopt, env_of({{"HOME", home}}),
                                     [] { return std::optional<std::string>("/var/lib/svc"); });
      REQUIRE(p);
      CHECK(p->data_dir == "/var/lib/svc/.local/share/alumia-connect");
    }
  }
  SECTION("XDG_DATA_HOME and XDG_CONFIG_HOME need no home; relative ones are ignored") {
    auto p = alumia::resolve_paths(
        std::nullopt, env_of({{"XDG_DATA_HOME", "/d"}, {"XDG_CONFIG_HOME", "/c"}, {"XDG_RUNTIME_DIR", "/run/user/7"}}),
        k_no_passwd_home);
    REQUIRE(p);
    CHECK(p->data_dir == "/d/alumia-connect");
    CHECK(p->config_dir == "/c/alumia-connect");
    CHECK(p->runtime_dir == "/run/user/7/alumia-connect");
    auto rel = alumia::resolve_paths(
        std::nullopt, env_of({{"HOME", "/h"}, {"XDG_DATA_HOME", "d"}, {"XDG_RUNTIME_DIR", "r"}}), k_no_passwd_home);
    REQUIRE(rel);
    CHECK(rel->data_dir == "/h/.local/share/alumia-connect");
    CHECK(rel->runtime_dir == rel->data_dir);
  }
  SECTION("ALUMIA_HOME and --data-dir need no home") {
    auto p = alumia::resolve_paths(std::nullopt, env_of({{"ALUMIA_HOME", "/srv/alumia"}}), k_no_passwd_home);
    REQUIRE(p);
    CHECK(p->flat);
    CHECK(p->data_dir == "/srv/alumia");
    auto q =
        alumia::resolve_paths(std::string("/srv/other"), env_of({{"ALUMIA_HOME", "/srv/alumia"}}), k_no_passwd_home);
    REQUIRE(q);
    CHECK(q->key_file() == "/srv/other/key");
  }
}

TEST_CASE("the passwd home is used only if it is an existing directory of ours", "[planted]") {
  // Whatever the passwd entry says here, the answer is an absolute directory we own, or nothing.
  if (auto h = alumia::passwd_home()()) {
    struct stat st {};
    REQUIRE(::stat(h->c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK(st.st_uid == ::geteuid());
    CHECK(fs::path(*h).is_absolute());
  } else {
    SUCCEED("no usable passwd home for this uid");
  }
}

TEST_CASE("prepare_daemon_paths accepts a TempDir home and creates directories 0700", "[planted]") {
  TempDir t;
  const mode_t old = ::umask(0);  // a umask must not widen what we create
  auto st = alumia::prepare_daemon_paths(flat(t.path() / "a b" / "home"));
  ::umask(old);
  REQUIRE(st);
  struct stat s {};
  REQUIRE(::stat((t.path() / "a b").c_str(), &s) == 0);
  CHECK((s.st_mode & 07777) == 0700);
  REQUIRE(::stat((t.path() / "a b" / "home").c_str(), &s) == 0);
  CHECK((s.st_mode & 07777) == 0700);
  // A home with every file in place passes too.
  CHECK(alumia::prepare_daemon_paths(flat(make_home(t))));
}

TEST_CASE("prepare_daemon_paths refuses loose modes with the chmod that fixes them", "[planted]") {
  TempDir t;
  const fs::path home = make_home(t);
  const Paths p = flat(home);
  const auto q = [](const fs::path& f) { return "'" + f.string() + "'"; };
  SECTION("a 0777 data dir") {
    REQUIRE(::chmod(home.c_str(), 0777) == 0);
    const auto m = refusal(p);
    CHECK(m.find(home.string()) != std::string::npos);
    CHECK(m.find("chmod 700 " + q(home)) != std::string::npos);
  }
  SECTION("a group-writable connectors.d") {
    REQUIRE(::chmod((home / "connectors.d").c_str(), 0770) == 0);
    CHECK(refusal(p).find("chmod 700 " + q(home / "connectors.d")) != std::string::npos);
  }
  SECTION("a group-writable config.json") {
    REQUIRE(::chmod((home / "config.json").c_str(), 0664) == 0);
    CHECK(refusal(p).find("chmod go-w " + q(home / "config.json")) != std::string::npos);
  }
  SECTION("an other-writable connectors.d file") {
    REQUIRE(::chmod((home / "connectors.d" / "mine.json").c_str(), 0646) == 0);
    CHECK(refusal(p).find("chmod go-w " + q(home / "connectors.d" / "mine.json")) != std::string::npos);
  }
  SECTION("group-readable secrets") {
    for (const char* f : {"store.db", "store.db-wal", "store.db-shm", "store.db-intake", "key", "master.key"}) {
      CAPTURE(f);
      REQUIRE(::chmod((home / f).c_str(), 0640) == 0);
      CHECK(refusal(p).find("chmod 600 " + q(home / f)) != std::string::npos);
      REQUIRE(::chmod((home / f).c_str(), 0600) == 0);
    }
  }
  SECTION("a readable config.json, state file and lock file are fine") {
    for (const char* f : {"config.json", "daemon.json", "store.lock"}) REQUIRE(::chmod((home / f).c_str(), 0644) == 0);
    CHECK(alumia::prepare_daemon_paths(p));
  }
}

TEST_CASE("prepare_daemon_paths refuses symbolic links at file names", "[planted]") {
  TempDir t;
  const fs::path home = make_home(t);
  const fs::path target = t.path() / "target";
  write(target, "untouched", 0600);
  for (const char* f : {"store.db-intake", "config.json", "store.db", "key", "connectors.d/mine.json"}) {
    CAPTURE(f);
    fs::remove(home / f);
    fs::create_symlink(target, home / f);
    const auto m = refusal(flat(home));
    CHECK(m.find((home / f).string()) != std::string::npos);
    CHECK(m.find("symbolic link") != std::string::npos);
    fs::remove(home / f);
    write(home / f, "x", 0600);
  }
  CHECK(alumia::test::read_file(target) == "untouched");
}

TEST_CASE("prepare_daemon_paths refuses what another user owns, with the chown", "[planted]") {
  if (skip_unless_root()) return;
  TempDir t;
  const fs::path home = make_home(t);
  SECTION("the data dir") {
    REQUIRE(::chown(home.c_str(), k_nobody, k_nobody) == 0);
    const auto m = refusal(flat(home));
    CHECK(m.find("owned by uid 65534") != std::string::npos);
    CHECK(m.find("chown -R root '" + home.string() + "'") != std::string::npos);
  }
  SECTION("a file in it") {
    for (const char* f : {"config.json", "connectors.d/mine.json", "store.db", "store.db-intake", "master.key"}) {
      CAPTURE(f);
      REQUIRE(::chown((home / f).c_str(), k_nobody, k_nobody) == 0);
      CHECK(refusal(flat(home)).find("chown root '" + (home / f).string() + "'") != std::string::npos);
      REQUIRE(::chown((home / f).c_str(), 0, 0) == 0);
    }
  }
  SECTION("a directory above it") {
    const fs::path above = t.path() / "theirs";
    REQUIRE(alumia::ensure_private_dir(above / "home"));
    REQUIRE(::chown(above.c_str(), k_nobody, k_nobody) == 0);
    const auto m = refusal(flat(above / "home"));
    CHECK(m.find("the directory '" + above.string() + "' above it is owned by uid 65534") != std::string::npos);
  }
  SECTION("a symbolic link on the way") {
    REQUIRE(alumia::ensure_private_dir(t.path() / "real"));
    const fs::path link = t.path() / "link";
    fs::create_symlink(t.path() / "real", link);
    CHECK(alumia::prepare_daemon_paths(flat(link / "home")));  // ours: fine
    REQUIRE(::lchown(link.c_str(), k_nobody, k_nobody) == 0);
    CHECK(refusal(flat(link / "home")).find("symbolic link '" + link.string() + "'") != std::string::npos);
  }
}

TEST_CASE("check_parent_dirs: writable parents only when sticky, like /tmp", "[planted]") {
  TempDir t;
  const fs::path shared = t.path() / "shared";
  REQUIRE(alumia::ensure_private_dir(shared / "home"));
  REQUIRE(::chmod(shared.c_str(), 0777) == 0);
  auto st = alumia::check_parent_dirs(shared / "home");
  REQUIRE_FALSE(st);
  CHECK(st.error().message.find("chmod go-w '" + shared.string() + "'") != std::string::npos);
  REQUIRE(::chmod(shared.c_str(), 01777) == 0);
  CHECK(alumia::check_parent_dirs(shared / "home"));
  CHECK(alumia::check_parent_dirs(t.path()));  // /tmp itself: sticky
}

TEST_CASE("the files are opened without following a symbolic link", "[planted]") {
  TempDir t;
  const fs::path target = t.path() / "target";
  const std::string precious(5000, 'p');
  write(target, precious, 0600);
  SECTION("the intake log does not overwrite the target of a link at its name") {
    fs::create_symlink(target, t.path() / "store.db-intake");
    std::vector<alumia::IntakeLog::Record> left;
    auto log = alumia::IntakeLog::open({.path = t.path() / "store.db-intake", .bytes = 1u << 20}, left);
    REQUIRE_FALSE(log);
    CHECK(log.error().message.find("symbolic link") != std::string::npos);
  }
  SECTION("nor a group-readable intake log") {
    write(t.path() / "store.db-intake", "", 0640);
    std::vector<alumia::IntakeLog::Record> left;
    auto log = alumia::IntakeLog::open({.path = t.path() / "store.db-intake", .bytes = 1u << 20}, left);
    REQUIRE_FALSE(log);
    CHECK(log.error().message.find("chmod 600") != std::string::npos);
  }
  SECTION("config.json") {
    fs::create_symlink(target, t.path() / "config.json");
    auto s = alumia::Settings::resolve({}, env_of({}), t.path() / "config.json");
    REQUIRE_FALSE(s);
    CHECK(s.error().message.find("symbolic link") != std::string::npos);
  }
  SECTION("a group-writable config.json") {
    write(t.path() / "config.json", R"({"listen":"127.0.0.1:1"})", 0660);
    auto s = alumia::Settings::resolve({}, env_of({}), t.path() / "config.json");
    REQUIRE_FALSE(s);
    CHECK(s.error().message.find("chmod go-w") != std::string::npos);
  }
  SECTION("a connectors.d file") {
    fs::create_directories(t.path() / "connectors.d");
    fs::create_symlink(target, t.path() / "connectors.d" / "github.json");
    auto c = alumia::load_catalog(t.path() / "connectors.d");
    REQUIRE_FALSE(c);
    CHECK(c.error().message.find("symbolic link") != std::string::npos);
  }
  SECTION("store.db") {
    fs::create_symlink(target, t.path() / "store.db");
    auto s = alumia::open_sqlite_store({t.path() / "store.db", true});
    REQUIRE_FALSE(s);
    CHECK(s.error().message.find("symbolic link") != std::string::npos);
  }
  SECTION("a group-readable store.db") {
    {
      auto s = alumia::open_sqlite_store({t.path() / "store.db", true});
      REQUIRE(s);
    }
    REQUIRE(::chmod((t.path() / "store.db").c_str(), 0640) == 0);
    auto s = alumia::open_sqlite_store({t.path() / "store.db", true});
    REQUIRE_FALSE(s);
    CHECK(s.error().message.find("chmod 600") != std::string::npos);
  }
  SECTION("open_owned_file creates files with the mode asked, whatever the umask") {
    const mode_t old = ::umask(0);
    auto fd = alumia::open_owned_file(t.path() / "new", O_RDWR | O_CREAT, Privacy::secret, 0600);
    ::umask(old);
    REQUIRE(fd);
    struct stat st {};
    REQUIRE(::fstat(fd->get(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
  }
  CHECK(alumia::test::read_file(target) == precious);
}

TEST_CASE("a connectors.d override owned by another user is refused", "[planted]") {
  if (skip_unless_root()) return;
  TempDir t;
  fs::create_directories(t.path() / "connectors.d");
  write(t.path() / "connectors.d" / "github.json", R"({"slug":"github"})", 0644);
  REQUIRE(alumia::load_catalog(t.path() / "connectors.d"));
  REQUIRE(::chown((t.path() / "connectors.d" / "github.json").c_str(), k_nobody, k_nobody) == 0);
  auto c = alumia::load_catalog(t.path() / "connectors.d");
  REQUIRE_FALSE(c);
  CHECK(c.error().message.find("owned by uid 65534") != std::string::npos);
}

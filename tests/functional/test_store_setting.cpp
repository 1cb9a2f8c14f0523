// The `store` setting of the daemon (SPEC §12, docs/SCALE-OUT.md): what it refuses at start, and that a
// PostgreSQL password never shows in what the daemon prints.
#include "cli_helpers.hpp"
#include "postgres.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace alumia::test;

namespace {

namespace fs = std::filesystem;

// Starts the daemon on `home` with `env` and expects it to exit on its own; bounded.
ProcessResult start_expecting_exit(const fs::path& home, EnvOverrides env, std::vector<std::string> extra = {}) {
  for (auto& [k, v] : daemon_options().env) env.emplace(k, v);
  env["ALUMIA_HOME"] = home.string();
  std::vector<std::string> argv{ALUMIA_DAEMON_BIN, "--listen", "127.0.0.1:0", "--keyring", "file"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run(argv, env, "", std::chrono::seconds(30));
}

constexpr const char* k_marker = "pw-MARKER-9c1d";

}  // namespace

TEST_CASE("store setting: a password in the --store flag stops the start, and is never printed", "[store]") {
  TempDir home;
  const auto r =
      start_expecting_exit(home.path(), {}, {"--store", std::string("postgres://alice:") + k_marker + "@db.invalid/a"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("setting store from --store (flag) holds a password") != std::string::npos);
  CHECK(r.err.find("PGPASSWORD") != std::string::npos);
  CHECK(r.err.find(k_marker) == std::string::npos);
  CHECK(r.out.find(k_marker) == std::string::npos);
  CHECK_FALSE(fs::exists(home.path() / "store.db"));  // nothing was opened or made
}

TEST_CASE("store setting: a store that is neither empty nor a postgres URL stops the start", "[store]") {
  TempDir home;
  const auto r = start_expecting_exit(home.path(), {{"ALUMIA_STORE", "mysql://bob:hunter2@db/a"}});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("setting store from ALUMIA_STORE (env): mysql://bob:***@db/a is not a store") != std::string::npos);
  CHECK(r.err.find("hunter2") == std::string::npos);
  CHECK_FALSE(fs::exists(home.path() / "store.db"));
}

TEST_CASE("store setting: a PostgreSQL store that refuses the daemon stops the start, the password redacted",
          "[store][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  auto& server = shared_postgres();
  const std::string db = server.fresh_database();
  // A role that does not exist, its password in the environment's URL (allowed there, not in argv).
  std::string uri = server.uri(db);
  uri.replace(uri.find("://") + 3, uri.find('@') - uri.find("://") - 3, std::string("nobody_x:") + k_marker);
  TempDir home;
  const auto r = start_expecting_exit(home.path(), {{"ALUMIA_STORE", uri}});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("cannot open the PostgreSQL store postgres://nobody_x:***@/") != std::string::npos);
  CHECK(r.err.find("nobody_x") != std::string::npos);  // libpq's reason names the role
  CHECK(r.err.find(k_marker) == std::string::npos);

  SECTION("and one that is not there at all") {
    TempDir nowhere;
    std::string dir;
    for (char c : nowhere.path().string()) dir += c == ' ' ? std::string("%20") : std::string(1, c);
    const std::string absent = "postgres://alumia@/alumia?host=" + dir + "&port=5999";
    const auto gone = start_expecting_exit(home.path(), {{"ALUMIA_STORE", absent}});
    CHECK(gone.exit_code == 1);
    CHECK(gone.err.find("cannot reach PostgreSQL") != std::string::npos);
  }
}

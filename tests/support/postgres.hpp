#pragma once
// A real PostgreSQL server for the store's tests (issue 17, SPEC §12): Debian's postgresql-15 binaries,
// a cluster made by initdb in a temp dir, listening on a Unix socket in that dir only (no TCP port, so
// nothing to collide with and no traffic beyond the machine), stopped when the test binary exits.
//
// initdb and the server refuse to run as root: when the tests run as root, both run as the `postgres`
// user (setpriv, which execs in place, so the pid we hold is the postmaster's), and the temp dir is
// given to that user. The postmaster gets SIGINT (fast shutdown) if the test binary dies first
// (setpriv --pdeathsig), so no server outlives its test.
//
// One server per test binary, started on first use (initdb takes ~2 s); each test takes a fresh
// database from it (fresh_database()), so tests never see each other's rows.
#include "process.hpp"
#include "skip.hpp"

#include <alumia/store/store.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace alumia::test {

// The directory of initdb/postgres/createdb (/usr/lib/postgresql/<newest>/bin), or empty.
std::filesystem::path postgres_bin_dir();

// Skips the test without the PostgreSQL server binaries, except under `make test`, which sets
// ALUMIA_REQUIRE_POSTGRES: there a missing server fails.
#define ALUMIA_SKIP_WITHOUT_POSTGRES()                                                            \
  do {                                                                                            \
    if (::alumia::test::postgres_bin_dir().empty())                                               \
      ALUMIA_SKIP_UNLESS_REQUIRED("ALUMIA_REQUIRE_POSTGRES",                                      \
                                  "PostgreSQL 15 is not installed: run scripts/install-deps.sh"); \
  } while (false)

class PostgresServer {
 public:
  PostgresServer();   // initdb + start; throws std::runtime_error with the server's log when it cannot
  ~PostgresServer();  // fast shutdown, then the temp dir goes
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // A new, empty database; returns its name (conninfo(name) / uri(name) to connect).
  std::string fresh_database();
  // The connection string of database `name` (which must exist).
  std::string conninfo(const std::string& name) const;
  // As a postgres:// URI (what `--store` takes).
  std::string uri(const std::string& name) const;
  const std::filesystem::path& socket_dir() const { return m_dir->path(); }
  // The cluster's files (initdb's -D): base/ holds the tables' pages, pg_wal/ the write-ahead log.
  std::filesystem::path data_dir() const { return m_dir->path() / "data"; }
  // Every row of every table of database `name`, in a stable order, one line a row (the row as JSON,
  // bytea as hex, without the columns named "table.column" in `skip_columns`), for comparing a store's
  // content before and after. Throws when psql fails.
  std::string dump(const std::string& name, const std::vector<std::string>& skip_columns = {}) const;
  std::string log() const;

  // Stops and starts the server on the same data (a daemon that loses its database must recover).
  void stop();
  void start();

 private:
  std::unique_ptr<TempDir> m_dir;
  std::unique_ptr<Process> m_server;
  int m_databases = 0;
};

// The binary's shared server, started on first use and stopped at exit.
PostgresServer& shared_postgres();

// The bytes a daemon's store keeps at rest, file by file (name, content), for tests that look for a
// secret where it must not be: on SQLite store.db, its WAL, SHM and intake log, those that exist; in
// the suite's PostgreSQL pass (the daemons of `data_dir` on a database of shared_postgres()), after a
// CHECKPOINT, every file of that database (base/<oid>/) and the cluster's write-ahead log (pg_wal/).
std::vector<std::pair<std::string, std::string>> store_files_at_rest(const std::filesystem::path& data_dir);

// The store the daemons of `data_dir` use, opened beside them: its SQLite file, or in the suite's
// PostgreSQL pass its database.
Result<std::unique_ptr<Store>> open_store_of(const std::filesystem::path& data_dir);

}  // namespace alumia::test

// Another process reading the running daemon's store (the sqlite3 CLI, a backup script): it must see
// what the daemon committed, and closing its connection must leave the daemon's WAL alone.
//
// The daemon once opened and closed a descriptor of store.db after its first SQLite connection held
// the file's SHARED lock, which POSIX drops on any close of that file by the process. A reader in
// another process then found no lock when it closed, took itself for the last connection, checkpointed
// and deleted store.db-wal and -shm under the daemon: later commits went to the deleted WAL (invisible
// to new readers, lost at a crash) and concurrent readers saw "database disk image is malformed".
// See checked_db_name() in common/store/sqlite_util.hpp.
#include "process.hpp"

#include <sqlite3.h>
#include <catch2/catch.hpp>
#include <csignal>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

namespace {

namespace fs = std::filesystem;
using alumia::test::Daemon;
using alumia::test::TempDir;

// One statement's first column, read through a connection of this (test) process that is opened
// for it and closed after, as `sqlite3 store.db 'SELECT ...'` would.
std::string read_once(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  std::string out;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(h, sql.c_str(), -1, &q, nullptr) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
      out = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
    else out = std::string("error: ") + sqlite3_errmsg(h);
    sqlite3_finalize(q);
  } else {
    out = std::string("cannot open: ") + sqlite3_errmsg(h);
  }
  sqlite3_close(h);
  return out;
}

int create_endpoint(const Daemon& d, const std::string& label) {
  return d.api("POST", "/api/v1/webhook-endpoints", R"({"provider":"github","label":")" + label + R"("})").status;
}

}  // namespace

// [sqlite-only]: another process opening the SQLite file and its WAL; a PostgreSQL store has neither.
TEST_CASE("a reader in another process sees the daemon's commits and leaves its WAL in place", "[store][sqlite-only]") {
  TempDir dir;
  auto d = std::make_unique<Daemon>(dir.path() / "home");
  const fs::path db = d->home() / "store.db";
  REQUIRE(create_endpoint(*d, "before") / 100 == 2);

  CHECK(read_once(db, "SELECT count(*) FROM webhook_endpoints") == "1");
  // The reader closed; the daemon still has its connections open, so the WAL stays.
  CHECK(fs::exists(db.string() + "-wal"));
  CHECK(fs::exists(db.string() + "-shm"));

  REQUIRE(create_endpoint(*d, "after") / 100 == 2);
  CHECK(read_once(db, "SELECT count(*) FROM webhook_endpoints") == "2");
  CHECK(read_once(db, "PRAGMA integrity_check") == "ok");

  // And a commit acknowledged after the reader came and went survives a crash.
  d->expect_exit(128 + SIGKILL);
  d->process().signal(SIGKILL);
  d->process().wait(std::chrono::seconds(5));
  d.reset();
  CHECK(read_once(db, "SELECT count(*) FROM webhook_endpoints") == "2");
  CHECK(read_once(db, "PRAGMA integrity_check") == "ok");
}

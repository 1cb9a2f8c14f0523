// What only the SQLite store has: its file is 0600 and survives reopening, and a destroyed connection's
// secrets leave no bytes in any of its files (secure_delete + WAL checkpoint). Every method of the Store
// interface, on both backends, is tests/unit/test_store_conformance.cpp.
#include <alumia/store/store.hpp>

#include "process.hpp"

#include "store_test_util.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using alumia::Connection;
using alumia::ConnectionStatus;
using alumia::Store;
using alumia::test::id_n;
using alumia::test::make_connection;
using alumia::test::TempDir;

std::unique_ptr<Store> open_store(const fs::path& p) {
  auto s = alumia::open_sqlite_store({p, true});
  REQUIRE(s);
  return std::move(*s);
}

}  // namespace

TEST_CASE("the store migrates once and reopens without re-running migrations", "[unit][store]") {
  TempDir dir;
  const fs::path db = dir.path() / "store.db";
  {
    auto s = open_store(db);
    REQUIRE(s->insert_user({"u1", "owner", 1}));
    REQUIRE(s->put_meta("k", "v"));
  }
  struct stat st {};
  REQUIRE(::stat(db.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  for (int i = 0; i < 3; ++i) {
    auto s = open_store(db);  // a second CREATE TABLE would throw here
    auto u = s->find_user("u1");
    REQUIRE(u);
    REQUIRE(u->has_value());
    CHECK((*u)->name == "owner");
    auto m = s->get_meta("k");
    REQUIRE(m);
    CHECK(m->value_or("") == "v");
  }
}

TEST_CASE("destroy_connection removes its secrets and leaves no ciphertext in the files", "[unit][store]") {
  TempDir dir;
  const fs::path db = dir.path() / "store.db";
  auto s = open_store(db);
  REQUIRE(s->insert_user({"u1", "a", 1}));
  auto c = make_connection(id_n(1), "u1", 10);
  REQUIRE(s->insert_connection(c));
  auto other = make_connection(id_n(2), "u1", 11);
  REQUIRE(s->insert_connection(other));
  const std::string marker = "SEALED-MARKER-7f3a9c1e5b2d4680";
  c.status = ConnectionStatus::active;
  const std::vector<alumia::SealedValue> secrets{{"cred.bot_token", marker}, {"cred.other", marker + "-2"}};
  REQUIRE(s->update_connection(c, &secrets));
  REQUIRE(s->put_secrets("connections", other.id, {{"cred.bot_token", "keep-me"}}));
  {
    auto loaded = s->load_secrets("connections", c.id);
    REQUIRE(loaded);
    CHECK(loaded->size() == 2);
  }
  c.status = ConnectionStatus::revoked;
  c.deleted_at = 20;
  REQUIRE(s->destroy_connection(c));
  auto loaded = s->load_secrets("connections", c.id);
  REQUIRE(loaded);
  CHECK(loaded->empty());
  auto kept = s->load_secrets("connections", other.id);
  REQUIRE(kept);
  CHECK(kept->size() == 1);
  auto found = s->find_connection(c.id);
  REQUIRE(found);
  REQUIRE(found->has_value());
  CHECK((*found)->status == ConnectionStatus::revoked);
  CHECK((*found)->deleted_at == 20);
  // secure_delete + WAL checkpoint: the old bytes are gone from every file of the store.
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const fs::path f = db.string() + suffix;
    if (!fs::exists(f)) continue;
    CAPTURE(f.string());
    CHECK(alumia::test::read_file(f).find(marker) == std::string::npos);
  }
  // Not visible to by-label lookups any more.
  auto by_label = s->find_connection_by_label("u1", "telegram", c.label);
  REQUIRE(by_label);
  // (`other` shares user, connector and label, so the lookup may find it, never the destroyed one.)
  if (by_label->has_value()) CHECK((*by_label)->id != c.id);
}

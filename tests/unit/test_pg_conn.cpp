// The libpq layer of the PostgreSQL store (common/store/pg_conn.hpp) against a real PostgreSQL 15:
// parameters and bytea round-trip any bytes, SQLSTATEs become the right errors, a failed transaction
// leaves nothing, NOTIFY reaches a listener, and a lost server is SERVICE_UNAVAILABLE until it is back.
#include "../../common/store/pg_conn.hpp"
#include "../../common/store/pg_schema.hpp"
#include "postgres.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

using namespace alumia;

namespace {

std::unique_ptr<pg::Connection> connect(const std::string& conninfo) {
  auto conn = pg::Connection::open(conninfo);
  REQUIRE(conn.has_value());
  return std::move(*conn);
}

}  // namespace

TEST_CASE("pg: parameters, bytea and SQLSTATE errors", "[pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  auto& server = test::shared_postgres();
  auto db = connect(server.conninfo(server.fresh_database()));

  REQUIRE(db->exec("CREATE TABLE t (id text PRIMARY KEY, n bigint, b bytea, flag boolean)"));
  const std::string raw("a\0b\xff\x00z'\"\\", 9);
  REQUIRE(db->exec("INSERT INTO t VALUES ($1, $2, $3, $4)",
                   {"x'; DROP TABLE t; --", int64_t{1} << 40, pg::Param::bytes(raw), true}));
  REQUIRE(db->exec("INSERT INTO t (id) VALUES ($1)", {"null row"}));

  auto rows = db->exec("SELECT id, n, b, flag FROM t ORDER BY id DESC");
  REQUIRE(rows);
  REQUIRE(rows->size() == 2);
  CHECK(rows->str(0, 0) == "x'; DROP TABLE t; --");
  CHECK(rows->int64(0, 1) == int64_t{1} << 40);
  CHECK(rows->bytes(0, 2) == raw);
  CHECK(rows->boolean(0, 3));
  CHECK(rows->str(1, 0) == "null row");
  CHECK(rows->is_null(1, 1));
  CHECK_FALSE(rows->opt_int64(1, 1).has_value());
  CHECK_FALSE(rows->opt_str(1, 2).has_value());

  auto dup = db->exec("INSERT INTO t (id) VALUES ($1)", {"null row"});
  REQUIRE_FALSE(dup);
  CHECK(dup.error().code == ErrorCode::conflict);
  CHECK(db->sqlstate() == pg::k_unique_violation);

  auto bad = db->exec("SELECT no_such_column FROM t");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == ErrorCode::internal);
  CHECK(db->sqlstate() == "42703");

  auto updated = db->exec("UPDATE t SET n = 7 WHERE n IS NULL");
  REQUIRE(updated);
  CHECK(updated->affected() == 1);
}

TEST_CASE("pg: a failed transaction leaves nothing; a serialization failure runs the body again", "[pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  auto& server = test::shared_postgres();
  const std::string info = server.conninfo(server.fresh_database());
  auto db = connect(info);
  REQUIRE(db->exec("CREATE TABLE c (id int PRIMARY KEY, n int)"));
  REQUIRE(db->exec("INSERT INTO c VALUES (1, 0)"));

  auto failed = db->transaction([](pg::Connection& tx) -> Status {
    if (auto r = tx.exec("UPDATE c SET n = 99 WHERE id = 1"); !r) return std::unexpected(r.error());
    if (auto r = tx.exec("INSERT INTO c VALUES (1, 1)"); !r) return std::unexpected(r.error());
    return {};
  });
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code == ErrorCode::conflict);
  CHECK(db->exec("SELECT n FROM c WHERE id = 1")->int64(0, 0) == 0);

  // Two SERIALIZABLE transactions that read and write the same row: the second to commit fails with
  // 40001 once and succeeds when its body runs again.
  auto other = connect(info);
  int runs = 0;
  auto ok = db->transaction(
      [&](pg::Connection& tx) -> Status {
        ++runs;
        auto n = tx.exec("SELECT n FROM c WHERE id = 1");
        if (!n) return std::unexpected(n.error());
        if (runs == 1) {
          // Another client changes the row between our read and our write.
          REQUIRE(other->exec("UPDATE c SET n = n + 10 WHERE id = 1"));
        }
        if (auto r = tx.exec("UPDATE c SET n = $1 WHERE id = 1", {n->int64(0, 0) + 1}); !r)
          return std::unexpected(r.error());
        return {};
      },
      "SERIALIZABLE");
  REQUIRE(ok);
  CHECK(runs == 2);
  CHECK(db->exec("SELECT n FROM c WHERE id = 1")->int64(0, 0) == 11);
}

TEST_CASE("pg: NOTIFY reaches a listener on another connection", "[pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  auto& server = test::shared_postgres();
  const std::string info = server.conninfo(server.fresh_database());
  auto listener = connect(info);
  auto sender = connect(info);
  REQUIRE(listener->listen("alumia endpoints"));
  auto none = listener->wait_notifications(std::chrono::milliseconds(10));
  REQUIRE(none);
  CHECK(none->empty());
  REQUIRE(sender->notify("alumia endpoints", "ep_1"));
  std::vector<pg::Notification> got;
  REQUIRE(test::eventually([&] {
    auto n = listener->wait_notifications(std::chrono::milliseconds(200));
    REQUIRE(n);
    got.insert(got.end(), n->begin(), n->end());
    return !got.empty();
  }));
  CHECK(got.at(0).channel == "alumia endpoints");
  CHECK(got.at(0).payload == "ep_1");
}

TEST_CASE("pg: a lost server is SERVICE_UNAVAILABLE, and the pool reconnects once it is back", "[pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  test::PostgresServer server;  // its own: this test stops it
  const std::string info = server.conninfo(server.fresh_database());
  auto pool = pg::Pool::open(info, 2);
  REQUIRE(pool);
  REQUIRE((*pool)->lease().value()->exec("CREATE TABLE k (id int)"));

  server.stop();
  {
    auto lease = (*pool)->lease();  // the idle connection does not know yet
    REQUIRE(lease);
    auto r = (*lease)->exec("INSERT INTO k VALUES (1)");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::service_unavailable);
    CHECK_FALSE((*lease)->healthy());
  }
  auto refused = pg::Connection::open(info);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == ErrorCode::service_unavailable);
  CHECK(refused.error().message.find("cannot reach PostgreSQL") != std::string::npos);

  server.start();
  // Each pooled connection was cut: its first statement fails, and the next lease reconnects it.
  int failures = 0;
  Result<pg::Rows> inserted;
  for (int i = 0; i < 3; ++i) {
    auto lease = (*pool)->lease();
    REQUIRE(lease);
    inserted = (*lease)->exec("INSERT INTO k VALUES (2)");
    if (inserted) break;
    CHECK(inserted.error().code == ErrorCode::service_unavailable);
    ++failures;
  }
  REQUIRE(inserted);
  CHECK(failures <= 2);
  auto rows = (*pool)->lease().value()->exec("SELECT count(*) FROM k WHERE id = 2");
  REQUIRE(rows);
  CHECK(rows->int64(0, 0) == 1);
}

TEST_CASE("pg: migrations run once when several daemons start together, and a newer schema is refused", "[pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  auto& server = test::shared_postgres();
  const std::string info = server.conninfo(server.fresh_database());
  // Each migration leaves a mark; run twice it would fail (no IF NOT EXISTS) or mark twice.
  const std::vector<std::string_view> migrations = {
      "CREATE TABLE marks (n int); INSERT INTO marks VALUES (1)",
      "INSERT INTO marks VALUES (2); CREATE TABLE second (id text PRIMARY KEY)",
  };
  std::vector<std::thread> starters;
  std::vector<Result<int>> reached(4, 0);
  for (std::size_t i = 0; i < reached.size(); ++i)
    starters.emplace_back([&, i] {
      auto db = pg::Connection::open(info);
      reached[i] = db ? pg::migrate(**db, "test", migrations) : Result<int>(std::unexpected(db.error()));
    });
  for (auto& t : starters) t.join();
  for (const auto& r : reached) {
    REQUIRE(r);
    CHECK(*r == 2);
  }
  auto db = connect(info);
  CHECK(db->exec("SELECT count(*) FROM marks")->int64(0, 0) == 2);
  CHECK(db->exec("SELECT version FROM alumia_schema WHERE part = 'test'")->int64(0, 0) == 2);

  // Another part numbers its own migrations.
  const std::vector<std::string_view> other = {"CREATE TABLE other_part (n int)"};
  CHECK(pg::migrate(*db, "other", other).value() == 1);

  // This program knows one migration of "test"; the database has two.
  const std::vector<std::string_view> older = {migrations[0]};
  auto refused = pg::migrate(*db, "test", older);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("newer than this alumia-connectd knows") != std::string::npos);
  CHECK(db->exec("SELECT count(*) FROM marks")->int64(0, 0) == 2);
}

// The webhook store's group writer (common/store/group_writer.hpp): operations that stage their rows
// (WriterOp::stageable) have them written by BatchHooks::flush before any later operation of the batch
// runs and before the COMMIT, and a batch whose flush fails runs again operation by operation, where
// nothing is staged and only the failing operation fails.
#include "../../common/store/group_writer.hpp"
#include "process.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <catch2/catch.hpp>

#include <future>
#include <string>
#include <vector>

using namespace alumia;
using alumia::sqlite::GroupWriter;
using alumia::sqlite::WriterOp;

namespace {

// A table t(x PRIMARY KEY) and a group writer over it whose stageable operations stage x.
struct Fixture {
  test::TempDir dir;
  std::string path = (dir.path() / "w.db").string();
  std::unique_ptr<GroupWriter> w;
  std::vector<int> staged;   // writer thread only
  std::vector<int> flushes;  // rows per flush that wrote any (writer thread only; read after a write())

  Fixture() {
    {
      SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      db.exec("PRAGMA journal_mode=WAL");
      db.exec("CREATE TABLE t (x INTEGER PRIMARY KEY)");
    }
    w = std::make_unique<GroupWriter>(path, true, 1000);
    w->start({.begin = [this] { staged.clear(); },
              .before_commit = [] {},
              .flush =
                  [this] {
                    if (staged.empty()) return;
                    for (int x : staged) insert(x);
                    flushes.push_back(static_cast<int>(staged.size()));
                    staged.clear();
                  }});
  }
  ~Fixture() { w->stop(); }

  void insert(int x) {
    auto q = w->statements().use("INSERT INTO t(x) VALUES(?)");
    q->bind(1, x);
    q->exec();
  }
  // Staged while the batch allows it, written at once otherwise; `after` records what the batch said.
  WriterOp stage(int x, std::vector<std::pair<int, bool>>& outcomes) {
    return WriterOp{[this, x] {
                      if (w->staging()) staged.push_back(x);
                      else insert(x);
                    },
                    nullptr, [x, &outcomes](bool stored) { outcomes.emplace_back(x, stored); }, true};
  }
  int count() {
    auto q = w->statements().use("SELECT COUNT(*) FROM t");
    q->executeStep();
    return q->getColumn(0).getInt();
  }
  // Holds the writer inside an operation until the returned promise is set, so that what is queued
  // meanwhile goes into one batch after it.
  std::promise<void> hold() {
    std::promise<void> gate;
    std::promise<void> started;
    auto running = started.get_future();
    w->enqueue(WriterOp{[&started, released = gate.get_future().share()] {
                          started.set_value();
                          released.wait();
                        },
                        nullptr, nullptr});
    running.wait();
    return gate;
  }
};

}  // namespace

TEST_CASE(
    "group writer: staged rows are written before the next operation that is not stageable, and before "
    "the commit",
    "[store][writer]") {
  Fixture f;
  std::vector<std::pair<int, bool>> outcomes;
  int seen_by_reader = -1;
  auto gate = f.hold();
  f.w->enqueue(f.stage(1, outcomes));
  f.w->enqueue(f.stage(2, outcomes));
  f.w->enqueue(WriterOp{[&] { seen_by_reader = f.count(); }, nullptr, nullptr});  // not stageable
  f.w->enqueue(f.stage(3, outcomes));
  std::promise<void> committed;
  auto done = committed.get_future();
  f.w->enqueue(WriterOp{[] {}, nullptr, [&](bool) { committed.set_value(); }, true});
  gate.set_value();
  done.wait();
  REQUIRE(f.w->write([] {}));
  CHECK(seen_by_reader == 2);                  // rows 1 and 2 were written before it read
  CHECK(f.flushes == std::vector<int>{2, 1});  // two flushes: before the reader, before the commit
  CHECK(outcomes == std::vector<std::pair<int, bool>>{{1, true}, {2, true}, {3, true}});
  int rows = 0;
  REQUIRE(f.w->write([&] { rows = f.count(); }));
  CHECK(rows == 3);
}

TEST_CASE("group writer: a batch whose staged rows fail runs again operation by operation", "[store][writer]") {
  Fixture f;
  REQUIRE(f.w->write([&] { f.insert(7); }));
  std::vector<std::pair<int, bool>> outcomes;
  auto gate = f.hold();
  f.w->enqueue(f.stage(5, outcomes));
  f.w->enqueue(f.stage(7, outcomes));  // a primary key that exists: the flush throws
  f.w->enqueue(f.stage(9, outcomes));
  gate.set_value();
  REQUIRE(f.w->write([] {}));  // after the batch above
  // Run again with a savepoint around each operation, where nothing is staged: only 7 failed.
  CHECK(outcomes == std::vector<std::pair<int, bool>>{{5, true}, {7, false}, {9, true}});
  std::vector<int> rows;
  REQUIRE(f.w->write([&] {
    auto q = f.w->statements().use("SELECT x FROM t ORDER BY x");
    while (q->executeStep()) rows.push_back(q->getColumn(0).getInt());
  }));
  CHECK(rows == std::vector<int>{5, 7, 9});
}

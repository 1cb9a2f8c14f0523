// The webhook store's private seams: the intake log's record codec (round trip, torn and corrupt
// records), the recovery that skips a record it cannot read and stores the rest, and SQLite errors
// mapped by result code.
#include "process.hpp"

#include "../../common/store/intake_record.hpp"
#include "../../common/store/sqlite_util.hpp"

#include <alumia/store/intake_log.hpp>
#include <alumia/store/store.hpp>
#include <alumia/store/webhook_store.hpp>

#include <catch2/catch.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include <cstring>

using namespace alumia;

namespace {

IngestRequest delivery(int n) {
  IngestRequest r;
  r.endpoint_id = "ep1";
  r.user_id = "u1";
  r.provider = Provider::github;
  r.event_key = "github:" + std::to_string(n);
  r.alias_keys = {"alias:a" + std::to_string(n), ""};
  r.item_keys = {"item:" + std::to_string(n), std::to_string(n) + std::string("bin\0\x1f\xff", 6)};
  r.event_type = "push";
  r.headers = R"([["X-GitHub-Event","push"]])";
  r.body = std::string("{\"n\":") + std::to_string(n) + "}" + std::string(3, '\0');
  r.received_at = 1'700'000'000'000 + n;
  r.event_id = "ev-" + std::to_string(n);
  r.job_id = "job-" + std::to_string(n);
  return r;
}

void check_same(const IngestRequest& a, const IngestRequest& b) {
  CHECK(a.endpoint_id == b.endpoint_id);
  CHECK(a.user_id == b.user_id);
  CHECK(a.provider == b.provider);
  CHECK(a.event_key == b.event_key);
  CHECK(a.alias_keys == b.alias_keys);
  CHECK(a.item_keys == b.item_keys);
  CHECK(a.event_type == b.event_type);
  CHECK(a.headers == b.headers);
  CHECK(a.body == b.body);
  CHECK(a.received_at == b.received_at);
  CHECK(a.event_id == b.event_id);
  CHECK(a.job_id == b.job_id);
}

}  // namespace

TEST_CASE("intake record: a delivery survives encode and decode unchanged", "[intake][store]") {
  const auto r = delivery(7);
  const auto bytes = intake_record::encode(r);
  REQUIRE(bytes.size() > r.body.size());
  CHECK(bytes[0] == intake_record::k_version);
  auto back = intake_record::decode(bytes);
  REQUIRE(back);
  check_same(*back, r);

  IngestRequest empty;  // every string and list empty
  auto none = intake_record::decode(intake_record::encode(empty));
  REQUIRE(none);
  check_same(*none, empty);
}

TEST_CASE("intake record: a torn or corrupt record decodes to nothing", "[intake][store]") {
  const auto bytes = intake_record::encode(delivery(1));
  // Torn: every strict prefix.
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    INFO(n);
    CHECK_FALSE(intake_record::decode(std::string_view(bytes).substr(0, n)));
  }
  // Bytes left over after the record.
  CHECK_FALSE(intake_record::decode(bytes + "x"));
  // Another version.
  auto other = bytes;
  other[0] = '\x02';
  CHECK_FALSE(intake_record::decode(other));
  // A length that runs past the end (the endpoint id's), and a huge list count: refused, not
  // allocated.
  auto long_len = bytes;
  const uint32_t huge = 0xffffffffu;
  std::memcpy(long_len.data() + 1, &huge, sizeof huge);
  CHECK_FALSE(intake_record::decode(long_len));
  IngestRequest no_lists = delivery(2);
  no_lists.alias_keys.clear();
  no_lists.item_keys.clear();
  auto counted = intake_record::encode(no_lists);
  // The alias count sits 8 bytes from the end (alias count, item count).
  std::memcpy(counted.data() + counted.size() - 8, &huge, sizeof huge);
  CHECK_FALSE(intake_record::decode(counted));
}

TEST_CASE("webhook store: recovery stores the readable records of the last run and skips one it cannot read",
          "[webhooks][store][intake]") {
  test::TempDir dir;
  const auto db = dir.path() / "store.db";
  REQUIRE(open_sqlite_store({db, true}));
  {
    // What a run leaves when it dies after acknowledging: records in the log, none applied. The
    // middle one is not a record of this version.
    std::vector<IntakeLog::Record> left;
    auto log = IntakeLog::open({.path = db.string() + "-intake", .bytes = 1u << 20}, left);
    REQUIRE(log);
    REQUIRE((*log)->start());
    auto torn = intake_record::encode(delivery(2));
    torn.resize(torn.size() / 2);
    for (const auto& payload : {intake_record::encode(delivery(1)), torn, intake_record::encode(delivery(3))})
      REQUIRE((*log)->append(payload, [](uint64_t) {}));
  }
  auto h = open_sqlite_webhook_store({.path = db});
  REQUIRE(h);
  for (int n : {1, 3}) {
    INFO(n);
    auto ev = (*h)->find_event("ev-" + std::to_string(n), true);
    REQUIRE(ev);
    REQUIRE(*ev);
    CHECK((*ev)->body == delivery(n).body);
    auto job = (*h)->find_job("job-" + std::to_string(n));
    REQUIRE(job);
    CHECK(*job);
    // Its keys are in the stored set: a repeat is a duplicate of the recovered event.
    auto again = delivery(n);
    again.event_id = "ev-again";
    again.job_id = "job-again";
    auto got = (*h)->ingest(again);
    REQUIRE(got);
    CHECK(got->duplicate);
    CHECK(got->event_id == "ev-" + std::to_string(n));
  }
  auto missing = (*h)->find_event("ev-2", false);
  REQUIRE(missing);
  CHECK_FALSE(*missing);
}

TEST_CASE("sqlite errors are mapped by result code: busy is SERVICE_UNAVAILABLE, the rest INTERNAL", "[store]") {
  test::TempDir dir;
  const auto path = (dir.path() / "busy.db").string();
  SQLite::Database holder(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  holder.exec("PRAGMA journal_mode=WAL");
  holder.exec("CREATE TABLE t (k TEXT PRIMARY KEY)");
  SQLite::Database other(path, SQLite::OPEN_READWRITE);
  other.setBusyTimeout(0);
  holder.exec("BEGIN IMMEDIATE");
  try {
    other.exec("BEGIN IMMEDIATE");
    FAIL("a second writer got the lock");
  } catch (const SQLite::Exception& e) {
    CHECK(sqlite::is_busy(e));
    CHECK(sqlite::to_error(e, "test").code == ErrorCode::service_unavailable);
  }
  holder.exec("INSERT INTO t VALUES ('a')");
  try {
    holder.exec("INSERT INTO t VALUES ('a')");
    FAIL("a duplicate key was inserted");
  } catch (const SQLite::Exception& e) {
    CHECK(e.getExtendedErrorCode() == SQLITE_CONSTRAINT_PRIMARYKEY);
    CHECK_FALSE(sqlite::is_busy(e));
    const auto err = sqlite::to_error(e, "test");
    CHECK(err.code == ErrorCode::internal);
    CHECK(err.message.rfind("test: ", 0) == 0);
  }
  holder.exec("ROLLBACK");
  // A message that merely mentions being busy is not a busy store.
  const std::runtime_error words("database is locked: busy");
  CHECK(sqlite::to_error(words, "test").code == ErrorCode::internal);
}

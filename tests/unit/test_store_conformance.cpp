// The Store interface, the same cases on both backends (issue 17: "one test suite, both backends"):
// every method of common/include/alumia/store/store.hpp against the SQLite store and against a real
// PostgreSQL 15 (tests/support/postgres.hpp), so that a behaviour cannot differ silently. Each case runs
// once per backend (GENERATE), inside a section named after it. What only one backend has — SQLite's
// file mode and secure_delete (tests/unit/test_store.cpp), PostgreSQL's lost-server recovery — is
// tested apart, at the end.
#include <alumia/auth/api_keys.hpp>
#include <alumia/auth/tickets.hpp>
#include <alumia/base/clock.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/config/config.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/connections/oauth_clients.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/net/http.hpp>
#include <alumia/store/store.hpp>

#include "../../common/store/pg_conn.hpp"
#include "fakes.hpp"
#include "postgres.hpp"
#include "process.hpp"

#include "store_test_util.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using alumia::Connection;
using alumia::ConnectionStatus;
using alumia::ErrorCode;
using alumia::Page;
using alumia::SealedValue;
using alumia::Store;
using alumia::test::id_n;
using alumia::test::make_connection;

// One backend's data: open() gives a new handle on it each time (a restart, or a second daemon).
class Backend {
 public:
  explicit Backend(std::string kind) : m_kind(std::move(kind)) {
    if (m_kind == "sqlite") {
      m_dir = std::make_unique<alumia::test::TempDir>();
    } else {
      auto& server = alumia::test::shared_postgres();
      m_conninfo = server.conninfo(server.fresh_database());
    }
  }
  std::unique_ptr<Store> open() const {
    auto s = m_kind == "sqlite" ? alumia::open_sqlite_store({m_dir->path() / "store.db", true})
                                : alumia::open_postgres_store({m_conninfo, 3});
    REQUIRE(s);
    return std::move(*s);
  }
  const std::string& kind() const { return m_kind; }

 private:
  std::string m_kind;
  std::unique_ptr<alumia::test::TempDir> m_dir;
  std::string m_conninfo;
};

// Runs the rest of the test case once per backend; `b` is that backend, in a section named after it.
#define ON_EACH_BACKEND(b)                                                                      \
  const std::string b##_kind = GENERATE(as<std::string>{}, "sqlite", "postgres");               \
  if (b##_kind == "postgres" && alumia::test::postgres_bin_dir().empty())                       \
    ALUMIA_SKIP_UNLESS_REQUIRED("ALUMIA_REQUIRE_POSTGRES",                                      \
                                "PostgreSQL 15 is not installed: run scripts/install-deps.sh"); \
  Backend b(b##_kind);                                                                          \
  DYNAMIC_SECTION("on " << b##_kind)

std::vector<std::string> ids(const std::vector<Connection>& cs) {
  std::vector<std::string> out;
  for (const auto& c : cs) out.push_back(c.id);
  return out;
}

// Every page of u1's connections at `limit`, following the cursors.
std::vector<std::string> all_pages(Store& s, const alumia::ConnectionFilter& f, std::size_t limit) {
  std::vector<std::string> got;
  Page p;
  p.limit = limit;
  for (int pages = 0; pages < 20; ++pages) {
    auto r = s.list_connections(f, p);
    REQUIRE(r);
    CHECK(r->items.size() <= limit);
    for (const auto& c : r->items) got.push_back(c.id);
    if (!r->next_cursor) break;
    CHECK(r->items.size() == limit);
    p.cursor = r->next_cursor;
  }
  return got;
}

}  // namespace

TEST_CASE("store conformance: migrations run once; meta and users survive a reopen", "[store][conformance]") {
  ON_EACH_BACKEND(b) {
    {
      auto s = b.open();
      CHECK(s->backend_name() == b.kind());
      auto missing = s->get_meta("k");
      REQUIRE(missing);
      CHECK_FALSE(missing->has_value());
      REQUIRE(s->put_meta("k", "v1"));
      REQUIRE(s->put_meta("k", "v"));  // replaces
      REQUIRE(s->insert_user({"u1", "owner", 1}));
    }
    for (int i = 0; i < 3; ++i) {
      auto s = b.open();  // a migration run twice would fail on CREATE TABLE
      auto u = s->find_user("u1");
      REQUIRE(u);
      REQUIRE(u->has_value());
      CHECK((*u)->name == "owner");
      CHECK((*u)->created_at == 1);
      auto m = s->get_meta("k");
      REQUIRE(m);
      CHECK(m->value_or("") == "v");
    }
  }
}

TEST_CASE("store conformance: users, and the first user", "[store][conformance]") {
  ON_EACH_BACKEND(b) {
    auto s = b.open();
    auto none = s->first_user();
    REQUIRE(none);
    CHECK_FALSE(none->has_value());
    REQUIRE(s->insert_user({"u-b", "second", 20}));
    REQUIRE(s->insert_user({"u-c", "tie later id", 10}));
    REQUIRE(s->insert_user({"u-a", "tie", 10}));
    auto first = s->first_user();
    REQUIRE(first);
    REQUIRE(first->has_value());
    CHECK((*first)->id == "u-a");  // oldest, then smallest id
    auto missing = s->find_user("nobody");
    REQUIRE(missing);
    CHECK_FALSE(missing->has_value());
    // A second row with the same id is refused and changes nothing.
    CHECK_FALSE(s->insert_user({"u-a", "impostor", 1}));
    CHECK(s->find_user("u-a")->value().name == "tie");
  }
}

TEST_CASE("store conformance: the owner and a meta key are created once, by whichever daemon comes first",
          "[store][conformance]") {
  ON_EACH_BACKEND(b) {
    auto s = b.open();
    SECTION("one after the other") {
      auto made = s->insert_owner({"owner-1", "owner", 5});
      REQUIRE(made);
      CHECK(*made);
      auto again = s->insert_owner({"owner-2", "owner", 6});
      REQUIRE(again);
      CHECK_FALSE(*again);
      CHECK(s->first_user()->value().id == "owner-1");
      CHECK_FALSE(s->find_user("owner-2")->has_value());

      auto set = s->insert_meta_if_absent("data_key.wrapped", "first");
      REQUIRE(set);
      CHECK(*set);
      auto kept = s->insert_meta_if_absent("data_key.wrapped", "second");
      REQUIRE(kept);
      CHECK_FALSE(*kept);
      CHECK(s->get_meta("data_key.wrapped")->value_or("") == "first");
    }
    SECTION("an owner is not made beside an existing user") {
      REQUIRE(s->insert_user({"someone", "x", 1}));
      auto made = s->insert_owner({"owner-1", "owner", 5});
      REQUIRE(made);
      CHECK_FALSE(*made);
    }
    SECTION("four daemons starting together") {
      constexpr int k_daemons = 4;
      std::vector<std::unique_ptr<Store>> daemons;
      for (int i = 0; i < k_daemons; ++i) daemons.push_back(b.open());
      std::atomic<int> owners{0}, keys{0}, failures{0};
      std::latch start(k_daemons);  // every daemon starts at once
      std::vector<std::thread> threads;
      for (int i = 0; i < k_daemons; ++i)
        threads.emplace_back([&, i] {
          start.arrive_and_wait();
          auto made = daemons[i]->insert_owner({"owner-" + std::to_string(i), "owner", 5});
          auto key = daemons[i]->insert_meta_if_absent("data_key.wrapped", "key-" + std::to_string(i));
          if (!made || !key) ++failures;  // checked on this thread below (Catch is not thread-safe)
          if (made && *made) ++owners;
          if (key && *key) ++keys;
        });
      for (auto& t : threads) t.join();
      CHECK(failures.load() == 0);
      CHECK(owners.load() == 1);
      CHECK(keys.load() == 1);
      const auto owner = s->first_user()->value().id;
      const auto key = s->get_meta("data_key.wrapped")->value_or("");
      CHECK(owner.rfind("owner-", 0) == 0);
      CHECK(key.rfind("key-", 0) == 0);
      // Exactly one user exists.
      int found = 0;
      for (int i = 0; i < k_daemons; ++i) found += s->find_user("owner-" + std::to_string(i))->has_value() ? 1 : 0;
      CHECK(found == 1);
    }
  }
}

TEST_CASE("store conformance: API keys", "[store][conformance]") {
  ON_EACH_BACKEND(b) {
    auto s = b.open();
    REQUIRE(s->insert_user({"u1", "a", 1}));
    REQUIRE(s->insert_user({"u2", "b", 2}));
    const std::string hash1("\x00\x01\xff hash one \x00", 14), hash2(32, '\x7f');
    alumia::ApiKeyRecord k1{"k1", "u1",         "first",     "alm_live_ab12", hash1, alumia::k_all_scopes,
                            100,  std::nullopt, std::nullopt};
    alumia::ApiKeyRecord k2{"k2", "u1", "second", "alm_live_cd34", hash2, 1, 200, 150, std::nullopt};
    alumia::ApiKeyRecord k3{"k3", "u2", "other's",    "alm_live_ef56", std::string(32, 'z'),
                            4,    300,  std::nullopt, std::nullopt};
    for (const auto& k : {k1, k2, k3}) REQUIRE(s->insert_api_key(k));

    auto by_hash = s->find_api_key_by_hash(hash1);
    REQUIRE(by_hash);
    REQUIRE(by_hash->has_value());
    const auto& got = **by_hash;
    CHECK(got.id == "k1");
    CHECK(got.user_id == "u1");
    CHECK(got.name == "first");
    CHECK(got.prefix == "alm_live_ab12");
    CHECK(got.hash == hash1);  // raw bytes, NUL included
    CHECK(got.scopes == alumia::k_all_scopes);
    CHECK(got.created_at == 100);
    CHECK_FALSE(got.last_used_at);
    CHECK_FALSE(got.revoked_at);
    CHECK_FALSE(s->find_api_key_by_hash(std::string("\x00\x01\xff hash one ", 13))->has_value());

    auto by_id = s->find_api_key("k2");
    REQUIRE(by_id);
    REQUIRE(by_id->has_value());
    CHECK((*by_id)->last_used_at == 150);
    CHECK((*by_id)->hash == hash2);
    CHECK_FALSE(s->find_api_key("k9")->has_value());

    auto listed = s->list_api_keys("u1");
    REQUIRE(listed);
    REQUIRE(listed->size() == 2);
    CHECK((*listed)[0].id == "k2");  // newest first
    CHECK((*listed)[1].id == "k1");
    CHECK(s->list_api_keys("u2")->size() == 1);
    CHECK(s->list_api_keys("nobody")->empty());

    REQUIRE(s->touch_api_key("k1", 500));
    CHECK(s->find_api_key("k1")->value().last_used_at == 500);

    auto revoked = s->revoke_api_key("k1", 600);
    REQUIRE(revoked);
    CHECK(*revoked);
    auto again = s->revoke_api_key("k1", 700);
    REQUIRE(again);
    CHECK_FALSE(*again);
    CHECK(s->find_api_key("k1")->value().revoked_at == 600);  // the first revocation stays
    auto unknown = s->revoke_api_key("k9", 700);
    REQUIRE(unknown);
    CHECK_FALSE(*unknown);

    // A second key with the same hash is refused.
    auto dup = k3;
    dup.id = "k4";
    CHECK_FALSE(s->insert_api_key(dup));
    CHECK_FALSE(s->find_api_key("k4")->has_value());
  }
}

TEST_CASE("store conformance: connections list newest first with a stable cursor", "[store][conformance]") {
  ON_EACH_BACKEND(b) {
    auto s = b.open();
    REQUIRE(s->insert_user({"u1", "a", 1}));
    REQUIRE(s->insert_user({"u2", "b", 2}));
    // 7 rows; three share one timestamp, so the order they were made in breaks the tie.
    const std::vector<std::pair<int, int64_t>> rows{{1, 100}, {2, 200}, {3, 300}, {4, 300},
                                                    {5, 300}, {6, 400}, {7, 500}};
    for (const auto& [n, t] : rows) REQUIRE(s->insert_connection(make_connection(id_n(n), "u1", t)));
    REQUIRE(s->insert_connection(make_connection(id_n(50), "u2", 450)));  // someone else's
    auto deleted = make_connection(id_n(60), "u1", 600);
    deleted.deleted_at = 601;
    deleted.status = ConnectionStatus::revoked;
    REQUIRE(s->insert_connection(deleted));
    // Made in one millisecond with ids that sort the other way (v4 ids are random): insertion order wins.
    for (int n : {19, 18, 17}) REQUIRE(s->insert_connection(make_connection(id_n(n), "u1", 50)));

    alumia::ConnectionFilter f;
    f.user_id = "u1";
    const std::vector<std::string> expected{id_n(7), id_n(6), id_n(5),  id_n(4),  id_n(3),
                                            id_n(2), id_n(1), id_n(17), id_n(18), id_n(19)};
    for (std::size_t limit : {1u, 2u, 3u, 7u, 10u, 50u}) {
      CAPTURE(limit);
      CHECK(all_pages(*s, f, limit) == expected);
    }

    SECTION("the last full page has no cursor") {
      Page p;
      p.limit = expected.size();
      auto r = s->list_connections(f, p);
      REQUIRE(r);
      CHECK(r->items.size() == expected.size());
      CHECK_FALSE(r->next_cursor);
    }
    SECTION("filters by connector and status") {
      REQUIRE(s->insert_connection(make_connection(id_n(8), "u1", 700, "stripe", ConnectionStatus::active)));
      alumia::ConnectionFilter by_connector = f;
      by_connector.connector = "stripe";
      auto r = s->list_connections(by_connector, Page{});
      REQUIRE(r);
      CHECK(ids(r->items) == std::vector<std::string>{id_n(8)});
      alumia::ConnectionFilter by_status = f;
      by_status.status = ConnectionStatus::pending;
      CHECK(all_pages(*s, by_status, 4) == expected);
      by_status.connector = "stripe";
      CHECK(s->list_connections(by_status, Page{})->items.empty());
    }
    SECTION("a garbage cursor is BAD_REQUEST") {
      Page p;
      for (const char* cursor : {"not a cursor!", "MTIz"}) {  // "123": no ':'
        CAPTURE(cursor);
        p.cursor = cursor;
        auto r = s->list_connections(f, p);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == ErrorCode::bad_request);
      }
    }
  }
}

TEST_CASE("store conformance: a connection's fields round-trip; by label, expiring, updated with its secrets",
          "[store][conformance]") {
  ON_EACH_BACKEND(b) {
    auto s = b.open();
    REQUIRE(s->insert_user({"u1", "a", 1}));
    Connection c = make_connection(id_n(1), "u1", 10, "google");
    c.label = "work";
    c.auth_type = alumia::AuthType::oauth;
    c.status = ConnectionStatus::active;
    c.account_label = "me@example.com — ünïcode";
    c.scopes = {"openid", "email", "https://www.googleapis.com/auth/drive"};
    c.expires_at = 5'000;
    c.last_refreshed_at = 4'000;
    c.error = alumia::ConnectionError{"REFRESH_FAILED", "it's \"quoted\""};
    REQUIRE(s->insert_connection(c));

    auto found = s->find_connection(c.id);
    REQUIRE(found);
    REQUIRE(found->has_value());
    const Connection& f = **found;
    CHECK(f.user_id == "u1");
    CHECK(f.connector_slug == "google");
    CHECK(f.label == "work");
    CHECK(f.auth_type == alumia::AuthType::oauth);
    CHECK(f.status == ConnectionStatus::active);
    CHECK(f.account_label == c.account_label);
    CHECK(f.scopes == c.scopes);
    CHECK(f.expires_at == 5'000);
    CHECK(f.last_refreshed_at == 4'000);
    REQUIRE(f.error);
    CHECK(f.error->code == "REFRESH_FAILED");
    CHECK(f.error->message == "it's \"quoted\"");
    CHECK(f.created_at == 10);
    CHECK(f.updated_at == 10);
    CHECK_FALSE(f.deleted_at);
    CHECK_FALSE(s->find_connection(id_n(99))->has_value());

    SECTION("by label: the newest that is not deleted") {
      auto newer = make_connection(id_n(2), "u1", 20, "google");
      newer.label = "work";
      REQUIRE(s->insert_connection(newer));
      auto gone = make_connection(id_n(3), "u1", 30, "google");
      gone.label = "work";
      gone.deleted_at = 31;
      REQUIRE(s->insert_connection(gone));
      auto hit = s->find_connection_by_label("u1", "google", "work");
      REQUIRE(hit);
      REQUIRE(hit->has_value());
      CHECK((*hit)->id == id_n(2));
      CHECK_FALSE(s->find_connection_by_label("u2", "google", "work")->has_value());
      CHECK_FALSE(s->find_connection_by_label("u1", "slack", "work")->has_value());
      CHECK_FALSE(s->find_connection_by_label("u1", "google", "home")->has_value());
    }
    SECTION("expiring: active OAuth connections that expire before the time, soonest first") {
      auto soon = make_connection(id_n(2), "u1", 20, "google");
      soon.auth_type = alumia::AuthType::oauth;
      soon.status = ConnectionStatus::active;
      soon.expires_at = 3'000;
      auto later = soon;
      later.id = id_n(3);
      later.expires_at = 9'000;
      auto errored = soon;
      errored.id = id_n(4);
      errored.status = ConnectionStatus::error;
      auto keyed = soon;
      keyed.id = id_n(5);
      keyed.auth_type = alumia::AuthType::api_key;
      auto deleted = soon;
      deleted.id = id_n(6);
      deleted.deleted_at = 21;
      auto no_expiry = soon;
      no_expiry.id = id_n(7);
      no_expiry.expires_at = std::nullopt;
      for (const auto& x : {soon, later, errored, keyed, deleted, no_expiry}) REQUIRE(s->insert_connection(x));
      auto r = s->list_expiring_connections(6'000);
      REQUIRE(r);
      CHECK(ids(*r) == std::vector<std::string>{id_n(2), id_n(1)});
      CHECK(s->list_expiring_connections(3'000)->empty());
    }
    SECTION("update: the row alone, or the row and all its secrets together") {
      const std::vector<SealedValue> first{{"oauth.refresh_token", std::string("r1\0\xff", 4)},
                                           {"oauth.access_token", "a1"}};
      c.updated_at = 11;
      REQUIRE(s->update_connection(c, &first));
      auto loaded = s->load_secrets("connections", c.id);
      REQUIRE(loaded);
      REQUIRE(loaded->size() == 2);
      CHECK((*loaded)[0].field == "oauth.access_token");  // by field
      CHECK((*loaded)[1].blob == std::string("r1\0\xff", 4));

      c.status = ConnectionStatus::error;
      c.error = std::nullopt;
      c.scopes.clear();
      c.expires_at = std::nullopt;
      c.updated_at = 12;
      REQUIRE(s->update_connection(c, nullptr));  // secrets untouched
      auto row = s->find_connection(c.id)->value();
      CHECK(row.status == ConnectionStatus::error);
      CHECK_FALSE(row.error);
      CHECK(row.scopes.empty());
      CHECK_FALSE(row.expires_at);
      CHECK(row.updated_at == 12);
      CHECK(s->load_secrets("connections", c.id)->size() == 2);

      const std::vector<SealedValue> rotated{{"oauth.refresh_token", "r2"}};
      REQUIRE(s->update_connection(c, &rotated));
      auto now = s->load_secrets("connections", c.id);
      REQUIRE(now);
      REQUIRE(now->size() == 1);
      CHECK((*now)[0].blob == "r2");
    }
  }
}

TEST_CASE("store conformance: destroying a connection revokes it and removes its secrets only",
          "[store][conformance]") {
  ON_EACH_BACKEND(b) {
    auto s = b.open();
    REQUIRE(s->insert_user({"u1", "a", 1}));
    auto c = make_connection(id_n(1), "u1", 10);
    REQUIRE(s->insert_connection(c));
    auto other = make_connection(id_n(2), "u1", 11);
    REQUIRE(s->insert_connection(other));
    c.status = ConnectionStatus::active;
    const std::vector<SealedValue> secrets{{"cred.bot_token", "sealed-1"}, {"cred.other", "sealed-2"}};
    REQUIRE(s->update_connection(c, &secrets));
    REQUIRE(s->put_secrets("connections", other.id, {{"cred.bot_token", "keep-me"}}));

    c.updated_at = 30;
    c.deleted_at = std::nullopt;  // destroyed means deleted: at updated_at when the caller did not say
    c.status = ConnectionStatus::active;
    REQUIRE(s->destroy_connection(c));
    CHECK(s->load_secrets("connections", c.id)->empty());
    CHECK(s->load_secrets("connections", other.id)->size() == 1);
    auto found = s->find_connection(c.id)->value();  // deleted rows are still found by id
    CHECK(found.status == ConnectionStatus::revoked);
    CHECK(found.deleted_at == 30);
    alumia::ConnectionFilter f;
    f.user_id = "u1";
    CHECK(ids(s->list_connections(f, Page{})->items) == std::vector<std::string>{other.id});
    CHECK(s->find_connection_by_label("u1", "telegram", c.label)->value_or(Connection{}).id != c.id);
  }
}

TEST_CASE("store conformance: sealed values of any owner; all of them for rotate-master; meta changes together",
          "[store][conformance]") {
  ON_EACH_BACKEND(b) {
    auto s = b.open();
    const std::string binary("\x00\x01\x02\xfe\xff", 5);
    REQUIRE(s->put_secrets("webhook_endpoints", "ep1", {{"secret", binary}, {"previous_secret", "old"}}));
    REQUIRE(s->put_secrets("oauth_clients", "google", {{"client_secret", "cs"}}));
    REQUIRE(s->put_secrets("connections", "c1", {{"a", "1"}}));

    auto ep = s->load_secrets("webhook_endpoints", "ep1");
    REQUIRE(ep);
    REQUIRE(ep->size() == 2);
    CHECK((*ep)[0].field == "previous_secret");
    CHECK((*ep)[1].blob == binary);
    CHECK(s->load_secrets("webhook_endpoints", "ep2")->empty());
    CHECK(s->load_secrets("connections", "ep1")->empty());  // the table is part of the owner

    // put replaces all of the row's values.
    REQUIRE(s->put_secrets("webhook_endpoints", "ep1", {{"secret", "new"}}));
    ep = s->load_secrets("webhook_endpoints", "ep1");
    REQUIRE(ep->size() == 1);
    CHECK((*ep)[0].blob == "new");

    auto all = s->list_all_secrets();
    REQUIRE(all);
    std::vector<std::string> owners;
    for (const auto& v : *all) owners.push_back(v.table + "/" + v.row_id + "/" + v.value.field + "=" + v.value.blob);
    CHECK(owners == std::vector<std::string>{"connections/c1/a=1", "oauth_clients/google/client_secret=cs",
                                             "webhook_endpoints/ep1/secret=new"});

    REQUIRE(s->delete_secrets("webhook_endpoints", "ep1"));
    CHECK(s->load_secrets("webhook_endpoints", "ep1")->empty());
    CHECK(s->list_all_secrets()->size() == 2);
    REQUIRE(s->delete_secrets("webhook_endpoints", "never-had-any"));

    REQUIRE(s->put_meta("data_key.wrapped", "old-wrap"));
    REQUIRE(s->put_meta("rotation.pending", "x"));
    REQUIRE(s->update_meta({{"data_key.wrapped", "new-wrap"}, {"rotation.pending", std::nullopt}, {"added", "1"}}));
    CHECK(s->get_meta("data_key.wrapped")->value_or("") == "new-wrap");
    CHECK_FALSE(s->get_meta("rotation.pending")->has_value());
    CHECK(s->get_meta("added")->value_or("") == "1");
  }
}

TEST_CASE("store conformance: another user's connection and key are NOT_FOUND at the services",
          "[unit][store][core][conformance]") {
  ON_EACH_BACKEND(backend) {
    alumia::test::TempDir dir;
    auto store = backend.open();
    auto catalog = alumia::load_catalog(dir.path() / "connectors.d");
    REQUIRE(catalog);
    alumia::SystemRandom random;
    alumia::test::FakeClock clock;
    alumia::test::ScriptedHttp net;  // no script: no network
    alumia::Sealer sealer(alumia::generate_key(random), random);
    const alumia::EnvLookup env = [](std::string_view) { return std::optional<std::string>(); };
    alumia::KeyService keys(alumia::KeyServiceDeps{*store, clock, random, "live"});
    alumia::TicketBook tickets(*store, clock, random);
    alumia::OAuthClients oauth_clients(*store, sealer, env);
    alumia::ConnectionService connections(alumia::ConnectionServiceDeps{
        *store, *catalog, sealer, clock, random, net, env, oauth_clients, tickets, "http://127.0.0.1:1"});
    auto owner_key = keys.bootstrap_owner();
    REQUIRE(owner_key);
    REQUIRE(owner_key->has_value());
    REQUIRE(store->insert_user({"22222222-2222-4222-8222-222222222222", "second", 5}));
    auto second_key = keys.issue_key("22222222-2222-4222-8222-222222222222", "second", alumia::k_all_scopes);
    REQUIRE(second_key);

    auto a = keys.authenticate("Bearer " + **owner_key);
    auto b = keys.authenticate("Bearer " + *second_key);
    REQUIRE(a);
    REQUIRE(b);
    REQUIRE(a->user.id != b->user.id);

    auto started = connections.start(*a, alumia::StartConnection{"telegram", ""});
    REQUIRE(started);
    const std::string id = started->connection.id;

    auto got = connections.get(*b, id);
    REQUIRE_FALSE(got);
    CHECK(got.error().code == ErrorCode::not_found);
    auto creds = connections.submit_credentials(*b, id, alumia::SubmitCredentials{{{"bot_token", "1"}}});
    REQUIRE_FALSE(creds);
    CHECK(creds.error().code == ErrorCode::not_found);
    auto revoked = connections.revoke(*b, id);
    REQUIRE_FALSE(revoked);
    CHECK(revoked.error().code == ErrorCode::not_found);
    auto listed = connections.list(*b, {}, Page{});
    REQUIRE(listed);
    CHECK(listed->items.empty());
    // The same label for the second user is a separate connection, not a reuse of the first's.
    auto mine = connections.start(*b, alumia::StartConnection{"telegram", ""});
    REQUIRE(mine);
    CHECK(mine->created);
    CHECK(mine->connection.id != id);

    // The owner still sees and owns it.
    CHECK(connections.get(*a, id));
    auto a_list = connections.list(*a, {}, Page{});
    REQUIRE(a_list);
    CHECK(a_list->items.size() == 1);

    // Keys: the second user cannot revoke or see the owner's key.
    auto a_keys = keys.list_api_keys(*a);
    REQUIRE(a_keys);
    REQUIRE(a_keys->size() == 1);
    auto kr = keys.revoke_api_key(*b, a_keys->front().id);
    REQUIRE_FALSE(kr);
    CHECK(kr.error().code == ErrorCode::not_found);
    auto b_keys = keys.list_api_keys(*b);
    REQUIRE(b_keys);
    for (const auto& k : *b_keys) CHECK(k.user_id == b->user.id);
    // (The owner's only key cannot revoke itself: tests/functional/test_key_scopes.cpp.)
    auto spare = keys.issue_key(a->user.id, "spare", alumia::k_all_scopes);
    REQUIRE(spare);
    auto spare_caller = keys.authenticate("Bearer " + *spare);
    REQUIRE(spare_caller);
    CHECK(keys.revoke_api_key(*a, spare_caller->key.id));
    auto again = keys.revoke_api_key(*a, spare_caller->key.id);
    REQUIRE_FALSE(again);
    CHECK(again.error().code == ErrorCode::conflict);
  }
}

// ---- PostgreSQL only ----

TEST_CASE("postgres store: a lost server is SERVICE_UNAVAILABLE, and the store recovers without a reopen",
          "[store][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  alumia::test::PostgresServer server;  // its own: this test stops it
  const std::string info = server.conninfo(server.fresh_database());
  auto opened = alumia::open_postgres_store({info, 2});
  REQUIRE(opened);
  auto& s = **opened;
  REQUIRE(s.insert_user({"u1", "a", 1}));

  server.stop();
  auto lost = s.find_user("u1");
  REQUIRE_FALSE(lost);
  CHECK(lost.error().code == ErrorCode::service_unavailable);
  auto refused = alumia::open_postgres_store({info, 1});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == ErrorCode::service_unavailable);

  server.start();
  // Both pooled connections were cut; the next calls reconnect (and run again on a new connection).
  for (int i = 0; i < 4; ++i) {
    auto u = s.find_user("u1");
    REQUIRE(u);
    CHECK(u->has_value());
  }
  REQUIRE(s.put_meta("after", "restart"));
  CHECK(s.get_meta("after")->value_or("") == "restart");
}

TEST_CASE("store conformance: a connection's refresh lock", "[store][conformance]") {
  ON_EACH_BACKEND(b) {
    auto s = b.open();
    auto held = s->lock_connection(id_n(1));
    REQUIRE(held);
    auto other = s->lock_connection(id_n(2));  // another connection is never held up
    REQUIRE(other);
    if (b.kind() == "sqlite") CHECK(*held == nullptr);  // one daemon per file: its in-process mutex is enough
  }
}

TEST_CASE("postgres store: one daemon's refresh lock holds another daemon off that connection until released",
          "[store][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  auto& server = alumia::test::shared_postgres();
  const std::string info = server.conninfo(server.fresh_database());
  auto a = alumia::open_postgres_store({info, 2});
  auto b = alumia::open_postgres_store({info, 2});
  REQUIRE(a);
  REQUIRE(b);
  auto watcher = alumia::pg::Connection::open(info);
  REQUIRE(watcher);
  auto waiting = [&] {
    auto r = (*watcher)->exec("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted");
    return r ? r->int64(0, 0) : -1;
  };

  auto held = (*a)->lock_connection("conn-1");
  REQUIRE(held);
  REQUIRE(*held != nullptr);
  // B's lock of another connection is granted at once, while A holds conn-1.
  {
    auto other = (*b)->lock_connection("conn-2");
    REQUIRE(other);
  }
  std::atomic<int> state{0};  // 1: B holds conn-1; -1: B's lock failed
  std::thread daemon_b([&] {
    auto mine = (*b)->lock_connection("conn-1");
    state = mine ? 1 : -1;
  });
  CHECK(alumia::test::eventually([&] { return waiting() == 1; }));  // B waits on the server
  CHECK(state.load() == 0);
  held->reset();  // A is done
  CHECK(alumia::test::eventually([&] { return state.load() != 0; }));
  daemon_b.join();
  CHECK(state.load() == 1);

  SECTION("a daemon that dies holding it lets go with its session") {
    auto dying = (*a)->lock_connection("conn-3");
    REQUIRE(dying);
    std::atomic<int> got{0};
    std::thread daemon_c([&] {
      auto mine = (*b)->lock_connection("conn-3");
      got = mine ? 1 : -1;
    });
    REQUIRE(alumia::test::eventually([&] { return waiting() == 1; }));
    // The server ends A's lock session (what it does when A's process is killed and its socket closes).
    REQUIRE((*watcher)->exec(
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted"));
    CHECK(alumia::test::eventually([&] { return got.load() != 0; }));
    daemon_c.join();
    CHECK(got.load() == 1);
    dying->reset();  // its unlock fails quietly on the dead session
  }
}

TEST_CASE("postgres store: a password in the store URL never shows", "[store][pg]") {
  CHECK(alumia::is_postgres_url("postgres://db.example/alumia"));
  CHECK(alumia::is_postgres_url("postgresql://u@db/alumia"));
  CHECK_FALSE(alumia::is_postgres_url("/var/lib/alumia/store.db"));
  CHECK_FALSE(alumia::is_postgres_url("mysql://x"));
  CHECK(alumia::redact_store_url("postgres://alice:s3cr%40t@db.example:5432/alumia?sslmode=require") ==
        "postgres://alice:***@db.example:5432/alumia?sslmode=require");
  CHECK(alumia::redact_store_url("postgresql://alice@db/alumia") == "postgresql://alice@db/alumia");
  CHECK(alumia::redact_store_url("mysql://bob:hunter2@db/a") == "mysql://bob:***@db/a");
  CHECK(alumia::redact_store_url("postgres://bob:p%40ss:w@rd@db/a") == "postgres://bob:***@db/a");
  CHECK(alumia::redact_store_url("postgres://bob:pa/ss@db/a?sslmode=require") ==
        "postgres://bob:***@db/a?sslmode=require");
  CHECK(alumia::redact_store_url("postgres://bob@db:5432/a") == "postgres://bob@db:5432/a");
  CHECK(alumia::redact_store_url("postgres://db:5432/a") == "postgres://db:5432/a");
  CHECK(alumia::redact_store_url("postgres://db/alumia?user=bob&password=hunter2&sslmode=verify-full") ==
        "postgres://db/alumia?user=bob&password=***&sslmode=verify-full");
  CHECK(alumia::redact_store_url("postgres:///alumia?host=/run/postgresql") ==
        "postgres:///alumia?host=/run/postgresql");
  CHECK(alumia::redact_store_url("host=db password=hunter2 dbname=a") == "host=db password=*** dbname=a");
  // `config show` prints the setting only as (set): its URL may hold a password.
  const auto* spec = alumia::find_setting_spec("store");
  REQUIRE(spec != nullptr);
  CHECK(spec->secret);
  CHECK(spec->env == "ALUMIA_STORE");
  CHECK(spec->default_value.empty());

  // libpq's own error for a bad password names the user, never the password.
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  auto& server = alumia::test::shared_postgres();
  const std::string uri = server.uri(server.fresh_database());
  const std::string with_password =
      uri + (uri.find('?') == std::string::npos ? "?" : "&") + "password=pw-MARKER-1f2e&user=no_such_role_x";
  auto refused = alumia::open_postgres_store({with_password, 1});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("pw-MARKER-1f2e") == std::string::npos);
}

namespace {

alumia::OAuthFlowRecord make_flow(const std::string& state_hash, const std::string& connection_id, int64_t expires_at) {
  alumia::OAuthFlowRecord f;
  f.state_hash = state_hash;
  f.connection_id = connection_id;
  f.user_id = "u1";
  f.connector_slug = "github";
  f.redirect_uri = "http://127.0.0.1:7465/api/v1/connections/oauth/callback";
  f.sealed_verifier = std::string("\x00sealed\xff", 8);
  f.expected_issuer = "https://issuer.example";
  f.iss_required = true;
  f.browser_hash = std::string(32, '\x07');
  f.expires_at = expires_at;
  return f;
}

}  // namespace

TEST_CASE("store conformance: OAuth flows: one per connection, found, taken once, expired ones purged",
          "[store][conformance][oauth]") {
  ON_EACH_BACKEND(b) {
    auto s = b.open();
    const std::string h1(32, '\x01');
    const std::string h2(32, '\x02');
    const std::string h3("\x03\x00\x03", 3);  // raw bytes, a NUL among them
    REQUIRE(s->put_oauth_flow(make_flow(h1, id_n(1), 1'000), 0));
    auto found = s->find_oauth_flow(h1);
    REQUIRE(found);
    REQUIRE(found->has_value());
    const auto& f = **found;
    CHECK(f.state_hash == h1);
    CHECK(f.connection_id == id_n(1));
    CHECK(f.user_id == "u1");
    CHECK(f.connector_slug == "github");
    CHECK(f.redirect_uri == "http://127.0.0.1:7465/api/v1/connections/oauth/callback");
    CHECK(f.sealed_verifier == std::string("\x00sealed\xff", 8));
    CHECK(f.expected_issuer == "https://issuer.example");
    CHECK(f.iss_required);
    CHECK(f.browser_hash == std::string(32, '\x07'));
    CHECK(f.expires_at == 1'000);
    CHECK(s->find_oauth_flow(h1)->has_value());  // finding leaves it

    // A new flow of the same connection replaces the old; another connection's stays.
    auto no_pkce = make_flow(h2, id_n(1), 2'000);
    no_pkce.sealed_verifier.clear();
    no_pkce.iss_required = false;
    REQUIRE(s->put_oauth_flow(no_pkce, 0));
    REQUIRE(s->put_oauth_flow(make_flow(h3, id_n(2), 500), 0));
    CHECK_FALSE(s->find_oauth_flow(h1)->has_value());
    auto replaced = s->find_oauth_flow(h2);
    REQUIRE(replaced->has_value());
    CHECK((*replaced)->sealed_verifier.empty());
    CHECK_FALSE((*replaced)->iss_required);
    REQUIRE(s->find_oauth_flow(h3)->has_value());

    // Taken once, on any handle (another daemon): the second take finds nothing.
    auto other = b.open();
    auto taken = other->take_oauth_flow(h2);
    REQUIRE(taken);
    REQUIRE(taken->has_value());
    CHECK((*taken)->expires_at == 2'000);
    CHECK_FALSE(s->take_oauth_flow(h2)->has_value());
    CHECK_FALSE(s->find_oauth_flow(h2)->has_value());

    // An expired flow is still found and taken until a put purges it.
    CHECK(s->find_oauth_flow(h3)->has_value());
    REQUIRE(s->put_oauth_flow(make_flow(h1, id_n(4), 9'000), 500));
    CHECK_FALSE(s->find_oauth_flow(h3)->has_value());
    CHECK(s->find_oauth_flow(h1)->has_value());
  }
}

TEST_CASE("store conformance: OAuth tickets: one per connection, taken once and only for their connection",
          "[store][conformance][oauth]") {
  ON_EACH_BACKEND(b) {
    auto s = b.open();
    const std::string t1(32, '\x11');
    const std::string t2(32, '\x12');
    const std::string t3(32, '\x13');
    REQUIRE(s->put_oauth_ticket({t1, id_n(1), "u1", 7u, 1'000}, 0));
    REQUIRE(s->put_oauth_ticket({t3, id_n(3), "u1", 1u, 100}, 0));
    CHECK_FALSE(s->take_oauth_ticket(t1, id_n(2))->has_value());  // another connection: refused, kept
    auto taken = s->take_oauth_ticket(t1, id_n(1));
    REQUIRE(taken);
    REQUIRE(taken->has_value());
    CHECK((*taken)->hash == t1);
    CHECK((*taken)->connection_id == id_n(1));
    CHECK((*taken)->user_id == "u1");
    CHECK((*taken)->scopes == 7u);
    CHECK((*taken)->expires_at == 1'000);
    CHECK_FALSE(b.open()->take_oauth_ticket(t1, id_n(1))->has_value());  // once, on any handle

    // A newer ticket for the connection voids the earlier; the put purges expired ones of any connection.
    REQUIRE(s->put_oauth_ticket({t1, id_n(1), "u1", 7u, 1'000}, 0));
    REQUIRE(s->put_oauth_ticket({t2, id_n(1), "u1", 3u, 1'000}, 200));
    CHECK_FALSE(s->take_oauth_ticket(t1, id_n(1))->has_value());
    CHECK_FALSE(s->take_oauth_ticket(t3, id_n(3))->has_value());  // expired at 100, purged at 200
    auto second = s->take_oauth_ticket(t2, id_n(1));
    REQUIRE(second->has_value());
    CHECK((*second)->scopes == 3u);
  }
}

TEST_CASE("store conformance: OAuth results: found until they expire, on any handle; expired ones purged",
          "[store][conformance][oauth]") {
  ON_EACH_BACKEND(b) {
    auto s = b.open();
    const std::string r1(32, '\x21');
    const std::string r2(32, '\x22');
    REQUIRE(s->put_oauth_result({r1, true, "success", id_n(1), "Connected GitHub as octo.", 1'000}, 0));
    REQUIRE(s->put_oauth_result({r2, false, "error", id_n(2), "The token exchange failed.", 500}, 0));
    CHECK(s->count_oauth_results(0).value() == 2);
    auto other = b.open();
    for (int reload = 0; reload < 2; ++reload) {
      auto r = other->find_oauth_result(r1, 999);
      REQUIRE(r);
      REQUIRE(r->has_value());
      CHECK((*r)->ok);
      CHECK((*r)->result == "success");
      CHECK((*r)->connection_id == id_n(1));
      CHECK((*r)->message == "Connected GitHub as octo.");
      CHECK((*r)->expires_at == 1'000);
    }
    auto failed = s->find_oauth_result(r2, 0);
    REQUIRE(failed->has_value());
    CHECK_FALSE((*failed)->ok);
    CHECK_FALSE(s->find_oauth_result(r2, 500)->has_value());  // expired
    CHECK(s->count_oauth_results(500).value() == 1);
    CHECK_FALSE(s->find_oauth_result(std::string(32, '\x23'), 0)->has_value());
    // A duplicate id is refused rather than overwriting another browser's outcome.
    CHECK_FALSE(s->put_oauth_result({r1, false, "error", id_n(9), "x", 2'000}, 0));
    CHECK(s->find_oauth_result(r1, 0).value()->message == "Connected GitHub as octo.");
    REQUIRE(s->put_oauth_result({std::string(32, '\x24'), true, "success", id_n(3), "m", 5'000}, 1'000));
    CHECK(s->count_oauth_results(0).value() == 1);  // both earlier ones purged at 1,000
  }
}

TEST_CASE("store conformance: a flow and a ticket taken by many at once on two handles go to exactly one",
          "[store][conformance][oauth]") {
  ON_EACH_BACKEND(b) {
    std::vector<std::unique_ptr<Store>> handles;
    handles.push_back(b.open());
    handles.push_back(b.open());
    for (int round = 0; round < 5; ++round) {
      const std::string h(32, static_cast<char>('a' + round));
      REQUIRE(handles[0]->put_oauth_flow(make_flow(h, id_n(1), 10'000), 0));
      REQUIRE(handles[0]->put_oauth_ticket({h, id_n(1), "u1", 1u, 10'000}, 0));
      constexpr int k_racers = 6;
      std::latch start(k_racers);  // every racer starts at once
      std::atomic<int> flows{0};
      std::atomic<int> tickets{0};
      std::atomic<int> errors{0};
      std::vector<std::thread> racers;
      for (int i = 0; i < k_racers; ++i)
        racers.emplace_back([&, i] {
          start.arrive_and_wait();
          Store& s = *handles[i % 2];
          auto f = s.take_oauth_flow(h);
          auto t = s.take_oauth_ticket(h, id_n(1));
          if (!f || !t) ++errors;
          if (f && f->has_value()) ++flows;
          if (t && t->has_value()) ++tickets;
        });
      for (auto& t : racers) t.join();
      CHECK(errors == 0);
      CHECK(flows == 1);
      CHECK(tickets == 1);
    }
  }
}

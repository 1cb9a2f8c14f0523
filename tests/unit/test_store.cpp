// The SQLite store: migrations on reopen, pagination order and cursors, destroying secrets; and the
// The services' ownership rule (another user's resource is NOT_FOUND, SPEC §2) with two users in one store.
#include <alumia/auth/api_keys.hpp>
#include <alumia/auth/tickets.hpp>
#include <alumia/base/clock.hpp>
#include <alumia/catalog/catalog.hpp>
#include <alumia/connections/connections.hpp>
#include <alumia/connections/oauth_clients.hpp>
#include <alumia/crypto/sealer.hpp>
#include <alumia/net/http.hpp>
#include <alumia/store/store.hpp>

#include "fakes.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using alumia::Connection;
using alumia::ConnectionStatus;
using alumia::ErrorCode;
using alumia::Page;
using alumia::Store;
using alumia::test::TempDir;

std::unique_ptr<Store> open_store(const fs::path& p) {
  auto s = alumia::open_sqlite_store({p, true});
  REQUIRE(s);
  return std::move(*s);
}

Connection make_connection(const std::string& id, const std::string& user, int64_t created,
                           const std::string& slug = "telegram", ConnectionStatus st = ConnectionStatus::pending) {
  Connection c;
  c.id = id;
  c.user_id = user;
  c.connector_slug = slug;
  c.label = "l-" + id.substr(0, 8);
  c.auth_type = alumia::AuthType::api_key;
  c.status = st;
  c.created_at = c.updated_at = created;
  return c;
}

std::string id_n(int n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", n);
  return buf;
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

TEST_CASE("connections list newest first with a stable cursor", "[unit][store]") {
  TempDir dir;
  auto s = open_store(dir.path() / "store.db");
  REQUIRE(s->insert_user({"u1", "a", 1}));
  REQUIRE(s->insert_user({"u2", "b", 2}));
  // 7 rows; three share one timestamp, so the order they were made in breaks the tie.
  const std::vector<std::pair<int, int64_t>> rows{{1, 100}, {2, 200}, {3, 300}, {4, 300}, {5, 300}, {6, 400}, {7, 500}};
  for (const auto& [n, t] : rows) REQUIRE(s->insert_connection(make_connection(id_n(n), "u1", t)));
  REQUIRE(s->insert_connection(make_connection(id_n(50), "u2", 450)));  // someone else's
  auto deleted = make_connection(id_n(60), "u1", 600);
  deleted.deleted_at = 601;
  deleted.status = ConnectionStatus::revoked;
  REQUIRE(s->insert_connection(deleted));

  const std::vector<std::string> expected{id_n(7), id_n(6), id_n(5), id_n(4), id_n(3), id_n(2), id_n(1)};
  for (std::size_t limit : {1u, 2u, 3u, 7u, 50u}) {
    CAPTURE(limit);
    std::vector<std::string> got;
    Page p;
    p.limit = limit;
    for (int pages = 0; pages < 20; ++pages) {
      alumia::ConnectionFilter f;
      f.user_id = "u1";
      auto r = s->list_connections(f, p);
      REQUIRE(r);
      CHECK(r->items.size() <= limit);
      for (const auto& c : r->items) got.push_back(c.id);
      if (!r->next_cursor) break;
      CHECK(r->items.size() == limit);
      p.cursor = r->next_cursor;
    }
    CHECK(got == expected);
  }

  SECTION("the last full page has no cursor") {
    alumia::ConnectionFilter f;
    f.user_id = "u1";
    Page p;
    p.limit = 7;
    auto r = s->list_connections(f, p);
    REQUIRE(r);
    CHECK(r->items.size() == 7);
    CHECK_FALSE(r->next_cursor);
  }
  SECTION("filters by connector and status") {
    REQUIRE(s->insert_connection(make_connection(id_n(8), "u1", 700, "stripe", ConnectionStatus::active)));
    alumia::ConnectionFilter f;
    f.user_id = "u1";
    f.connector = "stripe";
    auto r = s->list_connections(f, Page{});
    REQUIRE(r);
    REQUIRE(r->items.size() == 1);
    CHECK(r->items[0].id == id_n(8));
    alumia::ConnectionFilter g;
    g.user_id = "u1";
    g.status = ConnectionStatus::pending;
    auto q = s->list_connections(g, Page{});
    REQUIRE(q);
    CHECK(q->items.size() == 7);
  }
  SECTION("a garbage cursor is BAD_REQUEST") {
    alumia::ConnectionFilter f;
    f.user_id = "u1";
    Page p;
    p.cursor = "not a cursor!";
    auto r = s->list_connections(f, p);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::bad_request);
  }
  SECTION("cursor round trip") {
    const auto c = alumia::encode_cursor(1234, id_n(3));
    auto d = alumia::decode_cursor(c);
    REQUIRE(d);
    CHECK(d->first == 1234);
    CHECK(d->second == id_n(3));
    CHECK_FALSE(alumia::decode_cursor("%%%"));
  }
}

TEST_CASE("connections made in one millisecond list in the order they were made, across pages", "[unit][store]") {
  TempDir dir;
  auto s = open_store(dir.path() / "store.db");
  REQUIRE(s->insert_user({"u1", "a", 1}));
  // Inserted with ids that sort the other way (v4 ids are random): insertion order must win.
  for (int n : {9, 8, 7}) REQUIRE(s->insert_connection(make_connection(id_n(n), "u1", 300)));
  const std::vector<std::string> expected{id_n(7), id_n(8), id_n(9)};  // newest (last made) first
  for (std::size_t limit : {1u, 2u, 50u}) {
    CAPTURE(limit);
    std::vector<std::string> got;
    Page p;
    p.limit = limit;
    for (int pages = 0; pages < 10; ++pages) {
      alumia::ConnectionFilter f;
      f.user_id = "u1";
      auto r = s->list_connections(f, p);
      REQUIRE(r);
      for (const auto& c : r->items) got.push_back(c.id);
      if (!r->next_cursor) break;
      p.cursor = r->next_cursor;
    }
    CHECK(got == expected);
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

TEST_CASE("another user's connection and key are NOT_FOUND at the services", "[unit][store][core]") {
  TempDir dir;
  auto store = open_store(dir.path() / "store.db");
  auto catalog = alumia::load_catalog(dir.path() / "connectors.d");
  REQUIRE(catalog);
  alumia::SystemRandom random;
  alumia::test::FakeClock clock;
  alumia::test::ScriptedHttp net;  // no script: no network
  alumia::Sealer sealer(alumia::generate_key(random), random);
  const alumia::EnvLookup env = [](std::string_view) { return std::optional<std::string>(); };
  alumia::KeyService keys(alumia::KeyServiceDeps{*store, clock, random, "live"});
  alumia::TicketBook tickets(clock, random);
  alumia::OAuthClients oauth_clients(*store, sealer, env);
  alumia::ConnectionService connections(alumia::ConnectionServiceDeps{*store, *catalog, sealer, clock, random, net, env,
                                                                      oauth_clients, tickets, "http://127.0.0.1:1"});
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

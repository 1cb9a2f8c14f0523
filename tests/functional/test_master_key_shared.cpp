// One master key for the daemons of one PostgreSQL store, named by a setting (issue 17 item 2,
// docs/SCALE-OUT.md, SPEC §11): master-key-file (a key file outside the data directories) and
// master-key-name (a Secret Service item). Real daemons:
//  - two started at the same moment on a fresh database, with one key file that does not exist yet,
//    end up with one key (the file is created without replacing; the store makes the data key once),
//    and a secret sealed on either opens on the other — three rounds, each on a fresh database;
//  - a key file that group or others may read, or a relative path, stops the start and is left as it is;
//  - rotate-master with the shared key: rotations on both daemons at once take turns (the store's lock),
//    the running daemons keep working, both start again on the rotated key; moving the key to another
//    backend is refused (every daemon reads it where the setting says);
//  - [secret-service]: the same start race, four daemons, on one Secret Service item (run under
//    with-keyring.sh).
#include "cli_helpers.hpp"
#include "postgres.hpp"
#include "process.hpp"
#include "skip.hpp"
#include "webhook_helpers.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace alumia::test;
using nlohmann::json;
namespace wh = alumia::test::webhooks;

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// The daemons' constructors run at once (each waits until its daemon is up); a start that failed is
// reported with its error.
std::vector<std::unique_ptr<Daemon>> start_all(const std::vector<fs::path>& homes, const Daemon::Options& options) {
  std::vector<std::unique_ptr<Daemon>> daemons(homes.size());
  std::vector<std::string> errors(homes.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < homes.size(); ++i)
    threads.emplace_back([&, i] {
      try {
        daemons[i] = std::make_unique<Daemon>(homes[i], options);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < homes.size(); ++i) {
    INFO("daemon " << i << ": " << errors[i]);
    REQUIRE(daemons[i]);
  }
  return daemons;
}

std::pair<std::unique_ptr<Daemon>, std::unique_ptr<Daemon>> start_together(const fs::path& a, const fs::path& b,
                                                                           const Daemon::Options& options) {
  auto both = start_all({a, b}, options);
  return {std::move(both[0]), std::move(both[1])};
}

// An endpoint created (its secret sealed) on `sealer`; a delivery signed with it verifies on `opener`,
// which must unseal the secret with the data key both hold.
void sealed_on_opens_on(const Daemon& sealer, const Daemon& opener, int n) {
  const json created = wh::create_endpoint(sealer, {{"provider", "github"}, {"label", "shared key"}});
  const auto signer =
      wh::make_signer("github", created["secret"].get<std::string>(), created["endpoint"]["id"].get<std::string>());
  // Another daemon learns of the new endpoint within a second (SPEC §12: NOTIFY): until then it says 404.
  const auto delivery = wh::make_delivery(signer, n);
  HttpReply reply;
  CHECK(eventually(
      [&] {
        reply = wh::send(opener, signer, delivery);
        return reply.status != 404;
      },
      std::chrono::seconds(5)));
  INFO(reply.body);
  CHECK(reply.status == 200);
  const auto forged = wh::send(opener, signer, wh::make_delivery(signer, n + 1, true));
  CHECK(forged.status == 401);
}

std::string keyring_location(const Daemon& d) {
  auto st = d.api("GET", "/api/v1/status");
  REQUIRE(st.status == 200);
  return st.json()["data"]["keyring"]["location"].get<std::string>();
}

HttpReply rotate(const Daemon& d, const json& body = json::object()) {
  return d.api("POST", "/api/v1/admin/master-key/rotate", body.dump());
}

// A 0700 directory for the shared key (its parent must exist; the daemons do not create it).
fs::path key_dir(const TempDir& dir) {
  const fs::path keys = dir.path() / "shared keys";
  fs::create_directory(keys);
  fs::permissions(keys, fs::perms::owner_all);
  return keys;
}

}  // namespace

TEST_CASE("two daemons started together on a fresh PostgreSQL make one shared master key file",
          "[postgres][keyring][cluster]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  auto& server = shared_postgres();
  for (int round = 0; round < 3; ++round) {
    INFO("round " << round);
    TempDir dir;
    const fs::path key_file = key_dir(dir) / "alumia-master.key";
    REQUIRE_FALSE(fs::exists(key_file));
    auto options = daemon_options(
        {{"ALUMIA_STORE", server.uri(server.fresh_database())}, {"ALUMIA_MASTER_KEY_FILE", key_file.string()}});
    auto [a, b] = start_together(dir.path() / "a", dir.path() / "b", options);

    // One key, in the named file (0600), none in either data directory; both daemons say where it is.
    REQUIRE(fs::exists(key_file));
    CHECK(mode_of(key_file) == 0600);
    CHECK_FALSE(fs::exists(a->home() / "master.key"));
    CHECK_FALSE(fs::exists(b->home() / "master.key"));
    CHECK(keyring_location(*a) == "the key file '" + key_file.string() + "'");
    CHECK(keyring_location(*b) == keyring_location(*a));

    // Both unwrapped the one data key: what either seals, the other opens.
    sealed_on_opens_on(*a, *b, 10);
    sealed_on_opens_on(*b, *a, 20);
    stop_clean(*a);
    stop_clean(*b);

    // The key file outlives them: a later start reads it and opens what was sealed.
    const std::string key = read_file(key_file);
    Daemon again(dir.path() / "a", options);
    sealed_on_opens_on(again, again, 30);
    CHECK(read_file(key_file) == key);
    stop_clean(again);
  }
}

TEST_CASE("a shared master key file that group or others may read, or a relative path, stops the start", "[keyring]") {
  TempDir dir;
  const fs::path key_file = key_dir(dir) / "alumia-master.key";
  auto start = [&](const std::string& setting) {
    auto env = cli_env();
    env["ALUMIA_HOME"] = (dir.path() / "home").string();
    env["ALUMIA_MASTER_KEY_FILE"] = setting;
    return run({ALUMIA_DAEMON_BIN, "--listen", "127.0.0.1:0", "--keyring", "file"}, env, "", std::chrono::seconds(30));
  };
  {
    // Made by a first daemon, then loosened by mistake.
    Daemon d(dir.path() / "home", daemon_options({{"ALUMIA_MASTER_KEY_FILE", key_file.string()}}));
    stop_clean(d);
  }
  const std::string key = read_file(key_file);
  REQUIRE(::chmod(key_file.c_str(), 0644) == 0);
  const auto loose = start(key_file.string());
  INFO(loose.err);
  CHECK(loose.exit_code == 1);
  CHECK(loose.err.find("cannot open the master key") != std::string::npos);
  CHECK(loose.err.find(key_file.string()) != std::string::npos);
  CHECK(loose.err.find("chmod 600") != std::string::npos);
  CHECK(read_file(key_file) == key);  // not replaced
  CHECK(mode_of(key_file) == 0644);   // nor "fixed" behind the operator's back

  const auto relative = start("keys/alumia-master.key");
  INFO(relative.err);
  CHECK(relative.exit_code == 1);
  CHECK(relative.err.find("bad setting master-key-file from ALUMIA_MASTER_KEY_FILE") != std::string::npos);
  CHECK(relative.err.find("must be an absolute path") != std::string::npos);
}

TEST_CASE("rotate-master with a shared key file: rotations take turns, every daemon starts on the new key",
          "[postgres][keyring][cluster]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  auto& server = shared_postgres();
  TempDir dir;
  const fs::path key_file = key_dir(dir) / "alumia-master.key";
  auto options = daemon_options(
      {{"ALUMIA_STORE", server.uri(server.fresh_database())}, {"ALUMIA_MASTER_KEY_FILE", key_file.string()}});
  auto [a, b] = start_together(dir.path() / "a", dir.path() / "b", options);
  const json created = wh::create_endpoint(*a, {{"provider", "github"}, {"label", "rotated"}});
  const auto signer =
      wh::make_signer("github", created["secret"].get<std::string>(), created["endpoint"]["id"].get<std::string>());
  const std::string first_key = read_file(key_file);

  // Moving a shared key to another backend is refused: every daemon reads it where the setting says.
  const auto moved = rotate(*a, {{"to", "secret-service"}});
  INFO(moved.body);
  CHECK(moved.status == 409);
  CHECK(moved.json()["error"]["code"] == "CONFLICT");
  CHECK(moved.json()["error"]["message"].get<std::string>().find("master-key-file") != std::string::npos);
  CHECK(read_file(key_file) == first_key);

  // Rotations on both daemons at once, three times: each waits for the other's to end, then rotates the
  // key the other left. Interleaved, one could save its key after the other's and have the store wrapped
  // by a key the file no longer holds.
  int n = 100;
  for (int i = 0; i < 3; ++i) {
    HttpReply ra, rb;
    std::thread ta([&] { ra = rotate(*a); });
    std::thread tb([&] { rb = rotate(*b); });
    ta.join();
    tb.join();
    INFO(ra.body << "\n" << rb.body);
    CHECK(ra.status == 200);
    CHECK(rb.status == 200);
    // The running daemons keep the data key they hold.
    CHECK(wh::send(*a, signer, wh::make_delivery(signer, ++n)).status == 200);
    CHECK(wh::send(*b, signer, wh::make_delivery(signer, ++n)).status == 200);
  }
  CHECK(read_file(key_file) != first_key);
  CHECK(mode_of(key_file) == 0600);
  stop_clean(*a);
  stop_clean(*b);

  // Both start again, reading the rotated key from the shared file, and open what was sealed before.
  auto [a2, b2] = start_together(dir.path() / "a", dir.path() / "b", options);
  CHECK(wh::send(*a2, signer, wh::make_delivery(signer, ++n)).status == 200);
  CHECK(wh::send(*b2, signer, wh::make_delivery(signer, ++n)).status == 200);
  sealed_on_opens_on(*b2, *a2, 200);
  stop_clean(*a2);
  stop_clean(*b2);

  // The first key no longer opens the store.
  const std::string rotated = read_file(key_file);
  { std::ofstream(key_file, std::ios::trunc) << first_key; }
  auto env = cli_env();
  for (const auto& [k, v] : options.env) env[k] = v;
  env["ALUMIA_HOME"] = (dir.path() / "a").string();
  const auto old_key =
      run({ALUMIA_DAEMON_BIN, "--listen", "127.0.0.1:0", "--keyring", "file"}, env, "", std::chrono::seconds(30));
  INFO(old_key.err);
  CHECK(old_key.exit_code == 1);
  CHECK(old_key.err.find("cannot unwrap the data key") != std::string::npos);
}

TEST_CASE("two daemons started together on a fresh PostgreSQL make one shared Secret Service item",
          "[postgres][keyring][cluster][secret-service]") {
  const char* session = std::getenv("ALUMIA_KEYRING_SESSION");
  if (session == nullptr || *session == '\0') ALUMIA_SKIP("not inside tests/support/with-keyring.sh");
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  auto& server = shared_postgres();
  TempDir dir;
  const std::string name = "alumia-test-shared-" + std::to_string(std::random_device{}());
  auto options =
      daemon_options({{"ALUMIA_STORE", server.uri(server.fresh_database())}, {"ALUMIA_MASTER_KEY_NAME", name}});
  options.with_keyring_file = false;
  options.extra_args = {"--keyring", "secret-service"};
  // Four at once: a Secret Service item cannot be created only if absent, so they take turns on the
  // store's lock while the first makes it.
  auto daemons = start_all({dir.path() / "a", dir.path() / "b", dir.path() / "c", dir.path() / "d"}, options);
  for (const auto& d : daemons) {
    CHECK(d->log().find("master key: secret-service") != std::string::npos);
    CHECK(keyring_location(*d) == "the Secret Service (item com.alumia.connect.MasterKey, store=" + name + ")");
    CHECK_FALSE(fs::exists(d->home() / "master.key"));
  }
  for (std::size_t i = 0; i < daemons.size(); ++i)
    sealed_on_opens_on(*daemons[i], *daemons[(i + 1) % daemons.size()], 10 * static_cast<int>(i + 1));
  for (auto& d : daemons) stop_clean(*d);
  // Another data directory naming the item opens the store too.
  Daemon e(dir.path() / "e", options);
  sealed_on_opens_on(e, e, 100);
  stop_clean(e);
}

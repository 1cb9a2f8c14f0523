// Master key rotation (issue 16 item 5, SPEC §11): `alumia-connect keys rotate-master [--dry-run]
// [--to BACKEND]` against the real daemon. After a rotation every sealed value still opens (the
// daemon's dry run opens each one; a signed delivery verifies with the endpoint's sealed secret) and
// the old master key no longer opens the store; a dry run, and a rotation refused because one value
// does not open, change nothing. The [secret-service] case moves the key between the Secret Service
// and the key file under tests/support/with-keyring.sh.
#include "cli_helpers.hpp"
#include "postgres.hpp"
#include "process.hpp"
#include "skip.hpp"
#include "webhook_helpers.hpp"

#include <alumia/store/store.hpp>

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace {

namespace fs = std::filesystem;
using alumia::test::cli;
using alumia::test::Daemon;
using alumia::test::daemon_options;
using alumia::test::json_out;
using alumia::test::TempDir;
using nlohmann::json;
namespace wh = alumia::test::webhooks;

void write_private(const fs::path& p, const std::string& text) {
  {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << text;
  }
  fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
}

// The meta rows that hold the data key's wrapping, read through the store (the daemon may be running).
std::optional<std::string> meta(const fs::path& home, std::string_view key) {
  auto store = alumia::test::open_store_of(home);
  REQUIRE(store);
  auto value = (*store)->get_meta(key);
  REQUIRE(value);
  return *value;
}

struct Sealed {
  wh::Signer signer;
  std::size_t values = 0;  // sealed values the daemon holds
};

// A GitHub endpoint (its secret and relay secret sealed) and an OAuth client (its secret sealed).
Sealed seal_some(const Daemon& d) {
  const json created = wh::create_endpoint(d, {{"provider", "github"}, {"label", "rotation"}});
  Sealed s;
  s.signer =
      wh::make_signer("github", created["secret"].get<std::string>(), created["endpoint"]["id"].get<std::string>());
  auto client = d.api("POST", "/api/v1/oauth-clients/github",
                      json{{"clientId", "Iv1.rotation"}, {"clientSecret", "rotation-client-secret-0123456789"}}.dump());
  INFO(client.body);
  REQUIRE(client.status / 100 == 2);
  auto store = alumia::test::open_store_of(d.home());
  REQUIRE(store);
  auto all = (*store)->list_all_secrets();
  REQUIRE(all);
  s.values = all->size();
  REQUIRE(s.values >= 2);
  return s;
}

// Every sealed value opens: the daemon's dry run opens each one.
void check_every_value_opens(const Daemon& d, std::size_t expected) {
  const json dry = json_out(cli(d, {"--json", "keys", "rotate-master", "--dry-run"}));
  CHECK(dry["dryRun"] == true);
  CHECK(dry["secretsChecked"] == expected);
}

void check_delivery_verifies(const Daemon& d, const wh::Signer& s, int n) {
  auto r = wh::send(d, s, wh::make_delivery(s, n));
  INFO(r.body);
  CHECK(r.status / 100 == 2);
}

// Starts the daemon on `home` with the key file, expecting it to refuse (the master key does not fit).
alumia::test::ProcessResult start_expecting_exit(const fs::path& home) {
  auto env = alumia::test::cli_env();
  env["ALUMIA_HOME"] = home.string();
  return alumia::test::run({ALUMIA_DAEMON_BIN, "--listen", "127.0.0.1:0", "--keyring", "file"}, env, "",
                           std::chrono::seconds(30));
}

}  // namespace

TEST_CASE("rotate-master: every secret opens after it, the old master key no longer does", "[secrets][rotate]") {
  TempDir dir;
  const fs::path home = dir.path() / "home";
  std::string old_key;
  std::string new_key;
  std::size_t values = 0;
  {
    Daemon d(home, daemon_options());
    const Sealed sealed = seal_some(d);
    values = sealed.values;
    old_key = alumia::test::read_file(home / "master.key");
    const auto old_wrapping = meta(home, "data_key.wrapped");

    auto rotated = cli(d, {"keys", "rotate-master"});
    REQUIRE_EXIT(rotated, 0);
    CHECK(rotated.out.find("Rotated the master key") != std::string::npos);
    CHECK(rotated.out.find(old_key.substr(0, 12)) == std::string::npos);
    new_key = alumia::test::read_file(home / "master.key");
    CHECK(new_key != old_key);
    CHECK(meta(home, "data_key.wrapped") != old_wrapping);
    CHECK_FALSE(meta(home, "data_key.wrapped.next"));
    struct stat st {};
    REQUIRE(::stat((home / "master.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 077) == 0);

    // The running daemon goes on: its sealed values open, deliveries verify.
    check_every_value_opens(d, values);
    check_delivery_verifies(d, sealed.signer, 1);
    CHECK(d.log().find("master key rotated") != std::string::npos);
    CHECK(d.log().find(old_key.substr(0, 12)) == std::string::npos);
    CHECK(d.log().find(new_key.substr(0, 12)) == std::string::npos);
    alumia::test::stop_clean(d);

    // The old master key no longer opens the store.
    write_private(home / "master.key", old_key);
    auto refused = start_expecting_exit(home);
    INFO(refused.err);
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("cannot unwrap the data key") != std::string::npos);

    // The new one does, and every value still opens after a restart.
    write_private(home / "master.key", new_key);
    Daemon again(home, daemon_options());
    check_every_value_opens(again, values);
    check_delivery_verifies(again, sealed.signer, 2);
    alumia::test::stop_clean(again);
  }
}

TEST_CASE("rotate-master --dry-run and a refused rotation change nothing", "[secrets][rotate]") {
  TempDir dir;
  const fs::path home = dir.path() / "home";
  Daemon d(home, daemon_options());
  const Sealed sealed = seal_some(d);
  const std::string key = alumia::test::read_file(home / "master.key");
  const auto wrapping = meta(home, "data_key.wrapped");

  auto dry = cli(d, {"keys", "rotate-master", "--dry-run"});
  REQUIRE_EXIT(dry, 0);
  CHECK(dry.out.find("nothing was changed") != std::string::npos);
  CHECK(alumia::test::read_file(home / "master.key") == key);
  CHECK(meta(home, "data_key.wrapped") == wrapping);
  CHECK_FALSE(meta(home, "data_key.wrapped.next"));

  SECTION("bad requests") {
    auto r = d.api("POST", "/api/v1/admin/master-key/rotate", R"({"to":"auto"})");
    CHECK(r.status == 400);
    r = d.api("POST", "/api/v1/admin/master-key/rotate", R"({"dryRun":"yes"})");
    CHECK(r.status == 400);
    r = d.api("POST", "/api/v1/admin/master-key/rotate", R"({"force":true})");
    CHECK(r.status == 400);
    REQUIRE_EXIT(cli(d, {"keys", "rotate-master", "--to", "nowhere"}), 2);
  }
  SECTION("a sealed value that does not open aborts it") {
    // A ciphertext moved to another row no longer opens (its AAD names the row).
    {
      auto store = alumia::test::open_store_of(home);
      REQUIRE(store);
      auto client = (*store)->load_secrets("oauth_clients", "github");
      REQUIRE(client);
      REQUIRE_FALSE(client->empty());
      REQUIRE((*store)->put_secrets("oauth_clients", "planted", *client));
    }
    auto refused = cli(d, {"keys", "rotate-master"});
    INFO(refused.err);
    CHECK(refused.exit_code == 6);  // CONFLICT
    CHECK(refused.err.find("do not open") != std::string::npos);
    CHECK(refused.err.find("oauth_clients planted") != std::string::npos);
    CHECK(refused.err.find("nothing was changed") != std::string::npos);
    auto refused_dry = cli(d, {"keys", "rotate-master", "--dry-run"});
    CHECK(refused_dry.exit_code == 6);
  }
  CHECK(alumia::test::read_file(home / "master.key") == key);
  CHECK(meta(home, "data_key.wrapped") == wrapping);
  CHECK_FALSE(meta(home, "data_key.wrapped.next"));
  check_delivery_verifies(d, sealed.signer, 1);
  alumia::test::stop_clean(d);
}

TEST_CASE("a rotation interrupted after the new key was saved is finished at the next start", "[secrets][rotate]") {
  TempDir dir;
  const fs::path home = dir.path() / "home";
  std::size_t values = 0;
  {
    Daemon d(home, daemon_options());
    values = seal_some(d).values;
    alumia::test::stop_clean(d);
  }
  const auto old_wrapping = meta(home, "data_key.wrapped");
  {
    Daemon d(home, daemon_options());
    REQUIRE_EXIT(cli(d, {"keys", "rotate-master"}), 0);
    alumia::test::stop_clean(d);
  }
  const auto new_wrapping = meta(home, "data_key.wrapped");
  REQUIRE(new_wrapping != old_wrapping);
  // What a crash between steps 3 and 4 leaves (master_key_rotation.hpp): the new key saved, the old
  // wrapping in force and the new one still `.next`.
  {
    auto store = alumia::test::open_store_of(home);
    REQUIRE(store);
    REQUIRE((*store)->update_meta({{"data_key.wrapped", *old_wrapping}, {"data_key.wrapped.next", *new_wrapping}}));
  }
  Daemon d(home, daemon_options());
  CHECK(d.log().find("finished a master-key rotation that was interrupted") != std::string::npos);
  CHECK(meta(home, "data_key.wrapped") == new_wrapping);
  CHECK_FALSE(meta(home, "data_key.wrapped.next"));
  check_every_value_opens(d, values);
  alumia::test::stop_clean(d);
}

TEST_CASE("rotate-master moves the key between the Secret Service and the key file", "[secrets][secret-service]") {
  const char* session = std::getenv("ALUMIA_KEYRING_SESSION");
  if (session == nullptr || *session == '\0') ALUMIA_SKIP("not inside tests/support/with-keyring.sh");
  TempDir dir;
  const fs::path home = dir.path() / "home";
  Daemon::Options options = daemon_options();
  options.with_keyring_file = false;
  options.extra_args = {"--keyring", "auto"};
  std::size_t values = 0;
  std::string file_key;
  wh::Signer signer;
  {
    Daemon d(home, options);  // auto with a Secret Service: the key is created there
    REQUIRE(d.log().find("master key: secret-service") != std::string::npos);
    const Sealed sealed = seal_some(d);
    values = sealed.values;
    signer = sealed.signer;
    REQUIRE_FALSE(fs::exists(home / "master.key"));
    const json moved = json_out(cli(d, {"--json", "keys", "rotate-master", "--to", "file"}));
    CHECK(moved["from"]["backend"] == "secret-service");
    CHECK(moved["to"]["backend"] == "file");
    REQUIRE(fs::exists(home / "master.key"));
    file_key = alumia::test::read_file(home / "master.key");
    check_every_value_opens(d, values);
    alumia::test::stop_clean(d);
  }
  {
    Daemon d(home, options);  // the Secret Service item is gone: auto finds the key file
    CHECK(d.log().find("master key: file") != std::string::npos);
    check_every_value_opens(d, values);
    check_delivery_verifies(d, signer, 1);
    const json back = json_out(cli(d, {"--json", "keys", "rotate-master", "--to", "secret-service"}));
    CHECK(back["from"]["backend"] == "file");
    CHECK(back["to"]["backend"] == "secret-service");
    CHECK_FALSE(fs::exists(home / "master.key"));
    alumia::test::stop_clean(d);
  }
  {
    Daemon d(home, options);
    CHECK(d.log().find("master key: secret-service") != std::string::npos);
    check_every_value_opens(d, values);
    check_delivery_verifies(d, signer, 2);
    alumia::test::stop_clean(d);
  }
  // The key file's key, moved away from, no longer opens the store.
  write_private(home / "master.key", file_key);
  auto refused = start_expecting_exit(home);
  INFO(refused.err);
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("cannot unwrap the data key") != std::string::npos);
}

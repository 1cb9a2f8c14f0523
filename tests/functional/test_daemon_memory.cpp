// What the daemon keeps mapped once it has started (issue 13 item 5, idle RSS <= 12 MB; the figures are
// bench/idle_rss.sh's). Libraries linked for a moment's use cost resident memory for the process's whole
// life just by being mapped (relocations, constructors, fault-around), so the Secret Service client
// (libsecret, and through it GLib, GObject and GIO) is loaded only when a Secret Service call is made,
// and the daemon makes those calls in a short-lived child (daemon/keyring_helper.hpp): with
// --keyring file, and with the Secret Service too, the daemon never maps it. The [secret-service]
// case runs under tests/support/with-keyring.sh (a throwaway keyring). libpq (and what it brings: Kerberos,
// LDAP, SASL) is loaded only when a PostgreSQL store is opened (common/store/pg_conn.cpp): a daemon on
// SQLite never maps it, and one whose libpq cannot be loaded says which package to install. GnuTLS, which
// Debian's libmicrohttpd links for HTTPS, is never loaded (daemon/gnutls_on_demand.cpp), nor libidn2 until
// a public base URL is judged (common/net/public_base_url.cpp).
#include "postgres.hpp"
#include "process.hpp"
#include "skip.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

using alumia::test::Daemon;
using alumia::test::TempDir;

bool has_env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

std::vector<std::string> mapped_files(int pid) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::vector<std::string> out;
  for (std::string line; std::getline(maps, line);)
    if (const auto slash = line.find('/'); slash != std::string::npos) out.push_back(line.substr(slash));
  return out;
}

// The files a serving daemon maps; empty when its maps cannot be read.
std::vector<std::string> serving_daemon_files(Daemon& d) {
  REQUIRE(d.api("GET", "/api/v1/status").status == 200);  // started, master key read, listeners serving
  return mapped_files(d.process().pid());
}

bool maps_file(const std::vector<std::string>& files, const std::string& part) {
  for (const auto& f : files)
    if (f.find(part) != std::string::npos) return true;
  return false;
}

// The daemon is not dumpable (PR_SET_DUMPABLE 0), so only root (CAP_SYS_PTRACE) reads its maps.
constexpr const char* k_maps_unreadable = "cannot read the daemon's /proc/PID/maps (it is not dumpable; run as root)";

// libpq and the libraries only it brings (Debian's libpq5: GSSAPI/Kerberos, LDAP, SASL).
constexpr const char* k_libpq_and_deps[] = {"libpq.so", "libgssapi_krb5", "libkrb5.so", "libldap", "libsasl2"};

void check_no_glib(Daemon& d) {
  const auto files = serving_daemon_files(d);
  if (files.empty()) ALUMIA_SKIP(k_maps_unreadable);
  for (const auto& f : files) {
    INFO(f);
    CHECK(f.find("libsecret-1") == std::string::npos);
    CHECK(f.find("libglib-2.0") == std::string::npos);
    CHECK(f.find("libgio-2.0") == std::string::npos);
    CHECK(f.find("libgobject-2.0") == std::string::npos);
  }
}

}  // namespace

TEST_CASE("a daemon with --keyring file never maps libsecret or GLib", "[memory]") {
  TempDir dir;
  Daemon d(dir.path() / "home");  // --keyring file
  check_no_glib(d);
  CHECK(d.stop() == 0);
}

TEST_CASE("with the Secret Service the daemon reads its master key in a helper and never maps libsecret",
          "[memory][secret-service]") {
  if (!has_env("ALUMIA_KEYRING_SESSION")) ALUMIA_SKIP("not inside tests/support/with-keyring.sh");
  TempDir dir;
  const auto home = dir.path() / "home";
  Daemon::Options options;
  options.with_keyring_file = false;
  options.extra_args = {"--keyring", "secret-service"};
  {
    Daemon d(home, options);  // creates the key in the Secret Service
    CHECK(d.log().find("master key: secret-service") != std::string::npos);
    REQUIRE(d.api("POST", "/api/v1/webhook-endpoints", R"({"provider":"github","label":"sealed"})").status / 100 == 2);
    check_no_glib(d);
    CHECK(d.stop() == 0);
  }
  Daemon again(home, options);  // reads it back: the data key unwraps with it
  CHECK(again.log().find("master key: secret-service") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(home / "master.key"));
  const auto listed = again.api("GET", "/api/v1/webhook-endpoints");
  CHECK(listed.status == 200);
  CHECK(listed.body.find("sealed") != std::string::npos);
  check_no_glib(again);
  CHECK(again.stop() == 0);
}

// About the SQLite store by nature: the PostgreSQL pass runs every daemon on PostgreSQL, which maps libpq.
TEST_CASE("a daemon on the SQLite store never maps libpq or what it brings", "[memory][sqlite-only]") {
  TempDir dir;
  Daemon d(dir.path() / "home");
  const auto files = serving_daemon_files(d);
  if (files.empty()) ALUMIA_SKIP(k_maps_unreadable);
  CHECK(maps_file(files, "libsqlite3"));  // the maps were read whole: the store's library is there
  for (const char* lib : k_libpq_and_deps) {
    INFO(lib);
    CHECK_FALSE(maps_file(files, lib));
  }
  CHECK(d.stop() == 0);
}

// GnuTLS and what it brings: libmicrohttpd refers to it for HTTPS, which no listener uses
// (daemon/gnutls_on_demand.cpp; test_gnutls_on_demand.cpp serves TLS through it). A PostgreSQL store maps
// it through libpq (libldap), hence [sqlite-only].
constexpr const char* k_gnutls_and_deps[] = {"libgnutls",  "libp11-kit", "libnettle",
                                             "libhogweed", "libgmp",     "libtasn1"};

TEST_CASE("a daemon never maps GnuTLS, nor libidn2 until it judges a public base URL", "[memory][sqlite-only]") {
  TempDir dir;
  {
    Daemon::Options options;
    options.extra_args = {"--public-listen", "127.0.0.1:0"};
    Daemon d(dir.path() / "plain", options);
    const auto files = serving_daemon_files(d);
    if (files.empty()) ALUMIA_SKIP(k_maps_unreadable);
    CHECK(maps_file(files, "libsqlite3"));  // the maps were read whole
    for (const char* lib : k_gnutls_and_deps) {
      INFO(lib);
      CHECK_FALSE(maps_file(files, lib));
    }
    CHECK_FALSE(maps_file(files, "libidn2"));
    CHECK_FALSE(maps_file(files, "libunistring"));
    CHECK(d.stop() == 0);
  }
  // With a base URL, the start judges it: libidn2 is loaded then (and GnuTLS still is not).
  Daemon::Options options;
  options.env = {{"CONNECTOR_WEBHOOK_BASE_URL", "https://hooks.example.com"}};
  Daemon d(dir.path() / "with-base", options);
  const auto files = serving_daemon_files(d);
  CHECK(maps_file(files, "libidn2"));
  CHECK_FALSE(maps_file(files, "libgnutls"));
  CHECK(d.stop() == 0);
}

// daemon/start_only_text.hpp: the link places the start-only code between two markers
// (daemon/startup.order) and the started daemon gives those pages back. Every other test shows that what it
// runs afterwards is read back as needed; this one that the range is there in the binary as linked.
TEST_CASE("a started daemon gives back the pages of its start-only code", "[memory]") {
  TempDir dir;
  Daemon::Options options;
  options.extra_args = {"--log-level", "debug"};
  Daemon d(dir.path() / "home", options);
  REQUIRE(d.api("GET", "/api/v1/status").status == 200);
  const std::string marker = "start-up code released: ";
  std::size_t kib = 0;
  REQUIRE(alumia::test::eventually([&] {
    const std::string log = d.log();
    const auto at = log.find(marker);
    if (at == std::string::npos) return false;
    kib = std::stoul(log.substr(at + marker.size()));
    return true;
  }));
  INFO("released " << kib << " KiB (bench/startup_order.sh finds ~500 KiB of start-only code)");
  CHECK(kib >= 256);
  CHECK(d.api("GET", "/api/v1/status").status == 200);  // and it still serves
  CHECK(d.stop() == 0);
}

TEST_CASE("a daemon on a PostgreSQL store loads libpq when it connects", "[memory][pg]") {
  ALUMIA_SKIP_WITHOUT_POSTGRES();
  auto& server = alumia::test::shared_postgres();
  TempDir dir;
  Daemon::Options options;
  options.env["ALUMIA_STORE"] = server.uri(server.fresh_database());
  Daemon d(dir.path() / "home", options);
  const auto files = serving_daemon_files(d);
  if (files.empty()) ALUMIA_SKIP(k_maps_unreadable);
  CHECK(maps_file(files, "libpq.so.5"));
  CHECK(d.stop() == 0);
}

TEST_CASE("a PostgreSQL store without a loadable libpq stops the start, naming the package", "[memory]") {
  // An empty libpq.so.5 first on the library path stands in for a missing or broken one: dlopen finds
  // it before the system's and refuses it. No server is needed: the library is loaded before connecting.
  TempDir dir;
  const auto libs = dir.path() / "libs";
  std::filesystem::create_directories(libs);
  std::ofstream(libs / "libpq.so.5").close();
  const auto home = dir.path() / "home";
  std::filesystem::create_directories(home);
  std::filesystem::permissions(home, std::filesystem::perms::owner_all);
  const auto r = alumia::test::run({ALUMIA_DAEMON_BIN, "--listen", "127.0.0.1:0", "--keyring", "file"},
                                   {{"ALUMIA_HOME", home.string()},
                                    {"ALUMIA_STORE", "postgres://alumia@/alumia?host=/nonexistent"},
                                    {"LD_LIBRARY_PATH", libs.string()}},
                                   "", std::chrono::seconds(30));
  CHECK(r.exit_code == 1);
  INFO(r.err);
  CHECK(r.err.find("cannot open the PostgreSQL store") != std::string::npos);
  CHECK(r.err.find("the PostgreSQL client library libpq.so.5 cannot be loaded") != std::string::npos);
  CHECK(r.err.find("apt-get install libpq5") != std::string::npos);
}

// A throwaway PostgreSQL server for tests (postgres.hpp says how and why).
#include "postgres.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace fs = std::filesystem;

namespace alumia::test {

namespace {

constexpr const char* k_user = "alumia";  // the cluster's superuser (initdb -U), whoever runs it
constexpr int k_port = 5432;              // names the socket file only: the server listens on no TCP port

// Run as the postgres user when we are root (initdb and the server refuse root); the pid stays the
// program's own (setpriv execs), and it gets `death_signal` if the test binary dies first.
std::vector<std::string> as_server_user(std::vector<std::string> argv, const char* death_signal) {
  std::vector<std::string> out = {"/usr/bin/setpriv", std::string("--pdeathsig=") + death_signal};
  if (::geteuid() == 0) {
    for (const char* a : {"--reuid=postgres", "--regid=postgres", "--init-groups"}) out.emplace_back(a);
  }
  out.emplace_back("--");
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

std::string quoted(const std::string& value) {  // a conninfo value in single quotes
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string percent_encoded(const std::string& value) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace

fs::path postgres_bin_dir() {
  std::error_code ec;
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec))
    if (fs::exists(entry.path() / "bin" / "initdb") && fs::exists(entry.path() / "bin" / "postgres"))
      found.push_back(entry.path() / "bin");
  if (found.empty()) return {};
  std::sort(found.begin(), found.end(), [](const fs::path& a, const fs::path& b) {
    return std::stoi(a.parent_path().filename().string()) < std::stoi(b.parent_path().filename().string());
  });
  return found.back();
}

PostgresServer::PostgresServer() : m_dir(std::make_unique<TempDir>()) {
  const fs::path bin = postgres_bin_dir();
  if (bin.empty()) throw std::runtime_error("PostgreSQL is not installed (scripts/install-deps.sh)");
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam("postgres");
    if (!pw) throw std::runtime_error("running as root, but there is no postgres user to run the server as");
    if (::chown(m_dir->path().c_str(), pw->pw_uid, pw->pw_gid) != 0)
      throw std::runtime_error("cannot give the temp dir to the postgres user");
  }
  auto init = run(as_server_user({(bin / "initdb").string(), "-D", (m_dir->path() / "data").string(), "-U", k_user,
                                  "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"},
                                 "KILL"),
                  {{"TZ", "UTC"}}, {}, std::chrono::seconds(120));
  if (init.exit_code != 0) throw std::runtime_error("initdb failed: " + init.err + init.out);
  start();
}

void PostgresServer::start() {
  const fs::path bin = postgres_bin_dir();
  const fs::path data = m_dir->path() / "data";
  // No TCP at all; the socket in our temp dir. fsync off: a test's durability is the code's commits
  // reaching the server, not the server reaching the disk (every commit still waits for the server).
  m_server = std::make_unique<Process>(
      as_server_user({(bin / "postgres").string(), "-D", data.string(), "-p", std::to_string(k_port), "-c",
                      "listen_addresses=", "-c", "unix_socket_directories=\"" + m_dir->path().string() + "\"", "-c",
                      "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200", "-c",
                      "shared_buffers=32MB", "-c", "log_min_messages=warning"},
                     "INT"),
      EnvOverrides{{"TZ", "UTC"}});
  const fs::path ready = bin / "pg_isready";
  const bool up = eventually(
      [&] {
        if (!m_server->running()) return true;  // reported below
        return run({ready.string(), "-q", "-h", m_dir->path().string(), "-p", std::to_string(k_port), "-U", k_user})
                   .exit_code == 0;
      },
      std::chrono::seconds(60), std::chrono::milliseconds(50));
  if (!up || !m_server->running()) throw std::runtime_error("PostgreSQL did not start: " + m_server->err());
}

void PostgresServer::stop() {
  if (!m_server) return;
  m_server->signal(SIGINT);  // fast shutdown: clients are cut off, the data is consistent
  m_server->wait(std::chrono::seconds(30));
  m_server.reset();
}

PostgresServer::~PostgresServer() { stop(); }

std::string PostgresServer::log() const { return m_server ? m_server->err() : std::string(); }

std::string PostgresServer::conninfo(const std::string& name) const {
  return "host=" + quoted(m_dir->path().string()) + " port=" + std::to_string(k_port) + " user=" + k_user +
         " dbname=" + quoted(name);
}

std::string PostgresServer::uri(const std::string& name) const {
  return "postgres://" + std::string(k_user) + "@/" + percent_encoded(name) +
         "?host=" + percent_encoded(m_dir->path().string()) + "&port=" + std::to_string(k_port);
}

std::string PostgresServer::fresh_database() {
  const std::string name = "test_" + std::to_string(::getpid()) + "_" + std::to_string(++m_databases);
  auto made = run({(postgres_bin_dir() / "createdb").string(), "-h", m_dir->path().string(), "-p",
                   std::to_string(k_port), "-U", k_user, name});
  if (made.exit_code != 0) throw std::runtime_error("createdb failed: " + made.err);
  return name;
}

std::string PostgresServer::dump(const std::string& name, const std::vector<std::string>& skip_columns) const {
  auto psql = [&](const std::string& sql) {
    auto r = run({(postgres_bin_dir() / "psql").string(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                  conninfo(name), "-c", sql},
                 {{"TZ", "UTC"}});
    if (r.exit_code != 0) throw std::runtime_error("psql failed: " + r.err);
    return r.out;
  };
  std::string out;
  const std::string tables =
      psql("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename");
  std::istringstream lines(tables);
  for (std::string table; std::getline(lines, table);) {
    if (table.empty()) continue;
    std::string skip;
    for (const auto& c : skip_columns)
      if (c.rfind(table + ".", 0) == 0) skip += (skip.empty() ? "'" : ",'") + c.substr(table.size() + 1) + "'";
    skip = "ARRAY[" + skip + "]::text[]";
    out += "== " + table + "\n";
    out += psql("SELECT (to_jsonb(t) - " + skip + ")::text AS r FROM \"" + table + "\" t ORDER BY r");
  }
  return out;
}

PostgresServer& shared_postgres() {
  static PostgresServer server;  // stopped by static destruction at exit
  return server;
}

std::vector<std::pair<std::string, std::string>> store_files_at_rest(const fs::path& data_dir) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto pg_db = postgres_database_of(data_dir);
  if (!pg_db) {
    for (const char* f : {"store.db", "store.db-wal", "store.db-shm", "store.db-intake"})
      if (fs::exists(data_dir / f)) out.emplace_back(f, read_file(data_dir / f));
    return out;
  }
  auto& server = shared_postgres();
  const auto psql = [&](const std::string& sql) {
    auto r = run({(postgres_bin_dir() / "psql").string(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                  server.conninfo(*pg_db), "-c", sql});
    if (r.exit_code != 0) throw std::runtime_error("psql failed: " + r.err);
    std::string value = r.out;
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
    return value;
  };
  psql("CHECKPOINT");  // every committed page in the database's files, as a clean stop leaves them
  const std::string oid = psql("SELECT oid FROM pg_database WHERE datname = current_database()");
  for (const fs::path& dir : {server.data_dir() / "base" / oid, server.data_dir() / "pg_wal"})
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.is_regular_file())
        out.emplace_back(entry.path().lexically_relative(server.data_dir()).string(), read_file(entry.path()));
  return out;
}

Result<std::unique_ptr<Store>> open_store_of(const fs::path& data_dir) {
  if (const auto pg_db = postgres_database_of(data_dir))
    return open_postgres_store({.conninfo = shared_postgres().uri(*pg_db), .pool_size = 1});
  return open_sqlite_store({data_dir / "store.db", true});
}

}  // namespace alumia::test

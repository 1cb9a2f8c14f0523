// libpq behind RAII (pg_conn.hpp says why and the contract), loaded with dlopen on the first connection.
#include "pg_conn.hpp"

#include <alumia/base/shared_library.hpp>
#include <alumia/base/try.hpp>

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

namespace alumia::pg {

namespace {

// libpq is loaded when the first connection is opened, never at program start: a daemon on the SQLite
// store (the default) never maps it, nor what it brings (Kerberos/GSSAPI, LDAP, SASL: ~1 MB of idle RSS
// for every daemon; docs/ARCHITECTURE.md, "Memory at idle"). Only the functions below are used, through
// this table; libpq-fe.h still gives their types. Loaded once and never unloaded (its handle stays valid
// for every connection and result); a failure is kept, so every open gives the same answer. Why not the
// whole backend as a module: the table is 20 pointers in the one file that calls libpq, while a module
// would need its own build target, install path and ABI between the binary and it.
struct Libpq {
  decltype(&::PQconnectdb) connectdb;
  decltype(&::PQstatus) status;
  decltype(&::PQerrorMessage) error_message;
  decltype(&::PQfinish) finish;
  decltype(&::PQexec) exec;
  decltype(&::PQexecParams) exec_params;
  decltype(&::PQresultStatus) result_status;
  decltype(&::PQresultErrorField) result_error_field;
  decltype(&::PQresultErrorMessage) result_error_message;
  decltype(&::PQclear) clear;
  decltype(&::PQntuples) ntuples;
  decltype(&::PQnfields) nfields;
  decltype(&::PQgetisnull) getisnull;
  decltype(&::PQgetvalue) getvalue;
  decltype(&::PQgetlength) getlength;
  decltype(&::PQcmdTuples) cmd_tuples;
  decltype(&::PQconsumeInput) consume_input;
  decltype(&::PQnotifies) notifies;
  decltype(&::PQfreemem) freemem;
  decltype(&::PQsocket) socket;
};

constexpr const char* k_libpq_soname = "libpq.so.5";

Result<const Libpq*> load(const char* soname) {
  auto so = TRY(SharedLibrary::open(soname, "the PostgreSQL client library", "libpq5"));
  static Libpq lib{};
  so.resolve("PQconnectdb", lib.connectdb);
  so.resolve("PQstatus", lib.status);
  so.resolve("PQerrorMessage", lib.error_message);
  so.resolve("PQfinish", lib.finish);
  so.resolve("PQexec", lib.exec);
  so.resolve("PQexecParams", lib.exec_params);
  so.resolve("PQresultStatus", lib.result_status);
  so.resolve("PQresultErrorField", lib.result_error_field);
  so.resolve("PQresultErrorMessage", lib.result_error_message);
  so.resolve("PQclear", lib.clear);
  so.resolve("PQntuples", lib.ntuples);
  so.resolve("PQnfields", lib.nfields);
  so.resolve("PQgetisnull", lib.getisnull);
  so.resolve("PQgetvalue", lib.getvalue);
  so.resolve("PQgetlength", lib.getlength);
  so.resolve("PQcmdTuples", lib.cmd_tuples);
  so.resolve("PQconsumeInput", lib.consume_input);
  so.resolve("PQnotifies", lib.notifies);
  so.resolve("PQfreemem", lib.freemem);
  so.resolve("PQsocket", lib.socket);
  if (!so.missing().empty()) return std::unexpected(so.lacks("a libpq of PostgreSQL 10 or later is needed"));
  return &lib;
}

// Loaded at the first connection, once (thread-safe: a function-local static).
const Result<const Libpq*>& libpq() {
  static const Result<const Libpq*> loaded = load(k_libpq_soname);
  return loaded;
}

// Only reached with a connection or a result in hand, so after libpq() succeeded.
const Libpq& lib() { return **libpq(); }

// Classes of SQLSTATE that mean the server or the link is gone, not that the statement was wrong:
// 08 connection exception, 57P01-03 admin/crash shutdown and cannot connect now, 53 insufficient resources.
bool is_unavailable(std::string_view state) {
  return state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03" || state.starts_with("53");
}

std::string first_line(const char* message) {
  std::string text = message ? message : "";
  if (auto nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
  return text;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

// ---- Rows ----

Rows::Rows(pg_result* result) : m_result(result) {}
Rows::~Rows() {
  if (m_result) lib().clear(m_result);
}
Rows::Rows(Rows&& other) noexcept : m_result(std::exchange(other.m_result, nullptr)) {}
Rows& Rows::operator=(Rows&& other) noexcept {
  if (this != &other) {
    if (m_result) lib().clear(m_result);
    m_result = std::exchange(other.m_result, nullptr);
  }
  return *this;
}

int Rows::size() const { return m_result ? lib().ntuples(m_result) : 0; }
int Rows::columns() const { return m_result ? lib().nfields(m_result) : 0; }
bool Rows::is_null(int row, int col) const { return lib().getisnull(m_result, row, col) != 0; }

std::string_view Rows::text(int row, int col) const {
  if (is_null(row, col)) return {};
  return {lib().getvalue(m_result, row, col), static_cast<std::size_t>(lib().getlength(m_result, row, col))};
}

std::optional<std::string> Rows::opt_str(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return str(row, col);
}

int64_t Rows::int64(int row, int col) const {
  const auto t = text(row, col);
  int64_t v = 0;
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

std::optional<int64_t> Rows::opt_int64(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return int64(row, col);
}

bool Rows::boolean(int row, int col) const { return text(row, col) == "t"; }

std::string Rows::bytes(int row, int col) const {
  // bytea in text format is "\x" followed by two hex digits a byte (bytea_output=hex, the default
  // since 9.0; the connection sets it anyway).
  const auto t = text(row, col);
  std::string out;
  if (t.size() < 2 || t[0] != '\\' || t[1] != 'x') return out;
  out.reserve((t.size() - 2) / 2);
  for (std::size_t i = 2; i + 1 < t.size(); i += 2) {
    const int hi = hex_value(t[i]), lo = hex_value(t[i + 1]);
    if (hi < 0 || lo < 0) return {};
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

int64_t Rows::affected() const {
  if (!m_result) return 0;
  const char* n = lib().cmd_tuples(m_result);
  int64_t v = 0;
  if (n && *n) std::from_chars(n, n + std::strlen(n), v);
  return v;
}

// ---- Connection ----

Connection::Connection(pg_conn* conn, std::string conninfo) : m_conn(conn), m_conninfo(std::move(conninfo)) {}

Connection::~Connection() {
  if (m_conn) lib().finish(m_conn);
}

namespace {

// Session settings every connection starts with: UTC and hex bytea, whatever the server's defaults;
// no statement waits on a lock for ever.
constexpr const char* k_session_setup =
    "SET TIME ZONE 'UTC'; SET bytea_output = 'hex'; SET lock_timeout = '30s'; SET client_min_messages = warning; "
    "SET idle_in_transaction_session_timeout = '60s'";

Result<pg_conn*> connect(const std::string& conninfo) {
  if (const auto& loaded = libpq(); !loaded) return std::unexpected(loaded.error());
  pg_conn* conn = lib().connectdb(conninfo.c_str());
  if (!conn) return fail(ErrorCode::service_unavailable, "cannot reach PostgreSQL: out of memory");
  if (lib().status(conn) != CONNECTION_OK) {
    // libpq's message names the host and the reason; the connection string (which may hold a
    // password) is never repeated.
    std::string why = first_line(lib().error_message(conn));
    lib().finish(conn);
    return fail(ErrorCode::service_unavailable,
                "cannot reach PostgreSQL: " + why + " (check the store URL and that the server runs)");
  }
  PGresult* r = lib().exec(conn, k_session_setup);
  const bool ok = lib().result_status(r) == PGRES_COMMAND_OK;
  std::string why = ok ? "" : first_line(lib().result_error_message(r));
  lib().clear(r);
  if (!ok) {
    lib().finish(conn);
    return fail(ErrorCode::service_unavailable, "cannot set up the PostgreSQL session: " + why);
  }
  return conn;
}

}  // namespace

Result<std::unique_ptr<Connection>> Connection::open(const std::string& conninfo) {
  auto conn = connect(conninfo);
  if (!conn) return std::unexpected(conn.error());
  return std::unique_ptr<Connection>(new Connection(*conn, conninfo));
}

bool Connection::healthy() const { return m_conn && lib().status(m_conn) == CONNECTION_OK; }

Status Connection::reconnect() {
  auto conn = connect(m_conninfo);
  if (!conn) return std::unexpected(conn.error());
  if (m_conn) lib().finish(m_conn);
  m_conn = *conn;
  return {};
}

Result<Rows> Connection::exec(std::string_view sql, std::initializer_list<Param> params) {
  return run(sql, params.begin(), params.size());
}

Result<Rows> Connection::exec(std::string_view sql, const std::vector<Param>& params) {
  return run(sql, params.data(), params.size());
}

Result<Rows> Connection::run(std::string_view sql, const Param* params, std::size_t count) {
  m_sqlstate.clear();
  if (!healthy()) {
    m_sqlstate = "08006";
    return fail(ErrorCode::service_unavailable, "the PostgreSQL connection is lost");
  }
  std::vector<const char*> values(count);
  std::vector<int> lengths(count), formats(count);
  for (std::size_t i = 0; i < count; ++i) {
    const Param& p = params[i];
    values[i] = p.kind() == Param::Kind::null ? nullptr : p.value().c_str();
    lengths[i] = static_cast<int>(p.value().size());
    formats[i] = p.kind() == Param::Kind::bytes ? 1 : 0;
  }
  const std::string text(sql);
  // Without parameters the simple protocol, which also runs several statements separated by ';'
  // (migrations); with them the extended one, which binds and allows one statement.
  PGresult* r = count == 0 ? lib().exec(m_conn, text.c_str())
                           : lib().exec_params(m_conn, text.c_str(), static_cast<int>(count), nullptr, values.data(),
                                               lengths.data(), formats.data(), 0);
  const auto status = r ? lib().result_status(r) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return Rows(r);
  const char* state = r ? lib().result_error_field(r, PG_DIAG_SQLSTATE) : nullptr;
  m_sqlstate = state ? state : (healthy() ? "XX000" : "08006");
  std::string why = first_line(r ? lib().result_error_message(r) : lib().error_message(m_conn));
  if (r) lib().clear(r);
  if (!healthy() || is_unavailable(m_sqlstate))
    return fail(ErrorCode::service_unavailable, "the PostgreSQL store is unavailable: " + why);
  if (m_sqlstate == k_unique_violation) return fail(ErrorCode::conflict, "already exists: " + why);
  return fail(ErrorCode::internal, "PostgreSQL refused a statement (" + m_sqlstate + "): " + why);
}

Status Connection::transaction(const std::function<Status(Connection&)>& body, std::string_view isolation) {
  const std::string begin = "BEGIN ISOLATION LEVEL " + std::string(isolation);
  for (int attempt = 1;; ++attempt) {
    if (auto b = exec(begin); !b) return std::unexpected(b.error());
    Status outcome;
    try {
      outcome = body(*this);
    } catch (...) {
      (void)exec("ROLLBACK");
      throw;
    }
    if (outcome) {
      auto c = exec("COMMIT");
      if (c) return {};
      outcome = std::unexpected(c.error());
    } else {
      const std::string state = m_sqlstate;
      (void)exec("ROLLBACK");
      m_sqlstate = state;
    }
    const bool retry = m_sqlstate == k_serialization_failure || m_sqlstate == k_deadlock_detected;
    if (!retry || attempt == 5) return outcome;
  }
}

Status Connection::listen(std::string_view channel) {
  auto r = exec("LISTEN " + quote_identifier(channel));
  if (!r) return std::unexpected(r.error());
  return {};
}

Status Connection::notify(std::string_view channel, std::string_view payload) {
  auto r = exec("SELECT pg_notify($1, $2)", {channel, payload});
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<std::vector<Notification>> Connection::wait_notifications(std::chrono::milliseconds timeout) {
  std::vector<Notification> out;
  auto drain = [&]() -> Status {
    if (lib().consume_input(m_conn) == 0)
      return fail(ErrorCode::service_unavailable,
                  "the PostgreSQL connection is lost: " + first_line(lib().error_message(m_conn)));
    while (PGnotify* n = lib().notifies(m_conn)) {
      out.push_back({n->relname ? n->relname : "", n->extra ? n->extra : ""});
      lib().freemem(n);
    }
    return {};
  };
  if (!healthy()) return fail(ErrorCode::service_unavailable, "the PostgreSQL connection is lost");
  if (auto d = drain(); !d) return std::unexpected(d.error());
  if (!out.empty()) return out;
  pollfd pfd{lib().socket(m_conn), POLLIN, 0};
  const int n = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  if (n < 0 && errno != EINTR) return fail(ErrorCode::internal, std::string("poll: ") + std::strerror(errno));
  if (n > 0)
    if (auto d = drain(); !d) return std::unexpected(d.error());
  return out;
}

std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

// ---- Pool ----

Result<std::unique_ptr<Pool>> Pool::open(const std::string& conninfo, std::size_t size) {
  std::unique_ptr<Pool> pool(new Pool(conninfo));
  for (std::size_t i = 0; i < size; ++i) {
    auto conn = Connection::open(conninfo);
    if (!conn) return std::unexpected(conn.error());
    pool->m_idle.push_back(std::move(*conn));
  }
  return pool;
}

Result<Pool::Lease> Pool::lease() {
  std::unique_ptr<Connection> conn;
  {
    std::unique_lock lock(m_mutex);
    m_returned.wait(lock, [&] { return !m_idle.empty(); });
    conn = std::move(m_idle.back());
    m_idle.pop_back();
  }
  if (!conn->healthy()) {
    if (auto r = conn->reconnect(); !r) {
      give_back(std::move(conn));
      return std::unexpected(r.error());
    }
  }
  return Lease(*this, std::move(conn));
}

void Pool::give_back(std::unique_ptr<Connection> conn) {
  {
    std::lock_guard lock(m_mutex);
    m_idle.push_back(std::move(conn));
  }
  m_returned.notify_one();
}

Pool::Lease::~Lease() {
  if (m_conn) m_pool->give_back(std::move(m_conn));
}

}  // namespace alumia::pg

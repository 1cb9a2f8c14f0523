// libpq behind RAII (pg_conn.hpp says why and the contract).
#include "pg_conn.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

namespace alumia::pg {

namespace {

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
  if (m_result) PQclear(m_result);
}
Rows::Rows(Rows&& other) noexcept : m_result(std::exchange(other.m_result, nullptr)) {}
Rows& Rows::operator=(Rows&& other) noexcept {
  if (this != &other) {
    if (m_result) PQclear(m_result);
    m_result = std::exchange(other.m_result, nullptr);
  }
  return *this;
}

int Rows::size() const { return m_result ? PQntuples(m_result) : 0; }
int Rows::columns() const { return m_result ? PQnfields(m_result) : 0; }
bool Rows::is_null(int row, int col) const { return PQgetisnull(m_result, row, col) != 0; }

std::string_view Rows::text(int row, int col) const {
  if (is_null(row, col)) return {};
  return {PQgetvalue(m_result, row, col), static_cast<std::size_t>(PQgetlength(m_result, row, col))};
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
  const char* n = PQcmdTuples(m_result);
  int64_t v = 0;
  if (n && *n) std::from_chars(n, n + std::strlen(n), v);
  return v;
}

// ---- Connection ----

Connection::Connection(pg_conn* conn, std::string conninfo) : m_conn(conn), m_conninfo(std::move(conninfo)) {}

Connection::~Connection() {
  if (m_conn) PQfinish(m_conn);
}

namespace {

// Session settings every connection starts with: UTC and hex bytea, whatever the server's defaults;
// no statement waits on a lock for ever.
constexpr const char* k_session_setup =
    "SET TIME ZONE 'UTC'; SET bytea_output = 'hex'; SET lock_timeout = '30s'; SET client_min_messages = warning; "
    "SET idle_in_transaction_session_timeout = '60s'";

Result<pg_conn*> connect(const std::string& conninfo) {
  pg_conn* conn = PQconnectdb(conninfo.c_str());
  if (!conn) return fail(ErrorCode::service_unavailable, "cannot reach PostgreSQL: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    // libpq's message names the host and the reason; the connection string (which may hold a
    // password) is never repeated.
    std::string why = first_line(PQerrorMessage(conn));
    PQfinish(conn);
    return fail(ErrorCode::service_unavailable,
                "cannot reach PostgreSQL: " + why + " (check the store URL and that the server runs)");
  }
  PGresult* r = PQexec(conn, k_session_setup);
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  std::string why = ok ? "" : first_line(PQresultErrorMessage(r));
  PQclear(r);
  if (!ok) {
    PQfinish(conn);
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

bool Connection::healthy() const { return m_conn && PQstatus(m_conn) == CONNECTION_OK; }

Status Connection::reconnect() {
  auto conn = connect(m_conninfo);
  if (!conn) return std::unexpected(conn.error());
  if (m_conn) PQfinish(m_conn);
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
  PGresult* r = count == 0 ? PQexec(m_conn, text.c_str())
                           : PQexecParams(m_conn, text.c_str(), static_cast<int>(count), nullptr, values.data(),
                                          lengths.data(), formats.data(), 0);
  const auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return Rows(r);
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  m_sqlstate = state ? state : (healthy() ? "XX000" : "08006");
  std::string why = first_line(r ? PQresultErrorMessage(r) : PQerrorMessage(m_conn));
  if (r) PQclear(r);
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
    if (PQconsumeInput(m_conn) == 0)
      return fail(ErrorCode::service_unavailable,
                  "the PostgreSQL connection is lost: " + first_line(PQerrorMessage(m_conn)));
    while (PGnotify* n = PQnotifies(m_conn)) {
      out.push_back({n->relname ? n->relname : "", n->extra ? n->extra : ""});
      PQfreemem(n);
    }
    return {};
  };
  if (!healthy()) return fail(ErrorCode::service_unavailable, "the PostgreSQL connection is lost");
  if (auto d = drain(); !d) return std::unexpected(d.error());
  if (!out.empty()) return out;
  pollfd pfd{PQsocket(m_conn), POLLIN, 0};
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

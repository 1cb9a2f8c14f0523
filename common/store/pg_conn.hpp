#pragma once
// libpq behind a small RAII layer, private to the store area: the PostgreSQL implementations of Store
// and WebhookStore speak SQL only through it (SPEC §12: PostgreSQL specifics stay inside the backend).
//
// Why libpq and not libpqxx: libpq is the protocol's own C library (every PostgreSQL client links it),
// it is all the backends need — parameterised statements, transactions, LISTEN/NOTIFY, non-blocking
// socket access for the notification listener — and its errors carry the SQLSTATE that the backends
// branch on (unique_violation for dedup, serialization failures for retries).
//
// The contract:
// - A statement with parameters is sent with PQexecParams: values bound to $1, $2 … as text, or as
//   binary for `Param::bytes` (bytea: raw bodies, sealed values). SQL text never contains a value. One
//   without parameters goes through PQexec, which also runs several statements separated by ';'.
// - Results come back in text format; `Rows::bytes` decodes a bytea column (hex form).
// - A failed statement becomes an Error: a lost connection or a server shutting down is
//   SERVICE_UNAVAILABLE (the caller answers 503 and the connection is re-established on the next use),
//   unique_violation is CONFLICT, everything else INTERNAL. `sqlstate()` of the last failure is kept for
//   callers that must tell them apart.
// - A Connection is used by one thread at a time; Pool hands connections to threads.
// - libpq itself is loaded (dlopen of libpq.so.5) when the first connection is opened, so a process that
//   never opens a PostgreSQL store never maps it; when it cannot be loaded, opening fails with
//   SERVICE_UNAVAILABLE naming the package (libpq5).
#include <alumia/base/error.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;
struct pg_result;

namespace alumia::pg {

// SQLSTATEs the backends branch on.
inline constexpr std::string_view k_unique_violation = "23505";
inline constexpr std::string_view k_serialization_failure = "40001";
inline constexpr std::string_view k_deadlock_detected = "40P01";

// A value bound to $n.
class Param {
 public:
  enum class Kind { null, text, bytes };
  Param() = default;  // NULL
  Param(std::nullopt_t) {}
  Param(std::string_view s) : m_kind(Kind::text), m_value(s) {}
  Param(const std::string& s) : m_kind(Kind::text), m_value(s) {}
  Param(const char* s) : m_kind(Kind::text), m_value(s) {}
  Param(int64_t v) : m_kind(Kind::text), m_value(std::to_string(v)) {}
  Param(int v) : Param(static_cast<int64_t>(v)) {}
  Param(bool v) : m_kind(Kind::text), m_value(v ? "t" : "f") {}
  template <class T>
  Param(const std::optional<T>& v) {
    if (v) *this = Param(*v);
  }
  // bytea, sent as binary: any bytes, NUL included.
  static Param bytes(std::string_view raw) {
    Param p;
    p.m_kind = Kind::bytes;
    p.m_value = std::string(raw);
    return p;
  }

  Kind kind() const { return m_kind; }
  const std::string& value() const { return m_value; }

 private:
  Kind m_kind = Kind::null;
  std::string m_value;
};

// The result of one statement (owns the PGresult).
class Rows {
 public:
  Rows() = default;
  explicit Rows(pg_result* result);
  ~Rows();
  Rows(Rows&& other) noexcept;
  Rows& operator=(Rows&& other) noexcept;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;

  int size() const;
  bool empty() const { return size() == 0; }
  int columns() const;
  bool is_null(int row, int col) const;
  std::string_view text(int row, int col) const;  // "" when NULL
  std::string str(int row, int col) const { return std::string(text(row, col)); }
  std::optional<std::string> opt_str(int row, int col) const;
  int64_t int64(int row, int col) const;  // 0 when NULL
  std::optional<int64_t> opt_int64(int row, int col) const;
  bool boolean(int row, int col) const;       // 't'
  std::string bytes(int row, int col) const;  // a bytea column, decoded
  // Rows an INSERT/UPDATE/DELETE touched (PQcmdTuples).
  int64_t affected() const;

 private:
  pg_result* m_result = nullptr;
};

struct Notification {
  std::string channel;
  std::string payload;
};

class Connection {
 public:
  // `conninfo`: a libpq connection string or URI (postgres://user@host:port/db?...).
  static Result<std::unique_ptr<Connection>> open(const std::string& conninfo);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Result<Rows> exec(std::string_view sql, std::initializer_list<Param> params = {});
  Result<Rows> exec(std::string_view sql, const std::vector<Param>& params);

  // Runs `body` between BEGIN and COMMIT (ROLLBACK when it fails or throws). A serialization failure
  // or deadlock, of the body or the COMMIT, runs the whole body again (up to 5 times), so `body` must
  // not have effects outside the transaction. `isolation`: "READ COMMITTED", "REPEATABLE READ" or
  // "SERIALIZABLE".
  Status transaction(const std::function<Status(Connection&)>& body, std::string_view isolation = "READ COMMITTED");

  // The SQLSTATE of the last failed statement ("" when none failed).
  const std::string& sqlstate() const { return m_sqlstate; }
  // False once the connection is lost; reconnect() tries again.
  bool healthy() const;
  Status reconnect();

  // LISTEN/NOTIFY. listen() subscribes; wait_notifications() waits up to `timeout` for the socket to
  // become readable and returns what arrived (empty on timeout).
  Status listen(std::string_view channel);
  Status notify(std::string_view channel, std::string_view payload);
  Result<std::vector<Notification>> wait_notifications(std::chrono::milliseconds timeout);

 private:
  Connection(pg_conn* conn, std::string conninfo);
  Result<Rows> run(std::string_view sql, const Param* params, std::size_t count);

  pg_conn* m_conn = nullptr;
  std::string m_conninfo;
  std::string m_sqlstate;
};

// Quotes an identifier (a channel or database name) for the few statements that cannot bind one.
std::string quote_identifier(std::string_view name);

// A fixed set of connections shared by threads: lease() blocks while all are out.
class Pool {
 public:
  static Result<std::unique_ptr<Pool>> open(const std::string& conninfo, std::size_t size);

  class Lease {
   public:
    Lease(Pool& pool, std::unique_ptr<Connection> conn) : m_pool(&pool), m_conn(std::move(conn)) {}
    ~Lease();
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Connection& operator*() const { return *m_conn; }
    Connection* operator->() const { return m_conn.get(); }

   private:
    Pool* m_pool;
    std::unique_ptr<Connection> m_conn;
  };

  // A connection for the caller's thread; a lost one is reconnected first (SERVICE_UNAVAILABLE when
  // the server still cannot be reached).
  Result<Lease> lease();
  // Runs `body(Connection&)` -> Result<T> on a leased connection. A connection the server dropped while
  // it sat in the pool (a restart) is known lost only when its first statement fails: then `body` runs
  // once more, on the same connection reconnected (the pool hands back the one just returned). A body
  // whose COMMIT was lost may thus run twice; the stores' writes are keyed, so the second run does the
  // same again or fails on the key.
  template <class F>
  auto run(F&& body) -> decltype(body(std::declval<Connection&>())) {
    for (int attempt = 0;; ++attempt) {
      auto leased = lease();
      if (!leased) return std::unexpected(leased.error());
      auto out = body(**leased);
      if (out || out.error().code != ErrorCode::service_unavailable || (*leased)->healthy() || attempt == 1) return out;
    }
  }
  const std::string& conninfo() const { return m_conninfo; }

 private:
  explicit Pool(std::string conninfo) : m_conninfo(std::move(conninfo)) {}
  void give_back(std::unique_ptr<Connection> conn);

  std::string m_conninfo;
  std::mutex m_mutex;
  std::condition_variable m_returned;
  std::vector<std::unique_ptr<Connection>> m_idle;
};

}  // namespace alumia::pg

#pragma once
// SQLite helpers shared by the SQLite implementations of Store and WebhookStore (private to common).
#include <alumia/base/error.hpp>
#include <alumia/base/fs.hpp>

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>

namespace alumia::sqlite {

// SQLite refuses a symbolic link at the store's name (its -wal and -shm it opens O_NOFOLLOW anyway).
inline constexpr int k_open_nofollow = SQLITE_OPEN_NOFOLLOW;

// Before SQLite opens the store by name: store.db (created 0600 when `create`), -wal and -shm must be
// the daemon user's private regular files, not symbolic links (fs.hpp). Returns the name to hand
// SQLite with k_open_nofollow: its directory resolved, since that flag also refuses symbolic links in
// the directories above (which fs.hpp's checks allow when root or the user owns them).
//
// An existing store.db is checked with lstat, never opened here: the daemon opens its webhook store
// while the main store's connection is open, and closing any descriptor of a file drops every POSIX
// lock the process holds on it, SQLite's SHARED lock included (SQLite's own connections share one lock
// per file and never close a locked descriptor, but cannot know about ours). Without that lock,
// another process opening the store (the sqlite3 CLI, a backup) found itself "the last connection" when
// it closed: it checkpointed without the WAL locks and deleted store.db-wal and -shm under the running
// daemon, whose later commits went to the deleted WAL (lost at a crash, invisible to other readers,
// "database disk image is malformed" to readers meanwhile). tests/functional/test_store_readers.cpp.
// Process-wide SQLite settings, before the first connection (sqlite3_config is refused once SQLite
// has initialised; then this does nothing). No initial page-cache bulk per connection: Debian's
// SQLite gives each connection 20 pages up front (SQLITE_DEFAULT_PCACHE_INITSZ) and touches them
// all, ~90 KiB of resident heap for each of the daemon's five connections before it has read a page;
// pages are allocated as they are read instead (the cache size, and so the bound, are unchanged).
// No memory statistics (SQLITE_CONFIG_MEMSTATUS): with them every sqlite3_malloc and free takes a
// process-wide mutex to count bytes that nothing here reads (no sqlite3_memory_used, no heap limit).
inline void configure_sqlite_once() {
  static const int configured =
      sqlite3_config(SQLITE_CONFIG_PAGECACHE, nullptr, 0, 0) | sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)configured;
}

inline Result<std::string> checked_db_name(const std::filesystem::path& path, bool create) {
  configure_sqlite_once();
  auto exists = check_owned_file(path, Privacy::secret);
  if (!exists) return fail(exists.error().code, "cannot open the store: " + exists.error().message);
  if (!*exists) {
    // A new file: no connection of this process can hold a lock on it yet.
    auto fd = open_owned_file(path, O_RDWR | (create ? O_CREAT : 0), Privacy::secret, 0600);
    if (!fd) return fail(fd.error().code, "cannot open the store: " + fd.error().message);
  }
  for (const char* suffix : {"-wal", "-shm"})
    if (auto ok = check_owned_file(path.string() + suffix, Privacy::secret); !ok) return std::unexpected(ok.error());
  std::error_code ec;
  const auto dir = std::filesystem::canonical(path.parent_path().empty() ? "." : path.parent_path(), ec);
  if (ec) return path.string();
  return (dir / path.filename()).string();
}

// A busy store (SQLITE_BUSY and its extended codes: another connection holds the write lock past
// the busy timeout) is SERVICE_UNAVAILABLE (retry); anything else, SQLite's or not, is INTERNAL.
// By result code, never by the message's text.
inline bool is_busy(const std::exception& e) {
  const auto* s = dynamic_cast<const SQLite::Exception*>(&e);
  if (!s) return false;
  // The extended code when SQLite gave one (SQLITE_BUSY_SNAPSHOT, _RECOVERY, _TIMEOUT...), else the
  // primary; -1 when the exception carries none. The low byte is the primary code.
  const int code = s->getExtendedErrorCode() >= 0 ? s->getExtendedErrorCode() : s->getErrorCode();
  return code >= 0 && (code & 0xff) == SQLITE_BUSY;
}

inline Error to_error(const std::exception& e, std::string_view what) {
  if (is_busy(e)) return Error{ErrorCode::service_unavailable, "the store is busy; retry shortly", 1};
  return Error{ErrorCode::internal, std::string(what) + ": " + e.what(), 0};
}

// Runs `f` under `m`, SQLite exceptions mapped by to_error(e, what).
template <class F>
auto locked(std::mutex& m, std::string_view what, F&& f) -> Result<decltype(f())> {
  std::lock_guard lock(m);
  try {
    if constexpr (std::is_void_v<decltype(f())>) {
      f();
      return {};
    } else {
      return f();
    }
  } catch (const std::exception& e) {
    return std::unexpected(to_error(e, what));
  }
}

// The pragmas of every connection of the webhook store (writer, reader, dedup lookups, checkpointer).
inline void open_webhook_pragmas(SQLite::Database& db, bool synchronous_full) {
  db.setBusyTimeout(5000);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec(synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  db.exec("PRAGMA secure_delete=ON");
  // Statement journals (one per SAVEPOINT'ed request) in memory, not a temp file per batch.
  db.exec("PRAGMA temp_store=MEMORY");
  db.exec("PRAGMA journal_size_limit=67108864");
}

inline std::optional<int64_t> opt_int(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getInt64();
}

inline std::optional<std::string> opt_str(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getString();
}

inline std::string blob_string(const SQLite::Column& c) {
  return std::string(static_cast<const char*>(c.getBlob()), static_cast<std::size_t>(c.getBytes()));
}

inline void bind_opt(SQLite::Statement& q, int i, const std::optional<int64_t>& v) {
  if (v) q.bind(i, *v);
  else q.bind(i);
}

inline void bind_opt(SQLite::Statement& q, int i, const std::optional<std::string>& v) {
  if (v) q.bind(i, *v);
  else q.bind(i);
}

// Prepared statements of one connection, compiled once and reused: the hot paths run the same few
// statements thousands of times a second, and preparing is most of the cost of a small statement.
// Not thread-safe: one cache per connection, used under that connection's owner (writer thread or
// reader mutex).
class StatementCache {
 public:
  explicit StatementCache(SQLite::Database& db) : m_db(db) {}

  // A statement in use; reset when it goes out of scope, so a half-stepped SELECT never keeps the
  // connection's read snapshot open (in WAL mode that would serve stale rows and hold back
  // checkpoints).
  class Use {
   public:
    explicit Use(SQLite::Statement& q) : m_q(&q) {}
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    ~Use() { (void)m_q->tryReset(); }
    SQLite::Statement& operator*() const { return *m_q; }
    SQLite::Statement* operator->() const { return m_q; }

   private:
    SQLite::Statement* m_q;
  };

  // The statement for `sql`, reset and with no bindings.
  SQLite::Statement& get(const std::string& sql) {
    auto it = m_statements.find(sql);
    if (it == m_statements.end()) it = m_statements.emplace(sql, std::make_unique<SQLite::Statement>(m_db, sql)).first;
    SQLite::Statement& q = *it->second;
    (void)q.tryReset();  // an earlier failed step leaves its error here; it is not this use's error
    q.clearBindings();
    return q;
  }
  // get() wrapped in a Use: `auto q = cache.use(sql); q->bind(1, x); q->exec();`
  Use use(const std::string& sql) { return Use(get(sql)); }

 private:
  SQLite::Database& m_db;
  std::unordered_map<std::string, std::unique_ptr<SQLite::Statement>> m_statements;
};

}  // namespace alumia::sqlite

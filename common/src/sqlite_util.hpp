#pragma once
// SQLite helpers shared by the SQLite implementations of Store and WebhookStore (private to common).
#include <alumia/error.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace alumia::sqlite {

// A busy/locked store is SERVICE_UNAVAILABLE (retry); anything else is INTERNAL.
inline Error to_error(const std::exception& e, std::string_view what) {
  const std::string text = e.what();
  if (text.find("database is locked") != std::string::npos || text.find("busy") != std::string::npos)
    return Error{ErrorCode::service_unavailable, "the store is busy; retry shortly", 1};
  return Error{ErrorCode::internal, std::string(what) + ": " + text, 0};
}

inline std::optional<int64_t> opt_int(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getInt64();
}

inline std::optional<std::string> opt_str(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getString();
}

inline void bind_opt(SQLite::Statement& q, int i, const std::optional<int64_t>& v) {
  if (v) q.bind(i, *v);
  else q.bind(i);
}

inline void bind_opt(SQLite::Statement& q, int i, const std::optional<std::string>& v) {
  if (v) q.bind(i, *v);
  else q.bind(i);
}

}  // namespace alumia::sqlite

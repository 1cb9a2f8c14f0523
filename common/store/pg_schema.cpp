// Numbered migrations of the PostgreSQL store under an advisory lock (pg_schema.hpp).
#include "pg_schema.hpp"

#include <string>

namespace alumia::pg {

namespace {
// The advisory lock key that serialises migrations of every part ("alumia" in ASCII).
constexpr int64_t k_migration_lock = 0x616c756d6961;
}  // namespace

Result<int> migrate(Connection& db, std::string_view part, std::span<const std::string_view> migrations) {
  int reached = 0;
  auto done = db.transaction([&](Connection& tx) -> Status {
    if (auto r = tx.exec("SELECT pg_advisory_xact_lock($1)", {k_migration_lock}); !r) return std::unexpected(r.error());
    if (auto r = tx.exec("CREATE TABLE IF NOT EXISTS alumia_schema (part text PRIMARY KEY, version integer NOT NULL, "
                         "applied_at timestamptz NOT NULL DEFAULT now())");
        !r)
      return std::unexpected(r.error());
    auto row = tx.exec("SELECT version FROM alumia_schema WHERE part = $1", {part});
    if (!row) return std::unexpected(row.error());
    int version = row->empty() ? 0 : static_cast<int>(row->int64(0, 0));
    const int target = static_cast<int>(migrations.size());
    if (version > target)
      return fail(ErrorCode::service_unavailable, "the PostgreSQL store's " + std::string(part) +
                                                      " schema is version " + std::to_string(version) +
                                                      ", newer than this alumia-connectd knows (" +
                                                      std::to_string(target) + "): upgrade alumia-connectd");
    for (; version < target; ++version) {
      if (auto r = tx.exec(migrations[static_cast<std::size_t>(version)]); !r) {
        return fail(r.error().code, "migration " + std::to_string(version + 1) + " of the " + std::string(part) +
                                        " schema failed: " + r.error().message);
      }
    }
    if (auto r = tx.exec("INSERT INTO alumia_schema (part, version) VALUES ($1, $2) ON CONFLICT (part) DO UPDATE "
                         "SET version = EXCLUDED.version, applied_at = now()",
                         {part, static_cast<int64_t>(version)});
        !r)
      return std::unexpected(r.error());
    reached = version;
    return {};
  });
  if (!done) return std::unexpected(done.error());
  return reached;
}

}  // namespace alumia::pg

#pragma once
// Schema migrations of the PostgreSQL store (SPEC §12: "schema migrations run once under a lock").
//
// Each part of the store (the core tables of Store, the webhook tables of WebhookStore) has its own
// numbered list; migration N brings that part from version N-1 to N. Append only: never edit a shipped
// migration. Versions live in the table alumia_schema (part, version, applied_at).
//
// Several daemons may start at once against one database: migrate() takes a transaction-scoped
// advisory lock (pg_advisory_xact_lock) first, so exactly one of them runs each pending migration and the
// others, blocked on the lock, find the work done. All pending migrations of a part commit together with
// the version bump (PostgreSQL DDL is transactional), so a crash leaves the old version and no half schema.
#include "pg_conn.hpp"

#include <span>
#include <string_view>

namespace alumia::pg {

// Runs `migrations[version..]` of `part` (e.g. "store", "webhooks"); returns the version reached.
// A database newer than this program (version > migrations.size()) is refused: an older daemon must
// not write to a schema it does not know.
Result<int> migrate(Connection& db, std::string_view part, std::span<const std::string_view> migrations);

}  // namespace alumia::pg

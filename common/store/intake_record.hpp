#pragma once
// The intake log's record of one accepted delivery (private to the store). The log itself only
// knows opaque payloads (alumia/store/intake_log.hpp); this is what the webhook store puts in them
// and reads back when it applies the log, at once or after a crash.
//
// Layout: a version byte (1), then endpoint_id, user_id, provider, event_key, event_type, headers,
// body, event_id and job_id as {u32 length, bytes}, received_at as 8 bytes, then the alias keys and
// the item keys, each list a u32 count and its strings. Integers in the machine's byte order: a log
// is read back only by the machine that wrote it.
#include <alumia/store/webhook_store.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace alumia::intake_record {

inline constexpr char k_version = '\x01';

std::string encode(const IngestRequest& request);

// nullopt for anything that is not exactly one record of this version: another version, a record
// cut short (torn), a length that runs past the end, or bytes left over.
std::optional<IngestRequest> decode(std::string_view record);

}  // namespace alumia::intake_record

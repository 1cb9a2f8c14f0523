#pragma once
// The numbers of SPEC §7 that the webhook service, the receiver and the relay worker share.
#include <cstdint>

namespace alumia {

inline constexpr int64_t k_default_webhook_body_cap = 256 * 1024;
inline constexpr int64_t k_max_webhook_body_cap = 25 * 1024 * 1024;
inline constexpr int64_t k_dedup_ttl_ms = 8LL * 24 * 3600 * 1000;
// The longest rotation grace an owner may ask for (graceSeconds).
inline constexpr int64_t k_max_secret_grace_seconds = 7 * 86400;

}  // namespace alumia

#pragma once
// The numbers of SPEC §7 that the webhook service, the receiver and the relay worker share.
#include <cstdint>

namespace alumia {

inline constexpr int64_t k_default_webhook_body_cap = 256 * 1024;
inline constexpr int64_t k_max_webhook_body_cap = 25 * 1024 * 1024;
inline constexpr int64_t k_dedup_ttl_ms = 8LL * 24 * 3600 * 1000;
// An endpoint's rate limit (token bucket): the default (the settings webhook-rate-limit and
// webhook-rate-burst, whose defaults these are) is far above what a busy GitHub organisation or Stripe
// account sends; an endpoint's own, and the settings, lie in [1, k_max_webhook_rate].
inline constexpr int64_t k_default_webhook_rate_per_second = 1000;
inline constexpr int64_t k_default_webhook_rate_burst = 2000;
inline constexpr int64_t k_max_webhook_rate = 1'000'000;
// The longest rotation grace an owner may ask for (graceSeconds).
inline constexpr int64_t k_max_secret_grace_seconds = 7 * 86400;

}  // namespace alumia

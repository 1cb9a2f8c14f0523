#pragma once
// What the github and stripe registrars share when they speak to a provider's REST API: one call
// with bounded time and size, the JSON of an answer read without exceptions, and provider text made
// safe to put in one of our messages (no secret, no control character, bounded length). The
// mapping of statuses to our codes stays in each registrar: the providers differ (GitHub's 403 may be
// a rate limit, Stripe's is a missing permission).
#include <alumia/base/error.hpp>
#include <alumia/net/http.hpp>
#include <alumia/setup/registrar.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace alumia::setup::detail {

// Listing 100 hooks or endpoints is well under this; a single object is a few hundred bytes.
inline constexpr std::size_t k_max_answer_bytes = 1024 * 1024;

// The API base without a trailing slash.
std::string trimmed_base(std::string_view api_base);

// `request` sent through ctx.http; a transport failure becomes SERVICE_UNAVAILABLE naming `provider`
// ("GitHub could not be reached: ...").
Result<http::OutboundResponse> send(const RegistrarContext& ctx, http::OutboundRequest request,
                                    std::string_view provider);

// The answer's body as JSON, or a discarded value when it is not JSON.
nlohmann::json parse_body(const http::OutboundResponse& response);

// A string member of a JSON object, or nullopt (wrong type, missing, not an object).
std::optional<std::string> string_member(const nlohmann::json& object, std::string_view key);

// Provider text for a message: the credential, the endpoint secret and anything shaped like a
// Stripe key or signing secret (sk_, rk_, whsec_ ..., even masked) become ***; control characters
// become spaces; at most 300 bytes (cut on a UTF-8 boundary).
std::string provider_text(std::string_view text, const RegistrarContext& ctx);

// Seconds to wait from Retry-After (delta seconds, or an HTTP date measured against the answer's
// Date header); `fallback` when absent or unreadable.
int retry_after(const http::OutboundResponse& response, int fallback);

// Seconds between the answer's Date header and `unix_time` (GitHub's x-ratelimit-reset), at least 1;
// nullopt without a readable Date.
std::optional<int> seconds_until(const http::OutboundResponse& response, long long unix_time);

}  // namespace alumia::setup::detail

#pragma once
// What the registrars (github, stripe, telegram) share when they speak to a provider's API: one call
// with bounded time and size, the JSON of an answer read without exceptions, provider text made safe
// to put in one of our messages (no secret, no control character, bounded length), the check of
// --events, and the words for an answer no registrar has better ones for. The mapping of the
// statuses a provider explains stays in each registrar: the providers differ (GitHub's 403 may be a
// rate limit, Stripe's is a missing permission, Telegram's means a bad bot token).
#include <alumia/base/error.hpp>
#include <alumia/net/http.hpp>
#include <alumia/setup/registrar.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace alumia::setup::detail {

// Listing 100 hooks or endpoints is well under this; a single object is a few hundred bytes.
inline constexpr std::size_t k_max_answer_bytes = 1024 * 1024;

// The API base without a trailing slash.
std::string trimmed_base(std::string_view api_base);

// A request to `url` with the credential as a Bearer token and our User-Agent (GitHub refuses a
// request without one).
http::OutboundRequest bearer_request(const RegistrarContext& ctx, std::string method, std::string url);

// `request` sent through ctx.http, its body, URL and header values wiped afterwards (they may carry
// the endpoint secret, the credential, or for Telegram the bot token in the URL); a transport failure
// becomes SERVICE_UNAVAILABLE naming `provider` ("GitHub could not be reached (...); try again later").
Result<http::OutboundResponse> send(const RegistrarContext& ctx, http::OutboundRequest request,
                                    std::string_view provider);

// The answer's body as JSON, or a discarded value when it is not JSON.
nlohmann::json parse_body(const http::OutboundResponse& response);

// A string member of a JSON object, or nullopt (wrong type, missing, not an object).
std::optional<std::string> string_member(const nlohmann::json& object, std::string_view key);

// Text for a message: control characters become spaces, broken UTF-8 '?'; at most `max_bytes`
// (cut on a UTF-8 boundary).
std::string safe_text(std::string_view text, std::size_t max_bytes = 300);

// Provider text for a message: the credential, the endpoint secret and anything shaped like a
// Stripe key or signing secret (sk_, rk_, whsec_ ..., even masked) become ***; then safe_text.
std::string provider_text(std::string_view text, const RegistrarContext& ctx);

// "HTTP 404: Not Found", or "HTTP 404" when the provider said nothing (`said`: provider_text).
std::string http_status(int status, std::string_view said);

// An answer the registrar does not explain, as SERVICE_UNAVAILABLE: "<provider> is unavailable
// (<http>); try again later" for a 5xx, else "<provider> answered unexpectedly (<http>)".
Error unexpected_answer(std::string_view provider, int status, std::string_view http);

// --events against a provider's names: each must pass `valid`, else VALIDATION_ERROR
// `--events: "<name>" is not a <kind> (<rule>)`; an empty list is refused ("--events needs at least
// one <kind>, or * for all") unless `empty_allowed`.
struct EventRule {
  bool (*valid)(std::string_view);
  std::string_view kind;  // "GitHub event name"
  std::string_view rule;  // "lower-case letters and '_', e.g. push, pull_request; * for all"
  bool empty_allowed = false;
};
Status check_events(const std::optional<std::vector<std::string>>& events, const EventRule& rule);

// Seconds to wait from Retry-After (delta seconds, or an HTTP date measured against the answer's
// Date header); `fallback` when absent or unreadable.
int retry_after(const http::OutboundResponse& response, int fallback);

// Seconds between the answer's Date header and `unix_time` (GitHub's x-ratelimit-reset), at least 1;
// nullopt without a readable Date.
std::optional<int> seconds_until(const http::OutboundResponse& response, long long unix_time);

}  // namespace alumia::setup::detail

#pragma once
// Helpers shared by the verifiers (private to common/webhooks/verifiers).
#include <alumia/base/error.hpp>
#include <alumia/net/http.hpp>
#include <alumia/webhooks/webhooks.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace alumia::webhooks::detail {

// One accessor per provider; registry.cpp lists them in the table.
const Verifier& telegram_verifier();
const Verifier& slack_verifier();
const Verifier& discord_verifier();
const Verifier& whatsapp_verifier();
const Verifier& twilio_verifier();
const Verifier& gmail_verifier();
const Verifier& github_verifier();
const Verifier& linear_verifier();
const Verifier& stripe_verifier();

inline std::unexpected<Error> unauthorized(std::string message) {
  return fail(ErrorCode::unauthorized, std::move(message));
}
inline std::unexpected<Error> bad_request(std::string message) {
  return fail(ErrorCode::bad_request, std::move(message));
}

// The value of a header the scheme relies on: missing → UNAUTHORIZED, repeated → UNAUTHORIZED
// (PROVIDERS §0.4). `name` is the display spelling, e.g. "X-Slack-Signature".
Result<std::string> single_header(const http::Request& req, std::string_view name);
// Like single_header for headers that are not part of the scheme (ids): missing → nullopt,
// repeated → BAD_REQUEST.
Result<std::optional<std::string>> optional_header(const http::Request& req, std::string_view name);

Status require_method(const http::Request& req, std::string_view method, std::string_view provider);

// Base-10, digits only, overflow-checked (PROVIDERS §0.5).
std::optional<int64_t> parse_decimal(std::string_view text);

// Hex (either case) decoded to exactly `digest_size` bytes, or nullopt (PROVIDERS §0.3).
std::optional<std::string> decode_hex_digest(std::string_view hex, std::size_t digest_size);

// True when HMAC-SHA256(secret, data) equals `mac` (raw bytes) for any secret; constant-time per
// comparison.
bool hmac_sha256_matches_any(std::span<const std::string> secrets, std::string_view data, std::string_view mac);

Status require_secrets(const EndpointConfig& endpoint, std::string_view what);

// JSON parse of a verified body; BAD_REQUEST naming the provider when it is not JSON.
Result<nlohmann::json> parse_json(std::string_view body, std::string_view provider);

// A string member, or an integer member rendered in base 10 (ids arrive as either); nullopt
// otherwise.
std::optional<std::string> id_field(const nlohmann::json& object, std::string_view key);
std::optional<std::string> string_field(const nlohmann::json& object, std::string_view key);

Verdict event_verdict(std::string key, std::string type);
Verdict handshake_verdict(int status, std::string body, std::string content_type);

}  // namespace alumia::webhooks::detail

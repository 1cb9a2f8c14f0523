#pragma once
// Token-endpoint answers (RFC 6749 §5.1, §5.2) parsed defensively, with the provider quirks of
// OAUTH.md table 2.3 (item 19), and the failure classification of OAUTH.md §3.5. Also PKCE S256
// (RFC 7636). Pure functions: no I/O, no clock; nothing here throws.
#include <alumia/base/clock.hpp>
#include <alumia/base/error.hpp>
#include <alumia/base/secret.hpp>
#include <alumia/net/http.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace alumia::oauth {

// Per-provider switches, set from the catalog entry.
struct TokenQuirks {
  // Accept application/x-www-form-urlencoded bodies (GitHub answers so unless asked for JSON).
  bool form_encoded_ok = true;
  // Slack: every answer carries `ok`; `ok:false` (with `error`) is a failure whatever the status.
  bool ok_field = false;
  // Slack: the bot token is top-level, the user token nested in `authed_user`. With only a user
  // token (user scopes only) the nested one becomes the primary credential.
  bool nested_user_token = false;
};

// One access token and what came with it.
struct Credential {
  SecretBytes access_token;
  std::string token_type;  // "Bearer" (any case normalised; default when absent), else as sent ("bot", "user")
  std::optional<SecretBytes> refresh_token;         // absent: keep the stored one (OAUTH.md §3.1)
  std::optional<int64_t> expires_in;                // seconds; absent: expiry unknown
  std::optional<int64_t> refresh_token_expires_in;  // GitHub Apps, Google time-limited access
  std::vector<std::string> scopes;                  // granted scopes, deduplicated, in the order sent
  bool scope_present = false;                       // false: `scope` absent, so the request was granted in full
};

struct TokenSet : Credential {
  // Non-secret fields for the caller: team, enterprise, instance_url, id, issued_at, owner,
  // workspace_name, bot_id, ext_expires_in, authed_user.id, ... Every key naming a token, secret,
  // password or signature is removed at any depth, and so is the `url` of a webhook object.
  nlohmann::json extra = nlohmann::json::object();
  // Slack: the user token of `authed_user` when the primary credential is the bot token.
  std::optional<Credential> user;
};

enum class OAuthErrorKind {
  grant_invalid,   // invalid_grant & co: the code or RT is dead. Refresh: status `expired`, no retry
  client_invalid,  // invalid_client, unauthorized_client: fix the client id/secret. Keep the RT
  transient,       // 429, 5xx, temporarily_unavailable, Slack ratelimited: back off, stay active
  malformed,       // not a token response at all: misconfiguration or attack; `error`, no tight retry
  other,           // any other provider refusal (invalid_request, invalid_scope, access_denied, ...)
};
std::string_view to_string(OAuthErrorKind kind);

// A failed token request as the provider described it. Never holds token material: `description`
// is the provider's error_description (or problem+json detail) with control characters replaced,
// long token-like runs redacted, truncated to k_max_description bytes.
struct OAuthError {
  static constexpr std::size_t k_max_description = 200;

  std::string code;  // provider code ("invalid_grant", "bad_verification_code"), or
                     // "http_<status>" without one, or "malformed_response"
  std::string description;
  int http_status = 0;
  bool transient = false;
  std::vector<int64_t> error_codes;  // Microsoft AADSTS numbers (error_codes[] or from the text)
  int retry_after_seconds = 0;       // from Retry-After (seconds form), capped at one hour

  OAuthErrorKind classify() const;
  // The program-wide error: SERVICE_UNAVAILABLE for transient and malformed answers (with
  // retry_after_seconds), BAD_REQUEST for refusals. The message names the code and description.
  Error to_error() const;
};

using TokenResult = std::expected<TokenSet, OAuthError>;

// Parses a token-endpoint answer (authorization_code or refresh_token grant). The body is JSON or
// form-encoded, chosen by content type and otherwise by sniffing. A 2xx with `error`, or with
// `ok:false` under ok_field, is a failure, and so is any non-2xx. Scopes are split on
// `scope_separator`, whitespace and commas (GitHub is asked with spaces and answers with commas);
// a JSON array (Linear) is taken as is.
TokenResult parse_token_response(int http_status, std::string_view content_type, std::string_view body,
                                 const TokenQuirks& quirks, char scope_separator);
// Same, from an outbound response: also reads Content-Type and Retry-After.
TokenResult parse_token_response(const http::OutboundResponse& response, const TokenQuirks& quirks,
                                 char scope_separator);

// ---- PKCE (RFC 7636) ----

// BASE64URL(SHA-256(ASCII(verifier))), no padding (§4.2).
std::string pkce_challenge_s256(std::string_view verifier);
// 32 random bytes as base64url: 43 characters (§4.1, OAUTH.md item 1).
std::string pkce_new_verifier(Random& random);
// 43..128 characters of [A-Za-z0-9-._~] (§4.1).
bool pkce_verifier_valid(std::string_view verifier);

}  // namespace alumia::oauth

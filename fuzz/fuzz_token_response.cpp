// The OAuth token-endpoint answer parser (common/oauth/oauth_token.cpp). Input, in text:
//   line 1: "<HTTP status> <quirk bits>"   bits: 1 form_encoded_ok, 2 ok_field (Slack), 4 nested_user_token,
//                                           8 ',' as the scope separator (else ' ')
//   line 2: the Content-Type header ("-" for none)
//   line 3: the Retry-After header ("-" for none)
//   the rest: the body.
// Properties: a failure's description has no control characters, no run of 40 token-like characters
// (a provider may echo a token), at most k_max_description bytes and "..."; its code is at most 64
// bytes; a success carries an access token and nothing in `extra` under a key naming a token, secret,
// password, signature or code_verifier, at any depth.
#include "fuzz_common.hpp"
#include "request_text.hpp"

#include <alumia/net/http.hpp>
#include <alumia/oauth/oauth_token.hpp>

#include <charconv>
#include <cstdint>
#include <string>

using namespace alumia;

namespace {

constexpr std::string_view k_target = "fuzz_token_response";

bool token_like(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}

void check_description(std::string_view d) {
  if (d.size() > oauth::OAuthError::k_max_description + 3) fuzz::finding(k_target, "description too long", d);
  if (d.ends_with("...")) d.remove_suffix(3);
  std::size_t run = 0;
  for (char c : d) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) fuzz::finding(k_target, "a control character in the description", d);
    run = token_like(c) ? run + 1 : 0;
    if (run >= 40) fuzz::finding(k_target, "a token-like run in the description", d);
  }
}

bool secret_key(std::string_view key) {
  const std::string lower = http::to_lower(key);
  for (std::string_view part : {"token", "secret", "password", "signature", "code_verifier"})
    if (lower.find(part) != std::string::npos) return true;
  return false;
}

void check_extra(const nlohmann::json& value) {
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (secret_key(it.key())) fuzz::finding(k_target, "a secret-looking key kept in extra", it.key());
      check_extra(it.value());
    }
  } else if (value.is_array()) {
    for (const auto& e : value) check_extra(e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest = fuzz::as_text(data, size);
  const std::string_view first = fuzz::take_line(rest);
  const std::string_view content_type = fuzz::take_line(rest);
  const std::string_view retry_after = fuzz::take_line(rest);
  int status = 0;
  unsigned bits = 0;
  const auto space = first.find(' ');
  std::from_chars(first.data(), first.data() + first.size(), status);
  if (space != std::string_view::npos) std::from_chars(first.data() + space + 1, first.data() + first.size(), bits);

  oauth::TokenQuirks quirks;
  quirks.form_encoded_ok = (bits & 1) != 0;
  quirks.ok_field = (bits & 2) != 0;
  quirks.nested_user_token = (bits & 4) != 0;
  const char separator = (bits & 8) != 0 ? ',' : ' ';

  http::OutboundResponse response;
  response.status = status;
  if (content_type != "-") response.headers.emplace_back("content-type", std::string(content_type));
  if (retry_after != "-") response.headers.emplace_back("retry-after", std::string(retry_after));
  response.body = std::string(rest);

  const auto result = oauth::parse_token_response(response, quirks, separator);
  if (!result) {
    const auto& e = result.error();
    check_description(e.description);
    if (e.code.empty() || e.code.size() > 64) fuzz::finding(k_target, "an empty or long error code", e.code);
    if (e.retry_after_seconds < 0 || e.retry_after_seconds > 3600)
      fuzz::finding(k_target, "retry_after out of 0..3600", std::to_string(e.retry_after_seconds));
    (void)e.classify();
    if (e.to_error().message.empty()) fuzz::finding(k_target, "an error without a message", e.code);
    return 0;
  }
  if (result->access_token.empty()) fuzz::finding(k_target, "a success without an access token");
  check_extra(result->extra);
  if (result->expires_in && *result->expires_in < 0)
    fuzz::finding(k_target, "a negative expires_in", std::to_string(*result->expires_in));
  return 0;
}

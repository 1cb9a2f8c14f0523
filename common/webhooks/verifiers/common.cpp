// Helpers shared by the verifiers.
#include "verifiers/detail.hpp"

#include <alumia/crypto/crypto.hpp>

#include <limits>

namespace alumia::webhooks::detail {

Result<std::string> single_header(const http::Request& req, std::string_view name) {
  const std::size_t count = http::header_count(req.headers, name);
  if (count == 0) return unauthorized("missing " + std::string(name) + " header");
  if (count > 1) return unauthorized(std::string(name) + " header sent more than once");
  return *http::header_value(req.headers, name);
}

Result<std::optional<std::string>> optional_header(const http::Request& req, std::string_view name) {
  const std::size_t count = http::header_count(req.headers, name);
  if (count > 1) return bad_request(std::string(name) + " header sent more than once");
  return http::header_value(req.headers, name);
}

Status require_method(const http::Request& req, std::string_view method, std::string_view provider) {
  if (req.method == method) return {};
  return fail(ErrorCode::method_not_allowed,
              std::string(provider) + " webhooks are delivered with " + std::string(method) + ", not " + req.method);
}

std::optional<int64_t> parse_decimal(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const int digit = c - '0';
    if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

std::optional<std::string> decode_hex_digest(std::string_view hex, std::size_t digest_size) {
  if (hex.size() != digest_size * 2) return std::nullopt;
  auto raw = encoding::hex_decode(hex);
  if (!raw || raw->size() != digest_size) return std::nullopt;
  return raw;
}

bool hmac_sha256_matches_any(std::span<const std::string> secrets, std::string_view data, std::string_view mac) {
  bool matched = false;
  for (const auto& secret : secrets) {
    if (secret.empty()) continue;
    // No early exit: the work does not depend on which secret matched.
    if (crypto::equal_ct(crypto::hmac_sha256(secret, data), mac)) matched = true;
  }
  return matched;
}

Status require_secrets(const EndpointConfig& endpoint, std::string_view what) {
  for (const auto& s : endpoint.secrets)
    if (!s.empty()) return {};
  return fail(ErrorCode::validation_error, std::string(to_string(endpoint.provider)) + " endpoint needs " +
                                               std::string(what) + " (no active secret configured)");
}

Result<nlohmann::json> parse_json(std::string_view body, std::string_view provider) {
  auto doc = nlohmann::json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return bad_request(std::string(provider) + " body is not valid JSON");
  return doc;
}

std::optional<std::string> string_field(const nlohmann::json& object, std::string_view key) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  auto value = it->get<std::string>();
  if (value.empty()) return std::nullopt;
  return value;
}

std::optional<std::string> id_field(const nlohmann::json& object, std::string_view key) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(key);
  if (it == object.end()) return std::nullopt;
  if (it->is_number_unsigned()) return std::to_string(it->get<uint64_t>());
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  return string_field(object, key);
}

Verdict event_verdict(std::string key, std::string type) {
  Verdict v;
  v.outcome = Outcome::event;
  v.event_key = std::move(key);
  v.event_type = std::move(type);
  return v;
}

Verdict handshake_verdict(int status, std::string body, std::string content_type) {
  Verdict v;
  v.outcome = Outcome::handshake;
  v.status = status;
  v.reply_body = std::move(body);
  v.reply_content_type = std::move(content_type);
  v.exact_reply = true;
  return v;
}

}  // namespace alumia::webhooks::detail

namespace alumia::webhooks {

std::optional<std::string> secret_whitespace_warning(const EndpointConfig& endpoint) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  for (std::size_t i = 0; i < endpoint.secrets.size(); ++i) {
    const auto& s = endpoint.secrets[i];
    if (!s.empty() && (is_space(s.front()) || is_space(s.back())))
      return std::string(to_string(endpoint.provider)) + " secret #" + std::to_string(i + 1) +
             " has leading or trailing whitespace; it is used verbatim as the key, so check it was pasted correctly";
  }
  return std::nullopt;
}

bool valid_telegram_secret_token(std::string_view token) {
  if (token.empty() || token.size() > 256) return false;
  for (const char c : token) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<std::string> decode_pubsub_data(std::string_view data) {
  std::string standard(data);
  for (char& c : standard) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
  }
  return encoding::base64_decode(standard);
}

}  // namespace alumia::webhooks

#include <alumia/base/strings.hpp>
#include <alumia/crypto/crypto.hpp>
#include <alumia/oauth/oauth_token.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <exception>
#include <limits>
#include <utility>

namespace alumia::oauth {
namespace {

using nlohmann::json;

constexpr std::size_t k_max_body = 1024 * 1024;             // token answers are small; refuse anything silly
constexpr std::size_t k_redact_run = 40;                    // token-like runs this long never reach a message
constexpr int64_t k_max_lifetime = 10LL * 366 * 24 * 3600;  // clamp absurd expires_in values
constexpr int k_max_retry_after = 3600;

// Keys never copied into TokenSet::extra, at any depth (substring match, lower-case).
constexpr std::array<std::string_view, 5> k_secret_key_parts = {"token", "secret", "password", "signature",
                                                                "code_verifier"};
// Top-level keys consumed by the parser or meaningless to callers.
constexpr std::array<std::string_view, 8> k_consumed_keys = {
    "expires_in", "refresh_token_expires_in", "scope", "ok", "error", "error_description", "error_uri", "warning"};

bool token_like(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}

// Control characters become spaces, runs of token-like characters of k_redact_run or more become
// "***" (a provider may echo a token or a code), and the result is cut at a UTF-8 boundary.
std::string sanitize_description(std::string_view text) {
  std::string cleaned;
  cleaned.reserve(std::min(text.size(), std::size_t{4096}));
  for (char c : text.substr(0, 4096)) {
    const auto u = static_cast<unsigned char>(c);
    cleaned.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
  std::string out;
  std::size_t i = 0;
  while (i < cleaned.size()) {
    if (!token_like(cleaned[i])) {
      out.push_back(cleaned[i++]);
      continue;
    }
    std::size_t j = i;
    while (j < cleaned.size() && token_like(cleaned[j])) ++j;
    if (j - i >= k_redact_run) {
      out += "***";
    } else {
      out.append(cleaned, i, j - i);
    }
    i = j;
  }
  // Collapse the whitespace left by CR/LF (Microsoft puts "\r\nTrace ID: ..." in descriptions).
  std::string collapsed;
  for (char c : out) {
    if (c == ' ' && !collapsed.empty() && collapsed.back() == ' ') continue;
    collapsed.push_back(c);
  }
  std::string result(trim(collapsed));
  if (result.size() > OAuthError::k_max_description) {
    std::size_t cut = OAuthError::k_max_description;
    while (cut > 0 && (static_cast<unsigned char>(result[cut]) & 0xC0) == 0x80) --cut;
    result.resize(cut);
    result += "...";
  }
  return result;
}

// Provider codes are short identifiers; anything else is replaced rather than echoed.
std::string sanitize_code(std::string_view code) {
  code = trim(code);
  if (code.empty() || code.size() > 64) return "invalid_error_code";
  for (char c : code) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.' || c == ':' || c == '/';
    if (!ok) return "invalid_error_code";
  }
  return std::string(code);
}

std::optional<int64_t> parse_int(std::string_view s) {
  s = trim(s);
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// expires_in & co: a JSON number (integer or not) or a numeric string (form bodies, some
// providers). Anything else, or a negative value, means "unknown".
std::optional<int64_t> lifetime_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return std::nullopt;
  std::optional<int64_t> v;
  if (it->is_number_integer()) {
    v = it->get<int64_t>();
  } else if (it->is_number_unsigned()) {
    const auto u = it->get<uint64_t>();
    v = u > static_cast<uint64_t>(k_max_lifetime) ? k_max_lifetime : static_cast<int64_t>(u);
  } else if (it->is_number_float()) {
    const double d = it->get<double>();
    if (std::isfinite(d)) v = d > static_cast<double>(k_max_lifetime) ? k_max_lifetime : static_cast<int64_t>(d);
  } else if (it->is_string()) {
    v = parse_int(it->get_ref<const std::string&>());
  }
  if (!v || *v < 0) return std::nullopt;
  return std::min(*v, k_max_lifetime);
}

std::optional<std::string> string_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

void add_scope(std::vector<std::string>& scopes, std::string_view s) {
  s = trim(s);
  if (s.empty()) return;
  if (std::find(scopes.begin(), scopes.end(), s) == scopes.end()) scopes.emplace_back(s);
}

// Fills scopes / scope_present from `scope`: a string split on the separators, or an array.
void read_scope(const json& obj, char separator, Credential& cred) {
  auto it = obj.find("scope");
  if (it == obj.end() || it->is_null()) return;
  if (it->is_array()) {
    cred.scope_present = true;
    for (const auto& e : *it) {
      if (e.is_string()) add_scope(cred.scopes, e.get_ref<const std::string&>());
    }
    return;
  }
  if (!it->is_string()) return;
  cred.scope_present = true;
  const auto& text = it->get_ref<const std::string&>();
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == separator || text[i] == ',' || is_ascii_space(text[i])) {
      add_scope(cred.scopes, std::string_view(text).substr(start, i - start));
      start = i + 1;
    }
  }
}

// One credential from a JSON object holding access_token & co. nullopt without an access token.
std::optional<Credential> read_credential(const json& obj, char separator) {
  auto at = string_field(obj, "access_token");
  if (!at || trim(*at).empty()) {
    if (at) wipe_string(*at);
    return std::nullopt;
  }
  Credential cred;
  cred.access_token = SecretBytes(std::string_view(*at));
  wipe_string(*at);
  auto type = string_field(obj, "token_type");
  if (!type || trim(*type).empty() || iequals(trim(*type), "bearer")) {
    cred.token_type = "Bearer";
  } else {
    cred.token_type = std::string(trim(*type));
  }
  if (auto rt = string_field(obj, "refresh_token")) {
    if (!trim(*rt).empty()) cred.refresh_token = SecretBytes(std::string_view(*rt));
    wipe_string(*rt);
  }
  cred.expires_in = lifetime_field(obj, "expires_in");
  cred.refresh_token_expires_in = lifetime_field(obj, "refresh_token_expires_in");
  read_scope(obj, separator, cred);
  return cred;
}

bool secret_key(std::string_view key) {
  const std::string lower = http::to_lower(key);
  return std::any_of(k_secret_key_parts.begin(), k_secret_key_parts.end(),
                     [&](std::string_view part) { return lower.find(part) != std::string::npos; });
}

// A copy of `value` without secret-looking keys at any depth; a webhook object loses its url.
json scrub(const json& value, bool in_webhook) {
  if (value.is_object()) {
    json out = json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (secret_key(it.key())) continue;
      if (in_webhook && iequals(it.key(), "url")) continue;
      const bool webhook = http::to_lower(it.key()).find("webhook") != std::string::npos;
      out[it.key()] = scrub(it.value(), webhook);
    }
    return out;
  }
  if (value.is_array()) {
    json out = json::array();
    for (const auto& e : value) out.push_back(scrub(e, in_webhook));
    return out;
  }
  return value;
}

json extra_fields(const json& obj) {
  json out = json::object();
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string& key = it.key();
    if (std::find(k_consumed_keys.begin(), k_consumed_keys.end(), key) != k_consumed_keys.end()) continue;
    if (secret_key(key)) continue;
    const bool webhook = http::to_lower(key).find("webhook") != std::string::npos;
    out[key] = scrub(it.value(), webhook);
  }
  return out;
}

bool transient_status(int status) { return status == 429 || (status >= 500 && status <= 599); }

bool transient_code(std::string_view code) {
  static constexpr std::array<std::string_view, 7> k_codes = {
      "temporarily_unavailable", "server_error",   "ratelimited", "rate_limited",
      "service_unavailable",     "internal_error", "fatal_error"};
  return std::find(k_codes.begin(), k_codes.end(), code) != k_codes.end();
}

// AADSTS numbers mentioned in a description, e.g. "AADSTS70008: The provided authorization code ...".
std::vector<int64_t> aadsts_codes(std::string_view text) {
  std::vector<int64_t> out;
  constexpr std::string_view k_prefix = "AADSTS";
  std::size_t pos = 0;
  while ((pos = text.find(k_prefix, pos)) != std::string_view::npos) {
    pos += k_prefix.size();
    std::size_t end = pos;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    if (auto n = parse_int(text.substr(pos, end - pos))) {
      if (std::find(out.begin(), out.end(), *n) == out.end()) out.push_back(*n);
    }
    pos = end;
  }
  return out;
}

OAuthError make_error(int status, std::string code, std::string_view description) {
  OAuthError e;
  e.code = std::move(code);
  e.description = sanitize_description(description);
  e.http_status = status;
  e.transient = transient_status(status) || transient_code(e.code);
  return e;
}

OAuthError malformed(int status, std::string_view why) {
  if (status < 200 || status > 299) {
    // A failing status with an unreadable body: the status is the best information we have.
    auto e = make_error(status, "http_" + std::to_string(status), why);
    return e;
  }
  return make_error(status, "malformed_response", why);
}

// The description of a JSON error object: error_description, else message (HubSpot legacy),
// else problem+json detail / title.
std::string error_description_of(const json& obj) {
  for (const char* key : {"error_description", "message", "detail", "title"}) {
    if (auto s = string_field(obj, key)) return *s;
  }
  return {};
}

// RFC 9457 problem details: the code comes from an `error` extension, else the last segment of
// `type` (unless about:blank), else the HTTP status.
OAuthError problem_error(int status, const json& obj) {
  std::string code;
  if (auto e = string_field(obj, "error")) {
    code = sanitize_code(*e);
  } else if (auto type = string_field(obj, "type"); type && *type != "about:blank" && !type->empty()) {
    std::string_view t = *type;
    while (!t.empty() && t.back() == '/') t.remove_suffix(1);
    const auto slash = t.find_last_of("/#:");
    code = sanitize_code(slash == std::string_view::npos ? t : t.substr(slash + 1));
  } else {
    code = "http_" + std::to_string(status);
  }
  std::string description;
  if (auto d = string_field(obj, "detail")) {
    description = *d;
  } else if (auto t = string_field(obj, "title")) {
    description = *t;
  } else {
    description = error_description_of(obj);
  }
  return make_error(status, std::move(code), description);
}

enum class BodyKind { json_body, form_body, unknown };

BodyKind declared_kind(std::string_view content_type) {
  std::string ct = http::to_lower(content_type);
  if (auto semi = ct.find(';'); semi != std::string::npos) ct.resize(semi);
  const std::string_view t = trim(ct);
  if (t == "application/json" || t == "text/json" || (t.size() > 5 && t.ends_with("+json"))) {
    return BodyKind::json_body;
  }
  if (t == "application/x-www-form-urlencoded") return BodyKind::form_body;
  return BodyKind::unknown;
}

bool looks_like_form(std::string_view body) {
  body = trim(body);
  if (body.empty() || body.find('=') == std::string_view::npos) return false;
  return std::none_of(body.begin(), body.end(),
                      [](char c) { return is_ascii_space(c) || c == '<' || c == '{' || c == '"'; });
}

json form_to_json(std::string_view body) {
  json out = json::object();
  for (auto& [key, value] : http::form_decode(trim(body))) {
    if (key.empty() || out.contains(key)) {
      wipe_string(value);
      continue;  // first value wins
    }
    out[key] = value;
    wipe_string(value);
  }
  return out;
}

bool is_problem_json(std::string_view content_type) {
  return http::to_lower(content_type).find("problem+json") != std::string::npos;
}

TokenResult parse_object(int status, std::string_view content_type, json& obj, const TokenQuirks& quirks,
                         char separator) {
  const bool success_status = status >= 200 && status <= 299;

  // Failures first: a 200 can carry one (GitHub, Slack).
  if (quirks.ok_field) {
    auto ok = obj.find("ok");
    const bool not_ok = ok != obj.end() && ((ok->is_boolean() && !ok->get<bool>()) ||
                                            (ok->is_string() && iequals(ok->get_ref<const std::string&>(), "false")));
    if (not_ok) {
      auto code = string_field(obj, "error");
      return std::unexpected(
          make_error(status, code ? sanitize_code(*code) : "unknown_error", error_description_of(obj)));
    }
  }
  if (auto err = obj.find("error"); err != obj.end() && !err->is_null()) {
    if (err->is_string() && !trim(err->get_ref<const std::string&>()).empty()) {
      OAuthError e = make_error(status, sanitize_code(err->get_ref<const std::string&>()), error_description_of(obj));
      if (auto codes = obj.find("error_codes"); codes != obj.end() && codes->is_array()) {
        for (const auto& c : *codes) {
          if (c.is_number_integer()) e.error_codes.push_back(c.get<int64_t>());
        }
      }
      if (e.error_codes.empty()) e.error_codes = aadsts_codes(error_description_of(obj));
      return std::unexpected(std::move(e));
    }
    if (err->is_object()) {  // some APIs nest {error:{code,message}}
      std::string code = "http_" + std::to_string(status);
      if (auto c = string_field(*err, "code")) code = sanitize_code(*c);
      return std::unexpected(make_error(status, std::move(code), error_description_of(*err)));
    }
  }
  if (is_problem_json(content_type)) return std::unexpected(problem_error(status, obj));
  if (!success_status) {
    if (obj.contains("type") || obj.contains("title") || obj.contains("detail")) {
      return std::unexpected(problem_error(status, obj));
    }
    // HubSpot legacy {status, message}; anything else without a code.
    std::string code = "http_" + std::to_string(status);
    if (auto s = string_field(obj, "status"); s && !s->empty()) code = sanitize_code(*s);
    return std::unexpected(make_error(status, std::move(code), error_description_of(obj)));
  }

  // Success.
  std::optional<Credential> primary = read_credential(obj, separator);
  std::optional<Credential> nested;
  auto authed_user = obj.find("authed_user");
  const bool has_authed_user = quirks.nested_user_token && authed_user != obj.end() && authed_user->is_object();
  if (has_authed_user) nested = read_credential(*authed_user, separator);
  if (!primary && nested) {
    primary = std::move(nested);
    nested.reset();
  }
  if (!primary) return std::unexpected(malformed(status, "the token response has no access_token"));

  TokenSet set;
  static_cast<Credential&>(set) = std::move(*primary);
  set.user = std::move(nested);
  set.extra = extra_fields(obj);
  if (has_authed_user) {
    // Keep the user's id and granted scope for the account label; the credential went to `user`.
    json au = scrub(*authed_user, false);
    au.erase("expires_in");
    set.extra["authed_user"] = std::move(au);
  }
  return set;
}

int retry_after_of(const http::OutboundResponse& response) {
  auto v = response.header("retry-after");
  if (!v) return 0;
  auto n = parse_int(*v);
  if (!n || *n < 0) return 0;
  return static_cast<int>(std::min<int64_t>(*n, k_max_retry_after));
}

}  // namespace

std::string_view to_string(OAuthErrorKind kind) {
  switch (kind) {
    case OAuthErrorKind::grant_invalid:
      return "grant_invalid";
    case OAuthErrorKind::client_invalid:
      return "client_invalid";
    case OAuthErrorKind::transient:
      return "transient";
    case OAuthErrorKind::malformed:
      return "malformed";
    case OAuthErrorKind::other:
      return "other";
  }
  return "other";
}

OAuthErrorKind OAuthError::classify() const {
  static constexpr std::array<std::string_view, 9> k_grant = {
      "invalid_grant",
      "bad_verification_code",  // GitHub: code expired, used or unknown
      "invalid_code",           // Slack
      "code_already_used",      // Slack
      "invalid_refresh_token",  // Slack
      "token_revoked",          // Slack
      "token_expired",          // Slack
      "expired_token",         "invalid_token"};
  static constexpr std::array<std::string_view, 7> k_client = {"invalid_client",
                                                               "unauthorized_client",
                                                               "incorrect_client_credentials" /* GitHub */,
                                                               "invalid_client_id" /* Slack */,
                                                               "bad_client_secret" /* Slack */,
                                                               "invalid_client_secret",
                                                               "http_401"};
  if (transient) return OAuthErrorKind::transient;
  if (std::find(k_grant.begin(), k_grant.end(), code) != k_grant.end()) return OAuthErrorKind::grant_invalid;
  if (std::find(k_client.begin(), k_client.end(), code) != k_client.end()) return OAuthErrorKind::client_invalid;
  if (code == "malformed_response" || code == "invalid_error_code") return OAuthErrorKind::malformed;
  return OAuthErrorKind::other;
}

Error OAuthError::to_error() const {
  const OAuthErrorKind kind = classify();
  std::string message = "token endpoint answered " + code;
  if (http_status != 0) message += " (HTTP " + std::to_string(http_status) + ")";
  if (!description.empty()) message += ": " + description;
  if (kind == OAuthErrorKind::transient || kind == OAuthErrorKind::malformed) {
    return Error{ErrorCode::service_unavailable, std::move(message),
                 kind == OAuthErrorKind::transient ? retry_after_seconds : 0};
  }
  return Error{ErrorCode::bad_request, std::move(message), 0};
}

TokenResult parse_token_response(int http_status, std::string_view content_type, std::string_view body,
                                 const TokenQuirks& quirks, char scope_separator) {
  try {
    if (body.size() > k_max_body) return std::unexpected(malformed(http_status, "the token response is too large"));
    BodyKind kind = declared_kind(content_type);
    const std::string_view trimmed = trim(body);
    if (kind == BodyKind::json_body && (trimmed.empty() || trimmed.front() != '{')) kind = BodyKind::unknown;
    if (kind == BodyKind::form_body && !looks_like_form(trimmed)) kind = BodyKind::unknown;
    if (kind == BodyKind::unknown) {
      if (!trimmed.empty() && trimmed.front() == '{') {
        kind = BodyKind::json_body;
      } else if (looks_like_form(trimmed)) {
        kind = BodyKind::form_body;
      }
    }

    json obj;
    switch (kind) {
      case BodyKind::json_body:
        obj = json::parse(trimmed, nullptr, /*allow_exceptions=*/false);
        if (obj.is_discarded() || !obj.is_object()) {
          return std::unexpected(malformed(http_status, "the token response is not a JSON object"));
        }
        break;
      case BodyKind::form_body:
        if (!quirks.form_encoded_ok) {
          return std::unexpected(malformed(http_status, "the token response is form-encoded, expected JSON"));
        }
        obj = form_to_json(trimmed);
        break;
      case BodyKind::unknown:
        return std::unexpected(malformed(http_status, trimmed.empty()
                                                          ? "the token response is empty"
                                                          : "the token response is neither JSON nor a form"));
    }
    TokenResult result = parse_object(http_status, content_type, obj, quirks, scope_separator);
    // Drop our copies of the token strings held by the parsed tree.
    for (auto& [key, value] : obj.items()) {
      if (value.is_string() && secret_key(key)) wipe_string(value.get_ref<std::string&>());
    }
    if (auto au = obj.find("authed_user"); au != obj.end() && au->is_object()) {
      for (auto& [key, value] : au->items()) {
        if (value.is_string() && secret_key(key)) wipe_string(value.get_ref<std::string&>());
      }
    }
    return result;
  } catch (const std::exception&) {
    return std::unexpected(malformed(http_status, "the token response could not be parsed"));
  }
}

TokenResult parse_token_response(const http::OutboundResponse& response, const TokenQuirks& quirks,
                                 char scope_separator) {
  const std::string content_type = response.header("content-type").value_or("");
  TokenResult result = parse_token_response(response.status, content_type, response.body, quirks, scope_separator);
  if (!result) result.error().retry_after_seconds = retry_after_of(response);
  return result;
}

// ---- PKCE ----

std::string pkce_challenge_s256(std::string_view verifier) {
  return encoding::base64url_encode(crypto::sha256(verifier));
}

std::string pkce_new_verifier(Random& random) { return random.base64url(32); }

bool pkce_verifier_valid(std::string_view verifier) {
  if (verifier.size() < 43 || verifier.size() > 128) return false;
  return std::all_of(verifier.begin(), verifier.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
  });
}

}  // namespace alumia::oauth

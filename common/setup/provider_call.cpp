// The shared half of the registrars' calls (provider_call.hpp).
#include "provider_call.hpp"

#include <alumia/base/text.hpp>

#include <algorithm>
#include <charconv>
#include <ctime>

namespace alumia::setup::detail {

namespace {

constexpr std::size_t k_max_text = 300;

void replace_all(std::string& text, std::string_view what) {
  if (what.size() < 4) return;  // a short value would mask ordinary words and tells nothing
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 3))
    text.replace(at, what.size(), "***");
}

bool token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '*';
}

// sk_..., rk_..., pk_..., whsec_... (Stripe echoes keys masked, e.g. sk_test_****1234): the whole word.
void mask_key_shapes(std::string& text) {
  static constexpr std::string_view k_prefixes[] = {"sk_", "rk_", "pk_", "whsec_"};
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i > 0 && token_char(text[i - 1])) continue;
    for (std::string_view p : k_prefixes) {
      if (std::string_view(text).substr(i, p.size()) != p) continue;
      std::size_t end = i + p.size();
      while (end < text.size() && token_char(text[end])) ++end;
      text.replace(i, end - i, "***");
      break;
    }
  }
}

std::optional<long long> parse_http_date(std::string_view value) {
  std::tm tm{};
  const std::string s(value);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (!end) return std::nullopt;
  return static_cast<long long>(timegm(&tm));
}

}  // namespace

std::string trimmed_base(std::string_view api_base) {
  while (api_base.ends_with('/')) api_base.remove_suffix(1);
  return std::string(api_base);
}

http::OutboundRequest bearer_request(const RegistrarContext& ctx, std::string method, std::string url) {
  http::OutboundRequest r;
  r.method = std::move(method);
  r.url = std::move(url);
  r.headers = {{"Authorization", "Bearer " + ctx.credential.str()}, {"User-Agent", "alumia-connect/" ALUMIA_VERSION}};
  return r;
}

Result<http::OutboundResponse> send(const RegistrarContext& ctx, http::OutboundRequest request,
                                    std::string_view provider) {
  request.max_response_bytes = k_max_answer_bytes;
  auto response = ctx.http.send(request);
  wipe_string(request.body);  // may carry the endpoint secret (github's config.secret)
  wipe_string(request.url);   // may carry the credential (the Bot API's /bot<token>/)
  for (auto& header : request.headers) wipe_string(header.second);  // Authorization
  if (!response)
    return fail(ErrorCode::service_unavailable, std::string(provider) + " could not be reached (" +
                                                    provider_text(response.error().message, ctx) +
                                                    "); try again later");
  return response;
}

nlohmann::json parse_body(const http::OutboundResponse& response) {
  return nlohmann::json::parse(response.body, nullptr, false);
}

std::optional<std::string> string_member(const nlohmann::json& object, std::string_view key) {
  if (!object.is_object()) return std::nullopt;
  const auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::string safe_text(std::string_view text, std::size_t max_bytes) {
  std::string clean;
  for (std::size_t at = 0; at < text.size();) {
    const Utf8Step step = decode_utf8(text, at);
    if (clean.size() + step.length > max_bytes) break;
    if (!step.valid) clean += '?';
    else if (is_control_code_point(step.code_point)) clean += ' ';
    else clean.append(text, at, step.length);
    at += step.length;
  }
  return clean;
}

std::string provider_text(std::string_view text, const RegistrarContext& ctx) {
  std::string out(text.substr(0, 4 * k_max_text));
  replace_all(out, ctx.credential.view());
  replace_all(out, ctx.secret.view());
  mask_key_shapes(out);
  std::string clean = safe_text(out, k_max_text);
  wipe_string(out);
  return clean;
}

std::string http_status(int status, std::string_view said) {
  return "HTTP " + std::to_string(status) + (said.empty() ? "" : ": " + std::string(said));
}

Error unexpected_answer(std::string_view provider, int status, std::string_view http) {
  if (status >= 500)
    return {ErrorCode::service_unavailable,
            std::string(provider) + " is unavailable (" + std::string(http) + "); try again later", 0};
  return {ErrorCode::service_unavailable, std::string(provider) + " answered unexpectedly (" + std::string(http) + ")",
          0};
}

Status check_events(const std::optional<std::vector<std::string>>& events, const EventRule& rule) {
  if (!events) return {};
  if (events->empty() && !rule.empty_allowed)
    return fail(ErrorCode::validation_error,
                "--events needs at least one " + std::string(rule.kind) + ", or * for all");
  for (const auto& e : *events)
    if (!rule.valid(e))
      return fail(ErrorCode::validation_error, "--events: \"" + safe_text(e, 100) + "\" is not a " +
                                                   std::string(rule.kind) + " (" + std::string(rule.rule) + ")");
  return {};
}

int retry_after(const http::OutboundResponse& response, int fallback) {
  const auto value = response.header("retry-after");
  if (!value) return fallback;
  int seconds = 0;
  const auto [ptr, ec] = std::from_chars(value->data(), value->data() + value->size(), seconds);
  if (ec == std::errc() && ptr == value->data() + value->size()) return std::max(seconds, 1);
  if (const auto at = parse_http_date(*value))
    if (const auto wait = seconds_until(response, *at)) return *wait;
  return fallback;
}

std::optional<int> seconds_until(const http::OutboundResponse& response, long long unix_time) {
  const auto date = response.header("date");
  if (!date) return std::nullopt;
  const auto now = parse_http_date(*date);
  if (!now) return std::nullopt;
  const long long wait = unix_time - *now;
  return static_cast<int>(std::clamp(wait, 1LL, 24LL * 3600));
}

}  // namespace alumia::setup::detail

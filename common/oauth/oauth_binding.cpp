// The browser binding of OAuth flows (the cookie set where a flow starts, checked at the callback), the
// fixed outcomes of refused callbacks (the result page's HTML is daemon/wire.cpp).
#include <alumia/base/strings.hpp>
#include <alumia/crypto/crypto.hpp>
#include <alumia/oauth/oauth.hpp>

#include <spdlog/spdlog.h>

namespace alumia::oauth {
namespace {

constexpr int64_t k_refusal_log_window_ms = 10 * 1000;  // one log line per kind of refused callback

// The values of the cookies named `name` among the request's Cookie headers ("a=1; b=2").
std::vector<std::string_view> cookie_values(const http::Headers& headers, std::string_view name) {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : headers) {
    if (!iequals(k, "cookie")) continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      const auto semi = rest.find(';');
      std::string_view pair = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t')) pair.remove_prefix(1);
      const auto eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) out.push_back(pair.substr(eq + 1));
    }
  }
  return out;
}

}  // namespace

CallbackOutcome refusal_outcome(CallbackRefusal refusal) {
  CallbackOutcome out{false, "error", "", "", refusal};
  switch (refusal) {
    case CallbackRefusal::other_browser:
      out.message =
          "This sign-in was started in another browser, so it was refused here and nothing changed. Finish it "
          "in the browser that opened the alumia-connect link, or start again in this one with alumia-connect "
          "connect.";
      break;
    case CallbackRefusal::unknown_state:
    case CallbackRefusal::none:
      out.message =
          "This sign-in link is not valid any more (unknown, used or expired). Start again with alumia-connect "
          "connect.";
      break;
  }
  return out;
}

std::string_view refusal_name(CallbackRefusal refusal) {
  switch (refusal) {
    case CallbackRefusal::other_browser:
      return "other-browser";
    case CallbackRefusal::unknown_state:
      return "unknown-state";
    case CallbackRefusal::none:
      break;
  }
  return "";
}

std::optional<CallbackRefusal> parse_refusal(std::string_view name) {
  for (auto r : {CallbackRefusal::unknown_state, CallbackRefusal::other_browser})
    if (name == refusal_name(r)) return r;
  return std::nullopt;
}

std::optional<uint64_t> FlowService::LogLimiter::allow(int64_t now_ms) {
  if (now_ms < next_ms) {
    ++suppressed;
    return std::nullopt;
  }
  next_ms = now_ms + k_refusal_log_window_ms;
  return std::exchange(suppressed, 0);
}

std::string FlowService::cookie_name(std::string_view connection_id) {
  return "alumia-oauth-" + std::string(connection_id);
}

std::string FlowService::cookie_attributes(int64_t max_age_s) const {
  return "; Max-Age=" + std::to_string(max_age_s) + "; Path=" + m_cookie_path + "; HttpOnly; SameSite=Lax" +
         (m_cookie_secure ? "; Secure" : "");
}

std::string FlowService::clear_cookie(std::string_view connection_id) const {
  return cookie_name(connection_id) + "=" + cookie_attributes(0);
}

bool FlowService::bound_to_browser(const OAuthFlowRecord& flow, const http::Headers& headers) const {
  bool bound = false;
  for (std::string_view nonce : cookie_values(headers, cookie_name(flow.connection_id)))
    bound = crypto::equal_ct(crypto::sha256(nonce), flow.browser_hash) || bound;
  return bound;
}

}  // namespace alumia::oauth
